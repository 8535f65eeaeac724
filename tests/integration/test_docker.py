"""The docker backend against a real engine: Debian's docker.io (dockerd),
started here when no engine answers and stopped afterwards. No registry is
reachable: the test image is built from Debian's packages (mmdebstrap,
python3-minimal and nodejs) and imported once; later sessions on the same
machine find it in the engine's store and skip the build.

The tests of this module run twice: against dockerd and against Podman's
Docker-compatible service (Debian's podman and catatonit, `podman system
service` started here on a socket of its own, as root), the same image
imported into each.

Skipped, with the reason, when docker.io or podman (or, for the first
build, mmdebstrap) is not installed, or when an engine cannot be started
(not root)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import Client, crucible_bin, finish, track
from sandbox_util import run_json

IMAGE = "crucible-test:py"
SOCK = "/var/run/docker.sock"
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # docker.io's client (another `docker` may come first in PATH)
PODMAN = "/usr/bin/podman"
# The engine the module's helpers (api, ours, drun) speak to: dockerd's
# socket, or Podman's while the each_engine fixture has it up.
CURRENT = {"sock": SOCK, "name": "docker"}


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("docker", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def api(method, path, body=None, timeout=30, sock=None):
    """(status, parsed JSON or None) of one Engine API call (to the engine at
    sock, by default the current one)."""
    c = UnixHTTP(sock or CURRENT["sock"], timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, None
    finally:
        c.close()


def engine_up(sock=SOCK):
    try:
        return api("GET", "/version", timeout=3, sock=sock)[0] == 200
    except OSError:
        return False


def ours(owner=None):
    """Containers labelled by a crucible server (of owner pid, when given)."""
    label = "crucible.owner" + ("=%d" % owner if owner else "")
    q = urllib.parse.quote(json.dumps({"label": [label]}))
    st, lst = api("GET", "/containers/json?all=1&filters=" + q)
    assert st == 200
    return lst


def _build_image(importer, sock):
    """Imports the test image into the engine at sock with importer (a shell
    command reading the root file system's tar on stdin) unless it has it."""
    if api("GET", "/images/%s/json" % IMAGE, sock=sock)[0] == 200:
        return
    if not shutil.which("mmdebstrap"):
        pytest.skip("the test image %s is missing and mmdebstrap is not installed to build it" % IMAGE)
    build = subprocess.run("mmdebstrap --quiet --variant=essential --include=python3-minimal,nodejs "
                           "bookworm - | %s" % importer, shell=True, capture_output=True, timeout=900)
    if build.returncode != 0:
        pytest.skip("cannot build the test image: %s" % build.stderr.decode(errors="replace")[-500:])


def _dockerd():
    if not os.path.exists(DOCKERD):
        pytest.skip("docker.io is not installed (apt install docker.io): no engine to test against")
    proc = None
    if not engine_up():
        if os.geteuid() != 0:
            pytest.skip("no container engine answers at %s and only root can start dockerd" % SOCK)
        log = open("/tmp/crucible-test-dockerd.log", "ab")
        proc = subprocess.Popen([DOCKERD, "--iptables=false", "--bridge=none",
                                 "--exec-opt", "native.cgroupdriver=cgroupfs", "-H", "unix://" + SOCK],
                                stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 60
        while not engine_up():
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.skip("dockerd could not start here (see /tmp/crucible-test-dockerd.log)")
            time.sleep(0.3)
    _build_image("%s import - %s" % (DOCKER, IMAGE), SOCK)
    yield SOCK
    if proc:
        _stop(proc)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _podman(folder):
    """Podman's Docker-compatible service on a socket of its own (rootful:
    Podman keeps its own containers and images, apart from dockerd's)."""
    if not os.path.exists(PODMAN):
        pytest.skip("podman is not installed (apt install podman catatonit): no Podman to test against")
    if os.geteuid() != 0:
        pytest.skip("the Podman service of these tests is rootful: root only")
    if not os.path.exists("/usr/libexec/podman/catatonit"):
        pytest.skip("catatonit, Podman's init for a container's pid 1, is not installed (apt install catatonit)")
    sock = str(folder / "podman.sock")
    log = open("/tmp/crucible-test-podman.log", "ab")
    # In the test's own folder: conmon writes an empty file named "oom" into
    # its working directory when a container is OOM-killed (cgroup v1), and
    # the service's would otherwise be the checkout's root.
    proc = subprocess.Popen([PODMAN, "system", "service", "--time=0", "unix://" + sock],
                            stdout=log, stderr=log, start_new_session=True, cwd=str(folder))
    track(proc.pid)
    deadline = time.time() + 60
    while not engine_up(sock):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip("the Podman service could not start here (see /tmp/crucible-test-podman.log)")
        time.sleep(0.3)
    _build_image("%s import - %s" % (PODMAN, IMAGE), sock)
    yield sock
    _stop(proc)


@pytest.fixture(scope="module")
def engine():
    """dockerd (started here when none answers), with the test image."""
    CURRENT.update(sock=SOCK, name="docker")
    yield from _dockerd()


@pytest.fixture(scope="module", params=["docker", "podman"])
def each_engine(request, tmp_path_factory):
    """This module's tests run on each engine: dockerd, then Podman."""
    gen = _dockerd() if request.param == "docker" else _podman(tmp_path_factory.mktemp("podman"))
    sock = next(gen)
    CURRENT.update(sock=sock, name=request.param)
    yield sock
    CURRENT.update(sock=SOCK, name="docker")
    next(gen, None)


DARGS = ("--backend", "docker", "--image", IMAGE)


def drun(code, language="python", args=(), **kw):
    return run_json(code, language=language, args=(*DARGS, *args), env={"DOCKER_HOST": "unix://" + CURRENT["sock"]},
                    **kw)


def test_print_runs_in_a_container(each_engine):
    r, p = drun("print(1)")
    assert r["outcome"] == "ok", r
    assert r["stdout"] == "1\n"
    assert r["isolation"] == "container"
    assert r["hostUid"] == 65534 and r["exitCode"] == 0
    assert p.returncode == 0


def test_exit_code_stderr_and_traceback(each_engine):
    r, p = drun("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)")
    assert (r["outcome"], r["exitCode"], r["stdout"], r["stderr"]) == ("error", 3, "out\n", "err\n")
    assert p.returncode == 3
    r, _ = drun("x = 1\n\ndef f():\n    return 1 / 0\nf()\n")
    assert r["outcome"] == "error" and "ZeroDivisionError" in r["stderr"]
    # The same mapping onto the user's lines as under bwrap (the same scratch path).
    assert [d["range"]["start"]["line"] for d in r["diagnostics"]] == [3], r["diagnostics"]


def test_stdin_and_other_languages(each_engine):
    r, _ = drun("import sys\nprint(sys.stdin.read().upper())", stdin_data=b"hello\n")
    assert r["stdout"] == "HELLO\n\n"
    r, _ = drun("console.log(6 * 7)", language="javascript")
    assert (r["outcome"], r["stdout"]) == ("ok", "42\n")
    r, _ = drun("echo \"$((6*7)) $HOME $(pwd)\"", language="bash")
    assert r["stdout"] == "42 /sandbox /sandbox\n"


def test_program_environment_holds_no_delivery_variables(each_engine):
    r, _ = drun("import os\nprint(sorted(k for k in os.environ if k.startswith('CRUCIBLE')))")
    assert r["stdout"] == "[]\n"


def test_large_program_delivered_in_pieces(each_engine):
    # Over one environment string's 128 KiB: delivered in pieces, with a
    # multi-byte character on the boundaries.
    code = "s = '''" + ("é" * 150000) + "'''\nprint(len(s))\n"
    r, _ = drun(code)
    assert (r["outcome"], r["stdout"]) == ("ok", "150000\n"), r["stderr"][-300:]


def test_wall_timeout(each_engine):
    t0 = time.time()
    r, p = drun("import time\nprint('up', flush=True)\ntime.sleep(60)", args=("--timeout", "1500"))
    assert (r["outcome"], r["limit"]) == ("timeout", "wall"), r
    assert r["stdout"] == "up\n"
    assert p.returncode == 124
    assert time.time() - t0 < 20


def assert_memory_killed(r):
    """A run stopped at its memory limit: `oom` with the memory limit named,
    except on Podman under cgroup v1, which records no OOM kill at all
    (State.OOMKilled false and no "oom" event): there the run is reported as
    what is seen, a SIGKILL (docs/sandbox.md)."""
    if CURRENT["name"] == "podman" and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert (r["outcome"], r["signal"], r["exitCode"]) == ("error", "SIGKILL", None), r
    else:
        assert (r["outcome"], r["limit"]) == ("oom", "memory"), r


def test_memory_hog_is_oom(each_engine):
    r, _ = drun("x = bytearray(400 << 20)\nprint(len(x))", args=("--memory", "64"))
    assert r["stdout"] == ""
    assert_memory_killed(r)


def test_no_network(each_engine):
    # A listener on the host's loopback: the container's loopback is its own.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        code = ("import os, socket\nprint(sorted(os.listdir('/sys/class/net')))\n"
                "for addr in [('127.0.0.1', %d), ('1.1.1.1', 53)]:\n"
                "    s = socket.socket(); s.settimeout(2)\n"
                "    try:\n        s.connect(addr); print('connected', addr)\n"
                "    except OSError as e:\n        print('refused', type(e).__name__)\n" % port)
        r, _ = drun(code)
    finally:
        srv.close()
    assert r["outcome"] == "ok", r
    lines = r["stdout"].splitlines()
    assert lines[0] == "['lo']"
    assert lines[1:] and all(ln.startswith("refused") for ln in lines[1:]), lines


def test_read_only_root_and_capped_scratch(each_engine):
    code = ("import os\n"
            "for p in ['/etc/x', '/usr/x', '/x']:\n"
            "    try:\n        open(p, 'w'); print('wrote', p)\n"
            "    except OSError as e:\n        print('ro', e.errno)\n"
            "open('/tmp/a', 'w').write('t'); open('here', 'w').write('s'); print('tmp ok', os.getcwd())\n"
            "open('/tmp/big', 'wb').write(b'x' * (16 << 20))\n")
    r, _ = drun(code, args=("--disk", "8"))
    lines = r["stdout"].splitlines()
    assert lines[:3] == ["ro 30", "ro 30", "ro 30"], r  # EROFS
    assert lines[3] == "tmp ok /sandbox"
    assert r["outcome"] == "error" and "disk" in r["limitsHit"], r


def test_runs_unprivileged(each_engine):
    code = ("import os\nprint(os.getuid(), os.getgid())\n"
            "st = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
            "print(st['CapEff'].strip(), st['NoNewPrivs'].strip())\n")
    r, _ = drun(code)
    assert r["stdout"] == "65534 65534\n0000000000000000 1\n", r


def _wait_containers(owner, want, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = ours(owner)
        if (len(got) > 0) == want:
            return got
        time.sleep(0.2)
    raise AssertionError("containers of %d: wanted %s, have %s" % (owner, want, ours(owner)))


def _start_sleeper(tmp_path):
    prog = tmp_path / "sleep.py"
    prog.write_text("import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": "/nonexistent-crucible-test",
           "DOCKER_HOST": "unix://" + CURRENT["sock"]}
    p = subprocess.Popen([crucible_bin(), "run", str(prog), "--json", *DARGS], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    track(p.pid)
    _wait_containers(p.pid, True)
    return p


def test_cancel_removes_the_container(each_engine, tmp_path):
    p = _start_sleeper(tmp_path)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert json.loads(out)["outcome"] == "cancelled"
    assert p.returncode == 130
    assert ours(p.pid) == []


def test_killed_server_leftovers_swept_at_next_start(each_engine, tmp_path):
    p = _start_sleeper(tmp_path)
    p.kill()
    p.wait()
    assert ours(p.pid), "the container outlived its server (as it must until a sweep)"
    r, _ = drun("print(2)")
    assert r["stdout"] == "2\n"
    assert ours(p.pid) == []


def test_protocol_run_on_docker_backend(each_engine, tmp_path):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": "docker", "image": IMAGE}}))
    c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                    "XDG_CONFIG_HOME": str(tmp_path / "config"), "DOCKER_HOST": "unix://" + CURRENT["sock"]})
    try:
        c.initialize()
        r = c.call("crucible/run", {"code": "import sys\nprint('out')\nsys.exit(4)"}, timeout=60)["result"]
        assert (r["outcome"], r["exitCode"], r["stdout"], r["isolation"]) == ("error", 4, "out\n", "container")
        pid = c.proc.pid
    finally:
        finish(c)
    assert ours(pid) == []


def test_doctor_reports_the_engine(each_engine, tmp_path):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": "docker", "image": IMAGE}}))
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), DOCKER_HOST="unix://" + CURRENT["sock"])
    p = subprocess.run([crucible_bin(), "doctor", "--json"], capture_output=True, env=env, timeout=120)
    sb = json.loads(p.stdout)["sandbox"]
    assert sb["backend"] == "docker"
    assert sb["engine"]["reachable"] is True and sb["engine"]["apiVersion"]
    assert ("Podman" in sb["engine"]["name"]) == (CURRENT["name"] == "podman"), sb["engine"]
    assert sb["image"] == {"name": IMAGE, "present": True}
    assert sb["interpreters"]["python"]["ok"] is True
    assert sb["ok"] is True


def test_unreachable_engine_is_a_clear_error(each_engine, tmp_path):
    r, p = run_json("print(1)", args=DARGS, env={"DOCKER_HOST": "unix://" + str(tmp_path / "none.sock")})
    assert r["outcome"] == "error" and "does not answer" in r["error"], r
    assert p.returncode == 125


def test_missing_image_is_a_clear_error(each_engine):
    r, p = run_json("print(1)", args=("--backend", "docker", "--image", "crucible-test:absent"),
                    env={"DOCKER_HOST": "unix://" + CURRENT["sock"]})
    assert r["outcome"] == "error" and "crucible-test:absent" in r["error"], r
