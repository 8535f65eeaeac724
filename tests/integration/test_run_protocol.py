"""crucible/run and live documents through the protocol: output streaming,
selections, runtime diagnostics, cancellation, concurrency, and what is left
behind when a client vanishes."""
import glob
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import Client, finish
from sandbox_util import cancel_and_expect_killed, sandboxed_programs, wait_no_sandboxed_programs


@pytest.fixture
def srv(tmp_path):
    c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")})
    c.initialize()
    yield c
    finish(c)


def outputs(notes, stream="stdout"):
    return "".join(n["params"]["text"] for n in notes
                   if n.get("method") == "crucible/output" and n["params"]["stream"] == stream)


def test_run_streams_output_and_reports(srv):
    notes = []
    r = srv.call("crucible/run", {"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(4)",
                                  "task": "r1"}, timeout=30, notifications=notes)
    res = r["result"]
    assert res["outcome"] == "error" and res["exitCode"] == 4
    assert res["stdout"] == "out\n" and res["stderr"] == "err\n"
    assert res["task"] == "r1"
    assert outputs(notes) == "out\n" and outputs(notes, "stderr") == "err\n"
    for k in ("durationMs", "cpuMs", "maxRssKb", "truncated", "signal", "diagnostics"):
        assert k in res


def test_run_output_streams_before_the_end(srv):
    rid = srv.request("crucible/run", {"code": "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"})
    seen, text = [], ""
    while text != "first\n":
        m = srv.recv(20)
        seen.append(m)
        assert m.get("id") != rid, ("the run answered before streaming its first line", seen)
        if m.get("method") == "crucible/output":
            text += m["params"]["text"]
    r = srv.wait_response(rid, timeout=20)
    assert r["result"]["outcome"] == "ok"


def test_run_javascript_and_bash_with_stdin(srv):
    r = srv.call("crucible/run", {"code": "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>console.log(d.trim().toUpperCase()))",
                                  "language": "javascript", "stdin": "hello\n"}, timeout=30)
    assert r["result"]["outcome"] == "ok" and r["result"]["stdout"] == "HELLO\n"
    r = srv.call("crucible/run", {"code": "read x; echo \"got $x\"", "language": "bash", "stdin": "42\n"}, timeout=30)
    assert r["result"]["stdout"] == "got 42\n"


def test_what_a_program_writes_as_it_exits_is_all_there(srv):
    """A run ends as soon as nothing in its sandbox can write any more, before
    bwrap exits: what the program wrote just before it exited, still unread
    in the pipes then, must all be in the result, exit code included."""
    progs = {"python": "import os\nos.write(1, b'a' * 60000)\nos.write(2, b'b' * 60000)\nos._exit(3)",
             "bash": "head -c 60000 /dev/zero | tr '\\0' a\nhead -c 60000 /dev/zero | tr '\\0' b >&2\nexit 3"}
    for lang, code in progs.items():
        for _ in range(5):
            r = srv.call("crucible/run", {"code": code, "language": lang}, timeout=30)["result"]
            assert (r["exitCode"], len(r["stdout"]), len(r["stderr"])) == (3, 60000, 60000), (lang, r)
            assert set(r["stdout"]) == {"a"} and set(r["stderr"]) == {"b"}


def test_a_run_ends_after_the_processes_its_program_left(srv):
    """A program that exits while a process it started still runs and writes:
    the run ends only once that process is gone too (the pid namespace takes
    it), with what it wrote until then, and nothing of it is left running
    when the result arrives."""
    code = "(while :; do echo bg; sleep 0.005; done) &\nsleep 0.3\necho main >&2"
    for _ in range(3):
        r = srv.call("crucible/run", {"code": code, "language": "bash"}, timeout=30)["result"]
        assert not sandboxed_programs()
        assert (r["outcome"], r["exitCode"], r["stderr"]) == ("ok", 0, "main\n"), r
        lines = r["stdout"].splitlines()
        assert len(lines) >= 5 and set(lines) == {"bg"}, r["stdout"][-200:]


