"""Shared fixtures: the real crucible binary, an LSP/JSON-RPC client that
speaks to it over stdio with real framing, and the fake LLM endpoint."""
import json
import os
import pathlib
import queue
import select
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from fake_openai import FakeOpenAI  # noqa: E402


# Every crucible process this test session started, each the leader of its
# own session: leftover checks look only at sandboxes of these (another
# crucible on the machine, an editor's server or another test run, is not
# ours to judge).
STARTED = set()


def track(pid):
    STARTED.add(pid)
    return pid


@pytest.fixture
def fake():
    """A fake OpenAI-compatible endpoint on 127.0.0.1 (tests/fakes/fake_openai.py)."""
    f = FakeOpenAI().start()
    yield f
    f.stop()


def llm_env(tmp_path, url, key="sk-test"):
    """The environment of a crucible whose state, cache and config live in
    tmp_path and whose LLM is the fake at url."""
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "OPENAI_BASE_URL": url, "OPENAI_API_KEY": key, "CRUCIBLE_MODEL": "fake-model"}


def crucible_bin():
    path = os.environ.get("CRUCIBLE_BIN")
    if path:
        return path
    for cand in ("build/server/crucible", "build-asan/server/crucible"):
        p = ROOT / cand
        if p.exists():
            return str(p)
    raise RuntimeError("crucible binary not found: build first or set CRUCIBLE_BIN")


def frame(obj_or_bytes):
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Client:
    """A JSON-RPC client over a crucible process's stdio. A reader thread
    parses frames from stdout strictly: anything that is not a frame fails
    the test (stdout must carry nothing but protocol)."""

    def __init__(self, args=("serve",), env=None, cwd=None):
        e = dict(os.environ)
        e.setdefault("XDG_CONFIG_HOME", "/nonexistent-crucible-test")
        if env:
            e.update(env)
        self.env_state = e.get("XDG_STATE_HOME", "")
        self.proc = subprocess.Popen([crucible_bin(), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=e, cwd=cwd, start_new_session=True)
        track(self.proc.pid)
        self.msgs = queue.Queue()
        self.garbage = []
        self.stderr_lines = []
        self.next_id = 1
        self._rt = threading.Thread(target=self._read, daemon=True)
        self._rt.start()
        self._et = threading.Thread(target=self._read_err, daemon=True)
        self._et.start()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode(errors="replace"))

    def _read(self):
        f = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = f.readline()
                if not line:
                    self.msgs.put(None)
                    return
                if line == b"\r\n":
                    break
                if b":" not in line or not line.endswith(b"\r\n"):
                    self.garbage.append(line)
                    continue
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
            n = int(headers[b"content-length"])
            body = f.read(n)
            try:
                self.msgs.put(json.loads(body.decode("utf-8")))
            except ValueError:
                # not UTF-8 or not JSON: a protocol violation the test fixture reports
                self.garbage.append(body)

    def send_raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj):
        self.send_raw(frame(obj))

    def request(self, method, params=None, id=None):
        if id is None:
            id = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return id

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def recv(self, timeout=10):
        try:
            m = self.msgs.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message from the server within %ss" % timeout)
        if m is None:
            raise AssertionError("server closed its stdout; stderr:\n" + "".join(self.stderr_lines))
        return m

    def wait_response(self, id, timeout=10, notifications=None):
        """Returns the response for id; other messages go to `notifications`
        (a list) when given, else are dropped."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no response to id %r" % (id,))
            m = self.recv(left)
            if isinstance(m, dict) and "method" not in m and m.get("id") == id:
                return m
            if notifications is not None:
                notifications.append(m)

    def call(self, method, params=None, timeout=10, notifications=None):
        return self.wait_response(self.request(method, params), timeout, notifications)

    def initialize(self, params=None):
        p = {"processId": os.getpid(), "rootUri": None, "capabilities": {}}
        if params:
            p.update(params)
        r = self.call("initialize", p)
        assert "result" in r, r
        self.notify("initialized", {})
        return r["result"]

    def close(self, timeout=10):
        """Clean shutdown; returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.call("shutdown", timeout=timeout)
                self.notify("exit")
            except (AssertionError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SANITIZER_MARKS = ("LeakSanitizer", "AddressSanitizer", "runtime error:", "still has open handles")


def finish(c):
    """Ends a session cleanly (shutdown + exit) and asserts what a clean end
    means: exit status 0, nothing but frames on stdout, and no sanitizer or
    open-handle report (under ASan a leak makes the exit status non-zero)."""
    alive = c.proc.poll() is None
    rc = c.close()
    if alive:
        assert rc == 0, "exit status %r; stderr:\n%s" % (rc, "".join(c.stderr_lines))
    assert not c.garbage, "stdout carried non-protocol bytes: %r" % c.garbage[:3]
    c._et.join(timeout=5)
    err = "".join(c.stderr_lines)
    assert not any(m in err for m in SANITIZER_MARKS), err


@pytest.fixture
def client():
    c = Client()
    yield c
    finish(c)


@pytest.fixture
def ready(client):
    """A client that has completed initialize/initialized."""
    client.initialize()
    return client
