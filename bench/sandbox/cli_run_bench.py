#!/usr/bin/env python3
"""Benchmark of the one-shot CLI: `crucible run FILE` of print(1) (process
start to exit) against plain bwrap with the same namespaces running
`python3 -c 'print(1)'`, and against bare python, interleaved in one run.
With --before OLD_BIN, that binary's `crucible run` is measured in the same
loop. With --user NAME (as root), every case runs as that ordinary user, as
most users meet it: bwrap is then unprivileged for both (as root, crucible
runs bwrap as its unprivileged host uid, plain bwrap keeps root), and
crucible has a cgroup only where that user has a delegated one.

Each round runs every case once, in an order that rotates from round to
round (in the server bench, the case measured first in each round lost
about 10 % to its position alone).
Besides the medians, the ratio to plain bwrap and the difference to
--before are taken within each round, where a drift of the machine cancels
out, and reported as a median with a bootstrap 95 % interval: a change
whose interval holds 0 was not measured to do anything.

With --gap S, every run follows S seconds of quiet, as a user's runs do
(server_run_bench.py's --gap): the kernel's cgroup lock and RCU state are
then as a lone run finds them (back to back, one run's cgroup move left
the next one's cheap; a first move after a quiet spell waited 13-25 ms
here).

usage: bench/sandbox/cli_run_bench.py [build/server/crucible] [--before OLD_BIN] [-n N] [--user NAME] [--gap S]
"""
import argparse
import os
import pathlib
import pwd
import random
import shutil
import statistics
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def timed(argv, env):
    devnull = os.open("/dev/null", os.O_WRONLY)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=fa)
    _, st = os.waitpid(pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    os.close(devnull)
    assert os.waitstatus_to_exitcode(st) == 0, argv
    return dt


def interval(values, n_boot=2000):
    """The median of values with a bootstrap 95 % interval for it."""
    rng = random.Random(15)
    boots = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n_boot))
    return statistics.median(values), boots[n_boot // 40], boots[n_boot - 1 - n_boot // 40]


def plain_bwrap():
    """bwrap with the namespaces a crucible run unshares, the read-only
    system, /proc, /dev and a tmpfs, running python3 -c 'print(1)': no
    seccomp, cgroup or rlimits (the baseline of the one-shot benches)."""
    argv = [shutil.which("bwrap"), "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    return argv + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "/usr/bin/python3", "-c", "print(1)"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin", nargs="?", default=str(ROOT / "build" / "server" / "crucible"))
    ap.add_argument("--before")
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--user", help="run every case as this user (the bench must start as root)")
    ap.add_argument("--gap", type=float, default=0, help="seconds of quiet before every run")
    a = ap.parse_args()
    if a.user:
        u = pwd.getpwnam(a.user)
        os.setgroups([])
        os.setgid(u.pw_gid)
        os.setuid(u.pw_uid)
        for b in (a.bin, a.before):
            if b and not os.access(b, os.X_OK):
                raise SystemExit("%s cannot run %s: copy it where that user can" % (a.user, b))
    tmp = tempfile.mkdtemp()
    prog = os.path.join(tmp, "one.py")
    with open(prog, "w") as f:
        f.write("print(1)\n")
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": tmp + "/cfg", "XDG_STATE_HOME": tmp + "/state",
           "XDG_CACHE_HOME": tmp + "/cache", "HOME": tmp}
    plain = plain_bwrap()
    cases = {"bare": ["/usr/bin/python3", "-c", "print(1)"], "bwrap": plain,
             "after": [a.bin, "run", prog]}
    if a.before:
        cases["before"] = [a.before, "run", prog]
    # Each binary its own cache folder: the seccomp cache's key holds the
    # build id, so two builds sharing one file would rebuild it every run.
    envs = {k: dict(env, XDG_CACHE_HOME="%s/cache-%s" % (tmp, k)) for k in cases}
    t = {k: [] for k in cases}
    for k, argv in cases.items():
        timed(argv, envs[k])  # warm the page cache (and fill the seccomp cache)
    names = list(cases)
    for r in range(a.n):
        for k in names[r % len(names):] + names[:r % len(names)]:
            if a.gap:
                time.sleep(a.gap)
            t[k].append(timed(cases[k], envs[k]))
    print("load average at the end: %.2f %.2f %.2f; %d cores; as uid %d; %g s of quiet before every run"
          % (*os.getloadavg(), os.cpu_count(), os.getuid(), a.gap))
    mb, mw = statistics.median(t["bare"]), statistics.median(t["bwrap"])
    print("bare python3 -c 'print(1)' median %.1f ms; plain bwrap, same namespaces, median %.1f ms (%.2fx bare)"
          % (mb, mw, mw / mb))
    for k in ("after", "before"):
        if k in t:
            m = statistics.median(t[k])
            print("crucible run FILE (%s) median %.1f ms = %.2fx plain bwrap, %.2fx bare" % (k, m, m / mw, m / mb))
            print("  ratio to plain bwrap within each round: %.3fx (95 %% %.3f .. %.3f)"
                  % interval([x / y for x, y in zip(t[k], t["bwrap"])]))
    if "before" in t:
        print("after - before within each round: %+.2f ms (95 %% %+.2f .. %+.2f)"
              % interval([x - y for x, y in zip(t["after"], t["before"])]))
    # The quartiles and the mean show what a median hides: a wait that only
    # some runs meet (e.g. a cgroup still busy when the run ends).
    for k in t:
        q = statistics.quantiles(t[k], n=4)
        print("  %-7s p25 %.1f  median %.1f  p75 %.1f  mean %.1f ms" % (k, q[0], q[1], q[2], statistics.mean(t[k])))


if __name__ == "__main__":
    main()