def test_invalid_utf8_output_is_repaired(srv):
    notes = []
    r = srv.call("crucible/run", {"code": "import sys\nsys.stdout.buffer.write(b'a\\xffb\\xe2\\x82\\xacc\\x00d\\n')"},
                 timeout=30, notifications=notes)
    assert r["result"]["outcome"] == "ok"
    assert outputs(notes) == "a\ufffdb\u20acc\ufffdd\n"


def test_selection_run_maps_traceback_to_document_lines(srv):
    text = "# header\n\n\ndef f():\n    return 1 / 0\n\nf()\n"
    uri = "file:///w/sel.py"
    srv.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
    notes = []
    r = srv.call("workspace/executeCommand", {"command": "crucible.run", "arguments": [{
        "uri": uri, "range": {"start": {"line": 3, "character": 0}, "end": {"line": 7, "character": 0}}}]},
        timeout=30, notifications=notes)
    res = r["result"]
    assert res["outcome"] == "error"
    diag = res["diagnostics"][0]
    assert diag["range"]["start"]["line"] == 4      # "return 1 / 0" in the document
    assert "ZeroDivisionError" in diag["message"]
    deadline = time.time() + 5
    pubs = [n for n in notes if n.get("method") == "textDocument/publishDiagnostics"]
    while not any(any("ZeroDivisionError" in d["message"] for d in p["params"]["diagnostics"]) for p in pubs):
        m = srv.recv(max(0.1, deadline - time.time()))
        if m.get("method") == "textDocument/publishDiagnostics":
            pubs.append(m)
    p = [p for p in pubs if p["params"]["diagnostics"]][-1]["params"]
    assert p["uri"] == uri
    assert any(d["range"]["start"]["line"] == 4 for d in p["diagnostics"])
    # the code action offers a fix now
    acts = srv.call("textDocument/codeAction", {"textDocument": {"uri": uri},
                                                "range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 5}},
                                                "context": {"diagnostics": []}})["result"]
    cmds = [a["command"]["command"] for a in acts]
    assert "crucible.run" in cmds and "crucible.ask" in cmds
    # context.only filters by kind, hierarchically (LSP 3.17 CodeActionContext.only)
    def kinds(only):
        ctx = {"diagnostics": []}
        if only is not None:
            ctx["only"] = only
        return sorted(a["kind"] for a in srv.call("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "context": ctx,
            "range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 5}}})["result"])
    assert kinds(None) == ["quickfix", "source"]
    assert kinds(["quickfix"]) == ["quickfix"]
    assert kinds(["source"]) == ["source"]
    assert kinds(["source.organizeImports"]) == []
    assert kinds(["refactor"]) == []
    assert kinds(["refactor", "quickfix"]) == ["quickfix"]
    assert kinds([""]) == ["quickfix", "source"]


def wait_diags(c, uri, pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = c.recv(max(0.1, deadline - time.time()))
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri and pred(m["params"]["diagnostics"]):
            return m["params"]
    raise AssertionError("no matching diagnostics for " + uri)


def test_live_diagnostics_incremental_and_cleared(srv):
    uri = "file:///w/live.py"
    srv.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                         "text": "import os\nprint(os.getcwd(\n"}})
    p = wait_diags(srv, uri, lambda d: len(d) > 0)
    assert p["diagnostics"][0]["severity"] == 1 and p["version"] == 1
    # close the parenthesis with an incremental edit
    srv.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
        {"range": {"start": {"line": 1, "character": 16}, "end": {"line": 1, "character": 16}}, "text": "))"}]})
    p = wait_diags(srv, uri, lambda d: d == [])
    assert p["version"] == 2
    srv.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [
        {"range": {"start": {"line": 0, "character": 7}, "end": {"line": 0, "character": 9}}, "text": "nosuchmodule_xyz"}]})
    p = wait_diags(srv, uri, lambda d: any("nosuchmodule_xyz" in x["message"] for x in d))
    srv.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    wait_diags(srv, uri, lambda d: d == [])


