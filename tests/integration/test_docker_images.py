"""Images on the docker backend: the `image` environment kind, the image's
own module index (learned by the probe in the image, cached per image ID),
and a missing image (pulled with progress; with no registry reachable, a
clear error at once). The engine and the shared test image come from
test_docker's fixture; the image with an extra module is made here (a
commit of the shared one) and removed at the end."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import Client, crucible_bin, finish
from test_docker import IMAGE, SOCK, api, engine, ours  # noqa: F401  (engine: the fixture)

EXTRA = "crucible-test:dkimg-extra"
ABSENT = "crucible-test:dkimg-absent"


@pytest.fixture(scope="module")
def extra_image(engine):  # noqa: F811
    """IMAGE plus a module only it has (crucible_only_here), committed from a
    container of IMAGE: no registry, no build tool."""
    st, c = api("POST", "/containers/create", {
        "Image": IMAGE, "NetworkDisabled": True,
        "Cmd": ["/bin/sh", "-c", "mkdir -p /usr/lib/python3/dist-packages && "
                "echo 'X = 41 + 1' > /usr/lib/python3/dist-packages/crucible_only_here.py"]})
    assert st == 201, c
    cid = c["Id"]
    try:
        assert api("POST", "/containers/%s/start" % cid)[0] == 204
        st, w = api("POST", "/containers/%s/wait" % cid, timeout=60)
        assert st == 200 and w["StatusCode"] == 0, w
        repo, tag = EXTRA.split(":")
        st, img = api("POST", "/commit?container=%s&repo=%s&tag=%s" % (cid, repo, tag), {})
        assert st == 201, img
    finally:
        api("DELETE", "/containers/%s?force=1" % cid)
    yield EXTRA
    api("DELETE", "/images/%s?force=1" % EXTRA)


def image_id(name):
    st, j = api("GET", "/images/%s/json" % name)
    assert st == 200, j
    return j["Id"]


def server(tmp_path, backend="docker", image=IMAGE, extra_env=None):
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True, exist_ok=True)
    sb = {"backend": backend}
    if image:
        sb["image"] = image
    (cfg / "config.json").write_text(json.dumps({"sandbox": sb}))
    env = {"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "DOCKER_HOST": "unix://" + SOCK}
    env.update(extra_env or {})
    c = Client(env=env)
    c.initialize()
    return c


def statuses(c, code, environment=None):
    p = {"code": code}
    if environment is not None:
        p["environment"] = environment
    r = c.call("crucible/check", p, timeout=90)
    assert "result" in r, r
    return [(i["module"], i["status"]) for i in r["result"]["imports"]], r["result"]


def test_image_environment_runs_in_that_image(extra_image, tmp_path):
    c = server(tmp_path)
    try:
        code = "import crucible_only_here\nprint(crucible_only_here.X)"
        r = c.call("crucible/run", {"code": code, "environment": {"kind": "image", "image": EXTRA}},
                   timeout=90)["result"]
        assert (r["outcome"], r["stdout"]) == ("ok", "42\n"), r
        env = r["environment"]
        assert (env["kind"], env["image"], env["imageId"], env["id"]) == (
            "image", EXTRA, image_id(EXTRA), image_id(EXTRA)), env
        # No environment: the default image (sandbox.image), named with its ID.
        r = c.call("crucible/run", {"code": code}, timeout=90)["result"]
        assert r["outcome"] == "error" and "ModuleNotFoundError" in r["stderr"], r
        assert (r["environment"]["kind"], r["environment"]["image"]) == ("image", IMAGE)
        assert r["environment"]["imageId"] == image_id(IMAGE)
        # Folders of this host are not mounted into containers: a clear refusal.
        r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "venv", "path": str(tmp_path)}})
        assert r["error"]["code"] == -32602 and "image" in r["error"]["message"], r
        pid = c.proc.pid
    finally:
        finish(c)
    assert ours(pid) == []


def test_image_kind_needs_a_container_engine(tmp_path):
    c = server(tmp_path, backend="bwrap", image=None)
    try:
        r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": IMAGE}})
        assert r["error"]["code"] == -32602, r
        assert "container engine" in r["error"]["message"]
    finally:
        finish(c)


def test_check_judges_imports_by_the_image(extra_image, tmp_path):
    # The test image has python3-minimal: no json, which the host has;
    # EXTRA has crucible_only_here, which neither the host nor IMAGE has.
    code = "import json\nimport csv\nimport crucible_only_here\n"
    c = server(tmp_path)
    try:
        got, res = statuses(c, code)
        assert got == [("json", "missing"), ("csv", "ok"), ("crucible_only_here", "missing")], res
        assert res["environment"]["image"] == IMAGE
        got, _ = statuses(c, code, {"kind": "image", "image": EXTRA})
        assert got == [("json", "missing"), ("csv", "ok"), ("crucible_only_here", "ok")]
    finally:
        finish(c)
    # Learned once per image ID: a new server finds both on disk (no probe).
    cache = tmp_path / "c"
    files = sorted(p.name for p in cache.rglob("env-python-*.json"))
    assert len(files) == 2, files
    c = server(tmp_path)
    try:
        t0 = time.time()
        got, _ = statuses(c, code, {"kind": "image", "image": EXTRA})
        assert got == [("json", "missing"), ("csv", "ok"), ("crucible_only_here", "ok")]
        # (no probe container: the server's warm container, sleeping, is all)
        assert not [x for x in ours(c.proc.pid) if "exec sleep" not in x["Command"]]
        assert time.time() - t0 < 30
    finally:
        finish(c)
    # The bwrap backend judges by the host's interpreter.
    c = server(tmp_path / "bw", backend="bwrap", image=None)
    try:
        got, _ = statuses(c, code)
        assert got == [("json", "ok"), ("csv", "ok"), ("crucible_only_here", "missing")]
    finally:
        finish(c)


def test_cli_check_uses_the_image_index(engine, tmp_path):  # noqa: F811
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": "docker", "image": IMAGE}}))
    src = tmp_path / "a.py"
    src.write_text("import json\nimport csv\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "c"),
               DOCKER_HOST="unix://" + SOCK)
    p = subprocess.run([crucible_bin(), "check", "--json", str(src)], capture_output=True, env=env, timeout=120)
    rep = json.loads(p.stdout)
    assert [(i["module"], i["status"]) for i in rep["imports"]] == [("json", "missing"), ("csv", "ok")], rep
    assert p.returncode == 1


def test_missing_image_with_no_registry_is_a_clear_error_at_once(engine, tmp_path):  # noqa: F811
    assert api("GET", "/images/%s/json" % ABSENT)[0] == 404
    c = server(tmp_path)
    try:
        notes = []
        t0 = time.time()
        r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": ABSENT},
                                    "workDoneToken": "w1"}, timeout=60, notifications=notes)
        assert time.time() - t0 < 30
        assert r["error"]["code"] == -32803, r
        msg = r["error"]["message"]
        assert ABSENT in msg and "pulling it failed" in msg and "docker build" in msg, msg
        # the engine's own reason (no registry here), not an empty "HTTP 500"
        reason = msg.split("pulling it failed: ", 1)[1].split("; build or load", 1)[0]
        assert len(reason) > len("HTTP 500: ") + 5, msg
        kinds = [n["params"]["value"]["kind"] for n in notes if n.get("method") == "$/progress"]
        assert kinds[:1] == ["begin"] and kinds[-1:] == ["end"], notes
        # The check is told the same (its imports cannot be judged without the image).
        r = c.call("crucible/check", {"code": "import os\n", "environment": {"kind": "image", "image": ABSENT}},
                   timeout=60)
        assert "error" in r and ABSENT in r["error"]["message"], r
    finally:
        finish(c)


def test_missing_image_is_pulled_with_progress(engine, tmp_path):  # noqa: F811
    from fake_registry import FakeRegistry  # tests/fakes, on the path through conftest
    reg = FakeRegistry(layer_bytes=4 << 20).start()
    image = reg.image("crucible-dkimg-pulled", "v1")
    c = server(tmp_path)
    try:
        notes = []
        r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": image},
                                    "workDoneToken": "p1"}, timeout=120, notifications=notes)
        assert "result" in r, r
        st, img = api("GET", "/images/%s/json" % image)
        assert st == 200, "the image was not pulled"
        res = r["result"]
        assert (res["environment"]["image"], res["environment"]["imageId"]) == (image, img["Id"])
        # The image holds one file and no shell: the run itself fails, clearly.
        assert res["outcome"] == "error" and "/bin/sh" in res["stderr"], res
        prog = [n["params"]["value"] for n in notes if n.get("method") == "$/progress"]
        assert prog[0]["kind"] == "begin" and prog[-1]["kind"] == "end", prog
        pct = [p["percentage"] for p in prog if p["kind"] == "report" and "percentage" in p]
        assert len(pct) >= 2 and pct == sorted(pct) and pct[-1] >= 90, prog
        assert any("pulling %s" % image in p.get("message", "") for p in prog if p["kind"] == "report"), prog
        phases = [n["params"] for n in notes if n.get("method") == "crucible/phase"]
        assert phases and phases[0]["phase"] == "installing" and "Downloading" in json.dumps(phases)
        # Present now: the next run pulls nothing.
        n = len(reg.requests)
        r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": image}},
                   timeout=60)
        assert "result" in r and len(reg.requests) == n
    finally:
        finish(c)
        reg.stop()
        api("DELETE", "/images/%s?force=1" % image)


class StallingEngine:
    """A socket in front of the real engine that passes every byte through,
    except a request that looks up `image`: that one is held until release()
    (an engine that is stuck, or far away, on that call)."""

    def __init__(self, path, image):
        self.path, self.needle = str(path), ("/images/%s/json" % image.replace(":", "%3A")).encode()
        self.held = threading.Event()
        self.go = threading.Event()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(16)
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            e = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            e.connect(SOCK)
            threading.Thread(target=self._pump, args=(c, e, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(e, c, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if from_client and self.needle in b:
                    self.held.set()
                    self.go.wait()
                dst.sendall(b)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def release(self):
        self.go.set()

    def close(self):
        # shutdown() wakes the thread blocked in accept(): closing alone left
        # it blocked in the kernel, and a later test's connection once
        # reached it (a docs crawl's first fetch, in a full suite run)
        self.go.set()
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.acceptor.join(timeout=10)
        self.srv.close()


def test_an_image_lookup_never_holds_the_server(engine, tmp_path):  # noqa: F811
    """The engine is asked whether it has a request's image on the loop: while
    that answer is slow to come, the server answers other requests, and the
    request can be cancelled."""
    stuck = "crucible-test:dkimg-stuck"
    proxy = StallingEngine(tmp_path / "engine.sock", stuck)
    c = server(tmp_path, extra_env={"DOCKER_HOST": "unix://" + proxy.path})
    try:
        run_id = c.request("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": stuck},
                                            "workDoneToken": "s1"})
        assert proxy.held.wait(30), "the server never asked the engine for the image"
        # the lookup is held by the engine: the server still answers
        ping_id = c.request("crucible/ping")
        first = c.recv(10)
        while "method" in first:  # progress notifications may come first
            first = c.recv(10)
        assert first.get("id") == ping_id, first
        # and the waiting request can be cancelled
        c.notify("$/cancelRequest", {"id": run_id})
        r = c.wait_response(run_id, timeout=30)
        assert r["error"]["code"] == -32800, r
        # a normal run still works afterwards, through the same engine
        proxy.release()
        r = c.call("crucible/run", {"code": "print(6 * 7)"}, timeout=90)
        assert r["result"]["stdout"] == "42\n", r
    finally:
        finish(c)
        proxy.close()
