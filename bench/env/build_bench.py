#!/usr/bin/env python3
"""Benchmark of building environments: `crucible env build` of one tiny
package from a cold cache (a new venv + pip, or npm) against the same
command once it is cached, with the package indexes faked on 127.0.0.1
(tests/fakes/package_index.py): the figures are Crucible's, pip's and npm's
own work, without the network.

usage: bench/env/build_bench.py [build/server/crucible] [N]
"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
BIN = str(pathlib.Path(sys.argv[1]).resolve()) if len(sys.argv) > 1 else str(ROOT / "build" / "server" / "crucible")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5

from package_index import NpmRegistry, SimpleIndex, make_wheel, npm_pack  # noqa: E402


def timed(env, *args):
    t0 = time.perf_counter()
    p = subprocess.run([BIN, "env", "build", *args], env=env, capture_output=True, text=True)
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode:
        raise SystemExit("crucible env build failed: " + p.stderr)
    return dt


def series(name, env, cache, args):
    cold, warm = [], []
    for _ in range(N):
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(timed(env, *args))
        warm.append(timed(env, *args))
    print("%s x%d: cold median %.0f ms (min %.0f, max %.0f); cached median %.0f ms" % (
        name, N, statistics.median(cold), min(cold), max(cold), statistics.median(warm)))


def main():
    base = pathlib.Path(tempfile.mkdtemp(prefix="crucible-build-bench-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        idx = SimpleIndex().start()
        (base / "wheels").mkdir()
        idx.add_wheel(make_wheel(str(base / "wheels"), "tinypkg", "1.0",
                                 {"tinypkg/__init__.py": "def answer():\n    return 42\n"}))
        reg = None
        if shutil.which("npm"):
            pkg = base / "tinyjs"
            pkg.mkdir()
            (pkg / "package.json").write_text(json.dumps({"name": "tinyjs", "version": "1.0.0", "main": "index.js"}))
            (pkg / "index.js").write_text("module.exports = 42;\n")
            (base / "tgz").mkdir()
            reg = NpmRegistry().start()
            reg.add_tarball(npm_pack(str(pkg), str(base / "tgz")))
        cfg = base / "config" / "crucible"
        cfg.mkdir(parents=True)
        sandbox = {"packageIndex": idx.url}
        if reg:
            sandbox["npmRegistry"] = reg.url
        (cfg / "config.json").write_text(json.dumps({"sandbox": sandbox}))
        env = dict(os.environ, XDG_CACHE_HOME=str(base / "cache"), XDG_CONFIG_HOME=str(base / "config"))
        cache = base / "cache" / "crucible" / "envs"
        series("python: venv + pip install tinypkg", env, cache, ["tinypkg"])
        if reg:
            series("javascript: npm install tinyjs", env, cache, ["--language", "javascript", "tinyjs"])
        idx.stop()
        if reg:
            reg.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
