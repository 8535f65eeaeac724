"""The editor clients against the real server: the Neovim plugin in a headless nvim, the VS Code extension's
protocol usage replayed with vscode-jsonrpc in node, the extension's TypeScript build and manifest.
Needs `tests/editors/setup.sh` (npm packages) for the node parts; each part skips with the reason when its
tool is missing."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import Client
from editor_util import assert_no_strays, editor_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from fake_openai import FakeOpenAI  # noqa: E402

VSCODE = ROOT / "editors" / "vscode"
NODE_TESTS = ROOT / "tests" / "editors"
SETUP_HINT = "run tests/editors/setup.sh (needs node and npm)"

# What the fake model answers; both clients' tests expect this program.
ANSWER = {"prefix": "Prints the answer.", "imports": "", "code": "print('the answer is', 6 * 7)"}


@pytest.fixture
def fake():
    f = FakeOpenAI().start()
    # a little delay between chunks so tokens arrive as several notifications
    f.script([{"content": json.dumps(ANSWER), "chunk_delay": 0.02}])
    yield f
    f.stop()


@pytest.fixture
def client_env(tmp_path, fake):
    """Environment for a client process (and the server it starts): the fake LLM, private XDG dirs, and a
    marker that finds every process left behind."""
    marker = "crucible-editor-test-" + uuid.uuid4().hex
    return editor_env(tmp_path, fake, marker)


# -- Neovim -----------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim not installed (Debian package: neovim)")
def test_nvim_plugin(tmp_path, client_env, fake):
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    cmd = ["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n",
           "--cmd", "set rtp^=" + str(ROOT / "editors" / "nvim"),
           "-c", "luafile " + str(ROOT / "tests" / "editors" / "nvim" / "test_plugin.lua")]
    p = subprocess.run(cmd, env=client_env, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    out = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
    panes = "".join("\n--- %s\n%s" % (n, (tmp_path / n).read_text())
                    for n in ("ask-pane.txt", "output-pane.txt") if (tmp_path / n).exists())
    assert p.returncode == 0 and "\ndone" in out, "nvim test failed (rc %d):\n%s%s" % (p.returncode, out, panes)
    assert "ok ask streamed" in out
    # the question reached the model
    assert any("print the answer" in json.dumps(r["body"]) for r in fake.chat_requests())
    assert_no_strays(client_env["CRUCIBLE_TEST_MARKER"])


# -- VS Code ----------------------------------------------------------------------------------------------

def need_node():
    if shutil.which("node") is None:
        pytest.skip("node not installed (Debian packages: nodejs npm)")


@pytest.mark.parametrize("scenario", [
    "lifecycle", "diagnostics", "run", "ask", "cancel", "runtime-diagnostics", "environment",
])
def test_vscode_protocol(scenario, client_env):
    need_node()
    if not (NODE_TESTS / "node_modules" / "vscode-jsonrpc").is_dir():
        pytest.skip("vscode-jsonrpc not installed: " + SETUP_HINT)
    p = subprocess.run(["node", str(NODE_TESTS / "vscode" / "client_test.js"), scenario], env=client_env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "scenario %s failed:\n%s\n%s" % (scenario, out, p.stderr.decode(errors="replace"))
    assert "ok " in out
    assert_no_strays(client_env["CRUCIBLE_TEST_MARKER"])


def test_vscode_extension_compiles(tmp_path):
    need_node()
    tsc = VSCODE / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists() or not (VSCODE / "node_modules" / "vscode-languageclient").is_dir():
        pytest.skip("the extension's npm packages are not installed: " + SETUP_HINT)
    p = subprocess.run(["node", str(tsc), "-p", str(VSCODE), "--outDir", str(tmp_path / "out")],
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert (tmp_path / "out" / "extension.js").exists()
    # the status bar's environment names and the Packages… box's parsing (protocol.ts, no VS Code API)
    probe = (
        "const p = require(%s);"
        "console.log(JSON.stringify(["
        "p.environmentLabel(undefined), p.environmentLabel('workspace'),"
        "p.environmentLabel({kind: 'packages', requirements: ['requests', 'numpy>=1.26']}),"
        "p.environmentLabel({kind: 'image', image: 'python:3.12'}),"
        "p.environmentLabel({id: 'system', kind: 'system', language: 'python'}),"
        "p.parseRequirements(' requests, numpy>=1.26  rich,,')]))" % json.dumps(str(tmp_path / "out" / "protocol.js")))
    p = subprocess.run(["node", "-e", probe], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert json.loads(p.stdout) == ["system", "workspace", "packages: requests, numpy>=1.26", "image: python:3.12",
                                    "system", ["requests", "numpy>=1.26", "rich"]]


def test_vscode_manifest_matches_the_server():
    """The commands and settings the extension declares are the ones it implements and the server knows."""
    manifest = json.loads((VSCODE / "package.json").read_text())
    commands = {c["command"] for c in manifest["contributes"]["commands"]}
    assert commands == {"crucible.ask", "crucible.runSelection", "crucible.check", "crucible.cancel",
                        "crucible.doctor", "crucible.pickEnvironment"}
    source = (VSCODE / "src" / "extension.ts").read_text()
    for c in commands:
        assert "registerCommand('%s'" % c in source, c
    for lang in ("python", "javascript", "shellscript"):
        assert "onLanguage:" + lang in manifest["activationEvents"]
    # Code Runner's habits: Ctrl+Alt+N runs, Ctrl+Alt+M stops
    keys = {k["key"]: k["command"] for k in manifest["contributes"]["keybindings"]}
    assert keys == {"ctrl+alt+n": "crucible.runSelection", "ctrl+alt+m": "crucible.cancel"}
    # the package is the esbuild bundle
    assert manifest["main"] == "./dist/extension.js"
    assert "esbuild" in manifest["scripts"]["bundle"] and "--bundle" in manifest["scripts"]["bundle"]

    props = set(manifest["contributes"]["configuration"]["properties"])
    forwarded = set(re.findall(r"^\s*'([a-z]+\.[A-Za-z]+)',$", (VSCODE / "src" / "protocol.ts").read_text(), re.M))
    assert forwarded, "SETTING_KEYS not found in protocol.ts"
    assert props == {"crucible.serverPath", "crucible.serverArgs", "crucible.trace.server"} | \
        {"crucible." + k for k in forwarded}
    # the environment can be picked per workspace (an EnvSpec: a name or an object)
    env = manifest["contributes"]["configuration"]["properties"]["crucible.sandbox.environment"]
    assert env.get("scope") != "machine" and set(env["type"]) == {"string", "object"}
    assert "crucible.pickEnvironment" in source and "'sandbox.environment'" in source
    # which program the extension starts is the machine's choice, never a workspace's
    for key in ("crucible.serverPath", "crucible.serverArgs"):
        assert manifest["contributes"]["configuration"]["properties"][key].get("scope") == "machine", key

    c = Client()
    try:
        c.wait_response(c.request("initialize", {"capabilities": {}}))
        doctor = c.wait_response(c.request("crucible/doctor", {}))["result"]["settings"]
        c.wait_response(c.request("shutdown"))
        c.notify("exit")
        assert c.proc.wait(5) == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
    for key in forwarded:
        group, name = key.split(".")
        assert name in doctor.get(group, {}), "the server has no setting %s" % key
    # every docs setting a workspace may set (the user-only ones are the
    # user's config file's) can be set from the editor
    user_only = {"allowLocal", "allowPrivateNetwork"}
    assert {"docs." + k for k in doctor["docs"] if k not in user_only} <= forwarded, doctor["docs"]


# -- VS Code in its real workbench -------------------------------------------------------------------------

WORKBENCH = NODE_TESTS / "workbench" / "node_modules"
CODE_SERVER = WORKBENCH / "code-server" / "out" / "node" / "entry.js"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def package_extension(out):
    """Packages the extension with vsce (bundled by esbuild) into out; returns vsce's output."""
    vsce = VSCODE / "node_modules" / "@vscode" / "vsce" / "vsce"
    if not vsce.exists():
        pytest.skip("@vscode/vsce not installed: " + SETUP_HINT)
    p = subprocess.run(["node", str(vsce), "package", "--no-dependencies", "--allow-missing-repository",
                        "--out", str(out)], cwd=str(VSCODE), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=300)
    text = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, text
    return text


