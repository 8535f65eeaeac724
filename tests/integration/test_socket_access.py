"""Who may use a socket server (`crucible serve --listen`): unix sockets admit
only the server's own uid, tcp listeners only clients that present the token;
what --listen refuses to do to an existing path or a bad port; the stdio
bridge `crucible connect`; and the server-wide cap on queued output."""
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import Client, crucible_bin, finish, frame

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}


class Frames:
    """Reads frames from a socket, keeping bytes that arrive after a frame
    for the next call; every read has a timeout."""

    def __init__(self, sock, timeout=20):
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def next(self):
        while True:
            if b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                n = int(head.split(b":")[1])
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return json.loads(rest[:n])
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk


def read_frame(s):
    """One frame from a socket that gets exactly one before the caller
    writes again."""
    return Frames(s).next()


def read_to_eof(s, timeout=10):
    """Everything the server sends until it closes; fails if it does not."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("the server kept the connection open; got %r" % data[:300])
        if not chunk:
            return data
        data += chunk


def frames_in(data):
    out = []
    while data:
        head, rest = data.split(b"\r\n\r\n", 1)
        n = int(head.split(b":")[1])
        out.append(json.loads(rest[:n]))
        data = rest[n:]
    return out


def server_env(tmp_path, **extra):
    run = tmp_path / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    e = dict(os.environ, XDG_RUNTIME_DIR=str(run), XDG_CONFIG_HOME="/nonexistent-crucible-test",
             XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    e.update(extra)
    return e


_servers = []


@pytest.fixture(autouse=True)
def no_server_left_behind():
    """A test that fails half-way does not leave its server running."""
    yield
    while _servers:
        p = _servers.pop()
        if p.poll() is None:
            p.kill()
            p.wait()


class Server:
    """A `crucible serve --listen` process; stderr is collected."""

    def __init__(self, spec, env, *extra):
        self.proc = subprocess.Popen([crucible_bin(), "serve", "--listen", spec, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _servers.append(self.proc)
        # Log lines may come first (a sweep of what a killed server left).
        seen = ""
        while True:
            line = self.proc.stderr.readline().decode()
            seen += line
            if not line or "listening on" in line:
                break
        assert "listening on" in line, seen
        self.address = line.split("listening on ", 1)[1].strip()
        self.port = int(self.address.rsplit(":", 1)[1]) if spec.startswith("tcp:") else None

    def stop(self):
        """SIGTERM; returns (status, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(timeout=15)
        return rc, self.proc.stdout.read(), self.proc.stderr.read().decode()


@pytest.fixture
def tcp_server(tmp_path):
    env = server_env(tmp_path)
    srv = Server("tcp:127.0.0.1:0", env, "--log-level", "debug")
    srv.env = env
    srv.token_path = tmp_path / "run" / "crucible" / "token"
    yield srv
    rc, out, err = srv.stop()
    assert rc == 0, err
    assert out == b""


def tcp_init(port, options, extra=b""):
    s = socket.create_connection(("127.0.0.1", port))
    msg = json.loads(json.dumps(INIT))
    if options is not None:
        msg["params"]["initializationOptions"] = options
    s.sendall(frame(msg) + extra)
    return s


# -- unix sockets --------------------------------------------------------------

def wait_for(path, timeout=10):
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.02)
    assert os.path.exists(path)


