#!/usr/bin/env python3
"""Benchmark of the docker backend's warm containers: sandboxed `print(1)`
through `crucible/run` on a server whose sandbox.backend is docker (a warm
container made ahead, the program exec'd into it on bind) against
`docker run --rm --network none IMAGE python3 -c 'print(1)'`, and against
the bwrap backend (its warm sandbox) and the docker backend without a warm
container that fits (a create -> attach -> start -> wait -> remove cycle), all
interleaved in one run. Medians and ratios. Between runs the bench waits
until the server's next warm container is up (a request does not usually
follow the previous one within 0.2 s).

usage: bench/docker/warm_bench.py [build/server/crucible] [N] [IMAGE]
Needs a Docker engine on /var/run/docker.sock (or $DOCKER_HOST) holding IMAGE
(default crucible-test:py, the one tests/integration/test_docker.py builds).
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("CRUCIBLE_BIN", str(ROOT / "build" / "server" / "crucible"))
if len(sys.argv) > 1:
    os.environ["CRUCIBLE_BIN"] = str(pathlib.Path(sys.argv[1]).resolve())
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20
IMAGE = sys.argv[3] if len(sys.argv) > 3 else "crucible-test:py"
HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
SOCK = HOST[len("unix://"):]

from conftest import Client  # noqa: E402
from test_docker_engines import api2  # noqa: E402

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def server(backend):
    tmp = tempfile.mkdtemp()
    cfg = pathlib.Path(tmp, "config", "crucible")
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": backend, "image": IMAGE}}))
    c = Client(env={"XDG_STATE_HOME": tmp + "/s", "XDG_CACHE_HOME": tmp + "/c",
                    "XDG_CONFIG_HOME": tmp + "/config", "DOCKER_HOST": HOST})
    c.initialize()
    return c


def warm_ready(pid, timeout=30):
    q = urllib.parse.quote(json.dumps({"label": ["crucible.owner=%d" % pid]}))
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, lst = api2(SOCK, "GET", "/containers/json?filters=" + q)
        if st == 200 and lst:
            return
        time.sleep(0.05)
    raise SystemExit("no warm container came up")


def timed_run(c, params):
    t0 = time.perf_counter()
    r = c.call("crucible/run", params, timeout=60)["result"]
    ms = (time.perf_counter() - t0) * 1000
    assert (r["outcome"], r["stdout"]) == ("ok", "1\n"), r
    return ms


def main():
    dk, bw = server("docker"), server("bwrap")
    # warm up each path once
    warm_ready(dk.proc.pid)
    timed_run(dk, {"code": "print(1)"})
    timed_run(bw, {"code": "print(1)"})
    subprocess.run([DOCKER, "-H", HOST, "run", "--rm", "--network", "none", IMAGE, "python3", "-c", "print(1)"],
                   check=True, capture_output=True)
    # A smaller memory limit than the warm container's: no warm container fits.
    cold = {"code": "print(1)", "limits": {"memoryMb": 256}}
    times = {"warm": [], "docker run": [], "bwrap": [], "cold": []}
    for i in range(N):
        warm_ready(dk.proc.pid)
        time.sleep(0.1)
        times["warm"].append(timed_run(dk, {"code": "print(1)"}))
        t0 = time.perf_counter()
        p = subprocess.run([DOCKER, "-H", HOST, "run", "--rm", "--network", "none", IMAGE, "python3", "-c",
                            "print(1)"], capture_output=True)
        times["docker run"].append((time.perf_counter() - t0) * 1000)
        assert p.stdout == b"1\n", p
        times["bwrap"].append(timed_run(bw, {"code": "print(1)"}))
        times["cold"].append(timed_run(dk, cold))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("sandboxed print(1), median of %d interleaved runs (image %s):" % (N, IMAGE))
    print("  docker backend, warm container:              %7.1f ms" % med["warm"])
    print("  docker run --rm --network none (CLI):        %7.1f ms" % med["docker run"])
    print("  docker backend, no warm container fits:      %7.1f ms" % med["cold"])
    print("  bwrap backend (warm sandbox):                %7.1f ms" % med["bwrap"])
    print("ratio warm / docker run: %.2fx (target <= 0.5)" % (med["warm"] / med["docker run"]))
    print("ratio warm / docker backend cold: %.2fx" % (med["warm"] / med["cold"]))
    print("ratio warm / bwrap: %.2fx" % (med["warm"] / med["bwrap"]))
    for c in (dk, bw):
        c.call("shutdown", None, timeout=30)
        c.notify("exit", None)
        c.proc.wait(timeout=30)


if __name__ == "__main__":
    main()
