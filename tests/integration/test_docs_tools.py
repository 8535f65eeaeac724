"""The model asks for more documentation: docs_search and docs_read offered as
tools in the ask loop, run by the real server against its docs cache (a local
folder source), their results sent back to the fake model as tool messages,
within their bounds (4 answered calls per attempt; docs.budgetTokens x 4/3
tokens of results per ask)."""
import json
import os
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import Client, finish, llm_env  # noqa: E402

WIDGETS = """# Widgets

The widget library makes and polishes widgets.

## Frobnicate

Call `frobnicate_widget(level=N)` to frobnicate a widget. Level 11 is the highest level.

## Polish

Call `polish_widget(shine=True)` to polish a widget until it shines.
"""
GARDEN = """# Garden

## Watering

Water the tomatoes every morning; the roses twice a week.
"""
SECRET = """# Vault

## Combination

The combination of the vault is 4-8-15-16-23-42, known as the frobnicate secret.
"""


def sol(code, imports=""):
    return {"content": json.dumps({"prefix": "p", "imports": imports, "code": code})}


def search(query, id=None):
    c = {"name": "docs_search", "arguments": {"query": query}}
    if id:
        c["id"] = id
    return c


def read(url, section=None, id=None):
    args = {"url": url}
    if section:
        args["section"] = section
    c = {"name": "docs_read", "arguments": args}
    if id:
        c["id"] = id
    return c


def of(notes, method):
    return [n["params"] for n in notes if n.get("method") == method]


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "widgets.md").write_text(WIDGETS)
    (root / "garden.md").write_text(GARDEN)
    other = tmp_path / "other"
    other.mkdir()
    (other / "vault.md").write_text(SECRET)
    return pathlib.Path(os.path.realpath(root)), pathlib.Path(os.path.realpath(other))


def server(tmp_path, fake, docs_cfg=None):
    env = llm_env(tmp_path, fake.url)
    cfgdir = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    cfgdir.mkdir(parents=True, exist_ok=True)
    # the folders are outside any workspace: the user file allows them
    (cfgdir / "config.json").write_text(json.dumps({"docs": dict({"allowLocal": True}, **(docs_cfg or {}))}))
    c = Client(env=env)
    c.initialize()
    return c


def ask(c, params, timeout=60):
    notes = []
    r = c.call("crucible/ask", params, timeout=timeout, notifications=notes)
    return r, notes


def tool_messages(msgs):
    return [m for m in msgs if m["role"] == "tool"]