PEER_CLIENT = textwrap.dedent("""
    import json, socket, sys
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"capabilities": {}}}).encode()
    data = b""
    try:
        # the server may close before this is sent (EPIPE) or read (ECONNRESET)
        s.sendall(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
        s.settimeout(10)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(json.dumps({"eof": True, "data": data.decode(errors="replace")}))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_unix_socket_refuses_another_uid():
    """The socket file is 0600; even when its mode is opened up (or the peer
    can bypass it), a peer of another uid is closed without a byte."""
    d = tempfile.mkdtemp(prefix="crucible-peer-")
    try:
        os.chmod(d, 0o755)
        path = os.path.join(d, "s.sock")
        srv = Server("unix:" + path, server_env_plain())
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        os.chmod(path, 0o666)   # what a careless chmod or ACL would do
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            sys.executable, "-c", PEER_CLIENT, path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got == {"eof": True, "data": ""}
        # the same uid is served
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(frame(INIT))
        assert read_frame(s)["result"]["serverInfo"]["name"] == "crucible"
        s.close()
        rc, out, err = srv.stop()
        assert rc == 0
        uid = pwd.getpwnam("nobody").pw_uid
        assert "refused a connection on unix:%s from uid %d" % (path, uid) in err
    finally:
        shutil.rmtree(d, ignore_errors=True)


def server_env_plain():
    return dict(os.environ, XDG_CONFIG_HOME="/nonexistent-crucible-test")


def test_unix_listen_refuses_a_regular_file(tmp_path):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    r = subprocess.run([crucible_bin(), "serve", "--listen", "unix:%s" % path],
                       capture_output=True, text=True, timeout=10, env=server_env_plain())
    assert r.returncode == 2
    assert "exists and is not a socket" in r.stderr
    assert path.read_text() == "keep me"


def test_unix_listen_refuses_a_live_servers_socket(tmp_path):
    path = str(tmp_path / "s.sock")
    first = Server("unix:" + path, server_env_plain())
    try:
        r = subprocess.run([crucible_bin(), "serve", "--listen", "unix:" + path],
                           capture_output=True, text=True, timeout=10, env=server_env_plain())
        assert r.returncode == 2
        assert "another server is listening" in r.stderr
        # the first server still owns its socket and answers on it
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(frame(INIT))
        assert read_frame(s)["id"] == 1
        s.close()
    finally:
        rc, _, _ = first.stop()
    assert rc == 0
    assert not os.path.exists(path)


def test_unix_listen_replaces_a_stale_socket(tmp_path):
    path = str(tmp_path / "s.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()          # the file stays, nobody listens: what a crash leaves
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    srv = Server("unix:" + path, server_env_plain())
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(frame(INIT))
    assert read_frame(s)["id"] == 1
    s.close()
    rc, _, _ = srv.stop()
    assert rc == 0


def test_unix_listen_refuses_a_path_too_long(tmp_path):
    path = "/tmp/" + "x" * 120
    r = subprocess.run([crucible_bin(), "serve", "--listen", "unix:" + path],
                       capture_output=True, text=True, timeout=10, env=server_env_plain())
    assert r.returncode == 2 and "at most 107 bytes" in r.stderr
    assert not os.path.exists(path[:108])


# -- tcp: addresses and the token ------------------------------------------------

@pytest.mark.parametrize("port", ["70000", "65536", "-1", "abc", "", "7000x", "99999999999"])
def test_tcp_listen_rejects_bad_ports(port, tmp_path):
    r = subprocess.run([crucible_bin(), "serve", "--listen", "tcp:127.0.0.1:" + port],
                       capture_output=True, text=True, timeout=10, env=server_env(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "the port must be a number from 1 to 65535" in r.stderr
    assert "listening" not in r.stderr


def test_allow_remote_is_refused_with_what_to_do_instead(tmp_path):
    for spec in ("tcp:0.0.0.0:0", "tcp:127.0.0.1:0"):
        r = subprocess.run([crucible_bin(), "serve", "--listen", spec, "--allow-remote"],
                           capture_output=True, text=True, timeout=10, env=server_env(tmp_path))
        assert r.returncode == 2
        assert "--allow-remote is refused" in r.stderr and "TLS" in r.stderr
        assert "ssh" in r.stderr and "crucible connect" in r.stderr
        assert "listening" not in r.stderr
    assert not (tmp_path / "run" / "crucible" / "token").exists()


def test_token_file_and_directory_modes(tcp_server):
    path = tcp_server.token_path
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    # nothing else (a temporary file) is left in the directory
    assert os.listdir(path.parent) == ["token"]


def test_token_is_new_at_each_start(tmp_path):
    env = server_env(tmp_path)
    tokens = []
    for _ in range(2):
        srv = Server("tcp:127.0.0.1:0", env)
        tokens.append((tmp_path / "run" / "crucible" / "token").read_text())
        srv.stop()
    assert tokens[0] != tokens[1]


def test_token_dir_falls_back_to_tmpdir_per_uid(tmp_path):
    env = server_env(tmp_path, TMPDIR=str(tmp_path))
    del env["XDG_RUNTIME_DIR"]
    srv = Server("tcp:127.0.0.1:0", env)
    srv.stop()
    d = tmp_path / ("crucible-%d" % os.geteuid())
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(d / "token").st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory owned by another uid needs root")
def test_token_dir_owned_by_another_user_is_refused(tmp_path):
    d = tmp_path / ("crucible-%d" % os.geteuid())
    d.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    env = server_env(tmp_path, TMPDIR=str(tmp_path))
    del env["XDG_RUNTIME_DIR"]
    r = subprocess.run([crucible_bin(), "serve", "--listen", "tcp:127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10, env=env)
    assert r.returncode == 2
    assert "belongs to uid %d" % nobody.pw_uid in r.stderr
    assert "listening" not in r.stderr
    assert os.listdir(d) == []


def test_token_dir_open_to_others_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / "crucible").mkdir(parents=True)
    os.chmod(run / "crucible", 0o755)
    r = subprocess.run([crucible_bin(), "serve", "--listen", "tcp:127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10, env=server_env(tmp_path))
    assert r.returncode == 2 and "chmod 700" in r.stderr


def test_tcp_without_token_gets_an_error_and_is_closed(tcp_server):
    s = tcp_init(tcp_server.port, None,
                 extra=frame({"jsonrpc": "2.0", "id": 2, "method": "crucible/ping"}))
    msgs = frames_in(read_to_eof(s))
    assert len(msgs) == 1, msgs
    assert msgs[0]["id"] == 1 and msgs[0]["error"]["code"] == -32600
    assert "token" in msgs[0]["error"]["message"]


def test_tcp_with_wrong_token_gets_an_error_and_is_closed(tcp_server):
    real = tcp_server.token_path.read_text().strip()
    wrong = ("0" if real[0] != "0" else "1") + real[1:]
    for bad in (wrong, real[:-1], real + "0", "", 42):
        s = tcp_init(tcp_server.port, {"token": bad},
                     extra=frame({"jsonrpc": "2.0", "id": 2, "method": "crucible/ping"}))
        msgs = frames_in(read_to_eof(s))
        assert len(msgs) == 1 and msgs[0]["error"]["code"] == -32600, (bad, msgs)


def test_tcp_first_message_other_than_initialize_is_refused(tcp_server):
    token = tcp_server.token_path.read_text().strip()
    good_init = json.loads(json.dumps(INIT))
    good_init["id"] = 2
    good_init["params"]["initializationOptions"] = {"token": token}
    firsts = [
        {"jsonrpc": "2.0", "id": 7, "method": "crucible/ping"},
        {"jsonrpc": "2.0", "method": "exit"},
        [good_init],                      # a batch, even holding a good initialize
        b"not json",
    ]
    for first in firsts:
        s = socket.create_connection(("127.0.0.1", tcp_server.port))
        # the good initialize right after it must not be processed either
        s.sendall(frame(first) + frame(good_init))
        msgs = frames_in(read_to_eof(s))
        assert len(msgs) == 1, (first, msgs)
        assert msgs[0]["error"]["code"] == -32600 and "initialize" in msgs[0]["error"]["message"]
        assert msgs[0]["id"] == (7 if isinstance(first, dict) and "id" in first else None)
    assert tcp_server.proc.poll() is None


def test_tcp_with_right_token_is_served_and_the_token_kept_secret(tcp_server):
    token = tcp_server.token_path.read_text().strip()
    s = tcp_init(tcp_server.port, {"token": token, "agent": {"maxIterations": 2}})
    f = Frames(s, timeout=60)
    r = f.next()
    assert r["result"]["serverInfo"]["name"] == "crucible"
    s.sendall(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}) +
              frame({"jsonrpc": "2.0", "id": 2, "method": "crucible/doctor", "params": {}}))
    while True:
        m = f.next()
        if m.get("id") == 2:
            break
    settings = m["result"]["settings"]
    assert settings["agent"]["maxIterations"] == 2     # the other options were applied
    assert token not in json.dumps(m)
    s.sendall(frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}) +
              frame({"jsonrpc": "2.0", "method": "exit"}))
    assert f.next()["id"] == 3
    assert f.buf == b"" and read_to_eof(s) == b""
    rc, out, err = tcp_server.stop()
    assert rc == 0
    assert token not in err and "unknown setting" not in err


def test_tcp_token_under_crucible_section_options(tcp_server):
    """Options may sit under "crucible"; the token stays at the top level."""
    token = tcp_server.token_path.read_text().strip()
    s = tcp_init(tcp_server.port, {"token": token, "crucible": {"agent": {"maxIterations": 1}}})
    assert "result" in read_frame(s)
    s.close()


# -- crucible connect ---------------------------------------------------------------

def test_connect_tcp_end_to_end_without_the_client_knowing_the_token(tcp_server):
    c = Client(args=("connect", "tcp:127.0.0.1:%d" % tcp_server.port), env=tcp_server.env)
    try:
        res = c.initialize({"initializationOptions": {"agent": {"maxIterations": 2}}})
        assert res["serverInfo"]["name"] == "crucible"
        r = c.call("crucible/check", {"code": "import os\nprint(1\n", "language": "python"}, timeout=30)
        diags = r["result"]["diagnostics"]
        assert diags and diags[0]["range"]["start"]["line"] in (1, 2)
        assert [i["module"] for i in r["result"]["imports"]] == ["os"]
    finally:
        finish(c)   # shutdown + exit: the bridge exits 0 when the server closes
    _, _, err = tcp_server.stop()
    assert "refused" not in err


def test_connect_initialize_without_params_gets_the_token_too(tcp_server):
    c = Client(args=("connect", "tcp:localhost:%d" % tcp_server.port), env=tcp_server.env)
    try:
        c.send({"jsonrpc": "2.0", "id": 1, "method": "initialize"})
        assert "result" in c.wait_response(1)
        c.notify("initialized", {})
    finally:
        finish(c)


def test_connect_unix(tmp_path):
    path = str(tmp_path / "s.sock")
    srv = Server("unix:" + path, server_env(tmp_path))
    c = Client(args=("connect", "unix:" + path))
    try:
        c.initialize()
        assert "result" in c.call("crucible/ping")
    finally:
        finish(c)
    assert srv.stop()[0] == 0


def test_connect_without_a_token_file_says_so(tmp_path):
    r = subprocess.run([crucible_bin(), "connect", "tcp:127.0.0.1:9"], capture_output=True, text=True,
                       timeout=10, env=server_env(tmp_path), stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "token" in r.stderr and r.stdout == ""


def test_connect_ends_when_the_server_goes(tcp_server):
    c = Client(args=("connect", "tcp:127.0.0.1:%d" % tcp_server.port), env=tcp_server.env)
    c.initialize()
    tcp_server.stop()
    assert c.proc.wait(timeout=10) == 0


# -- the server-wide cap on queued output ----------------------------------------------

def flood(s, n, size):
    """n requests whose error replies echo a `size`-byte id: the replies pile
    up in the server when the client does not read."""
    for i in range(n):
        s.sendall(frame({"jsonrpc": "2.0", "id": "%d-" % i + "x" * size, "method": "nope"}))


def test_global_output_cap_drops_the_client_with_most_queued(tmp_path):
    path = str(tmp_path / "s.sock")
    cap = 3_000_000
    srv = Server("unix:" + path, server_env(tmp_path), "--max-queued", str(cap), "--log-level", "info")
    try:
        a, b = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
        a.connect(path)
        b.connect(path)
        b.sendall(frame(INIT))
        assert read_frame(b)["id"] == 1
        # A queues about 2.5 MB and does not read; B then adds about 1.5 MB:
        # each is under the per-connection cap, together they pass 3 MB.
        flood(a, 25, 100_000)
        time.sleep(0.5)       # let the server turn A's requests into queued replies
        flood(b, 15, 100_000)
        # A had the most queued: it is dropped (what it reads ends in EOF)...
        got = read_to_eof(a, timeout=20)
        assert len(got) < 2_500_000
        # ...while B gets every reply and is still served.
        b.sendall(frame({"jsonrpc": "2.0", "id": 99, "method": "crucible/ping"}))
        data = b""
        b.settimeout(20)
        while b'"id":99' not in data:
            chunk = b.recv(1 << 20)
            assert chunk, "B was dropped"
            data += chunk
        msgs = frames_in(data)
        assert [m["id"].split("-")[0] for m in msgs[:-1]] == [str(i) for i in range(15)]
        assert all(m["error"]["code"] == -32601 for m in msgs[:-1])
        assert msgs[-1]["id"] == 99 and "result" in msgs[-1]
        b.close()
        assert srv.proc.poll() is None
    finally:
        rc, out, err = srv.stop()
    assert rc == 0
    assert "bytes queued for all clients, cap %d" % cap in err
    assert err.count("dropping the connection with the most queued") == 1


def test_sigterm_does_not_wait_for_a_client_that_does_not_read(tmp_path):
    """Replies queued to a client that never reads them no longer keep a
    stopped server alive (they are given a short grace, then discarded)."""
    path = str(tmp_path / "s.sock")
    srv = Server("unix:" + path, server_env(tmp_path))
    a = socket.socket(socket.AF_UNIX)
    a.connect(path)
    flood(a, 20, 100_000)
    time.sleep(0.5)
    srv.proc.terminate()
    rc = srv.proc.wait(timeout=15)
    assert rc == 0
    assert "without waiting for their unread replies" in srv.proc.stderr.read().decode()
    a.close()
