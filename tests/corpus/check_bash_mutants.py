#!/usr/bin/env python3
"""Mutation corpus for crucible's bash syntax checks: single-line mutations
of the machine's shell scripts (read at test time, never copied into the
repository) that `bash -n` rejects, and how many of them crucible flags.
Given two binaries, also lists the mutants one catches and the other does
not (to show that a change to the rewrites in server/check/gaps.c loses no
error).

Usage: check_bash_mutants.py --crucible A [--crucible B] [--files 200]
       [--mutants 5] [--seed 7]
Mutations: delete a line that closes or continues a compound command
(fi, done, esac, }, ;;, then, do), delete a quote or a bracket, insert a
stray closing word, halve a two-character operator (;; && || << $( ), delete
a line, insert a stray operator character. Exits 1 when B catches fewer.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

from check_js_bash import sh_files
from crucible_check import syntax_diagnostics


def mutate(rng, lines):
    """A mutated copy of lines, or None when the drawn mutation does not apply."""
    L = list(lines)
    idx = [i for i, l in enumerate(L) if l.strip() and not l.strip().startswith("#")]
    if not idx:
        return None
    i = rng.choice(idx)
    l = L[i]
    kind = rng.randrange(7)
    if kind == 0:
        cand = [j for j in idx if L[j].strip() in ("fi", "done", "esac", "}", ";;")
                or L[j].strip().startswith(("then", "do"))]
        if not cand:
            return None
        del L[rng.choice(cand)]
    elif kind in (1, 2):
        chars = "'\"`" if kind == 1 else "(){}[]"
        pos = [k for k, ch in enumerate(l) if ch in chars]
        if not pos:
            return None
        k = rng.choice(pos)
        L[i] = l[:k] + l[k + 1:]
    elif kind == 3:
        L.insert(i, rng.choice(["fi", "done", "esac", "then", "}", ")"]))
    elif kind == 4:
        pos = [k for k in range(len(l) - 1) if l[k:k + 2] in (";;", "&&", "||", "<<", "$(")]
        if not pos:
            return None
        k = rng.choice(pos)
        L[i] = l[:k] + l[k + 1:]
    elif kind == 5:
        del L[i]
    else:
        k = rng.randrange(len(l) + 1)
        L[i] = l[:k] + rng.choice("|;&<>()") + l[k:]
    return L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crucible", action="append", required=True)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mutants", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the mutants (their folder is printed)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    files = [f for f in sh_files() if os.path.getsize(f) < 200000]
    rng.shuffle(files)
    tmp = tempfile.mkdtemp(prefix="crucible-bash-mutants-")
    try:
        muts, n, why = [], 0, {}
        for f in files[:a.files]:
            try:
                with open(f, errors="surrogateescape") as fh:
                    lines = fh.read().split("\n")
            except OSError:
                continue
            if subprocess.run(["bash", "-n", f], capture_output=True).returncode:
                continue
            for _ in range(a.mutants):
                L = mutate(rng, lines)
                if L is None:
                    continue
                p = os.path.join(tmp, "m%d.sh" % n)
                n += 1
                with open(p, "w", errors="surrogateescape") as fh:
                    fh.write("\n".join(L))
                r = subprocess.run(["bash", "-n", p], capture_output=True, text=True, errors="replace")
                if r.returncode:
                    muts.append(p)
                    why[p] = "%s (bash: %s)" % (f, (r.stderr.strip().splitlines() or [""])[0].split(": ", 1)[-1])
        caught = []
        for b in a.crucible:
            d = syntax_diagnostics(b, "bash", muts, 300)
            caught.append(set(p for p in muts if d.get(p)))
            print("%s: %d of %d rejected mutants caught" % (b, len(caught[-1]), len(muts)))
        if len(caught) == 2:
            for p in sorted(caught[0] - caught[1]):
                print("LOST", p if a.keep else "", why[p])
            for p in sorted(caught[1] - caught[0]):
                print("GAINED", why[p])
            return 1 if caught[0] - caught[1] else 0
        return 0
    finally:
        if a.keep:
            print("mutants kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
