"""The docker backend's engines: warm containers (created and started ahead,
the program exec'd on bind, one container per run), several engines
(sandbox.docker.hosts: a second dockerd takes runs; killed mid-run, its run
ends in `error` and the next runs go to the first), tcp:// with TLS client
certificates, and the doctor's report of each engine.

The second dockerd is started here (its own data root, exec root, pidfile,
unix socket, and a TLS tcp port on 127.0.0.1; no iptables, no bridge) and
stopped at the end of the module; the test image is copied into it from the
first engine (docker save | docker load) once, and its data root is kept in
/var/tmp so later sessions skip that. Everything is skipped, with the reason,
where test_docker.py's engine fixture skips (no docker.io, not root)."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import Client, crucible_bin, finish
from test_docker import DOCKER, DOCKERD, IMAGE, SOCK, api, engine, ours  # noqa: F401

DK2 = "/var/tmp/crucible-test-dk2"
SOCK2 = DK2 + "/docker.sock"
CGPARENT = "crucible-test-dk2"


def api2(sock, method, path, body=None, timeout=30):
    return api(method, path, body, timeout, sock=sock)


def up(sock):
    try:
        return api2(sock, "GET", "/version", timeout=3)[0] == 200
    except OSError:
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as
    dockerd --tlsverify and DOCKER_CERT_PATH want them; and a second,
    unrelated CA's client certificate (the wrong one)."""
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + ca,
             "-keyout", ca + "-key.pem", "-out", ca + ".pem")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, ca, ext in (("server", "ca", "server.ext"), ("client", "ca", "client.ext"),
                          ("wrong", "other-ca", "client.ext")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout", name + "-key.pem",
             "-out", name + ".csr")
        ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + "-key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + "-cert.pem")
    for kind, name in (("client", "client"), ("wrong", "wrong")):
        cd = os.path.join(d, kind)
        os.makedirs(cd, exist_ok=True)
        shutil.copy(os.path.join(d, "ca.pem"), os.path.join(cd, "ca.pem"))
        shutil.copy(os.path.join(d, name + "-cert.pem"), os.path.join(cd, "cert.pem"))
        shutil.copy(os.path.join(d, name + "-key.pem"), os.path.join(cd, "key.pem"))


class Dockerd2:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.proc = None
        self.starts = 0

    def start(self):
        os.makedirs(DK2 + "/root", exist_ok=True)
        # A fresh exec root each start: after a SIGKILL the old one holds a
        # dead containerd's socket, which a restarted dockerd times out on.
        self.starts += 1
        log = open(self.tmp + "/dockerd2.log", "ab")
        c = self.tmp + "/certs"
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", DK2 + "/root", "--exec-root", self.tmp + "/exec%d" % self.starts, "--pidfile",
             self.tmp + "/dockerd.pid", "-H", "unix://" + SOCK2, "-H", "tcp://127.0.0.1:%d" % self.port,
             "--tlsverify", "--tlscacert", c + "/ca.pem", "--tlscert", c + "/server-cert.pem",
             "--tlskey", c + "/server-key.pem", "--iptables=false", "--bridge=none", "--ip-forward=false",
             "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", CGPARENT],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 60
        while not up(SOCK2):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                return False
            time.sleep(0.3)
        return True

    def kill(self):
        """Dies as a crash would: dockerd and its containerd at once, then
        what was left running of the containers (their shims and processes)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for procs in [f for top in cgparent_dirs() for f in glob.glob(top + "/*/cgroup.procs")]:
            try:
                for pid in open(procs).read().split():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for p in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                if (self.tmp + "/exec").encode() in open(p, "rb").read():
                    os.kill(int(p.split("/")[2]), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def stop(self):
        """Stops dockerd; returns the cgroups that could not be removed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return remove_cgroups()


def cgparent_dirs():
    """CGPARENT's folder in every cgroup hierarchy: at a hierarchy's root,
    or below dockerd's own cgroup where that is not the root (v1's memory
    hierarchy here)."""
    return [d for depth in range(4)
            for d in glob.glob("/sys/fs/cgroup" + "/*" * depth + "/" + CGPARENT) if os.path.isdir(d)]


