#!/usr/bin/env python3
"""Where a sandboxed `crucible/run` of bash `echo 1` spends its time in the
server: strace (on the server process only; bwrap and the sandbox are not
traced) timestamps, relative to the runner's write of the program to the
pre-started bash, its read of the program's output, bwrap's `exit-code`
status line (the program has exited and bwrap's namespace init reported
it), bwrap's reaping, the end of file on the program's stdout (every holder
of the pipe gone: the program, the namespace init, bwrap) and the result's
write. Medians over N runs.

usage: bench/sandbox/server_run_phases.py [build/server/crucible] [-n N]
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))


def ms_of(line):
    h, m, s = line.split()[0].split(":")
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin", nargs="?", default=str(ROOT / "build" / "server" / "crucible"))
    ap.add_argument("-n", type=int, default=25)
    a = ap.parse_args()
    os.environ["CRUCIBLE_BIN"] = str(pathlib.Path(a.bin).resolve())
    from conftest import Client, finish  # noqa: E402
    tmp = tempfile.mkdtemp()
    c = Client(env={"XDG_STATE_HOME": tmp + "/s", "XDG_CACHE_HOME": tmp + "/c"})
    c.initialize()
    c.call("crucible/run", {"code": "echo 1", "language": "bash"}, timeout=60)
    time.sleep(2)
    log = tmp + "/strace.txt"
    st = subprocess.Popen(["strace", "-tt", "-e", "trace=read,wait4,writev,pwrite64", "-o", log,
                           "-p", str(c.proc.pid)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    for _ in range(a.n):
        r = c.call("crucible/run", {"code": "echo 1", "language": "bash"}, timeout=60)
        assert r["result"]["stdout"] == "1\n", r
        time.sleep(0.3)
    st.terminate()
    st.wait()
    finish(c)
    phases = {"output read": [], "exit-code": [], "bwrap reaped": [], "stdout EOF": [], "result written": []}
    t0 = None
    seen = set()
    for line in open(log):
        if "pwrite64(" in line and '"echo 1"' in line:
            t0, seen = ms_of(line), set()
            continue
        if t0 is None:
            continue
        k = None
        if re.search(r'read\(\d+, "1\\n"', line):
            k = "output read"
        elif "exit-code" in line:
            k = "exit-code"
        elif re.search(r"wait4\(\d+, \[\{WIFEXITED", line):
            k = "bwrap reaped"
        elif re.search(r'read\(\d+, "", 65536\)\s+= 0', line) and "output read" in seen:
            k = "stdout EOF"
        elif "writev(1" in line and 'id\\":' in line:
            k = "result written"
        if k and k not in seen:
            seen.add(k)
            phases[k].append(ms_of(line) - t0)
            if k == "result written":
                t0 = None
    print("load average at the end: %.2f %.2f %.2f; %d cores" % (*os.getloadavg(), os.cpu_count()))
    for k, v in phases.items():
        if v:
            print("%-15s median %5.1f ms after the program went to the sandbox (n=%d)" % (k, statistics.median(v), len(v)))


if __name__ == "__main__":
    main()