def test_model_searches_and_reads_docs(tmp_path, fake, docs):
    root, other = docs
    widgets = str(root / "widgets.md")
    c = server(tmp_path, fake)
    try:
        # another source's page in the same cache: the tools must not see it
        fake.script([sol("print(1)")])
        r, _ = ask(c, {"question": "open the vault", "docs": [str(other)]})
        assert r["result"]["outcome"] == "passed"
        n0 = len(fake.chat_requests())

        fake.script([
            {"content": "Let me look that up.",
             "tool_calls": [search("frobnicate widget", id="call_s"), read(widgets, "Frobnicate", id="call_r"),
                            read(str(other / "vault.md"), id="call_v")]},
            sol("print('frobnicated')"),
        ])
        r, notes = ask(c, {"question": "how do I make the widget shine?", "docs": [str(root)], "task": "t1"})
        res = r["result"]
        assert res["outcome"] == "passed", res
        reqs = fake.chat_requests()[n0:]
        assert len(reqs) == 2
        first, second = reqs[0]["body"], reqs[1]["body"]
        assert sorted(t["function"]["name"] for t in first["tools"]) == ["docs_read", "docs_search"]
        assert first["tool_choice"] == "auto" and second["tool_choice"] == "auto"
        msgs = fake.chat_messages()[n0 + 1]
        assert msgs == second["messages"]
        # the assistant's calls go back as they came, each answered by a tool message
        calls = [m for m in msgs if m["role"] == "assistant" and m.get("tool_calls")]
        assert len(calls) == 1 and [t["id"] for t in calls[0]["tool_calls"]] == ["call_s", "call_r", "call_v"]
        assert calls[0]["content"] == "Let me look that up."  # what it wrote beside them goes back too
        tools = tool_messages(msgs)
        assert [t["tool_call_id"] for t in tools] == ["call_s", "call_r", "call_v"]
        assert msgs.index(calls[0]) == len(msgs) - 4
        # the search names the sections of this source only, with their URLs
        assert widgets in tools[0]["content"] and "Frobnicate" in tools[0]["content"]
        assert "vault" not in tools[0]["content"].lower()
        # the read is the page's text from the section asked for
        assert "frobnicate_widget(level=N)" in tools[1]["content"]
        assert tools[1]["content"].startswith("# Widgets")
        # a page of another source is refused, its text never sent
        assert "not a page of the documentation" in tools[2]["content"]
        assert "4-8-15" not in json.dumps(msgs)
        # recorded per attempt, and the page read is a source
        tc = res["attempts"][0]["toolCalls"]
        assert [(t["name"], t["argument"]) for t in tc] == [
            ("docs_search", "frobnicate widget"), ("docs_read", widgets + "#Frobnicate"),
            ("docs_read", str(other / "vault.md"))]
        assert tc[0]["tokens"] > 0 and tc[1]["tokens"] > 0 and "error" not in tc[1]
        assert tc[2]["tokens"] == 0 and "not a page" in tc[2]["error"]
        assert any(s["url"] == widgets for s in res["sources"])
        # the editor hears each call as a phase detail
        details = [p.get("detail") for p in of(notes, "crucible/phase") if p["phase"] == "generating"]
        assert "searching docs: frobnicate widget" in details, details
        assert "reading docs: %s#Frobnicate" % widgets in details, details
        # the calls' arguments are not streamed as answer text
        assert not any("frobnicate widget" in p["text"] for p in of(notes, "crucible/token"))
        # the crucible/attempt notification carries them too
        assert of(notes, "crucible/attempt")[0]["toolCalls"] == tc
        # the transcript's prompt is the last one the attempt sent, tool rounds included
        t = c.call("crucible/transcript", {"task": "t1"})["result"]
        assert t["attempts"][0]["prompt"] == msgs
    finally:
        finish(c)


def test_fifth_call_gets_an_error_then_tool_choice_none(tmp_path, fake, docs):
    root, _ = docs
    c = server(tmp_path, fake)
    try:
        fake.script([
            {"tool_calls": [search("widget"), search("frobnicate"), search("polish"), search("garden"),
                            search("tomatoes")]},
            sol("print('ok')"),
        ])
        r, _ = ask(c, {"question": "polish a widget", "docs": [str(root)]})
        res = r["result"]
        assert res["outcome"] == "passed", res
        tc = res["attempts"][0]["toolCalls"]
        assert len(tc) == 5
        assert all("error" not in t for t in tc[:4])
        assert "limit of 4" in tc[4]["error"] and tc[4]["tokens"] == 0
        second = fake.chat_requests()[1]["body"]
        tools = tool_messages(second["messages"])
        assert len(tools) == 5
        assert "Watering" not in tools[4]["content"] and "answer now" in tools[4]["content"]
        assert "Watering" in tools[3]["content"]  # the 4th was answered
        assert second["tool_choice"] == "none"
    finally:
        finish(c)


def test_model_that_never_stops_calling_tools_ends(tmp_path, fake, docs):
    root, _ = docs
    c = server(tmp_path, fake)
    try:
        fake.script([{"tool_calls": [search("widget %d" % i)]} for i in range(40)])
        r, notes = ask(c, {"question": "polish a widget", "docs": [str(root)], "maxIterations": 2})
        res = r["result"]
        assert res["outcome"] == "failed"
        assert [a["failedStage"] for a in res["attempts"]] == ["answer", "answer"]
        # per attempt: 4 answered rounds, then one told to answer (tool_choice none), which called again;
        # between them the reflection, never offered the tools
        reqs = [q["body"] for q in fake.chat_requests()]
        assert len(reqs) == 11, len(reqs)
        assert [q["tool_choice"] for q in reqs] == ["auto"] * 4 + ["none"] * 2 + ["auto"] * 4 + ["none"]
        assert [len(a["toolCalls"]) for a in res["attempts"]] == [4, 4]
        assert "after their limit" in res["attempts"][0]["error"]
    finally:
        finish(c)


