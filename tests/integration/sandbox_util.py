"""Helpers for the sandbox tests: run `crucible run --json` on a program, and
find leftovers (processes, cgroups) of crucible runs."""
import json
import os
import time
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile

from conftest import STARTED, crucible_bin, track

TEST_USER = "crucible-sbx-test"


# Where run_json runs programs: "cli", a one-shot `crucible run FILE --json`
# (a cold sandbox), or "pool", a `crucible serve` whose `crucible/run` is
# served by a pre-started sandbox of its warm pool (test_sandbox_attacks.py
# runs every test both ways).
MODE = "cli"
# CLI limit options and their `crucible/run` names.
LIMIT_ARGS = {"--pids": "pids", "--memory": "memoryMb", "--timeout": "timeoutMs", "--cpu": "cpuSeconds",
              "--output": "outputBytes", "--disk": "diskMb"}


def _rpc(proc, msg):
    body = json.dumps(msg).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()


def _rpc_wait(proc, id, deadline):
    f = proc.stdout
    while time.time() < deadline:
        n = None
        while True:
            line = f.readline()
            assert line, "server closed its stdout"
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        m = json.loads(f.read(n))
        if m.get("id") == id and "method" not in m:
            return m
    raise AssertionError("no response to %r" % id)


def start_server(cmd, env, deadline, pass_fds=()):
    """Starts a server (cmd, on pipes, in a session of its own, cwd /) and
    gets it past initialize and initialized; returns its process, to talk
    to with _rpc and _rpc_wait."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, pass_fds=pass_fds, cwd="/", start_new_session=True)
    track(proc.pid)
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"processId": None, "rootUri": None, "capabilities": {}}})
        _rpc_wait(proc, 1, deadline)
        _rpc(proc, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def run_pool(code, language="python", args=(), env=None, timeout=60, user=None, pass_fds=(),
             stdin_data=None):
    """Runs code through a fresh `crucible serve` (as user, with env and
    pass_fds like the CLI would get) once its warm pool holds a started
    interpreter of language; returns (RunResult dict, a CompletedProcess
    whose returncode is what `crucible run` would have exited with), or
    None when the limits are above what a server accepts."""
    params = {"code": code, "language": language}
    lim = {}
    for i in range(0, len(args), 2):
        lim[LIMIT_ARGS[args[i]]] = int(args[i + 1])
    if lim:
        params["limits"] = lim
    if stdin_data is not None:
        params["stdin"] = stdin_data.decode()
    cmd = [crucible_bin(), "serve"]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] + cmd
    e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": "/nonexistent-crucible-test",
         "XDG_STATE_HOME": tmpdir_for(user) + "/state", "XDG_CACHE_HOME": tmpdir_for(user) + "/cache"}
    if env:
        e.update(env)
    deadline = time.time() + timeout
    proc = start_server(cmd, e, deadline, pass_fds=pass_fds)
    try:
        if language != "python":
            # the pool keeps a sandbox of a language once it was asked for
            _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "crucible/run",
                        "params": {"code": "", "language": language}})
            _rpc_wait(proc, 2, deadline)
        time.sleep(1.0)  # its interpreter starts in the background
        _rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "crucible/run", "params": params})
        m = _rpc_wait(proc, 3, deadline)
        if "above the allowed maximum" in m.get("error", {}).get("message", ""):
            # beyond what a server allows a request (its settings' ceilings):
            # only a one-shot run can ask for that
            proc.kill()
            proc.wait()
            return None
        assert "result" in m, m
        r = m["result"]
        _rpc(proc, {"jsonrpc": "2.0", "id": 4, "method": "shutdown"})
        _rpc_wait(proc, 4, deadline)
        _rpc(proc, {"jsonrpc": "2.0", "method": "exit"})
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status = {"ok": 0, "timeout": 124, "cancelled": 130, "rejected": 125}.get(r["outcome"])
    if status is None:
        sig = r.get("signal")
        if isinstance(sig, str):
            sig = signal.Signals[sig].value
        status = 125 if r.get("error") else 128 + sig if sig else r["exitCode"] if r["exitCode"] >= 0 else 1
    return r, subprocess.CompletedProcess(cmd, status, json.dumps(r).encode(), b"")


def run_json(code, language="python", args=(), env=None, timeout=60, user=None, pass_fds=(),
             stdin_data=None, cwd=None):
    """Runs code through `crucible run FILE --json` (MODE "cli") or a warm
    pool (MODE "pool", run_pool); returns (result dict, proc)."""
    if MODE == "pool":
        got = run_pool(code, language, args, env, timeout, user, pass_fds, stdin_data)
        if got:
            return got
    ext = {"python": ".py", "javascript": ".js", "bash": ".sh"}[language]
    d = pathlib.Path(tmpdir_for(user))
    fd, name = tempfile.mkstemp(prefix="prog-", suffix=ext, dir=d)
    os.close(fd)
    src = pathlib.Path(name)
    src.write_text(code)
    os.chmod(src, 0o644)
    cmd = [crucible_bin(), "run", str(src), "--json", "--language", language, *args]
    if stdin_data is not None:
        fd, name = tempfile.mkstemp(prefix="stdin-", dir=d)
        os.close(fd)
        inp = pathlib.Path(name)
        inp.write_bytes(stdin_data)
        os.chmod(inp, 0o644)
        cmd += ["--stdin", str(inp)]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] + cmd
    e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": "/nonexistent-crucible-test"}
    if env:
        e.update(env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, pass_fds=pass_fds,
                            cwd=cwd or "/", start_new_session=True)
    track(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    src.unlink()
    assert p.stdout, "no JSON on stdout; stderr: %s" % p.stderr.decode(errors="replace")
    return json.loads(p.stdout), p


def tmpdir_for(user):
    d = "/tmp/crucible-sbx-tests-%s" % (user or "self")
    os.makedirs(d, exist_ok=True)
    if user:
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def ensure_user():
    """Creates an unprivileged test user when running as root; returns its
    name, or None with a reason."""
    if os.geteuid() != 0:
        return None, "not root: the suite already runs unprivileged"
    try:
        pwd.getpwnam(TEST_USER)
        return TEST_USER, None
    except KeyError:
        pass
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        return None, "useradd/setpriv unavailable"
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], capture_output=True)
    if r.returncode != 0:
        return None, "useradd failed: %s" % r.stderr.decode(errors="replace")
    return TEST_USER, None


def _stat(pid):
    """(ppid, session id) of pid from /proc/<pid>/stat, or None."""
    try:
        data = open("/proc/%d/stat" % pid, "rb").read()
    except OSError:
        return None
    f = data[data.rindex(b")") + 2:].split()
    return int(f[1]), int(f[3])


def ours(pid):
    """Whether pid belongs to a crucible this test session started: it, or
    an ancestor, is one of them or in one of their sessions (a sandbox's
    processes outlive nothing but keep bwrap's session even re-parented)."""
    for _ in range(64):
        st = _stat(pid)
        if st is None:
            return False
        ppid, sid = st
        if pid in STARTED or sid in STARTED:
            return True
        if ppid <= 1:
            return False
        pid = ppid
    return False


def cgroup_leftovers(owners=None):
    """crucible-<pid>-* cgroup directories, of crucible processes this
    session started (or of those in owners), anywhere in the mounted
    hierarchies."""
    owners = STARTED if owners is None else owners
    found = []
    for root in ("/sys/fs/cgroup",):
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                parts = d.split("-")
                if (d.startswith("crucible-") and not d.endswith("-srv") and len(parts) == 3
                        and parts[1].isdigit() and int(parts[1]) in owners):
                    found.append(os.path.join(dirpath, d))
            if dirpath.count("/") > 8:
                dirnames[:] = []
    return found


def procs_matching(marker):
    """pids whose command line contains marker."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read()
        except OSError:
            continue
        if marker.encode() in cmd:
            out.append(int(p))
    return out


# How the launchers of pre-started interpreters begin (server/sandbox/prelude.c):
# a script that still begins so is a warm sandbox waiting for its program.
LAUNCHER_HEADS = (b"_crucible_g = dict(globals())", b"const fs = require('fs');\nconst src = fs.readFileSync(",
                  b"_crucible_u=$_\nread -r -u ")


def waiting_launcher(pid, script):
    """Whether pid is a pre-started interpreter still waiting for its
    program (its script is still the launcher)."""
    try:
        with open("/proc/%d/root/sandbox/%s" % (pid, script.decode()), "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.startswith(LAUNCHER_HEADS)


def sandboxed_programs():
    """pids of programs running inside a sandbox of a crucible this session
    started: the interpreter started on the run's script (a warm sandbox
    still waiting has not started one, or runs a launcher, not a program)."""
    out = []
    for p in procs_matching("main."):
        if not ours(p):
            continue
        try:
            argv = open("/proc/%d/cmdline" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        argv = [a for a in argv if a]
        if len(argv) == 2 and argv[1] in (b"main.py", b"main.js", b"main.sh") and not waiting_launcher(p, argv[1]):
            out.append(p)
    return out


def wait_no_sandboxed_programs(timeout=5):
    """Waits until no sandboxed program runs; returns those still running."""
    deadline = time.time() + timeout
    while sandboxed_programs() and time.time() < deadline:
        time.sleep(0.05)
    return sandboxed_programs()


def cancel_and_expect_killed(client, rid, within):
    """Cancels request rid while its program runs in a sandbox: the answer is
    -32800 within `within` seconds and no sandboxed program is left."""
    assert sandboxed_programs(), "the program should be running in its sandbox"
    t0 = time.time()
    client.notify("$/cancelRequest", {"id": rid})
    r = client.wait_response(rid, timeout=10)
    assert r["error"]["code"] == -32800
    assert time.time() - t0 < within
    assert not wait_no_sandboxed_programs()


def sandbox_procs():
    """pids of bwrap processes (monitors and namespace inits) of crucible
    processes this session started that are no longer their parents, and
    stranded namespace inits of any crucible."""
    out = []
    for p in procs_matching("--json-status-fd"):
        try:
            argv = open("/proc/%d/cmdline" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"bwrap") and ((ours(p) and not owner_alive(p)) or stranded(p)):
            out.append(p)
    return out


def stranded(pid):
    """A bwrap that is not its session's leader while the leader (the bwrap
    that started it, which leads its own session) is gone: an init left
    behind by a dead server, whichever."""
    st = _stat(pid)
    if st is None:
        return False
    sid = st[1]
    return sid > 1 and sid != pid and not os.path.exists("/proc/%d" % sid)


def owner_alive(pid):
    """Whether a crucible this session started, still running, is an
    ancestor of pid (a live server's warm sandbox is not left behind)."""
    for _ in range(64):
        st = _stat(pid)
        if st is None:
            return False
        if pid in STARTED:
            return True
        if st[0] <= 1:
            return False
        pid = st[0]
    return False


def describe(pid):
    """A leftover process for a failure message: pid, ppid, session, state,
    age and the start of its command line, then its ancestors'."""
    out = []
    for _ in range(8):
        try:
            stat = open("/proc/%d/stat" % pid, "rb").read()
            cmd = open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\0", b" ")[:120]
        except OSError:
            break
        f = stat[stat.rindex(b")") + 2:].split()
        ticks = os.sysconf("SC_CLK_TCK")
        up = float(open("/proc/uptime").read().split()[0])
        age = up - int(f[19]) / ticks
        out.append("%d ppid=%s sid=%s state=%s age=%.1fs %s" % (pid, f[1].decode(), f[3].decode(),
                                                               f[0].decode(), age, cmd.decode(errors="replace")))
        pid = int(f[1])
        if pid <= 1:
            break
    return " <- ".join(out)