def test_utf16_columns_after_astral_characters(tmp_path):
    c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")})
    try:
        c.initialize()
        r = c.call("crucible/check", {"code": "s = '𝄞'; import nosuchmod_q\n"}, timeout=30)
        imp = r["result"]["imports"][0]
        assert imp["status"] == "missing"
        assert imp["range"]["start"]["character"] == 17   # 𝄞 counts 2 UTF-16 units
        c.kill()
        c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")})
        c.initialize({"capabilities": {"general": {"positionEncodings": ["utf-8"]}}})
        r = c.call("crucible/check", {"code": "s = '𝄞'; import nosuchmod_q\n"}, timeout=30)
        assert r["result"]["imports"][0]["range"]["start"]["character"] == 19  # 4 bytes
    finally:
        c.kill()


def test_check_request_statuses(srv):
    r = srv.call("crucible/check", {"code": "import os, json\nimport nosuchmod_zz\nfrom . import x\ntry:\n    import ujson\nexcept ImportError:\n    ujson = None\n"}, timeout=30)
    st = {i["module"]: i["status"] for i in r["result"]["imports"]}
    assert st["os"] == "ok" and st["json"] == "ok" and st["nosuchmod_zz"] == "missing"
    assert st.get(".") == "relative" or any(v == "relative" for v in st.values())
    opt = [i for i in r["result"]["imports"] if i["module"] == "ujson"][0]
    assert opt["optional"] is True
    errs = [d for d in r["result"]["diagnostics"] if d["severity"] == 1]
    assert any("nosuchmod_zz" in d["message"] for d in errs)
    assert not any("ujson" in d["message"] for d in errs)


def test_cancel_run_answers_quickly_and_kills(srv):
    rid = srv.request("crucible/run", {"code": "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(120)"})
    m = srv.recv(20)
    assert m.get("method") == "crucible/output"
    cancel_and_expect_killed(srv, rid, within=1.5)


def test_many_runs_at_once(srv):
    ids = [srv.request("crucible/run", {"code": "import time\ntime.sleep(0.2)\nprint(%d)" % i}) for i in range(12)]
    got = {}
    deadline = time.time() + 60
    while len(got) < len(ids) and time.time() < deadline:
        m = srv.recv(60)
        if "id" in m and "method" not in m:
            got[m["id"]] = m
    for i, rid in enumerate(ids):
        assert got[rid]["result"]["stdout"] == "%d\n" % i


def test_limits_from_client_cannot_exceed_settings(srv):
    r = srv.call("crucible/run", {"code": "print(1)", "limits": {"memoryMb": 999999}})
    assert r["error"]["code"] == -32602
    r = srv.call("crucible/run", {"code": "import time\ntime.sleep(5)", "limits": {"timeoutMs": 300}}, timeout=30)
    assert r["result"]["outcome"] == "timeout"


def test_bad_run_params(srv):
    assert srv.call("crucible/run", {})["error"]["code"] == -32602
    assert srv.call("crucible/run", {"code": 5})["error"]["code"] == -32602
    assert srv.call("crucible/run", {"code": "x", "language": "cobol"})["error"]["code"] == -32602
    assert srv.call("crucible/run", {"uri": "file:///not/open.py"})["error"]["code"] == -32602


def our_cgroups():
    found = []
    for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        found += glob.glob(base + "/**/crucible-*", recursive=True)
    return found


def test_client_vanishes_mid_run_leaves_nothing(tmp_path):
    c = Client(env={"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")})
    c.initialize()
    # this server's cgroups only (crucible-<pid>-…): other crucibles on the
    # machine (another test run) make and remove theirs meanwhile
    mine = "/crucible-%d-" % c.proc.pid
    marker = "vanish_marker_%d" % os.getpid()
    rid = c.request("crucible/run", {"code": "import time, os\nprint('%s', flush=True)\nos.fork()\ntime.sleep(120)" % marker})
    m = c.recv(20)
    assert m.get("method") == "crucible/output"
    assert len(sandboxed_programs()) >= 1
    if os.geteuid() == 0:  # a root server runs each program in a cgroup of its own
        assert [g for g in our_cgroups() if mine in g]
    # the client goes away without shutdown: its pipe closes
    c.proc.stdin.close()
    c.proc.stdout.close()
    rc = c.proc.wait(timeout=10)
    assert rc == 0
    assert not wait_no_sandboxed_programs()
    deadline = time.time() + 5
    while time.time() < deadline and [g for g in our_cgroups() if mine in g]:
        time.sleep(0.1)
    assert not [g for g in our_cgroups() if mine in g]


