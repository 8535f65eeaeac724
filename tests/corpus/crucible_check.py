"""What `crucible check --json` says of many files, for the corpus scripts."""
import json
import os
import shutil
import subprocess
import tempfile


def syntax_diagnostics(crucible, language, paths, batch):
    """{path: [syntax and limit diagnostics]}, checking `batch` files per run
    (with a private module cache unless XDG_CACHE_HOME is set)."""
    env = dict(os.environ)
    cache = None
    if "XDG_CACHE_HOME" not in env:
        cache = env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="crucible-corpus-cache-")
    out = {}
    try:
        for k in range(0, len(paths), batch):
            p = subprocess.run([crucible, "check", "--json", "--language", language] + paths[k:k + batch],
                               capture_output=True, text=True, env=env)
            dec = json.JSONDecoder()
            s, pos = p.stdout, 0
            while True:
                while pos < len(s) and s[pos].isspace():
                    pos += 1
                if pos >= len(s):
                    break
                obj, pos = dec.raw_decode(s, pos)
                out[obj["file"]] = [d for d in obj["diagnostics"] if d.get("code") in ("syntax", "limit")]
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    return out
