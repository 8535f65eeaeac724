"""Environments end to end: the real server and CLI, real pip, venv and npm,
and package indexes faked on 127.0.0.1 (tests/fakes/package_index.py)
serving wheels and tarballs the tests build themselves. Nothing reaches
beyond 127.0.0.1.

Folders the sandbox reads are made under /tmp with mode 0755: a root
server's sandbox runs as another uid, which must reach them (pytest's own
tmp_path is 0700)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import Client, crucible_bin, finish, track  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402
from local_server import LocalServer  # noqa: E402
from package_index import NpmRegistry, SimpleIndex, make_wheel, npm_pack  # noqa: E402

PY = "/usr/bin/python3"
TINY = {"tinypkg/__init__.py": "def answer():\n    return 6 * 7\n"}


def have_pip_venv():
    return subprocess.run([PY, "-c", "import venv, pip"], capture_output=True).returncode == 0


needs_pip = pytest.mark.skipif(not have_pip_venv(), reason="python3-venv and python3-pip are not installed")
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


@pytest.fixture
def base():
    d = tempfile.mkdtemp(prefix="crucible-env-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def wheels(base):
    d = base / "wheels"
    d.mkdir()
    return d


@pytest.fixture
def index(wheels):
    idx = SimpleIndex().start()
    idx.add_wheel(make_wheel(str(wheels), "tinypkg", "1.0", TINY))
    yield idx
    idx.stop()


def server_env(base, index_url=None, registry_url=None, extra=None):
    """Settings in a user file (packageIndex and npmRegistry are user-file
    only); state, cache and config under base."""
    cfgdir = base / "config" / "crucible"
    cfgdir.mkdir(parents=True, exist_ok=True)
    sandbox = {}
    if index_url:
        sandbox["packageIndex"] = index_url
    if registry_url:
        sandbox["npmRegistry"] = registry_url
    (cfgdir / "config.json").write_text(json.dumps({"sandbox": sandbox}))
    e = {"XDG_STATE_HOME": str(base / "state"), "XDG_CACHE_HOME": str(base / "cache"),
         "XDG_CONFIG_HOME": str(base / "config")}
    e.update(extra or {})
    return e


def envs_dir(base):
    return base / "cache" / "crucible" / "envs"


def packages(*reqs, language=None):
    spec = {"kind": "packages", "requirements": list(reqs)}
    if language:
        spec["language"] = language
    return spec


def of(notes, method):
    return [n["params"] for n in notes if n.get("method") == method]


def installing(notes):
    return [p for p in of(notes, "crucible/phase") if p["phase"] == "installing"]


def run(c, code, env, timeout=180, **extra):
    notes = []
    params = {"code": code, "environment": env}
    params.update(extra)
    r = c.call("crucible/run", params, timeout=timeout, notifications=notes)
    return r, notes


def make_venv(path, *wheel_paths):
    """A virtualenv made offline: python3 -m venv, then pip from local wheels."""
    subprocess.run([PY, "-m", "venv", "--without-pip", str(path)], check=True)
    if wheel_paths:
        subprocess.run([PY, "-m", "pip", "--python", str(path / "bin" / "python3"), "install", "-q", "--no-index",
                        "--no-cache-dir", "--disable-pip-version-check", *map(str, wheel_paths)], check=True,
                       env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})


@needs_pip
def test_packages_environment_built_once_then_reused(base, index):
    env = server_env(base, index.url)
    c = Client(env=env)
    c.initialize()
    code = "import tinypkg\nprint(tinypkg.answer())\n"
    r, notes = run(c, code, packages("TinyPkg"), workDoneToken="tok-1")
    res = r["result"]
    assert res["outcome"] == "ok" and res["stdout"] == "42\n", res
    e = res["environment"]
    assert e["kind"] == "packages" and e["requirements"] == ["tinypkg"] and e["language"] == "python"
    assert re.fullmatch(r"[0-9a-f]{64}", e["id"])
    assert pathlib.Path(e["path"]) == envs_dir(base) / e["id"]
    # the build was reported as it went: phase "installing" and $/progress on the token
    details = [p["detail"] for p in installing(notes)]
    assert any("Collecting tinypkg" in d for d in details), details
    assert all(p["task"] == str(r["id"]) for p in installing(notes))
    prog = [p["value"] for p in of(notes, "$/progress") if p["token"] == "tok-1"]
    assert prog[0]["kind"] == "begin" and prog[-1]["kind"] == "end"
    pct = [v["percentage"] for v in prog if v["kind"] == "report" and "percentage" in v]
    assert pct and pct == sorted(pct) and pct[-1] >= 95
    assert index.downloads == {"tinypkg-1.0-py3-none-any.whl": 1}

    # again: nothing is built or downloaded
    r, notes = run(c, code, packages("tinypkg"))
    assert r["result"]["stdout"] == "42\n" and r["result"]["environment"]["id"] == e["id"]
    assert not installing(notes)
    assert index.downloads == {"tinypkg-1.0-py3-none-any.whl": 1}

    # the import check resolves against the environment's module index
    chk = c.call("crucible/check", {"code": code, "environment": packages("tinypkg")}, timeout=60)["result"]
    assert [i["status"] for i in chk["imports"]] == ["ok"], chk
    assert chk["environment"]["id"] == e["id"]
    sys_chk = c.call("crucible/check", {"code": code, "environment": "system"}, timeout=60)["result"]
    assert [i["status"] for i in sys_chk["imports"]] == ["missing"]
    envs = c.call("crucible/environments", {})["result"]
    assert [x["id"] for x in envs] == [e["id"]]
    assert envs[0]["requirements"] == ["tinypkg"] and envs[0]["sizeBytes"] > 0
    assert envs[0]["modules"] > 0 and envs[0]["lastUsed"] > 0
    finish(c)

    # a new server finds it on disk
    c = Client(env=env)
    c.initialize()
    r, notes = run(c, code, packages("tinypkg"))
    assert r["result"]["stdout"] == "42\n" and not installing(notes)
    assert index.downloads == {"tinypkg-1.0-py3-none-any.whl": 1}
    finish(c)
    # only the environment and its metadata are in the cache folder
    assert sorted(p.name for p in envs_dir(base).iterdir()) == [e["id"], e["id"] + ".json"]
    assert not (envs_dir(base) / e["id"] / ".crucible-tmp").exists()


@needs_pip
def test_concurrent_requests_wait_for_one_build(base, index):
    index.delay = 0.5
    c = Client(env=server_env(base, index.url))
    c.initialize()
    ids = [c.request("crucible/run", {"code": "import tinypkg\nprint(tinypkg.answer())",
                                      "environment": packages("tinypkg")}) for _ in range(3)]
    got = {}
    deadline = time.time() + 180
    while len(got) < 3 and time.time() < deadline:
        m = c.recv(deadline - time.time())
        if "id" in m and m["id"] in ids and "method" not in m:
            got[m["id"]] = m
    assert all(got[i]["result"]["stdout"] == "42\n" for i in ids), got
    assert index.downloads == {"tinypkg-1.0-py3-none-any.whl": 1}
    assert len({got[i]["result"]["environment"]["id"] for i in ids}) == 1
    finish(c)


@needs_pip
def test_installer_sees_no_secrets_and_writes_only_its_folder(base, wheels, index):
    home = base / "home"
    home.mkdir()
    # If any of these reached the installer, pip would use the dead proxy or
    # the other index, and tell the index it runs in CI.
    extra = {"OPENAI_API_KEY": "sk-installer-must-not-see-0123", "CI": "1", "HOME": str(home),
             "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
             "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": str(wheels)}
    c = Client(env=server_env(base, index.url, extra=extra))
    c.initialize()
    r, _ = run(c, "import tinypkg\nprint(tinypkg.answer())", packages("tinypkg"))
    assert r["result"]["stdout"] == "42\n", r
    # the installer's name lookup first (one request: the name is there), then pip
    agents = [q["headers"].get("User-Agent", "") for q in index.requests]
    assert agents[0] == "crucible-env-precheck" and index.requests[0]["path"] == "/simple/tinypkg/", agents
    assert agents[1:] and all(a.startswith("pip/") and '"ci":null' in a for a in agents[1:]), agents

    # A wheel that tries to write outside its folder: the build fails (pip
    # refuses, and the sandbox would not let it); nothing lands on the host.
    index.add_wheel(make_wheel(str(wheels), "evilpkg", "1.0",
                               {"evilpkg/__init__.py": "", "../../../../../outside-marker.txt": "escaped"}))
    r, _ = run(c, "import evilpkg", packages("evilpkg"))
    assert r["error"]["code"] == -32803 and "evilpkg" in r["error"]["message"], r
    finish(c)
    for d in [base, base / "cache", base / "cache" / "crucible", envs_dir(base), pathlib.Path("/tmp")]:
        assert not (d / "outside-marker.txt").exists(), d
    # the server's HOME got nothing (no pip cache, no npm logs)
    assert list(home.iterdir()) == []
    names = sorted(p.name for p in envs_dir(base).iterdir())
    assert len(names) == 2 and names[1] == names[0] + ".json", names  # the failed build left nothing


@needs_pip
def test_bad_requirements_refused_and_missing_package_reported(base, index):
    c = Client(env=server_env(base, index.url))
    c.initialize()
    for req in ["-e .", "--index-url=http://127.0.0.1:9/simple", "tinypkg @ http://127.0.0.1:9/x.whl", "/etc/x.whl"]:
        r, notes = run(c, "print(1)", packages(req))
        assert r["error"]["code"] == -32602, r
        assert not installing(notes)
    assert index.requests == []
    r = c.call("crucible/run", {"code": "print(1)", "environment": {"kind": "image", "image": "python:3"}})
    assert r["error"]["code"] == -32602 and "container engine" in r["error"]["message"]
    r, notes = run(c, "import zorblax", packages("zorblax"))
    assert r["error"]["code"] == -32803
    # named precisely, before pip runs (no name on the index is near it)
    assert "no package 'zorblax' on the index" in r["error"]["message"], r
    assert "did you mean" not in r["error"]["message"]
    assert installing(notes)
    finish(c)
    assert not envs_dir(base).exists() or list(envs_dir(base).iterdir()) == []


@needs_pip
def test_cancel_during_install_leaves_nothing(base, index):
    index.delay = 3
    c = Client(env=server_env(base, index.url))
    c.initialize()
    rid = c.request("crucible/run", {"code": "import tinypkg", "environment": packages("tinypkg")})
    deadline = time.time() + 60
    while time.time() < deadline:
        m = c.recv(deadline - time.time())
        if m.get("method") == "crucible/phase" and m["params"]["phase"] == "installing":
            break
    c.notify("$/cancelRequest", {"id": rid})
    r = c.wait_response(rid, timeout=60)
    assert r["error"]["code"] == -32800
    finish(c)
    deadline = time.time() + 10
    while envs_dir(base).exists() and list(envs_dir(base).iterdir()) and time.time() < deadline:
        time.sleep(0.1)
    assert list(envs_dir(base).iterdir()) == []


@needs_pip
def test_workspace_venv_detected_by_runs_checks_and_live_diagnostics(base, wheels):
    ws = base / "ws"
    ws.mkdir()
    w1 = make_wheel(str(wheels), "tinypkg", "1.0", TINY)
    w2 = make_wheel(str(wheels), "laterpkg", "1.0", {"laterpkg/__init__.py": "X = 'later'\n"})
    make_venv(ws / ".venv", w1)
    c = Client(env=server_env(base))
    c.initialize({"rootUri": ws.as_uri(), "initializationOptions": {"sandbox": {"environment": "workspace"}}})
    code = "import tinypkg\nprint(tinypkg.answer())\n"
    r, _ = run(c, code, "workspace")
    res = r["result"]
    assert res["stdout"] == "42\n", res
    assert res["environment"]["kind"] == "workspace" and res["environment"]["path"] == str(ws / ".venv")
    assert res["environment"]["id"].startswith("venv-")
    # the client's setting is the default
    r = c.call("crucible/run", {"code": code}, timeout=60)
    assert r["result"]["stdout"] == "42\n"
    r, _ = run(c, code, "system")
    assert r["result"]["outcome"] == "error" and "No module named 'tinypkg'" in r["result"]["stderr"]

    statuses = lambda env: [(i["module"], i["status"]) for i in  # noqa: E731
                            c.call("crucible/check", {"code": "import tinypkg\nimport laterpkg\n", "environment": env},
                                   timeout=60)["result"]["imports"]]
    assert statuses("workspace") == [("tinypkg", "ok"), ("laterpkg", "missing")]
    assert statuses("system") == [("tinypkg", "missing"), ("laterpkg", "missing")]

    # live diagnostics use the workspace's venv (the client's sandbox.environment)
    uri = (ws / "main.py").as_uri()
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                       "text": "import tinypkg\nimport notinstalled_xyz\n"}})
    deadline = time.time() + 60
    flagged = None
    while time.time() < deadline:
        m = c.recv(deadline - time.time())
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
            lines = sorted(d["range"]["start"]["line"] for d in m["params"]["diagnostics"]
                           if d.get("code") == "missing-module")
            if lines:
                flagged = lines
                break
    assert flagged == [1], flagged  # notinstalled_xyz is missing; tinypkg is not flagged

    # a package installed later is seen (the index follows the venv)
    subprocess.run([PY, "-m", "pip", "--python", str(ws / ".venv" / "bin" / "python3"), "install", "-q",
                    "--no-index", "--no-cache-dir", "--disable-pip-version-check", w2], check=True,
                   env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    assert statuses("workspace") == [("tinypkg", "ok"), ("laterpkg", "ok")]

    # a client may not name a venv outside its workspace
    other = base / "other-venv"
    make_venv(other, w1)
    r, _ = run(c, code, {"kind": "venv", "path": str(other)})
    assert r["error"]["code"] == -32602 and "outside the workspace" in r["error"]["message"]
    finish(c)


@needs_pip
def test_ask_with_a_packages_environment(base, index):
    fake = FakeOpenAI().start()
    try:
        fake.script([{"content": json.dumps({"prefix": "use tinypkg", "imports": "import tinypkg",
                                             "code": "print(tinypkg.answer() + 1)"})}])
        env = server_env(base, index.url, extra={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-test",
                                                 "CRUCIBLE_MODEL": "fake-model"})
        c = Client(env=env)
        c.initialize()
        notes = []
        r = c.call("crucible/ask", {"question": "the answer plus one", "environment": packages("tinypkg")},
                   timeout=180, notifications=notes)
        res = r["result"]
        assert res["outcome"] == "passed" and res["run"]["stdout"] == "43\n", res
        assert res["environment"]["kind"] == "packages" and res["environment"]["requirements"] == ["tinypkg"]
        # every RunResult says where it ran: the ask's environment
        assert res["run"]["environment"] == res["environment"]
        assert [a["run"]["environment"] for a in res["attempts"]] == [res["environment"]]
        assert [a["run"]["environment"]["id"] for a in of(notes, "crucible/attempt")] == [res["environment"]["id"]]
        phases = [p["phase"] for p in of(notes, "crucible/phase")]
        assert phases[0] == "installing" and "running" in phases
        # the import check passed against the environment (no reflection was needed)
        assert res["iterations"] == 1
        finish(c)
    finally:
        fake.stop()


@needs_npm
def test_javascript_registry_package_runs_and_install_scripts_never_run(base):
    pk = base / "pkgs"
    for name, files in {
        "tinyjs": {"index.js": "module.exports = { answer: () => 6 * 7 };\n"},
        "hostile": {"index.js": "module.exports = 'hostile';\n"},
    }.items():
        d = pk / name
        d.mkdir(parents=True)
        meta = {"name": name, "version": "1.0.0", "main": "index.js"}
        if name == "hostile":
            marker = "require('fs').writeFileSync('SCRIPT-RAN', 'x')"
            meta["scripts"] = {s: 'node -e "%s"' % marker for s in ("preinstall", "install", "postinstall")}
        (d / "package.json").write_text(json.dumps(meta))
        for f, text in files.items():
            (d / f).write_text(text)
    out = base / "tarballs"
    out.mkdir()
    reg = NpmRegistry().start()
    try:
        for name in ("tinyjs", "hostile"):
            reg.add_tarball(npm_pack(str(pk / name), str(out)))
        c = Client(env=server_env(base, registry_url=reg.url))
        c.initialize()
        code = "const t = require('tinyjs'); require('hostile'); console.log(t.answer());\n"
        r, notes = run(c, code, packages("tinyjs", "hostile"), language="javascript")
        res = r["result"]
        assert res["outcome"] == "ok" and res["stdout"] == "42\n", (res, [p["detail"] for p in installing(notes)])
        e = res["environment"]
        assert e["language"] == "javascript" and e["requirements"] == ["hostile", "tinyjs"]
        assert reg.downloads == {"tinyjs-1.0.0.tgz": 1, "hostile-1.0.0.tgz": 1}
        ran = [p for p in pathlib.Path(e["path"]).rglob("SCRIPT-RAN")]
        assert ran == []
        assert (pathlib.Path(e["path"]) / "node_modules" / "hostile" / "package.json").exists()
        chk = c.call("crucible/check", {"code": code, "language": "javascript",
                                        "environment": packages("tinyjs", "hostile")}, timeout=60)["result"]
        assert [i["status"] for i in chk["imports"]] == ["ok", "ok"], chk
        r, notes = run(c, code, packages("hostile", "tinyjs"), language="javascript")
        assert r["result"]["stdout"] == "42\n" and not installing(notes)
        # a python program may not use javascript packages
        r = c.call("crucible/run", {"code": "print(1)", "environment": packages("tinyjs", language="javascript")})
        assert r["error"]["code"] == -32602
        finish(c)
    finally:
        reg.stop()


@needs_pip
def test_cli_with_and_env_commands(base, wheels, index):
    env = dict(os.environ)
    env.update(server_env(base, index.url))
    prog = base / "prog.py"
    prog.write_text("import tinypkg\nprint(tinypkg.answer())\n")

    def crucible(*args, timeout=180):
        p = subprocess.Popen([crucible_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=str(base), start_new_session=True)
        track(p.pid)
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(), err.decode()

    rc, out, err = crucible("run", str(prog), "--with", "tinypkg", "--json")
    res = json.loads(out)
    assert rc == 0 and res["stdout"] == "42\n", err
    assert res["environment"]["kind"] == "packages"
    rc, out, err = crucible("run", str(prog), "--with", "tinypkg")
    assert rc == 0 and out == "42\n" and "installing" not in err
    rc, out, _ = crucible("env", "build", "tinypkg")
    assert rc == 0 and out.strip() == res["environment"]["id"]
    assert index.downloads == {"tinypkg-1.0-py3-none-any.whl": 1}
    rc, out, _ = crucible("env", "list", "--json")
    listed = json.loads(out)
    assert [x["id"] for x in listed] == [res["environment"]["id"]]
    # check: imports resolved in the environment
    rc, out, err = crucible("check", str(prog))
    assert rc == 1 and "module 'tinypkg' is not installed" in out, (out, err)
    rc, out, err = crucible("check", str(prog), "--with", "tinypkg")
    assert rc == 0 and out == "", (out, err)
    # --env venv:PATH and the usage errors
    venv = base / "v"
    make_venv(venv, next(wheels.glob("tinypkg-*.whl")))
    rc, out, _ = crucible("run", str(prog), "--env", "venv:" + str(venv))
    assert rc == 0 and out == "42\n"
    rc, out, err = crucible("check", str(prog), "--env", "venv:" + str(venv))
    assert rc == 0 and out == "", (out, err)
    rc, _, err = crucible("check", str(prog), "--env", "conda")
    assert rc == 2 and "conda" in err, err
    rc, _, err = crucible("run", str(prog), "--with", "-e .")
    assert rc == 2 and "pip option" in err
    rc, _, err = crucible("run", str(prog), "--env", "conda")
    assert rc == 2
    rc, out, _ = crucible("env", "remove", res["environment"]["id"][:10])
    assert rc == 0 and res["environment"]["id"] in out
    rc, out, _ = crucible("env", "list", "--json")
    assert json.loads(out) == []
    rc, _, err = crucible("env", "remove", "ffff")
    assert rc == 1 and "no environment" in err
    rc, out, _ = crucible("env", "prune", "--all")
    assert rc == 0


def test_workspace_access_read_is_user_file_only(base):
    ws = base / "ws"
    ws.mkdir()
    (ws / "mymod.py").write_text("VALUE = 'from the workspace'\n")
    code = "import mymod\nprint(mymod.VALUE)\n"
    # off by default: the workspace is not in the sandbox; and a client cannot turn it on
    c = Client(env=server_env(base))
    c.initialize({"rootUri": ws.as_uri(), "initializationOptions": {"sandbox": {"workspaceAccess": "read"}}})
    r = c.call("crucible/run", {"code": code}, timeout=60)["result"]
    assert r["outcome"] == "error" and "No module named 'mymod'" in r["stderr"]
    assert r["environment"] == {"id": "system", "kind": "system", "language": "python"}
    finish(c)
    # the user file may: the folder is mounted read-only and importable
    env = server_env(base)
    (base / "config" / "crucible" / "config.json").write_text(json.dumps({"sandbox": {"workspaceAccess": "read"}}))
    c = Client(env=env)
    c.initialize({"rootUri": ws.as_uri()})
    r = c.call("crucible/run", {"code": code}, timeout=60)["result"]
    assert r["stdout"] == "from the workspace\n", r
    r = c.call("crucible/run", {"code": "open(%r, 'w').write('x')\n" % str(ws / "new.txt")}, timeout=60)["result"]
    assert r["outcome"] == "error" and "Read-only file system" in r["stderr"], r
    assert not (ws / "new.txt").exists()
    assert r["environment"]["id"].startswith("system+ws-")
    chk = c.call("crucible/check", {"code": code}, timeout=60)["result"]
    assert [i["status"] for i in chk["imports"]] == ["ok"], chk
    finish(c)


@needs_pip
def test_doctor_reports_environments(base, index):
    c = Client(env=server_env(base, "https://user:s3cret@127.0.0.1:9/simple"))
    c.initialize()
    r = c.call("crucible/doctor", {}, timeout=60)["result"]
    e = r["environments"]
    assert e["cacheDir"] == str(envs_dir(base)) and e["count"] == 0 and e["sizeBytes"] == 0
    assert e["packageIndex"] == "https://127.0.0.1:9/simple"  # the token never shows
    assert "s3cret" not in json.dumps(r)
    assert e["venv"] and e["pip"]
    finish(c)


# ---- the model's declared dependencies (agent.installDependencies) ----

FLUX = {"zorblax_flux/__init__.py": "def flux(a, b):\n    return a * 1000 + b * 7\n"}
FLUX_DOC = ("<html><head><title>zorblax-flux manual</title></head><body><h1>zorblax-flux</h1>"
            "<p>Install the package <code>zorblax-flux</code>. Import it as <code>zorblax_flux</code>.</p>"
            "<h2>flux</h2><p><code>zorblax_flux.flux(a, b)</code> computes the flux of two integers.</p>"
            "<pre>import zorblax_flux\nprint(zorblax_flux.flux(4, 2))</pre></body></html>")


class _Docs(LocalServer):
    """One documentation page on 127.0.0.1 (the library's manual)."""

    def __init__(self):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = FLUX_DOC.encode()
                self.send_response(200 if self.path in ("/flux/", "/flux/index.html") else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(H)
        self.url = "http://127.0.0.1:%d/flux/" % self.port
        self.start()


def answer(imports, code, deps=None):
    a = {"prefix": "uses zorblax-flux", "imports": imports, "code": code}
    if deps is not None:
        a["dependencies"] = deps
    return {"content": json.dumps(a)}


@pytest.fixture
def flux_ask(base, wheels):
    """A server whose index has zorblax-flux (only there), a fake LLM, and
    the library's docs site; the user file allows the private docs address."""
    idx = SimpleIndex().start()
    idx.add_wheel(make_wheel(str(wheels), "zorblax-flux", "1.0", FLUX))
    idx.add_wheel(make_wheel(str(wheels), "tinypkg", "1.0", TINY))
    fake = FakeOpenAI().start()
    docs = _Docs()
    cfgdir = base / "config" / "crucible"
    cfgdir.mkdir(parents=True, exist_ok=True)
    (cfgdir / "config.json").write_text(json.dumps({"sandbox": {"packageIndex": idx.url},
                                                    "docs": {"allowPrivateNetwork": True}}))
    env = {"XDG_STATE_HOME": str(base / "state"), "XDG_CACHE_HOME": str(base / "cache"),
           "XDG_CONFIG_HOME": str(base / "config"), "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-test",
           "CRUCIBLE_MODEL": "fake-model"}
    try:
        yield idx, fake, docs, env
    finally:
        docs.stop()
        fake.stop()
        idx.stop()


def timed_ask(c, params, timeout=240):
    """crucible/ask with each notification's arrival time."""
    rid = c.request("crucible/ask", params)
    notes = []
    deadline = time.time() + timeout
    while True:
        m = c.recv(deadline - time.time())
        if m.get("id") == rid and "method" not in m:
            return m, notes
        m["t"] = time.monotonic()
        notes.append(m)


@needs_pip
def test_ask_installs_the_library_its_answer_declares(flux_ask):
    """The original agent's scenario: docs of a library that exists only on
    the local index; the answer imports and declares it; the environment is
    built (progress streamed) and the run prints what the library computes.
    A second ask with the same dependency builds nothing."""
    idx, fake, docs, env = flux_ask
    c = Client(env=env)
    c.initialize()
    code = "print(zorblax_flux.flux(4, 2))"
    fake.script([answer("import zorblax_flux", code, ["zorblax-flux"])])
    r, notes = timed_ask(c, {"question": "compute the flux of 4 and 2 with zorblax-flux", "docs": [docs.url],
                             "workDoneToken": "ask-1"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 1, res
    assert res["run"]["stdout"] == "4014\n"  # 4 * 1000 + 2 * 7: computed by the library
    assert any(s["url"].startswith(docs.url) for s in res["sources"]), res["sources"]
    assert "zorblax_flux.flux(a, b)" in fake.chat_requests()[0]["body"]["messages"][0]["content"]
    e = res["environment"]
    assert e["kind"] == "packages" and e["requirements"] == ["zorblax-flux"] and e["language"] == "python"
    assert res["run"]["environment"] == e and res["attempts"][0]["run"]["environment"] == e
    assert res["solution"]["dependencies"] == ["zorblax-flux"]
    assert [i["status"] for i in res["attempts"][0]["check"]["imports"]] == ["ok"]
    # built before the check and the run, its progress streamed
    phases = [(p["phase"], p["iteration"]) for p in of(notes, "crucible/phase")]
    names = [ph for ph, _ in phases]
    assert names.index("installing") > names.index("generating")
    assert names.index("installing") < names.index("checking") < names.index("running")
    details = [p.get("detail", "") for p in installing(notes)]
    assert any("Collecting zorblax-flux" in d or "Collecting zorblax_flux" in d for d in details), details
    assert all(p["iteration"] == 1 for p in installing(notes))
    reports = [p["value"]["message"] for p in of(notes, "$/progress")
               if p["token"] == "ask-1" and p["value"]["kind"] == "report"]
    assert any(m.startswith("installing") for m in reports), reports
    assert idx.downloads == {"zorblax_flux-1.0-py3-none-any.whl": 1}

    # the same dependency again: nothing is built or downloaded, the check is quick
    fake.script([answer("import zorblax_flux", "print(zorblax_flux.flux(1, 1))", ["zorblax_flux"])])
    before = len(idx.requests)
    r, notes = timed_ask(c, {"question": "the flux of 1 and 1", "docs": [docs.url]})
    res = r["result"]
    assert res["outcome"] == "passed" and res["run"]["stdout"] == "1007\n", res
    assert res["environment"]["id"] == e["id"]
    assert len(idx.requests) == before and idx.downloads == {"zorblax_flux-1.0-py3-none-any.whl": 1}
    details = [p.get("detail", "") for p in installing(notes)]
    assert "already built" in details and not any("Collecting" in d for d in details), details
    assert [i["status"] for i in res["attempts"][0]["check"]["imports"]] == ["ok"]
    ph = [n for n in notes if n.get("method") == "crucible/phase"]
    t_check = next(n["t"] for n in ph if n["params"]["phase"] == "checking")
    t_run = next(n["t"] for n in ph if n["params"]["phase"] == "running")
    # the module index of the environment is known: checking is one parse, no probe
    assert t_run - t_check < 0.25, t_run - t_check
    finish(c)


@needs_pip
def test_hallucinated_package_named_before_any_run(flux_ask):
    idx, fake, docs, env = flux_ask
    c = Client(env=env)
    c.initialize()
    fake.script([answer("import zorblax_fluxx", "print(zorblax_fluxx.flux(4, 2))", ["zorblax-fluxx"]),
                 {"content": "I misspelt the package name."},
                 answer("import zorblax_flux, json", "print(json.dumps(zorblax_flux.flux(4, 2)))",
                        ["zorblax-flux", "json"])])
    r, notes = timed_ask(c, {"question": "flux of 4 and 2", "maxIterations": 3})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 2, res
    first = res["attempts"][0]
    assert first["failedStage"] == "install" and first["run"] is None, first
    assert "no package 'zorblax-fluxx' on the index; did you mean 'zorblax-flux'?" in first["error"], first["error"]
    # nothing ran for the first answer, and nothing was downloaded for it
    assert not [p for p in of(notes, "crucible/phase") if p["phase"] == "running" and p["iteration"] == 1]
    assert not [o for o in of(notes, "crucible/output") if o["iteration"] == 1]
    assert not any("fluxx" in f for f in idx.downloads)
    # the model was told precisely
    told = [m["content"] for m in fake.chat_requests()[1]["body"]["messages"] if m["role"] == "user"]
    assert any("did you mean 'zorblax-flux'?" in m for m in told), told
    assert res["run"]["stdout"] == "4014\n"
    # "json" is the standard library's: not asked of the index
    assert res["environment"]["requirements"] == ["zorblax-flux"], res["environment"]
    assert not [q for q in idx.requests if "json" in q["path"]]
    finish(c)


@needs_pip
def test_declared_dependencies_in_text_mode_and_pep723(flux_ask, base):
    """A text-mode answer declares its dependencies in a PEP 723 block; with
    agent.installDependencies off nothing is installed and the run fails."""
    idx, fake, docs, env = flux_ask
    cfg = base / "config" / "crucible" / "config.json"
    user = json.loads(cfg.read_text())
    user["llm"] = {"structuredOutput": "text"}
    cfg.write_text(json.dumps(user))
    c = Client(env=env)
    c.initialize()
    text = ("Uses the library.\n```python\n# /// script\n# dependencies = [\"zorblax-flux\"]\n# ///\n"
            "import zorblax_flux\nprint(zorblax_flux.flux(0, 1))\n```\n")
    fake.script([{"content": text}])
    r, _ = timed_ask(c, {"question": "flux of 0 and 1"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["run"]["stdout"] == "7\n", res
    assert res["environment"]["requirements"] == ["zorblax-flux"]
    finish(c)

    c = Client(env=env)
    c.initialize({"initializationOptions": {"agent": {"installDependencies": False}}})
    fake.script([{"content": text}])
    r, notes = timed_ask(c, {"question": "flux of 0 and 1", "maxIterations": 1})
    res = r["result"]
    assert res["outcome"] == "failed" and res["environment"]["kind"] == "system", res
    assert any("installDependencies is off" in p.get("detail", "") for p in installing(notes))
    finish(c)


@needs_pip
def test_pep723_block_in_run_check_and_live_diagnostics(flux_ask, base):
    idx, fake, docs, env = flux_ask
    c = Client(env=env)
    c.initialize()
    code = ("# /// script\n# requires-python = \">=3.8\"\n# dependencies = [\n#   \"Zorblax_Flux>=1.0\",\n# ]\n# ///\n"
            "import zorblax_flux\nimport notdeclared_xyz\n")
    # before the install: the declared module is information, the other an error
    chk = c.call("crucible/check", {"code": code}, timeout=60)["result"]
    by_code = {d["code"]: d for d in chk["diagnostics"]}
    assert by_code["declared-module-missing"]["severity"] == 3, chk
    assert by_code["declared-module-missing"]["range"]["start"]["line"] == 6
    assert by_code["missing-module"]["range"]["start"]["line"] == 7
    assert idx.requests == []  # a check installs nothing
    # live diagnostics say the same
    uri = (base / "flux.py").as_uri()
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                       "text": code}})
    deadline = time.time() + 60
    diags = None
    while time.time() < deadline and diags is None:
        m = c.recv(deadline - time.time())
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
            if any(d.get("code") == "missing-module" for d in m["params"]["diagnostics"]):
                diags = m["params"]["diagnostics"]
    assert sorted((d["code"], d["severity"]) for d in diags if "module" in d.get("code", "")) == [
        ("declared-module-missing", 3), ("missing-module", 1)], diags

    # a run installs the block's packages (into the system's place: a packages environment)
    run_code = code.replace("import notdeclared_xyz\n", "print(zorblax_flux.flux(2, 3))\n")
    r, notes = run(c, run_code, None)
    res = r["result"]
    assert res["outcome"] == "ok" and res["stdout"] == "2021\n", res
    assert res["environment"]["kind"] == "packages" and res["environment"]["requirements"] == ["zorblax-flux>=1.0"]
    assert installing(notes)
    # now a check resolves against that environment
    chk = c.call("crucible/check", {"code": code}, timeout=60)["result"]
    assert [(i["module"], i["status"]) for i in chk["imports"]] == [("zorblax_flux", "ok"), ("notdeclared_xyz", "missing")]
    assert chk["environment"]["id"] == res["environment"]["id"]
    # a malformed block is the request's fault
    r = c.call("crucible/run", {"code": "# /// script\n# dependencies = [\"a\"\nprint(1)\n"}, timeout=60)
    assert r["error"]["code"] == -32602 and "PEP 723" in r["error"]["message"], r
    finish(c)



@needs_pip
def test_cli_ask_installs_declared_and_with_packages(flux_ask, base):
    idx, fake, docs, env = flux_ask
    e = dict(os.environ)
    e.update(env)

    def ask(*args):
        p = subprocess.Popen([crucible_bin(), "ask", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                             cwd=str(base), start_new_session=True)
        track(p.pid)
        out, err = p.communicate(timeout=240)
        return p.returncode, out.decode(), err.decode()

    fake.script([answer("import zorblax_flux\nimport tinypkg", "print(zorblax_flux.flux(tinypkg.answer(), 0))",
                        ["zorblax-flux"])])
    rc, out, err = ask("flux of the answer", "--with", "tinypkg", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["outcome"] == "passed" and res["run"]["stdout"] == "42000\n", res
    assert res["environment"]["requirements"] == ["tinypkg", "zorblax-flux"]
    assert "--- installing" in err
    fake.script([answer("import zorblax_fluxx", "print(1)", ["zorblax-fluxx"])])
    rc, out, err = ask("flux", "--max-iterations", "1", "--no-reflect")
    assert rc == 1 and "failed at install" in err and "did you mean 'zorblax-flux'?" in err, (out, err)
    rc, _, err = ask("q", "--with", "a", "--env", "system")
    assert rc == 2


@needs_pip
def test_cancel_ask_while_its_dependencies_install(flux_ask, base):
    idx, fake, docs, env = flux_ask
    idx.delay = 3
    c = Client(env=env)
    c.initialize()
    fake.script([answer("import zorblax_flux", "print(zorblax_flux.flux(1, 2))", ["zorblax-flux"])])
    rid = c.request("crucible/ask", {"question": "flux", "task": "cancel-install"})
    deadline = time.time() + 120
    while time.time() < deadline:
        m = c.recv(deadline - time.time())
        if m.get("method") == "crucible/phase" and m["params"]["phase"] == "installing" and \
                m["params"]["iteration"] == 1:
            break
    c.notify("$/cancelRequest", {"id": rid})
    r = c.wait_response(rid, timeout=60)
    assert r["error"]["code"] == -32800, r
    finish(c)
    deadline = time.time() + 10
    while list(envs_dir(base).iterdir()) and time.time() < deadline:
        time.sleep(0.1)
    assert list(envs_dir(base).iterdir()) == []  # the build nobody waits for stopped and left nothing


@needs_npm
def test_ask_javascript_answer_declares_a_registry_package(base):
    d = base / "pkgs" / "tinyjs"
    d.mkdir(parents=True)
    (d / "package.json").write_text(json.dumps({"name": "tinyjs", "version": "1.0.0", "main": "index.js"}))
    (d / "index.js").write_text("module.exports = { answer: () => 6 * 7 };\n")
    out = base / "tarballs"
    out.mkdir()
    reg = NpmRegistry().start()
    fake = FakeOpenAI().start()
    try:
        reg.add_tarball(npm_pack(str(d), str(out)))
        env = server_env(base, registry_url=reg.url, extra={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-test",
                                                            "CRUCIBLE_MODEL": "fake-model"})
        c = Client(env=env)
        c.initialize()
        js = lambda deps: {"content": json.dumps({  # noqa: E731
            "prefix": "p", "imports": "const t = require('tinyjs');", "code": "console.log(t.answer() + 1);",
            "dependencies": deps})}
        fake.script([js(["tinyjz"]), {"content": "wrong name"}, js(["tinyjs"])])
        r, notes = timed_ask(c, {"question": "answer plus one", "language": "javascript"})
        res = r["result"]
        assert res["outcome"] == "passed" and res["run"]["stdout"] == "43\n", res
        assert res["attempts"][0]["failedStage"] == "install" and res["attempts"][0]["run"] is None
        assert "no package 'tinyjz' on the registry; did you mean 'tinyjs'?" in res["attempts"][0]["error"], \
            res["attempts"][0]["error"]
        e = res["environment"]
        assert e["language"] == "javascript" and e["requirements"] == ["tinyjs"]
        assert reg.downloads == {"tinyjs-1.0.0.tgz": 1}
        finish(c)
    finally:
        fake.stop()
        reg.stop()