def test_a_server_that_is_pid_1_reaps_its_sandboxes_inits(tmp_path):
    """In a container `crucible serve` is often pid 1: every orphan of the
    namespace is re-parented to it, bwrap's namespace init among them (bwrap
    exits as soon as its program's exit code is known, and the init dies
    with it). The server reaps those inits itself: no zombie is left behind
    by runs, and its cgroups all go at shutdown."""
    import shutil
    import sandbox_util
    from conftest import crucible_bin
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a pid namespace")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    deadline = time.time() + 60
    p = sandbox_util.start_server(["unshare", "--pid", "--fork", "--mount-proc", crucible_bin(), "serve"], env,
                                  deadline)
    try:
        server = [q for q in map(int, filter(str.isdigit, os.listdir("/proc"))) if sandbox_util._stat(q)
                  and sandbox_util._stat(q)[0] == p.pid]
        assert len(server) == 1, server  # crucible, pid 1 of its namespace
        for i in range(6):
            sandbox_util._rpc(p, {"jsonrpc": "2.0", "id": 10 + i, "method": "crucible/run",
                                  "params": {"code": "print(%d)" % i}})
            r = sandbox_util._rpc_wait(p, 10 + i, deadline)["result"]
            assert (r["outcome"], r["stdout"]) == ("ok", "%d\n" % i), r

        def zombies():
            out = []
            for q in map(int, filter(str.isdigit, os.listdir("/proc"))):
                try:
                    st = open("/proc/%d/stat" % q, "rb").read()
                except OSError:
                    continue
                f = st[st.rindex(b")") + 2:].split()
                if f[0] == b"Z" and int(f[1]) == server[0]:
                    out.append((q, st[st.index(b"(") + 1:st.rindex(b")")].decode(errors="replace")))
            return out
        settle = time.time() + 5
        while zombies() and time.time() < settle:
            time.sleep(0.05)
        assert zombies() == []  # (pid, comm) of each left
        mine = [g for g in our_cgroups() if "/crucible-1-" in g]
        sandbox_util._rpc(p, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        sandbox_util._rpc_wait(p, 2, deadline)
        sandbox_util._rpc(p, {"jsonrpc": "2.0", "method": "exit"})
        assert p.wait(timeout=20) == 0
        assert not [g for g in mine if os.path.exists(g)]
    finally:
        if p.poll() is None:
            # unshare and the server, pid 1 of its namespace: the session
            # start_server gave them (unshare's death alone leaves the server)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def unix_server(tmp_path, **env):
    """Starts `crucible serve --listen unix:` with its state in tmp_path and
    waits for its socket; returns (process, socket path)."""
    from conftest import crucible_bin, track
    path = str(tmp_path / "s.sock")
    p = subprocess.Popen([crucible_bin(), "serve", "--listen", "unix:" + path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "s"), XDG_CACHE_HOME=str(tmp_path / "c"),
                                  **env))
    track(p.pid)
    deadline = time.time() + 10
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.02)
    return p, path


