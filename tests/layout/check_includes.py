#!/usr/bin/env python3
"""Checks the folder dependency rules of docs/architecture.md over the
#include lines of protocol/ and server/: a folder may include headers of
the folders listed for it and no others (besides the constants-only
headers in SHARED); a folder's private header (internal.h) is for its own
files; header names are unique across folders
(includes name the file only). Prints each violation and exits 1 if any.

Usage: check_includes.py [SOURCE_ROOT]"""
import os
import re
import sys

# folder -> the folders whose headers it may include (besides its own).
# Keep in step with the table in docs/architecture.md.
ALLOWED = {
    "protocol": set(),
    "server/util": {"protocol"},
    "server/config": {"server/util"},
    "server/rpc": {"protocol", "server/util"},
    "server/net": {"protocol", "server/util"},
    "server/store": {"server/util"},
    "server/sandbox": {"protocol", "server/util", "server/net"},
    "server/env": {"protocol", "server/util", "server/sandbox"},
    "server/check": {"protocol", "server/util", "grammars"},
    "server/llm": {"protocol", "server/util", "server/net"},
    "server/docs": {"protocol", "server/util", "server/net"},
    "server/modindex": {"protocol", "server/util", "server/check", "server/sandbox"},
    "server/agent": {"protocol", "server/util", "server/check", "server/modindex", "server/sandbox",
                     "server/llm", "server/docs", "server/store", "server/env"},
    "server/core": {"protocol", "server/util", "server/config", "server/env", "server/check", "server/modindex",
                    "server/sandbox", "server/llm", "server/net", "server/docs", "server/store",
                    "server/agent"},
    "server/lsp": {"protocol", "server/util", "server/config", "server/env", "server/rpc", "server/core",
                   "server/agent", "server/check", "server/modindex", "server/sandbox", "server/llm",
                   "server/docs", "server/store"},
    "server/cli": {"protocol", "server/util", "server/config", "server/env", "server/rpc", "server/core",
                   "server/lsp", "server/agent", "server/check", "server/modindex", "server/sandbox",
                   "server/llm", "server/net", "server/docs", "server/store"},
    "server": {"server/cli"},
}
PRIVATE = {"internal.h"}
# Headers of constants only (no code, no types) that any folder may include:
# the settings' defaults are written once, in config/, and the folders below
# it use them for their own "0 means default" without seeing the settings.
SHARED = {"server/config/defaults.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))
    headers = {}  # basename -> folders that have it
    sources = []
    for top in ("protocol", "server", "grammars"):
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = [x for x in dirs if x != "node_modules"]
            rel = os.path.relpath(d, root)
            for f in files:
                if f.endswith(".h"):
                    headers.setdefault(f, set()).add(rel)
                if f.endswith((".c", ".h")) and top != "grammars":
                    sources.append((rel, f))
    problems = []
    for name, folders in sorted(headers.items()):
        if len(folders) > 1 and name not in PRIVATE:
            problems.append("header name %s is in %s: names must be unique" % (name, ", ".join(sorted(folders))))
    for shared in sorted(SHARED):
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"),
                      open(os.path.join(root, shared), encoding="utf-8").read(), flags=re.S)
        for n, ln in enumerate(text.split("\n"), 1):
            if ln.strip() and not ln.lstrip().startswith("#"):
                problems.append("%s:%d: a shared header holds preprocessor constants only" % (shared, n))
    for folder, f in sorted(sources):
        if folder not in ALLOWED:
            problems.append("%s/%s: folder %s has no rule in tests/layout/check_includes.py" % (folder, f, folder))
            continue
        text = open(os.path.join(root, folder, f), encoding="utf-8").read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            base = os.path.basename(inc)
            where = headers.get(base, set())
            if folder in where:
                continue  # its own header (a private one included)
            if any(os.path.join(o, base) in SHARED for o in where):
                continue
            if base in PRIVATE:
                problems.append("%s/%s:%d: includes another folder's private %s" % (folder, f, line, inc))
                continue
            if not where:
                continue  # generated or from a dependency (cJSON, uv, tree-sitter)
            (owner,) = where
            if owner not in ALLOWED[folder]:
                problems.append("%s/%s:%d: %s may not include %s (from %s)" % (folder, f, line, folder, inc, owner))
    for p in problems:
        print(p)
    if problems:
        print("%d include rule violation(s); the rules are in docs/architecture.md" % len(problems))
        return 1
    print("include rules: %d files checked, all within their folders' rules" % len(sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
