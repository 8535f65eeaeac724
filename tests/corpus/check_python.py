#!/usr/bin/env python3
"""Ground truth for crucible's Python syntax checks: CPython's own compile().

Takes a deterministic sample of the standard library of the Python running
this script (read at test time, never copied into the repository), makes
single-line mutations of each file (indent or dedent a line, delete a colon,
a bracket, a comma or a quote, duplicate or delete a line, turn print(...)
into a Python 2 print statement, ...), and compares `crucible check --json`
with compile():

- every file compile() accepts (the originals and the harmless mutants) must
  get no syntax diagnostic (a false alarm otherwise);
- every mutant compile() rejects must get a syntax diagnostic on the line
  compile() names (an exact hit); a diagnostic on another line is counted as
  near (within 2 lines) or wrong, none at all as missed.

Usage: check_python.py --crucible build/server/crucible [--files 150]
       [--mutants 8] [--seed 13] [--details out.txt]
Prints the counts; exits 1 when there is a false alarm or a mutant not hit
on the compiler's line.
"""
import argparse
import json
import os
import random
import shutil
import re
import sys
import sysconfig
import tempfile
import warnings

from crucible_check import syntax_diagnostics


def stdlib_files(root=None):
    skip = ("__pycache__",) if root else ("site-packages", "dist-packages", "__pycache__")
    root = root or sysconfig.get_paths()["stdlib"]
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in skip)
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.join(d, f))
    return out


def compile_error(src):
    """None when compile() accepts src, else (line, col, message); 'skip'
    for errors that are not SyntaxErrors (null bytes, recursion)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(src, "<mutant>", "exec", dont_inherit=True)
        except SyntaxError as e:
            if e.lineno is None:
                return "skip"
            return (e.lineno, e.offset, type(e).__name__ + ": " + e.msg)
        except (ValueError, RecursionError, MemoryError, OverflowError):
            return "skip"
    return None


OPEN, CLOSE = "([{", ")]}"


def mutate(lines, rng):
    """One single-line mutation: (kind, new lines) or None when the chosen
    line does not allow it."""
    code = [i for i, l in enumerate(lines) if l.strip() and not l.lstrip().startswith("#")]
    if not code:
        return None
    i = rng.choice(code)
    line = lines[i]
    body = line.rstrip("\n")
    nl = line[len(body):]
    ind = len(body) - len(body.lstrip(" \t"))
    kind = rng.choice(["indent", "indent1", "dedent", "colon", "close", "open", "dup", "delete",
                       "quote", "comma", "print2", "word", "char", "tab", "swap"])
    new = list(lines)
    if kind == "indent":
        new[i] = "    " + line
    elif kind == "indent1":
        new[i] = " " + line
    elif kind == "tab":
        if ind < 8 or not body.startswith("        "):
            return None
        new[i] = "\t" + line[8:]
    elif kind == "dedent":
        if ind == 0:
            return None
        new[i] = line[min(4, ind):]
    elif kind == "colon":
        k = body.rfind(":")
        if k < 0:
            return None
        new[i] = body[:k] + body[k + 1:] + nl
    elif kind in ("close", "open", "quote", "comma"):
        chars = {"close": CLOSE, "open": OPEN, "quote": "'\"", "comma": ","}[kind]
        pos = [k for k, ch in enumerate(body) if ch in chars]
        if not pos:
            return None
        k = rng.choice(pos)
        new[i] = body[:k] + body[k + 1:] + nl
    elif kind == "dup":
        new.insert(i, line)
    elif kind == "delete":
        del new[i]
    elif kind == "print2":
        m = re.search(r"\bprint\((.*)\)\s*$", body)
        if not m:
            return None
        new[i] = body[:m.start()] + "print " + m.group(1) + nl
    elif kind == "word":
        words = list(re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", body))
        if not words:
            return None
        m = rng.choice(words)
        new[i] = body[:m.start()] + body[m.end():] + nl
    elif kind == "char":
        k = rng.randrange(len(body) + 1)
        new[i] = body[:k] + rng.choice("$?`!:;=.,()") + body[k:] + nl
    elif kind == "swap":
        if len(body) < 2:
            return None
        k = rng.randrange(len(body) - 1)
        new[i] = body[:k] + body[k + 1] + body[k] + body[k + 2:] + nl
    return kind, new


def run_crucible(crucible, paths):
    """{path: [syntax diagnostics]} from `crucible check --json`."""
    return syntax_diagnostics(crucible, "python", paths, 400)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crucible", required=True)
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--mutants", type=int, default=8)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--details")
    ap.add_argument("--root", help="a folder of Python files instead of the standard library")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    files = stdlib_files(a.root)
    sample = sorted(rng.sample(files, min(a.files, len(files))))
    tmp = tempfile.mkdtemp(prefix="crucible-corpus-")
    cases = []  # (path, origin, kind, truth)
    for n, f in enumerate(sample):
        try:
            src = open(f, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        if compile_error(src) is not None:
            continue  # not valid Python 3 to begin with (test data)
        p = os.path.join(tmp, "o%04d.py" % n)
        open(p, "w", encoding="utf-8").write(src)
        cases.append((p, f, "original", None))
        lines = src.splitlines(keepends=True)
        made = tries = 0
        while made < a.mutants and tries < a.mutants * 20:
            tries += 1
            m = mutate(lines, rng)
            if not m:
                continue
            kind, new = m
            text = "".join(new)
            truth = compile_error(text)
            if truth == "skip":
                continue
            p = os.path.join(tmp, "m%04d_%02d.py" % (n, made))
            open(p, "w", encoding="utf-8").write(text)
            cases.append((p, f, kind, truth))
            made += 1

    try:
        diags = run_crucible(a.crucible, [c[0] for c in cases])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = dict(originals=0, original_false_alarms=0, accepted_mutants=0, mutant_false_alarms=0,
                  rejected=0, exact=0, near=0, wrong=0, missed=0)
    details = []
    for p, origin, kind, truth in cases:
        ds = diags.get(p, [])
        rows = sorted({d["range"]["start"]["line"] + 1 for d in ds})
        if truth is None:
            key = "originals" if kind == "original" else "accepted_mutants"
            counts[key] += 1
            if ds:
                counts["original_false_alarms" if kind == "original" else "mutant_false_alarms"] += 1
                details.append("FALSE ALARM %s (%s from %s): %s" % (p, kind, origin,
                               "; ".join("%d:%d %s" % (d["range"]["start"]["line"] + 1,
                                         d["range"]["start"]["character"] + 1, d["message"]) for d in ds)))
            continue
        counts["rejected"] += 1
        line, col, msg = truth
        if line in rows:
            counts["exact"] += 1
            continue
        if not ds:
            counts["missed"] += 1
            what = "MISSED"
        elif any(abs(r - line) <= 2 for r in rows):
            counts["near"] += 1
            what = "NEAR"
        else:
            counts["wrong"] += 1
            what = "WRONG"
        details.append("%s %s (%s from %s): python %d:%s %s | crucible %s" % (
            what, p, kind, origin, line, col, msg,
            "; ".join("%d:%d %s" % (d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1,
                                    d["message"]) for d in ds) or "-"))
    print(json.dumps(counts))
    if a.details:
        with open(a.details, "w") as fh:
            fh.write("\n".join(details) + "\n")
    else:
        for d in details[:50]:
            print(d)
    bad = counts["original_false_alarms"] + counts["mutant_false_alarms"] + counts["rejected"] - counts["exact"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
