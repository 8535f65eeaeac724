#!/usr/bin/env python3
"""Where a one-shot `crucible run one.py` (print(1)) spends its time: phases
between marker system calls (execve, vfork/clone, mkdir, exit_group) from a
strace limited to those calls (--seccomp-bpf), median over N runs. strace
still slows process creation, so the phases are for comparing two builds
measured the same way, not absolute figures.

usage: bench/sandbox/cli_run_phases.py BIN [N]
"""
import os, re, statistics, subprocess, sys, tempfile
B = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 10
d = tempfile.mkdtemp(); prog = os.path.join(d, "one.py"); open(prog, "w").write("print(1)\n")
env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": d+"/c", "XDG_STATE_HOME": d+"/s", "XDG_CACHE_HOME": d+"/k", "HOME": d}
names = ["start→cgroup probe (libs, config, seccomp)", "probe→sandbox spawn (sweeps, env)", "spawn→bwrap clone", "clone→python exec (mounts)",
         "python run", "python exit→crucible exit"]
res = {n: [] for n in names}; tot = []
for i in range(N):
    out = d + "/st"
    subprocess.run(["strace", "-f", "--seccomp-bpf", "-ttt", "-o", out, "-e", "trace=execve,vfork,clone,clone3,exit_group,mkdir,rmdir",
                    B, "run", prog], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    L = open(out).read().splitlines()
    t = lambda l: float(l.split()[1])
    main = L[0].split()[0]
    t0 = t(L[0])
    cfg = next(t(l) for l in L if "mkdir(" in l)
    spawn = next(t(l) for l in L if l.startswith(main) and ("vfork(" in l or "clone" in l))
    clone = next(t(l) for l in L if "CLONE_NEWUSER" in l or "CLONE_NEWPID" in l)
    pyx = next(t(l) for l in L if 'execve("/usr/bin/python3"' in l)
    pye = [t(l) for l in L if "exit_group" in l]
    end = t(L[-1])
    # python's exit: the first exit_group after python's exec
    pyend = min(x for x in pye if x > pyx)
    v = [cfg-t0, spawn-cfg, clone-spawn, pyx-clone, pyend-pyx, end-pyend]
    for n, x in zip(names, v): res[n].append(x*1000)
    tot.append((end-t0)*1000)
for n in names: print("%-48s %6.1f ms" % (n, statistics.median(res[n])))
print("%-48s %6.1f ms" % ("total (under strace)", statistics.median(tot)))
print("load %.2f" % os.getloadavg()[0])