def test_socket_client_vanishing_cancels_its_runs_only(tmp_path):
    """Over --listen unix:, a client that disconnects mid-run loses its run
    (killed, cgroup removed); another client's session goes on."""
    import socket as sk
    from test_jsonrpc import read_frame
    from conftest import frame
    p, path = unix_server(tmp_path)
    try:
        a, b = sk.socket(sk.AF_UNIX), sk.socket(sk.AF_UNIX)
        a.connect(path)
        b.connect(path)
        for s in (a, b):
            s.sendall(frame({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}}))
            assert read_frame(s)["id"] == 0
        marker = "sockvanish_%d" % os.getpid()
        a.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "crucible/run",
                         "params": {"code": "import time\nprint('%s', flush=True)\ntime.sleep(120)" % marker}}))
        m = read_frame(a)
        assert m.get("method") == "crucible/output"
        assert sandboxed_programs()
        a.close()
        assert not wait_no_sandboxed_programs()
        b.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "crucible/run", "params": {"code": "print(7)"}}))
        while True:
            m = read_frame(b)
            if m.get("id") == 2:
                break
        assert m["result"]["stdout"] == "7\n"
        b.close()
        assert p.poll() is None
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0   # SIGTERM is a clean stop


def test_doctor_beside_runs_does_not_cost_them_their_cgroup(srv):
    """crucible/doctor runs its own sandboxes on a worker thread; its runner
    once picked the same cgroup names as the server's, and a user's run that
    collided silently lost its memory and process limits."""
    code = "print(open('/proc/self/cgroup').read())"
    for _ in range(2):
        did = srv.request("crucible/doctor", {})
        rids = [srv.request("crucible/run", {"code": code}) for _ in range(4)]
        got = {}
        while len(got) < 5:  # responses come in any order
            m = srv.recv(60)
            if "method" not in m:
                got[m["id"]] = m
        doc = got[did]["result"]
        iso = doc["sandbox"]["isolation"]
        for rid in rids:
            res = got[rid]["result"]
            assert res["outcome"] == "ok", res
            assert res["isolation"] == iso, (res, iso)
            if iso.startswith("cgroup"):
                # its figures come from its own cgroup (a run whose cgroup
                # cannot be made fails; from inside, on v1, the run's cgroup is
                # the root of the program's cgroup namespace: "/")
                assert res["maxRssKb"] and res["maxRssKb"] > 0 and res["cpuMs"] is not None, res
    assert doc["sandbox"]["runsAs"]["hostUid"] != 0


def test_sessions_share_the_run_queue_fairly(tmp_path):
    """One session filling the run queue neither makes another session's run
    fail at once nor keeps it waiting behind its whole backlog."""
    import json as js
    import socket as sk
    from conftest import frame
    from test_socket_access import Frames
    cfgdir = tmp_path / "cfg" / "crucible"
    cfgdir.mkdir(parents=True)
    (cfgdir / "config.json").write_text(js.dumps({"sandbox": {"concurrency": 1}}))
    p, path = unix_server(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    try:
        a, b = sk.socket(sk.AF_UNIX), sk.socket(sk.AF_UNIX)
        a.connect(path)
        b.connect(path)
        fa, fb = Frames(a, 60), Frames(b, 60)
        for s, f in ((a, fa), (b, fb)):
            s.sendall(frame({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}}))
            assert f.next()["id"] == 0
        # A: one running, 64 queued (its share), the 66th refused
        slow = "import time\ntime.sleep(0.4)\n"
        a.sendall(b"".join(frame({"jsonrpc": "2.0", "id": i, "method": "crucible/run", "params": {"code": slow}})
                           for i in range(1, 67)))
        refused = None
        while refused is None:
            m = fa.next()
            if m.get("id") == 66:
                refused = m
        assert refused["error"]["code"] == -32803, refused
        b.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "crucible/run", "params": {"code": "print('b')"}}))
        while True:
            m = fb.next()
            if m.get("id") == 1:
                break
        assert m["result"]["outcome"] == "ok" and m["result"]["stdout"] == "b\n", m
        # B went next after A's running one: at most A's first two are done
        a_done = []
        a.settimeout(0.2)
        try:
            while True:
                m = fa.next()
                if "id" in m and "method" not in m:
                    a_done.append(m["id"])
        except (sk.timeout, TimeoutError):
            pass
        assert len(a_done) <= 2, a_done
        a.close()
        b.close()
    finally:
        p.terminate()
        p.wait(timeout=20)