def remove_cgroups(timeout=10):
    """Removes CGPARENT and the containers' cgroups below it in every
    hierarchy (under dockerd's own cgroup where that is not the root): a
    killed dockerd leaves them, and they piled up on a machine that ran the
    suite again and again. Their processes were killed: each folder goes
    once its last one is released. Returns what could not be removed."""
    tops = cgparent_dirs()
    deadline = time.time() + timeout
    while True:
        left = []
        for top in tops:
            for root, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(root)
                except OSError:
                    if os.path.isdir(root):
                        left.append(root)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dk2(engine, tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: no certificates for the TLS engine")
    tmp = str(tmp_path_factory.mktemp("dk2"))
    make_certs(tmp + "/certs")
    d = Dockerd2(tmp)
    if not d.start():
        pytest.skip("a second dockerd could not start here (see %s/dockerd2.log)" % tmp)
    try:
        if api2(SOCK2, "GET", "/images/%s/json" % IMAGE)[0] != 200:
            copy = subprocess.run("%s -H unix://%s save %s | %s -H unix://%s load" % (DOCKER, SOCK, IMAGE, DOCKER, SOCK2),
                                  shell=True, capture_output=True, timeout=600)
            assert copy.returncode == 0, copy.stderr
            # The same tag, marked: a program tells which engine ran it.
            mk = subprocess.run([DOCKER, "-H", "unix://" + SOCK2, "run", "--name", "crucible-test-mark",
                                 "--network", "none", IMAGE, "/bin/sh", "-c", "echo two > /engine"],
                                capture_output=True, timeout=120)
            assert mk.returncode == 0, mk.stderr
            cm = subprocess.run([DOCKER, "-H", "unix://" + SOCK2, "commit", "crucible-test-mark", IMAGE],
                                capture_output=True, timeout=120)
            assert cm.returncode == 0, cm.stderr
            subprocess.run([DOCKER, "-H", "unix://" + SOCK2, "rm", "-f", "crucible-test-mark"], capture_output=True)
        d.certs = tmp + "/certs"
        yield d
    finally:
        left = d.stop()
        assert not left, "the second engine's containers left cgroups: %s" % left[:5]


WHICH = "import os\nprint(open('/engine').read().strip() if os.path.exists('/engine') else 'one')\n"


def server(tmp_path, hosts=None, extra_env=None, sandbox=None):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True, exist_ok=True)
    sb = {"backend": "docker", "image": IMAGE}
    if hosts:
        sb["docker"] = {"hosts": hosts}
    sb.update(sandbox or {})
    (cfg / "config.json").write_text(json.dumps({"sandbox": sb}))
    env = {"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "DOCKER_HOST": "unix://" + SOCK}
    env.update(extra_env or {})
    c = Client(env=env)
    c.initialize()
    return c


def run(c, code, timeout=60, **kw):
    p = {"code": code}
    p.update(kw)
    return c.call("crucible/run", p, timeout=timeout)["result"]


def wait_warm(owner, sock=SOCK, n=1, timeout=30):
    """Until owner has n running containers on sock (its warm one)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        q = json.dumps({"label": ["crucible.owner=%d" % owner]})
        st, lst = api2(sock, "GET", "/containers/json?filters=" + __import__("urllib.parse").parse.quote(q))
        if st == 200 and len(lst) >= n:
            return lst
        time.sleep(0.1)
    raise AssertionError("no warm container of %d on %s" % (owner, sock))


# ---- warm containers ----

def test_warm_runs_each_get_a_fresh_container(engine, tmp_path):
    c = server(tmp_path)
    try:
        pid = c.proc.pid
        seen = set()
        for i in range(3):
            wait_warm(pid)
            r = run(c, "import os, socket\nprint(socket.gethostname(), os.path.exists('/tmp/mark'))\n"
                       "open('/tmp/mark', 'w').write('x')\n")
            assert r["outcome"] == "ok", r
            host, marked = r["stdout"].split()
            assert marked == "False", r  # nothing of an earlier run is there
            seen.add(host)
        assert len(seen) == 3, seen  # a container per run, never reused
        # The same promises as a cold container: non-root, no network, read-only root.
        wait_warm(pid)
        r = run(c, "import os, socket\nprint(os.getuid() != 0)\n"
                   "try:\n    open('/x', 'w')\nexcept OSError as e:\n    print('ro', e.errno)\n"
                   "s = socket.socket()\ntry:\n    s.connect(('1.1.1.1', 53))\nexcept OSError:\n    print('nonet')\n"
                   "print(sorted(k for k in os.environ if k.startswith('CRUCIBLE')))\n")
        assert r["stdout"] == "True\nro 30\nnonet\n[]\n", r
    finally:
        finish(c)
    assert ours(pid) == []  # the warm one made last is removed at close


def test_warm_limits_hold(engine, tmp_path):
    # The warm container is made with the user's default limits (here 64 MiB).
    c = server(tmp_path, sandbox={"memoryMb": 64})
    try:
        pid = c.proc.pid
        wait_warm(pid)
        t = time.time()
        r = run(c, "x = bytearray(400 << 20)\nprint(len(x))\n")
        assert (r["outcome"], r["limit"], r["stdout"]) == ("oom", "memory", ""), r
        assert time.time() - t < 8
        wait_warm(pid)
        r = run(c, "import time\nprint('a', flush=True)\ntime.sleep(30)\n", limits={"timeoutMs": 1500})
        assert (r["outcome"], r["limit"], r["stdout"]) == ("timeout", "wall", "a\n"), r
        # A daemonized grandchild neither keeps the run going nor outlives it.
        wait_warm(pid)
        t = time.time()
        r = run(c, "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
                   "    os._exit(0)\nprint('parent')\n")
        assert (r["outcome"], r["stdout"]) == ("ok", "parent\n"), r
        assert time.time() - t < 8, "the run waited for its daemon"
        r = run(c, "import sys\nprint(sys.stdin.read().upper())\nsys.exit(3)\n", stdin="hi")
        assert (r["outcome"], r["exitCode"], r["stdout"]) == ("error", 3, "HI\n"), r
    finally:
        finish(c)
    assert ours(pid) == []


def test_warm_containers_swept_after_a_crash(engine, tmp_path):
    c = server(tmp_path)
    pid = c.proc.pid
    wait_warm(pid)
    c.proc.kill()
    c.proc.wait()
    assert ours(pid), "the warm container outlived its server (as it must until a sweep)"
    c2 = server(tmp_path / "again")
    try:
        assert run(c2, "print(5)")["stdout"] == "5\n"
    finally:
        finish(c2)
    assert ours(pid) == []


# ---- tcp:// with TLS client certificates ----

def cli_run(tmp_path, code, hosts=None, env=None, cert_path=None):
    from sandbox_util import run_json
    e = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    if hosts:
        cfg = tmp_path / "config" / "crucible"
        cfg.mkdir(parents=True, exist_ok=True)
        dk = {"hosts": hosts}
        if cert_path:
            dk["certPath"] = cert_path
        (cfg / "config.json").write_text(json.dumps({"sandbox": {"docker": dk}}))
    e.update(env or {})
    return run_json(code, args=("--backend", "docker", "--image", IMAGE), env=e)


def test_tls_engine_with_client_certificates(dk2, tmp_path):
    tcp = "tcp://127.0.0.1:%d" % dk2.port
    good = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dk2.certs + "/client"}
    # DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them.
    r, _ = cli_run(tmp_path, WHICH, env=dict(good, DOCKER_HOST=tcp))
    assert (r["outcome"], r["stdout"]) == ("ok", "two\n"), r
    # The same engine from the user file's sandbox.docker.hosts.
    r, _ = cli_run(tmp_path / "f", WHICH, hosts=[tcp], env=good)
    assert (r["outcome"], r["stdout"]) == ("ok", "two\n"), r
    # ... with its certificates from the user file's sandbox.docker.certPath alone.
    r, _ = cli_run(tmp_path / "g", WHICH, hosts=[tcp], cert_path=dk2.certs + "/client")
    assert (r["outcome"], r["stdout"]) == ("ok", "two\n"), r
    # A client certificate of another CA: the engine refuses the handshake.
    r, p = cli_run(tmp_path, WHICH, env={"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1",
                                         "DOCKER_CERT_PATH": dk2.certs + "/wrong"})
    assert r["outcome"] == "error" and tcp in r["error"] and "does not answer" in r["error"], r
    assert p.returncode == 125
    # No certificates where DOCKER_CERT_PATH says.
    r, _ = cli_run(tmp_path, WHICH, env={"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1",
                                         "DOCKER_CERT_PATH": str(tmp_path / "none")})
    assert r["outcome"] == "error" and "cert" in r["error"] and "DOCKER_CERT_PATH" in r["error"], r
    # Never without TLS.
    r, _ = cli_run(tmp_path, WHICH, env={"DOCKER_HOST": tcp})
    assert r["outcome"] == "error" and "DOCKER_TLS_VERIFY" in r["error"], r


# ---- the doctor, per engine ----

def test_doctor_reports_each_engine(dk2, tmp_path):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    dead = "unix://" + str(tmp_path / "none.sock")
    (cfg / "config.json").write_text(json.dumps({"sandbox": {
        "backend": "docker", "image": IMAGE,
        "docker": {"hosts": ["unix://" + SOCK2, "unix://" + SOCK + "?max=2", dead]}}}))
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    p = subprocess.run([crucible_bin(), "doctor", "--json"], capture_output=True, env=env, timeout=180)
    sb = json.loads(p.stdout)["sandbox"]
    e2, e1, e0 = sb["engines"]
    for e, sock in ((e2, SOCK2), (e1, SOCK)):
        assert e["host"] == "unix://" + sock and e["reachable"] is True, e
        assert e["version"] and e["apiVersion"] and e["runtime"] == "runc" and e["cgroupDriver"] == "cgroupfs", e
        assert IMAGE in e["images"] and e["imagePresent"] is True, e
    assert e1["capacity"] == 2
    assert e0["reachable"] is False and "does not answer" in e0["error"], e0
    assert any(dead in h for h in sb["hints"]), sb["hints"]
    assert sb["ok"] is True  # two of three engines serve


# ---- several engines ----

def test_second_engine_takes_runs_and_its_death_fails_only_its_run(dk2, tmp_path):
    # The first engine takes one run at a time, the second four: runs go to
    # the second while it has free capacity.
    c = server(tmp_path, hosts=["unix://" + SOCK2, "unix://" + SOCK + "?max=1"])
    try:
        pid = c.proc.pid
        wait_warm(pid, SOCK2)
        assert run(c, WHICH)["stdout"] == "two\n"
        # A run on the second engine, which dies under it.
        wait_warm(pid, SOCK2)
        # (its wall time is the default 10 s: the engine's death must end it first, as an error)
        rid = c.request("crucible/run", {"code": "import time\nprint('up', flush=True)\ntime.sleep(60)\n"})
        deadline = time.time() + 30
        while time.time() < deadline:
            q = json.dumps({"label": ["crucible.owner=%d" % pid]})
            st, lst = api2(SOCK2, "GET", "/containers/json?filters=" + __import__("urllib.parse").parse.quote(q))
            if len(lst) >= 2:  # the bound one and the next warm one
                break
            time.sleep(0.1)
        time.sleep(1)
        t = time.time()
        dk2.kill()
        r = c.wait_response(rid, 30)
        assert "result" in r, r
        r = r["result"]
        assert time.time() - t < 20, "the run hung on the dead engine"
        assert r["outcome"] == "error" and SOCK2 in r["error"] and "died" in r["error"], r
        # The next runs go to the engine that is left.
        for i in range(3):
            r = run(c, WHICH)
            assert (r["outcome"], r["stdout"]) == ("ok", "one\n"), r
        # Back: probed again a few seconds later, it takes runs again.
        assert dk2.start()
        deadline = time.time() + 30
        got = None
        while time.time() < deadline:
            got = run(c, WHICH)
            if got["stdout"] == "two\n":
                break
            time.sleep(1)
        assert got["stdout"] == "two\n", got
    finally:
        finish(c)
    assert ours(pid) == []
    q = json.dumps({"label": ["crucible.owner=%d" % pid]})
    assert api2(SOCK2, "GET", "/containers/json?all=1&filters=" + __import__("urllib.parse").parse.quote(q))[1] == []