def test_token_bound_cuts_and_then_refuses(tmp_path, fake, docs):
    root, _ = docs
    long_page = root / "long.md"
    long_page.write_text("# Long\n\n" + "".join("## Part %d\n\n%s\n\n" % (i, "lorem ipsum dolor sit amet " * 40)
                                              for i in range(12)))
    # docs.budgetTokens 300: the tools' results may hold 400 tokens in this ask
    c = server(tmp_path, fake, {"budgetTokens": 300})
    try:
        fake.script([{"tool_calls": [read(str(long_page)), read(str(long_page), "Part 9")]},
                     sol("print('ok')"), sol("print('ok')")])
        r, _ = ask(c, {"question": "lorem ipsum", "docs": [str(root)]})
        res = r["result"]
        assert res["outcome"] == "passed", res
        tc = res["attempts"][0]["toolCalls"]
        assert 380 <= tc[0]["tokens"] <= 400, tc
        assert "tokens" in tc[1]["error"] and tc[1]["tokens"] == 0
        bodies = [q["body"] for q in fake.chat_requests()]
        first_result = tool_messages(bodies[1]["messages"])[0]["content"]
        assert "reached their 400 tokens" in first_result
        assert len(first_result) < 400 * 4 + 200
        assert "spent" in tool_messages(bodies[1]["messages"])[1]["content"]
        assert bodies[1]["tool_choice"] == "none"
        assert len(bodies) == 2
    finally:
        finish(c)


def test_no_tools_without_docs_sources_or_in_all_mode(tmp_path, fake, docs):
    root, _ = docs
    c = server(tmp_path, fake, {"mode": "all"})
    try:
        fake.script([sol("print(1)"), sol("print(2)")])
        ask(c, {"question": "q"})
        ask(c, {"question": "q", "docs": [str(root)]})
        for q in fake.chat_requests():
            assert "tools" not in q["body"] and "tool_choice" not in q["body"]
    finally:
        finish(c)


def test_cancel_after_a_tool_round(tmp_path, fake, docs):
    root, _ = docs
    c = server(tmp_path, fake)
    try:
        fake.script([{"tool_calls": [search("widget")]}, {"hang": True}])
        rid = c.request("crucible/ask", {"question": "polish a widget", "docs": [str(root)], "task": "tc"})
        notes = []
        deadline = time.time() + 30
        while len(fake.chat_requests()) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert len(fake.chat_requests()) == 2
        c.notify("$/cancelRequest", {"id": rid})
        assert c.wait_response(rid, timeout=10, notifications=notes)["error"]["code"] == -32800
        deadline = time.time() + 5
        while time.time() < deadline and not fake.chat_requests()[1]["disconnected"]:
            time.sleep(0.05)
        assert fake.chat_requests()[1]["disconnected"]
    finally:
        finish(c)


def test_endpoint_that_refuses_tools_is_asked_without(tmp_path, fake, docs):
    root, _ = docs
    c = server(tmp_path, fake)
    try:
        fake.script([{"status": 400, "error": {"message": "tools param requires --jinja flag",
                                               "type": "invalid_request_error"}},
                     sol("print('ok')")])
        r, _ = ask(c, {"question": "polish a widget", "docs": [str(root)]})
        assert r["result"]["outcome"] == "passed", r
        bodies = [q["body"] for q in fake.chat_requests()]
        assert "tools" in bodies[0] and "tools" not in bodies[1]
    finally:
        finish(c)
