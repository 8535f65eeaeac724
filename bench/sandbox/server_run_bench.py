#!/usr/bin/env python3
"""Benchmark of a sandboxed run through the server: `crucible/run` of
print(1) (request sent -> RunResult received, over the real binary's stdio)
against the bare interpreter (`/usr/bin/python3 -c 'print(1)'`,
`/usr/bin/node -e 'console.log(1)'`, `/bin/bash -c 'echo 1'`, posix_spawn
+ wait), interleaved in one run, for python, javascript and bash; then
bursts of 16 concurrent python runs (total and p99 latency).

With --before OLD_BIN, a second server (e.g. built from the previous
commit) is measured in the same loop, interleaved, for before/after.

Every measurement (bare or server) follows --gap seconds of quiet
(default 0.15), the way an editor spaces its requests: the warm pool
refills in the background between them, never during the next
measurement; the order of bare, after and before rotates from one round to
the next.

usage: bench/sandbox/server_run_bench.py [build/server/crucible] [--before OLD_BIN] [-n N] [--gap S]
           [--langs python,javascript,bash] [--bursts N]
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

BARE = {
    "python": ["/usr/bin/python3", "-c", "print(1)"],
    "javascript": ["/usr/bin/node", "-e", "console.log(1)"],
    "bash": ["/bin/bash", "-c", "echo 1"],
}
CODE = {"python": "print(1)", "javascript": "console.log(1)", "bash": "echo 1"}


def bare(argv):
    devnull = os.open("/dev/null", os.O_WRONLY)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 1)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin"}, file_actions=fa)
    os.waitpid(pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    os.close(devnull)
    return dt


def one(c, lang):
    t0 = time.perf_counter()
    r = c.call("crucible/run", {"code": CODE[lang], "language": lang}, timeout=60)
    dt = (time.perf_counter() - t0) * 1000
    assert r["result"]["outcome"] == "ok" and r["result"]["stdout"] == "1\n", r
    return dt


def burst(c, k=16):
    ids = {}
    t0 = time.perf_counter()
    for _ in range(k):
        ids[c.request("crucible/run", {"code": CODE["python"]})] = None
    lat = []
    while len(lat) < k:
        m = c.recv(120)
        if isinstance(m, dict) and "method" not in m and m.get("id") in ids:
            assert m["result"]["outcome"] == "ok", m
            lat.append((time.perf_counter() - t0) * 1000)
    return (time.perf_counter() - t0) * 1000, lat


def p99(v):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin", nargs="?", default=str(ROOT / "build" / "server" / "crucible"))
    ap.add_argument("--before")
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.15)
    ap.add_argument("--bursts", type=int, default=5)
    ap.add_argument("--langs", default=",".join(CODE), help="the languages measured, comma-separated")
    a = ap.parse_args()
    langs = [lang for lang in a.langs.split(",") if lang]
    assert langs and all(lang in CODE for lang in langs), a.langs
    from conftest import Client, finish  # noqa: E402
    servers = {}
    tmp = tempfile.mkdtemp()
    for name, path in (("after", a.bin), ("before", a.before)):
        if not path:
            continue
        os.environ["CRUCIBLE_BIN"] = str(pathlib.Path(path).resolve())
        c = Client(env={"XDG_STATE_HOME": tmp + "/s-" + name, "XDG_CACHE_HOME": tmp + "/c-" + name})
        c.initialize()
        servers[name] = c
    time.sleep(1.0)
    for c in servers.values():
        for lang in langs:
            one(c, lang)  # each language asked for once: the pool keeps one of each
    time.sleep(1.5)
    t = {(s, lang): [] for s in ["bare", *servers] for lang in langs}
    for i in range(a.n):
        for lang in langs:
            # Each measurement follows a quiet gap: the refill a server
            # starts after a run (a new sandbox, for python and node a new
            # interpreter) does not overlap the next measurement, bare or
            # server. The order rotates, so no one always goes first.
            order = ["bare", *servers]
            order = order[i % len(order):] + order[:i % len(order)]
            for s in order:
                time.sleep(a.gap)
                t[(s, lang)].append(bare(BARE[lang]) if s == "bare" else one(servers[s], lang))
    print("load average at the end: %.2f %.2f %.2f; %d cores" % (*os.getloadavg(), os.cpu_count()))
    for lang in langs:
        mb = statistics.median(t[("bare", lang)])
        line = "%-10s bare median %6.1f ms" % (lang, mb)
        for s in servers:
            ms = statistics.median(t[(s, lang)])
            line += " | server %s median %6.1f ms = %.2fx bare" % (s, ms, ms / mb)
        print(line)
    # Bursts interleaved too, the order rotating: a server measured always
    # first (or all its bursts in a row) was seen to lose ~10 % to position.
    tots = {s: [] for s in servers}
    lats = {s: [] for s in servers}
    if a.bursts:
        time.sleep(2.0)
    for i in range(a.bursts):
        names = list(servers)
        for s in names[i % len(names):] + names[:i % len(names)]:
            tot, lat = burst(servers[s])
            tots[s].append(tot)
            lats[s] += lat
            time.sleep(1.0)
    for s in servers:
        if not a.bursts:
            break
        print("16 concurrent python print(1), server %s: total median %.0f ms (min %.0f, max %.0f), "
              "p99 latency %.0f ms, median latency %.0f ms, over %d bursts" %
              (s, statistics.median(tots[s]), min(tots[s]), max(tots[s]), p99(lats[s]),
               statistics.median(lats[s]), a.bursts))
    for c in servers.values():
        finish(c)


if __name__ == "__main__":
    main()
