"""The attack suite's core against the docker backend: the same hostile
programs as under bwrap (attack_programs.py), run in containers of the real
engine through `crucible run --backend docker --json` and the protocol. Each
must be contained, the limit that ended it reported, and no container (nor
any of its processes) left behind. The engines and image come from
test_docker's fixture: every test runs on dockerd and on Podman."""
import json
import os
import socket
import subprocess
import time

import pytest

import attack_programs
from conftest import Client, finish
from sandbox_util import procs_matching, run_json
from test_docker import CURRENT, DARGS, IMAGE, assert_memory_killed, drun, each_engine, ours  # noqa: F401  (each_engine: the fixture)

SECRET = "sk-test-secret"


def out(r):
    return r["stdout"] + r["stderr"]


def test_network(each_engine):  # noqa: F811
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    try:
        r, _ = drun(attack_programs.network(srv.getsockname()[1], udp.getsockname()[1]))
        assert "TCP-CONNECTED" not in r["stdout"] and "INTERNET" not in r["stdout"], r
        assert "tcp failed" in r["stdout"] and "internet failed" in r["stdout"], r
        with pytest.raises(socket.timeout):
            srv.accept()
        with pytest.raises(socket.timeout):
            udp.recvfrom(100)
    finally:
        srv.close()
        udp.close()


def test_secrets(each_engine):  # noqa: F811
    # The host's files are not in the container at all; the image's own
    # root-only files are closed to the program's uid.
    secret_file = os.path.join(os.path.expanduser("~"), "crucible-secret-%d.txt" % os.getpid())
    with open(secret_file, "w") as f:
        f.write(SECRET + "-file")
    try:
        r, _ = drun(attack_programs.secrets(secret_file))
        e, _ = run_json(attack_programs.ENVIRONMENT, args=DARGS, env={
            "DOCKER_HOST": "unix://" + CURRENT["sock"], "OPENAI_API_KEY": SECRET, "CRUCIBLE_TEST_VAR": "leak-me"})
    finally:
        os.unlink(secret_file)
    assert SECRET not in out(r) and SECRET not in out(e), (r, e)
    assert "leak-me" not in out(e)
    lines = r["stdout"].split("\n")
    firsts = [ln.split(" ")[0] for ln in lines]
    for p in [secret_file, "/etc/shadow", "/root/.bash_history", "/root", "/etc/ssl/private"]:
        assert (p + " denied") in lines[firsts.index(p)], (p, r["stdout"])
    assert "'HOME': '/sandbox'" in e["stdout"]


def test_host_processes(each_engine):  # noqa: F811
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r, _ = drun(attack_programs.HOST_PROCESSES)
        pids = json.loads(r["stdout"])
        assert len(pids) <= 3 and pids[0] == 1 and max(pids) < 10, pids  # the engine's init, the program
    finally:
        sleeper.kill()
        sleeper.wait()


def test_fork_bomb(each_engine):  # noqa: F811
    t0 = time.time()
    r, _ = drun(attack_programs.FORK_BOMB, args=("--pids", "32", "--timeout", "5000"))
    assert time.time() - t0 < 60
    assert "fork failed after" in r["stdout"], r
    assert int(r["stdout"].split("after")[1]) < 40, r["stdout"]
    subprocess.run(["true"], check=True)  # the host can still fork


def test_memory_bomb(each_engine):  # noqa: F811
    r, _ = drun(attack_programs.MEMORY_BOMB, args=("--memory", "128"))
    assert_memory_killed(r)


def test_own_sigkill_is_not_oom(each_engine):  # noqa: F811
    # Exit 137 without OOMKilled (what Podman reports for an OOM kill too):
    # the container's oom events decide, and there are none.
    r, _ = drun("import os\nprint('x', flush=True)\nos.kill(os.getpid(), 9)\n")
    assert (r["outcome"], r["signal"], r["limit"], r["stdout"]) == ("error", "SIGKILL", None, "x\n"), r
    assert "memory" not in r["limitsHit"]


def test_cpu_spin(each_engine):  # noqa: F811
    r, _ = drun(attack_programs.CPU_SPIN, args=("--cpu", "1", "--timeout", "20000"))
    assert (r["outcome"], r["limit"]) == ("timeout", "cpu"), r
    assert r["durationMs"] < 10000


