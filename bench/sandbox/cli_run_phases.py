#!/usr/bin/env python3
"""Where a one-shot `crucible run one.py` (print(1)) spends its time, next to
plain bwrap with the same namespaces (cli_run_bench.py's command): phases
between marker system calls (execve, vfork/clone, seccomp, mkdir,
exit_group) from a strace limited to those calls (--seccomp-bpf), median
over N interleaved runs. strace still slows process creation, so the phases
are for comparing builds measured the same way, not absolute figures.

usage: bench/sandbox/cli_run_phases.py BIN [N] [--before OLD_BIN]
"""
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_run_bench import plain_bwrap  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
B = args[0]
N = int(args[1]) if len(args) > 1 else 10
OLD = sys.argv[sys.argv.index("--before") + 1] if "--before" in sys.argv else None
if OLD in args:
    args.remove(OLD)
    N = int(args[1]) if len(args) > 1 else 10
d = tempfile.mkdtemp()
prog = os.path.join(d, "one.py")
open(prog, "w").write("print(1)\n")
env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": d + "/c", "XDG_STATE_HOME": d + "/s", "XDG_CACHE_HOME": d + "/k",
       "HOME": d}
PLAIN = plain_bwrap()

CRU = ["start→seccomp (exec, libraries, config)", "seccomp→cgroup probe (filter built or loaded)",
       "probe→sandbox spawn (cgroups, fds)", "spawn→bwrap clone (bwrap's exec and start)",
       "clone→python exec (namespaces, mounts, release)", "python run", "python exit→crucible exit"]
PLN = ["start→bwrap clone", "clone→python exec", "python run", "python exit→bwrap exit"]


def trace(argv, cache="plain"):
    out = d + "/st"
    # Each binary its own cache folder: the seccomp cache's key holds the
    # build id, so two builds sharing one file would rebuild it every run.
    subprocess.run(["strace", "-f", "--seccomp-bpf", "-ttt", "-o", out, "-e",
                    "trace=execve,vfork,clone,clone3,exit_group,mkdir,rmdir,seccomp", *argv],
                   env=dict(env, XDG_CACHE_HOME="%s/k-%s" % (d, cache)), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return open(out).read().splitlines()


def t(line):
    return float(line.split()[1])


def python_span(L):
    pyx = next(t(x) for x in L if 'execve("/usr/bin/python3"' in x)
    pyend = min(t(x) for x in L if "exit_group" in x and t(x) > pyx)
    return pyx, pyend


def crucible_phases(binary, name):
    L = trace([binary, "run", prog], name)
    main = L[0].split()[0]
    t0 = t(L[0])
    sec = next((t(x) for x in L if x.startswith(main) and "seccomp(" in x), None)
    probe = next(t(x) for x in L if "mkdir(" in x)
    sec = probe if sec is None else sec
    spawn = next(t(x) for x in L if x.startswith(main) and ("vfork(" in x or "clone" in x))
    clone = next(t(x) for x in L if "CLONE_NEWUSER" in x or "CLONE_NEWPID" in x)
    pyx, pyend = python_span(L)
    end = t(L[-1])
    return [sec - t0, probe - sec, spawn - probe, clone - spawn, pyx - clone, pyend - pyx, end - pyend], end - t0


def plain_phases():
    L = trace(PLAIN)
    t0 = t(L[0])
    clone = next(t(x) for x in L if "CLONE_NEWUSER" in x or "CLONE_NEWPID" in x)
    pyx, pyend = python_span(L)
    main = L[0].split()[0]
    end = max(t(x) for x in L if x.startswith(main))
    return [clone - t0, pyx - clone, pyend - pyx, end - pyend], end - t0


bins = {"after": B}
if OLD:
    bins["before"] = OLD
res = {k: [[] for _ in CRU] for k in bins}
tot = {k: [] for k in bins}
pres, ptot = [[] for _ in PLN], []
for i in range(N):
    for k, b in bins.items():
        v, total = crucible_phases(b, k)
        for j, x in enumerate(v):
            res[k][j].append(x * 1000)
        tot[k].append(total * 1000)
    v, total = plain_phases()
    for j, x in enumerate(v):
        pres[j].append(x * 1000)
    ptot.append(total * 1000)
print("crucible run one.py, median of %d (ms)%s" % (N, "".join("%10s" % k for k in bins)))
for j, n in enumerate(CRU):
    print("  %-50s%s" % (n, "".join("%10.1f" % statistics.median(res[k][j]) for k in bins)))
print("  %-50s%s" % ("total (under strace)", "".join("%10.1f" % statistics.median(tot[k]) for k in bins)))
print("plain bwrap python3 -c 'print(1)', median of %d (ms)" % N)
for j, n in enumerate(PLN):
    print("  %-50s%10.1f" % (n, statistics.median(pres[j])))
print("  %-50s%10.1f" % ("total (under strace)", statistics.median(ptot)))
print("load %.2f" % os.getloadavg()[0])
