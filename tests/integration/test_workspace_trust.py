"""What a client (an editor's workspace settings, a request's params) may make
the server do on its own: documentation sources stay inside the workspace
folders or on public addresses unless the user file allows more, and settings
that raise what a task costs are bounded by the user file's values. Each
refusal is told to the client as window/logMessage."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import Client, crucible_bin, finish, llm_env  # noqa: E402
from docs_site import DocsSite  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

SECRET = "zorblax-secret-token-4711"
SOL = {"content": json.dumps({"prefix": "p", "imports": "", "code": "print('ok')"})}


@pytest.fixture(scope="module")
def site():
    s = DocsSite(slow_delay=0.2).start()
    yield s
    s.stop()


@pytest.fixture
def env(tmp_path, fake):
    return llm_env(tmp_path, fake.url)


@pytest.fixture
def ws(tmp_path):
    """A workspace folder with one doc inside, and a secret file outside it."""
    w = tmp_path / "workspace"
    (w / "docs").mkdir(parents=True)
    (w / "docs" / "guide.md").write_text("# Frobnicate\n\nCall frobnicate_inside(level) to frobnicate.\n")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.md").write_text("# Frobnicate\n\nfrobnicate with " + SECRET + "\n")
    return w, outside


def user_file(env, obj):
    d = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(obj))


def start(env, root=None, options=None):
    c = Client(env=env)
    notes = []
    params = {"processId": os.getpid(), "capabilities": {},
              "rootUri": pathlib.Path(root).as_uri() if root else None}
    if options is not None:
        params["initializationOptions"] = options
    r = c.call("initialize", params, notifications=notes)
    assert "result" in r, r
    c.notify("initialized", {})
    return c, notes


def ask(c, params, notes, timeout=120):
    return c.call("crucible/ask", params, timeout=timeout, notifications=notes)["result"]


def logs(notes):
    return "\n".join(n["params"]["message"] for n in notes if n.get("method") == "window/logMessage")


def prompts(fake):
    return json.dumps([r["body"]["messages"] for r in fake.chat_requests()])


def test_local_sources_stay_inside_the_workspace(env, fake, ws):
    w, outside = ws
    link = w / "docs" / "innocent.md"
    link.symlink_to(outside / "secret.md")          # inside by name, outside in fact
    c, notes = start(env, root=w)
    try:
        fake.script([SOL, SOL, SOL])
        res = ask(c, {"question": "how to frobnicate?", "docs": [str(outside)]}, notes)
        assert res["outcome"] == "passed"
        res = ask(c, {"question": "how to frobnicate?", "docs": [str(link)]}, notes)
        assert res["outcome"] == "passed"
        res = ask(c, {"question": "how to frobnicate?", "docs": [str(w / "docs" / "guide.md")]}, notes)
        assert res["outcome"] == "passed"
        assert SECRET not in prompts(fake)
        assert "frobnicate_inside" in prompts(fake)     # a source inside the workspace is used
        text = logs(notes)
        assert str(outside) in text and str(link) in text and "docs.allowLocal" in text
        assert "outside the workspace" in text
    finally:
        finish(c)


def test_workspace_settings_sources_are_vetted_too(env, fake, ws):
    w, outside = ws
    c, notes = start(env, root=w, options={"docs": {"sources": [str(outside)]}})
    try:
        fake.script([SOL])
        assert ask(c, {"question": "how to frobnicate?"}, notes)["outcome"] == "passed"
        assert SECRET not in prompts(fake)
        assert str(outside) in logs(notes)
    finally:
        finish(c)


def test_user_file_allows_local_sources(env, fake, ws):
    w, outside = ws
    user_file(env, {"docs": {"allowLocal": True}})
    c, notes = start(env, root=w)
    try:
        fake.script([SOL])
        assert ask(c, {"question": "how to frobnicate?", "docs": [str(outside)]}, notes)["outcome"] == "passed"
        assert SECRET in prompts(fake)
    finally:
        finish(c)


def test_private_addresses_are_refused_at_connect_time(env, fake, site, ws):
    """Every spelling of the loopback address, names included, ends at the
    connect-time check: the site sees no request at all."""
    site.clear()
    port = site.url.split(":")[2].split("/")[0]
    urls = [site.url, "http://localhost:%s/docs/" % port, "http://2130706433:%s/docs/" % port,
            "http://127.1:%s/docs/" % port, "http://[::ffff:127.0.0.1]:%s/docs/" % port]
    c, notes = start(env, root=ws[0])
    try:
        fake.script([SOL])
        res = ask(c, {"question": "How do I frobnicate a widget?", "docs": urls}, notes)
        assert res["outcome"] == "passed" and res["sources"] == []
        assert site.requests == []
        details = " ".join(n["params"].get("detail", "") for n in notes if n.get("method") == "crucible/phase")
        assert "refused" in details and "docs.allowPrivateNetwork" in details
        assert "frobnicate_widget" not in prompts(fake)
    finally:
        finish(c)


@pytest.mark.parametrize("how", ["allowPrivateNetwork", "listed"])
def test_user_file_allows_private_sources(env, fake, site, ws, how):
    site.clear()
    user_file(env, {"docs": {"allowPrivateNetwork": True}} if how == "allowPrivateNetwork"
              else {"docs": {"sources": [site.url]}})
    c, notes = start(env, root=ws[0])
    try:
        fake.script([SOL])
        res = ask(c, {"question": "How do I frobnicate a widget at the highest level?", "docs": [site.url]}, notes)
        assert res["outcome"] == "passed"
        assert site.requests and "frobnicate_widget" in prompts(fake)
    finally:
        finish(c)


def settings_defaults(env):
    """The settings with no user file at all, from `crucible doctor`."""
    empty = pathlib.Path(env["XDG_CONFIG_HOME"]).parent / "no-config"
    empty.mkdir(exist_ok=True)
    p = subprocess.run([crucible_bin(), "doctor", "--json", "--offline"], capture_output=True, text=True,
                       env={**os.environ, **env, "XDG_CONFIG_HOME": str(empty)}, timeout=120)
    return json.loads(p.stdout)["settings"]


def test_cost_settings_are_bounded_by_the_user_file(env, fake):
    user_file(env, {"llm": {"maxRetries": 1}})
    c, notes = start(env, options={
        "agent": {"maxIterations": 10},
        "llm": {"maxRetries": 5, "timeoutMs": 999999, "model": "pricey-model"},
        "docs": {"maxPages": 100000, "maxDepth": 100, "budgetTokens": 1000000}})
    try:
        s = c.call("crucible/doctor", {}, timeout=60)["result"]["settings"]
        assert s["agent"]["maxIterations"] == 3
        assert s["llm"]["maxRetries"] == 1 and s["llm"]["timeoutMs"] == 120000
        # not raised past the built-in defaults (the user file names none of them)
        defaults = settings_defaults(env)["docs"]
        assert (s["docs"]["maxPages"], s["docs"]["maxDepth"], s["docs"]["budgetTokens"]) == \
            (defaults["maxPages"], defaults["maxDepth"], defaults["budgetTokens"])
        assert s["docs"]["maxPages"] < 100000 and s["docs"]["maxDepth"] < 100
        text = logs(notes)
        for key in ("agent.maxIterations", "llm.maxRetries", "llm.timeoutMs", "docs.maxPages", "docs.maxDepth",
                    "docs.budgetTokens"):
            assert key in text, (key, text)
        # the model may change, and the client is told
        assert s["llm"]["model"] == "pricey-model"
        assert "llm.model" in text and "pricey-model" in text and "fake-model" in text
        # lowering is fine
        c.notify("workspace/didChangeConfiguration", {"settings": {"crucible": {"agent": {"maxIterations": 1}}}})
        assert c.call("crucible/doctor", {}, timeout=60)["result"]["settings"]["agent"]["maxIterations"] == 1
    finally:
        finish(c)


def test_request_max_iterations_bounded_by_the_user_file(env, fake):
    fail = {"content": json.dumps({"prefix": "p", "imports": "", "code": "raise SystemExit(3)"})}
    fake.script([fail, {"content": "try again"}] * 6)
    c, notes = start(env)
    try:
        res = ask(c, {"question": "q", "maxIterations": 6}, notes)
        assert res["outcome"] == "failed" and res["iterations"] == 3
        assert "maxIterations" in logs(notes)
    finally:
        finish(c)