def test_wall_timeout_sigterm_ignored(each_engine):  # noqa: F811
    t0 = time.time()
    # The wall time runs from the request: a loaded engine (or an ASan server)
    # may take 2 s to create and start the container, and a program killed
    # before it started would say nothing.
    r, p = drun(attack_programs.WALL_SIGTERM_IGNORED, args=("--timeout", "4000"))
    assert (r["outcome"], r["limit"]) == ("timeout", "wall"), r
    assert r["stdout"] == "ready\n"
    assert p.returncode == 124 and r["signal"] == "SIGKILL"
    assert time.time() - t0 < 20


def test_output_flood(each_engine):  # noqa: F811
    r, _ = drun(attack_programs.OUTPUT_FLOOD, args=("--output", "100000"))
    assert r["truncated"] is True and len(r["stdout"]) == 100000, r["stdout"][:100]
    assert (r["outcome"], r["limit"]) == ("error", "output"), r


def test_daemon_does_not_survive(each_engine):  # noqa: F811
    marker = "crucible-docker-daemon-%d" % os.getpid()
    r, _ = drun(attack_programs.daemon(marker), args=("--timeout", "3000"))
    assert "started" in r["stdout"], r
    time.sleep(0.5)
    assert procs_matching(marker) == [], "a daemon outlived its container"


def test_disk_fill(each_engine):  # noqa: F811
    r, _ = drun(attack_programs.DISK_FILL, args=("--disk", "8"))
    assert "stopped" in r["stdout"] and "tmp stopped" in r["stdout"], r
    assert int(r["stdout"].split()[1]) <= 8
    assert "disk" in r["limitsHit"], r


def _server(tmp_path):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": "docker", "image": IMAGE}}))
    c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                    "XDG_CONFIG_HOME": str(tmp_path / "config"), "DOCKER_HOST": "unix://" + CURRENT["sock"]})
    c.initialize()
    return c


def _wait_up(c, rid, timeout=60):
    """Waits for the program of request rid to print 'up' (crucible/output)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = c.recv(deadline - time.time())
        if m.get("method") == "crucible/output" and "up" in m["params"].get("text", ""):
            return
        assert m.get("id") != rid, m
    raise AssertionError("the program never printed 'up'")


def _host_commands(ctr_id):
    """The command lines of a container's processes, read on the host from
    its init's descendants (Podman 4.3's /top answers with an empty body)."""
    from test_docker import api
    st, info = api("GET", "/containers/%s/json" % ctr_id)
    root = (info or {}).get("State", {}).get("Pid") or 0
    if st != 200 or root <= 0:
        return []
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    cmds, todo = [], list(children.get(root, []))
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            cmds.append(open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return cmds


def _running(pid):
    """Containers of server pid with a program in them (the server also keeps
    a warm container made ahead, sleeping, which runs none)."""
    from test_docker import api
    out = []
    for ctr in ours(pid):
        st, top = api("GET", "/containers/%s/top" % ctr["Id"])
        if st == 200 and top is not None:
            cmds = [" ".join(p) for p in top.get("Processes") or []]
        else:
            cmds = _host_commands(ctr["Id"])
        if any("sleep" not in c for c in cmds if "docker-init" not in c):
            out.append(ctr)
    return out


def _wait_gone(pid, timeout=20):
    deadline = time.time() + timeout
    while _running(pid) and time.time() < deadline:
        time.sleep(0.2)
    return _running(pid)


def test_cancel_kills_and_removes_the_container(each_engine, tmp_path):  # noqa: F811
    c = _server(tmp_path)
    try:
        rid = c.request("crucible/run", {"code": attack_programs.SLEEPER})
        _wait_up(c, rid)
        assert len(_running(c.proc.pid)) == 1
        t0 = time.time()
        c.notify("$/cancelRequest", {"id": rid})
        r = c.wait_response(rid, timeout=20)
        assert r["error"]["code"] == -32800, r
        assert time.time() - t0 < 10
        assert _wait_gone(c.proc.pid) == []
        # The server goes on: the next run works.
        r = c.call("crucible/run", {"code": "print(5)"}, timeout=60)["result"]
        assert r["stdout"] == "5\n"
        pid = c.proc.pid
    finally:
        finish(c)
    assert ours(pid) == []


def test_client_vanishing_leaves_no_container(each_engine, tmp_path):  # noqa: F811
    c = _server(tmp_path)
    rid = c.request("crucible/run", {"code": attack_programs.SLEEPER})
    _wait_up(c, rid)
    pid = c.proc.pid
    assert len(_running(pid)) == 1
    # The client goes away without a word: its end of the pipes closes.
    c.proc.stdin.close()
    c.proc.wait(timeout=30)
    assert _wait_gone(pid) == [] and ours(pid) == []
    assert procs_matching("time.sleep(120)") == []