def test_vscode_package_is_bundled_and_clean(tmp_path):
    need_node()
    text = package_extension(tmp_path / "crucible.vsix")
    assert "WARNING" not in text, text
    import zipfile
    names = zipfile.ZipFile(tmp_path / "crucible.vsix").namelist()
    shipped = [n for n in names if n.startswith("extension/")]
    assert "extension/dist/extension.js" in shipped
    assert not any(n.endswith(".gitignore") or "/node_modules/" in n or n.endswith(".ts") for n in shipped), shipped
    assert len(shipped) <= 6, shipped
    assert any(n.lower().startswith("extension/license") for n in shipped), shipped


def test_vscode_workbench(tmp_path, client_env, fake):
    """The packaged extension in code-server's VS Code, driven through chromium: activation, Problems
    panel, Check, Run selection, Cancel, Ask + Insert, Settings UI changes; screenshots under
    $CRUCIBLE_BUILD/test-artifacts/vscode; nothing left running."""
    need_node()
    chrome = shutil.which("chromium")
    if not CODE_SERVER.exists() or chrome is None:
        pytest.skip("code-server or chromium not installed: run tests/editors/workbench/install.sh")
    build = pathlib.Path(os.environ.get("CRUCIBLE_BUILD", ROOT / "build"))
    shots = build / "test-artifacts" / "vscode"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    vsix = tmp_path / "crucible.vsix"
    package_extension(vsix)

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    (ws / "prog.py").write_text("print('first line runs')\nprint('the selected line runs')\n")
    (ws / "slow.py").write_text("import time\nprint('slow program started', flush=True)\ntime.sleep(60)\n")
    (ws / "ask.py").write_text("# answers go below\n")
    wrapper = tmp_path / "crucible-wrapper"
    wrapper.write_text("#!/bin/sh\ntouch '%s'\nexec '%s' \"$@\"\n" % (tmp_path / "restarted", client_env["CRUCIBLE_BIN"]))
    wrapper.chmod(0o755)

    data, exts = tmp_path / "vscode-data", tmp_path / "vscode-extensions"
    (data / "User").mkdir(parents=True)
    (data / "User" / "settings.json").write_text(json.dumps({
        "crucible.serverPath": client_env["CRUCIBLE_BIN"],
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "security.workspace.trust.enabled": False,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "chat.disableAIFeatures": True,
    }))
    (tmp_path / "cs.yaml").write_text("auth: none\ncert: false\n")
    env = dict(client_env, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    base = ["node", str(CODE_SERVER), "--config", str(tmp_path / "cs.yaml"), "--user-data-dir", str(data),
            "--extensions-dir", str(exts), "--disable-telemetry", "--disable-update-check",
            "--disable-workspace-trust", "--disable-getting-started-override"]
    p = subprocess.run(base + ["--install-extension", str(vsix)], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    assert p.returncode == 0 and any(d.name.startswith("crucible.crucible") for d in exts.iterdir()), \
        p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")

    port = free_port()
    log = open(tmp_path / "code-server.log", "wb")
    server = subprocess.Popen(base + ["--bind-addr", "127.0.0.1:%d" % port, str(ws)], env=env,
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        import urllib.request
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, (tmp_path / "code-server.log").read_text()
                time.sleep(0.3)
        tenv = dict(env, WORKBENCH_URL="http://127.0.0.1:%d/?folder=%s" % (port, ws), WORKSPACE=str(ws),
                    SHOTS=str(shots), CRUCIBLE_WRAPPER=str(wrapper), RESTARTED=str(tmp_path / "restarted"), CHROMIUM=chrome,
                    NODE_PATH=str(WORKBENCH))
        # its own session, so that a hung driver is killed with the browser it started
        driver = subprocess.Popen(["node", str(NODE_TESTS / "vscode" / "workbench_test.js")], env=tenv,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        try:
            stdout, stderr = driver.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, 9)
            stdout, stderr = driver.communicate()
        t = subprocess.CompletedProcess(driver.args, driver.returncode, stdout, stderr)
        out = t.stdout.decode(errors="replace")
        server_logs = list(data.rglob("*Crucible Server.log"))
        server_log = "".join(f.read_text(errors="replace") for f in server_logs)
        assert t.returncode == 0 and "\ndone" in out, "workbench test failed (screenshots in %s):\n%s\n%s" % (
            shots, out, t.stderr.decode(errors="replace")[-3000:])
        assert any("print the answer" in json.dumps(r["body"]) for r in fake.chat_requests())
        assert "ok environment in the status bar" in out, out
        # the server's stderr, as the "Crucible Server" channel shows it after Doctor, runs and an ask
        assert server_logs, "no Crucible Server channel log under %s" % data
        assert not re.search(r"cannot create cgroup.*File exists", server_log), server_log
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()
    assert (shots / "workbench.png").stat().st_size > 10000
    assert_no_strays(client_env["CRUCIBLE_TEST_MARKER"])
