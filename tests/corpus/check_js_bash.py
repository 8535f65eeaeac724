#!/usr/bin/env python3
"""Ground truth for crucible's JavaScript and Bash syntax checks: `node
--check` and `bash -n` on real files of this machine (read at test time,
never copied into the repository).

Counts, per language, the files the tool accepts that crucible flags (false
alarms) and the files it rejects that crucible passes (misses), and prints
each disagreement.

Usage: check_js_bash.py --crucible build/server/crucible [--language javascript|bash]
       [--files 400] [--seed 13] [--details out.txt]
JavaScript files come from the global node_modules folders; shell scripts
from *.sh / *.bash files and scripts with a bash or sh shebang under /usr and
/etc. Exits 1 when there is a false alarm or a miss.
"""
import argparse
import json
import os
import random
import subprocess
import sys

from crucible_check import syntax_diagnostics

JS_ROOTS = ["/usr/lib/node_modules", "/usr/local/lib/node_modules", "/usr/share/nodejs"]
SH_ROOTS = ["/usr/bin", "/usr/sbin", "/usr/lib", "/usr/share", "/etc"]


def js_files():
    out = []
    for root in JS_ROOTS:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".js", ".cjs", ".mjs")):
                    out.append(os.path.join(d, f))
    return out


def sh_files():
    out = []
    for root in SH_ROOTS:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(d, f)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                if f.endswith((".sh", ".bash")):
                    out.append(p)
                    continue
                try:
                    with open(p, "rb") as fh:
                        head = fh.readline(100)
                except OSError:
                    continue
                if head.startswith(b"#!") and (b"bash" in head or head.rstrip().endswith(b"/sh")):
                    out.append(p)
    return out


def truth(lang, path):
    """True when the language's own tool accepts the file."""
    if lang == "javascript":
        # node decides module vs script by extension and package.json, as for a run
        p = subprocess.run(["node", "--check", path], capture_output=True, text=True)
    else:
        p = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    return p.returncode == 0, (p.stderr.strip().splitlines() or [""])[-1][:200]


def run_crucible(crucible, lang, paths):
    """{path: [syntax diagnostics]} from `crucible check --json`."""
    return syntax_diagnostics(crucible, lang, paths, 300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crucible", required=True)
    ap.add_argument("--language", choices=["javascript", "bash"], action="append")
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--details")
    a = ap.parse_args()
    langs = a.language or ["javascript", "bash"]
    details, bad = [], 0
    for lang in langs:
        files = js_files() if lang == "javascript" else sh_files()
        rng = random.Random(a.seed)
        sample = sorted(rng.sample(files, min(a.files, len(files))))
        sample = [f for f in sample if os.path.getsize(f) < (2 << 20)]
        diags = run_crucible(a.crucible, lang, sample)
        counts = dict(files=len(sample), accepted=0, false_alarms=0, rejected=0, caught=0, missed=0)
        for f in sample:
            ok, why = truth(lang, f)
            ds = diags.get(f, [])
            if ok:
                counts["accepted"] += 1
                if ds:
                    counts["false_alarms"] += 1
                    details.append("FALSE ALARM %s %s: %s" % (lang, f, "; ".join(
                        "%d:%d %s" % (d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1,
                                      d["message"]) for d in ds)))
            else:
                counts["rejected"] += 1
                if ds:
                    counts["caught"] += 1
                else:
                    counts["missed"] += 1
                    details.append("MISSED %s %s: %s" % (lang, f, why))
        bad += counts["false_alarms"] + counts["missed"]
        print(lang, json.dumps(counts))
    if a.details:
        with open(a.details, "w") as fh:
            fh.write("\n".join(details) + "\n")
    else:
        print("\n".join(details[:60]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
