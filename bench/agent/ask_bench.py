#!/usr/bin/env python3
"""Benchmark of the ask loop: overhead per iteration beyond the sandbox run
itself (instant fake LLM, trivial program), and 32 concurrent asks while a
probe measures how long the event loop stalls (round trips of crucible/ping
sent every 5 ms on the same connection).

usage: bench/agent/ask_bench.py [build/server/crucible] [N]
"""
import json
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
os.environ.setdefault("CRUCIBLE_BIN", str(ROOT / "build" / "server" / "crucible"))
if len(sys.argv) > 1:
    os.environ["CRUCIBLE_BIN"] = str(pathlib.Path(sys.argv[1]).resolve())
N = int(sys.argv[2]) if len(sys.argv) > 2 else 30

from conftest import Client  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

CODE = "print(1)"
SOL = {"content": json.dumps({"prefix": "p", "imports": "", "code": CODE})}


def main():
    fake = FakeOpenAI().start()
    tmp = tempfile.mkdtemp()
    c = Client(env={"XDG_STATE_HOME": tmp + "/s", "XDG_CACHE_HOME": tmp + "/c", "OPENAI_BASE_URL": fake.url,
                    "OPENAI_API_KEY": "k", "CRUCIBLE_MODEL": "fake-model"})
    c.initialize()
    # warm up: module index, connection
    fake.script([SOL] * 3)
    c.call("crucible/ask", {"question": "warm"}, timeout=60)
    c.call("crucible/run", {"code": CODE}, timeout=60)

    ask_ms, run_ms, llm_ms = [], [], []
    for i in range(N):
        # interleave: a bare sandbox run of the same program, then an ask
        t0 = time.perf_counter()
        r = c.call("crucible/run", {"code": CODE}, timeout=60)
        run_ms.append((time.perf_counter() - t0) * 1000)
        assert r["result"]["outcome"] == "ok"
        fake.script([SOL])
        t0 = time.perf_counter()
        r = c.call("crucible/ask", {"question": "print 1"}, timeout=60)
        ask_ms.append((time.perf_counter() - t0) * 1000)
        assert r["result"]["outcome"] == "passed", r
    reqs = fake.chat_requests()
    med_ask, med_run = statistics.median(ask_ms), statistics.median(run_ms)
    print("ask, 1 iteration, instant fake LLM: median %.1f ms (p90 %.1f) over %d" %
          (med_ask, sorted(ask_ms)[int(N * 0.9) - 1], N))
    print("crucible/run of the same program (baseline): median %.1f ms" % med_run)
    print("loop overhead per iteration (ask - run, includes one local HTTP round trip): %.1f ms (target <= 10 ms)"
          % (med_ask - med_run))
    print("ratio ask/run: %.2fx" % (med_ask / med_run))

    # 32 concurrent asks, with a ping every 5 ms to measure stalls
    K = 32
    fake.script([SOL] * K)
    stop = threading.Event()
    ping_rtts = []
    pending = {}
    lock = threading.Lock()

    ids = [c.request("crucible/ask", {"question": "q%d" % i, "task": "c%d" % i}) for i in range(K)]
    t_start = time.perf_counter()

    def pinger():
        while not stop.is_set():
            with lock:
                pid = c.request("crucible/ping", {})
                pending[pid] = time.perf_counter()
            time.sleep(0.005)

    th = threading.Thread(target=pinger, daemon=True)
    th.start()
    done = 0
    outcomes = []
    while done < K:
        m = c.recv(120)
        if "method" in m:
            continue
        now = time.perf_counter()
        with lock:
            sent = pending.pop(m.get("id"), None)
        if sent is not None:
            ping_rtts.append((now - sent) * 1000)
        elif m.get("id") in ids:
            done += 1
            outcomes.append(m["result"]["outcome"])
    total = (time.perf_counter() - t_start) * 1000
    stop.set()
    th.join()
    print("%d concurrent asks: all done in %.0f ms (%s)" % (K, total, ", ".join(
        "%d %s" % (outcomes.count(o), o) for o in sorted(set(outcomes)))))
    print("event-loop responsiveness meanwhile: %d pings, median %.2f ms, longest %.1f ms round trip" %
          (len(ping_rtts), statistics.median(ping_rtts), max(ping_rtts)))
    c.close()
    fake.stop()


if __name__ == "__main__":
    main()
