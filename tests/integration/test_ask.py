"""The ask loop end to end: the real server, the real sandbox, and a fake
OpenAI-compatible endpoint on 127.0.0.1 that records what it was sent."""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import Client, crucible_bin, finish, llm_env, track  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402
from sandbox_util import cancel_and_expect_killed  # noqa: E402

KEY = "sk-test-secret-key-0123456789"


def sol(imports, code, prefix="p"):
    return {"content": json.dumps({"prefix": prefix, "imports": imports, "code": code})}


@pytest.fixture
def env(tmp_path, fake):
    return llm_env(tmp_path, fake.url, KEY)


@pytest.fixture
def srv(env):
    c = Client(env=env)
    c.initialize()
    yield c
    finish(c)


def ask(c, params, timeout=60):
    notes = []
    r = c.call("crucible/ask", params, timeout=timeout, notifications=notes)
    return r, notes


def of(notes, method):
    return [n["params"] for n in notes if n.get("method") == method]


def chat_user_text(req):
    return "\n".join(m["content"] for m in req["body"]["messages"] if m["role"] == "user")


def test_pass_on_first_attempt(srv, fake):
    fake.script([sol("import math", "print(math.factorial(5))")])
    r, notes = ask(srv, {"question": "print 5!", "task": "fact"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 1
    assert res["task"] == "fact"
    assert res["solution"]["imports"] == "import math"
    assert res["run"]["outcome"] == "ok" and res["run"]["stdout"] == "120\n"
    assert len(res["attempts"]) == 1 and res["attempts"][0]["passed"] is True
    assert res["usage"]["promptTokens"] > 0 and res["usage"]["completionTokens"] > 0
    phases = [p["phase"] for p in of(notes, "crucible/phase")]
    assert phases[0] == "retrieving" and phases[-1] == "finished"
    assert phases.index("generating") < phases.index("checking") < phases.index("running")
    tokens = "".join(p["text"] for p in of(notes, "crucible/token"))
    assert "factorial" in tokens
    assert "".join(o["text"] for o in of(notes, "crucible/output") if o["stream"] == "stdout") == "120\n"
    assert all(n["params"]["task"] == "fact" for n in notes if n.get("method", "").startswith("crucible/"))
    # the request asked for structured output and streamed
    body = fake.chat_requests()[0]["body"]
    assert body["stream"] is True and body["response_format"]["type"] == "json_schema"
    assert fake.chat_requests()[0]["headers"]["authorization"] == "Bearer " + KEY


def test_missing_import_caught_statically_then_fixed(srv, fake):
    fake.script([
        sol("import numpy_does_not_exist", "print('ran anyway')"),
        {"content": "That module is not installed; use the standard library."},
        sol("import statistics", "print(statistics.mean([1, 2, 3]))"),
    ])
    r, notes = ask(srv, {"question": "mean of 1,2,3"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 2
    first = res["attempts"][0]
    assert first["run"]["outcome"] == "rejected"          # never ran
    assert first["failedStage"] == "imports"
    assert "numpy_does_not_exist" in first["error"]
    outputs = "".join(o["text"] for o in of(notes, "crucible/output"))
    assert "ran anyway" not in outputs
    # the model was told which import, on which line, and reflected
    reqs = fake.chat_requests()
    assert len(reqs) == 3
    assert "numpy_does_not_exist" in chat_user_text(reqs[1]) and "line 1" in chat_user_text(reqs[1])
    assert "response_format" not in reqs[1]["body"]       # the reflection is free text
    assert "".join(p["text"] for p in of(notes, "crucible/reflection")).startswith("That module")
    assert "Here are reflections on the error" in json.dumps(reqs[2]["body"]["messages"])


# docs/protocol.md: the fields of every RunResult (crucible/run adds `task`;
# `error` only when the sandbox itself failed)
RUN_RESULT_FIELDS = ["outcome", "exitCode", "signal", "stdout", "stderr", "truncated", "durationMs", "cpuMs",
                     "maxRssKb", "diagnostics", "limit", "limitsHit", "limits", "isolation", "language"]


def test_rejected_attempt_run_has_every_run_result_field(srv, fake):
    fake.script([sol("import numpy_does_not_exist", "print(1)"), {"content": "r"}, sol("", "print(2)")])
    r, notes = ask(srv, {"question": "q"})
    res = r["result"]
    assert res["outcome"] == "passed"
    notified = [a for a in of(notes, "crucible/attempt") if a["iteration"] == 1][0]["run"]
    for run in (res["attempts"][0]["run"], notified):
        assert run["outcome"] == "rejected"
        missing = [f for f in RUN_RESULT_FIELDS if f not in run]
        assert not missing, missing
        assert run["exitCode"] is None and run["signal"] is None and run["limit"] is None
        assert run["limitsHit"] == [] and run["language"] == "python" and run["isolation"] == "none"
        assert run["limits"]["timeoutMs"] > 0
        assert run["diagnostics"] and run["diagnostics"][0]["code"] == "missing-module"
    # the same fields, in the same order, as a program that ran
    ran = srv.call("crucible/run", {"code": "print(1)"}, timeout=30)["result"]
    assert [k for k in ran if k not in ("task", "warning")] == \
        [k for k in res["attempts"][0]["run"] if k != "warning"]
    assert list(res["attempts"][1]["run"]) == list(res["attempts"][0]["run"])


def test_cancel_during_reflection_reports_the_attempt_once(srv, fake):
    fake.script([sol("", "raise SystemExit(1)"), {"hang": True}])
    rid = srv.request("crucible/ask", {"question": "q", "task": "cr"})
    notes = []
    while not any(n.get("method") == "crucible/phase" and n["params"]["phase"] == "reflecting" for n in notes):
        notes.append(srv.recv(20))
    deadline = time.time() + 10
    while len(fake.chat_requests()) < 2 and time.time() < deadline:
        time.sleep(0.02)
    srv.notify("$/cancelRequest", {"id": rid})
    assert srv.wait_response(rid, timeout=10, notifications=notes)["error"]["code"] == -32800
    assert [a["iteration"] for a in of(notes, "crucible/attempt")] == [1]
    t = srv.call("crucible/transcript", {"task": "cr"})["result"]
    assert t["outcome"] == "cancelled" and len(t["result"]["attempts"]) == 1
    assert t["result"]["attempts"][0]["failedStage"] == "run"


def test_runtime_error_traceback_reaches_model(srv, fake):
    fake.script([
        sol("", "data = {'a': 1}\nprint(data['b'])"),
        {"content": "KeyError: use .get"},
        sol("", "data = {'a': 1}\nprint(data.get('b', 0))"),
    ])
    r, notes = ask(srv, {"question": "print b or 0"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 2
    assert res["attempts"][0]["run"]["outcome"] == "error"
    fed_back = chat_user_text(fake.chat_requests()[1])
    assert "KeyError" in fed_back and "Traceback" in fed_back and "exit code 1" in fed_back
    assert res["run"]["stdout"] == "0\n"


def test_exhaustion_at_max_iterations(srv, fake):
    fake.script([sol("", "raise SystemExit(3)"), {"content": "reflection"}, sol("", "raise SystemExit(3)")])
    r, notes = ask(srv, {"question": "fail", "maxIterations": 2})
    res = r["result"]
    assert res["outcome"] == "failed" and res["iterations"] == 2
    assert len(res["attempts"]) == 2 and not any(a["passed"] for a in res["attempts"])
    assert res["run"]["exitCode"] == 3
    # 2 generations + 1 reflection between them
    assert len(fake.chat_requests()) == 3


def test_no_reflect_setting_skips_reflection(env, fake):
    c = Client(env=env)
    try:
        c.initialize({"initializationOptions": {"agent": {"reflect": False}}})
        fake.script([sol("", "raise SystemExit(1)"), sol("", "print('ok')")])
        r, notes = ask(c, {"question": "q"})
        assert r["result"]["outcome"] == "passed"
        assert len(fake.chat_requests()) == 2
        assert not of(notes, "crucible/reflection")
    finally:
        c.kill()


def test_cancel_during_generation(srv, fake):
    fake.script([{"hang": True}])
    rid = srv.request("crucible/ask", {"question": "q", "task": "c1"})
    deadline = time.time() + 10
    while not fake.chat_requests() and time.time() < deadline:
        time.sleep(0.02)
    t0 = time.time()
    srv.notify("$/cancelRequest", {"id": rid})
    r = srv.wait_response(rid, timeout=10)
    assert r["error"]["code"] == -32800
    assert time.time() - t0 < 2
    deadline = time.time() + 5
    while time.time() < deadline and not fake.chat_requests()[0]["disconnected"]:
        time.sleep(0.05)
    assert fake.chat_requests()[0]["disconnected"]
    h = srv.call("crucible/history", {})["result"]["tasks"]
    assert h[0]["outcome"] == "cancelled"


def test_cancel_during_run_kills_sandbox(srv, fake):
    fake.script([sol("import time", "print('started', flush=True)\ntime.sleep(60)")])
    rid = srv.request("crucible/ask", {"question": "q", "task": "c2"})
    notes = []
    deadline = time.time() + 20
    while time.time() < deadline:
        m = srv.recv(20)
        notes.append(m)
        if m.get("method") == "crucible/output" and "started" in m["params"]["text"]:
            break
    cancel_and_expect_killed(srv, rid, within=2)


def test_crucible_cancel_command_by_task(srv, fake):
    fake.script([{"hang": True}])
    rid = srv.request("crucible/ask", {"question": "q", "task": "named"})
    deadline = time.time() + 10
    while not fake.chat_requests() and time.time() < deadline:
        time.sleep(0.02)
    r = srv.call("workspace/executeCommand", {"command": "crucible.cancel", "arguments": [{"task": "named"}]})
    assert r["result"]["cancelled"] == 1
    assert srv.wait_response(rid)["error"]["code"] == -32800


@pytest.mark.parametrize("fault,expect_requests", [
    ({"status": 429, "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
      "headers": {"retry-after": "1"}}, 2),
    ({"status": 500, "error": {"message": "The server had an error", "type": "server_error"}}, 2),
])
def test_transient_llm_faults_are_retried(srv, fake, fault, expect_requests):
    fake.script([fault, sol("", "print('ok')")])
    r, notes = ask(srv, {"question": "q"})
    assert r["result"]["outcome"] == "passed"
    reqs = fake.chat_requests()
    assert len(reqs) == expect_requests
    if fault["status"] == 429:
        assert reqs[1]["time"] - reqs[0]["time"] >= 0.9   # honoured retry-after


def test_unsupported_response_format_falls_back(srv, fake):
    fake.configure(reject_formats=["json_schema"])
    fake.script([sol("", "print('fallback')")])
    r, notes = ask(srv, {"question": "q"})
    assert r["result"]["outcome"] == "passed"
    kinds = [q["body"].get("response_format", {}).get("type") for q in fake.chat_requests()]
    assert kinds == ["json_schema", "json_object"]


def test_one_llm_client_remembers_the_mode_and_reuses_the_connection(srv, fake):
    """Every ask of a server goes through one LLM client: the second ask does
    not try again the structured-output mode the endpoint refused in the
    first, and its requests go over the first ask's connection. The memory is
    per endpoint and model: after the client switches models, the next ask
    starts over."""
    fake.configure(reject_formats=["json_schema"])
    fake.script([sol("", "print('one')"), sol("", "print('two')"), sol("", "print('three')")])
    for q in ("first", "second"):
        r, _ = ask(srv, {"question": q})
        assert r["result"]["outcome"] == "passed", r
    reqs = fake.chat_requests()
    kinds = [q["body"].get("response_format", {}).get("type") for q in reqs]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert [q["conn"] for q in reqs] == [1, 1, 1] and fake.connections == 1

    srv.notify("workspace/didChangeConfiguration", {"settings": {"crucible": {"llm": {"model": "other-model"}}}})
    r, _ = ask(srv, {"question": "third"})
    assert r["result"]["outcome"] == "passed", r
    reqs = fake.chat_requests()[3:]
    assert [q["body"]["model"] for q in reqs] == ["other-model", "other-model"]
    assert [q["body"].get("response_format", {}).get("type") for q in reqs] == ["json_schema", "json_object"]
    assert fake.connections == 1


def test_sessions_share_the_llm_client_each_with_its_own_settings(tmp_path, fake):
    """A socket server serves two editors at once through its one LLM client:
    their asks run side by side, each with its own model; the doctor's ping
    goes through the same client; and the server still exits with status 0
    (the client's pooled connections leave no handle open)."""
    env = dict(os.environ, **llm_env(tmp_path, fake.url, KEY))
    path = str(tmp_path / "s.sock")
    srv = subprocess.Popen([crucible_bin(), "serve", "--listen", "unix:" + path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, start_new_session=True)
    track(srv.pid)
    clients = []
    try:
        seen = ""
        while "listening on" not in seen:
            line = srv.stderr.readline().decode()
            assert line, seen
            seen += line
        for model in ("model-a", "model-b"):
            c = Client(args=("connect", "unix:" + path), env=env)
            clients.append(c)
            c.initialize({"initializationOptions": {"llm": {"model": model}}})
        fake.script([sol("", "print('answer')"), sol("", "print('answer')")])
        ids = [c.request("crucible/ask", {"question": "q"}) for c in clients]
        for c, i in zip(clients, ids):
            r = c.wait_response(i, timeout=60)
            assert r["result"]["outcome"] == "passed", r
        assert sorted(q["body"]["model"] for q in fake.chat_requests()) == ["model-a", "model-b"]
        llm = clients[1].call("crucible/doctor", {}, timeout=60)["result"]["llm"]
        assert llm["reachable"] is True and llm["model"] == "model-b" and llm["modelListed"] is False
        assert [q["path"] for q in fake.requests if q["method"] == "GET"] == ["/v1/models"]
    finally:
        for c in clients:
            finish(c)
        srv.terminate()
        rc = srv.wait(timeout=15)
    assert rc == 0, srv.stderr.read().decode()[-2000:]


@pytest.mark.parametrize("fault,needle", [
    ({"status": 401, "error": {"message": "Incorrect API key provided: " + KEY, "type": "invalid_request_error",
                               "code": "invalid_api_key"}}, "401"),
    ({"status": 429, "error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                               "code": "insufficient_quota"}}, "quota"),
    ({"truncate_after": 1}, "ended"),
    ({"garbage": "\x00\x01this is not SSE"}, ""),
])
def test_fatal_llm_faults_end_with_clear_error(srv, fake, fault, needle):
    fake.script([fault])
    r, notes = ask(srv, {"question": "q"})
    res = r["result"]
    assert res["outcome"] == "error", res
    assert res["error"] and needle.lower() in res["error"].lower()
    assert KEY not in json.dumps(r) and KEY not in json.dumps(notes)
    assert len(fake.chat_requests()) == 1


def test_slow_first_byte_times_out(env, fake):
    c = Client(env=env)
    try:
        c.initialize({"initializationOptions": {"llm": {"timeoutMs": 1000, "maxRetries": 0}}})
        fake.script([{"first_byte_delay": 4}])
        t0 = time.time()
        r, notes = ask(c, {"question": "q"})
        assert r["result"]["outcome"] == "error"
        assert "timeout" in r["result"]["error"].lower() or "timed out" in r["result"]["error"].lower()
        assert time.time() - t0 < 3.5
    finally:
        c.kill()


def test_dead_endpoint(env):
    env = dict(env, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    c = Client(env=env)
    try:
        c.initialize()
        r, notes = ask(c, {"question": "q"})
        assert r["result"]["outcome"] == "error"
        assert "127.0.0.1:9" in r["result"]["error"]
        assert "result" in c.call("crucible/ping")
    finally:
        c.kill()


def test_api_key_never_reaches_the_sandbox(srv, fake):
    fake.script([sol("import os", "print(sorted(os.environ.items()))\nprint(open('/proc/self/environ','rb').read())")])
    r, notes = ask(srv, {"question": "env"})
    out = r["result"]["run"]["stdout"]
    assert "sk-test" not in out and "OPENAI" not in out
    assert r["result"]["outcome"] == "passed"


def test_progress_with_work_done_token(srv, fake):
    fake.script([sol("", "print(1)")])
    r, notes = ask(srv, {"question": "q", "workDoneToken": "tok-1"})
    prog = [n["params"] for n in notes if n.get("method") == "$/progress"]
    kinds = [p["value"]["kind"] for p in prog]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds
    assert all(p["token"] == "tok-1" for p in prog)


def test_selection_context_and_runtime_diagnostics(srv, fake):
    text = "x = 1\n\ndef f():\n    return undefined_name\n\nprint(f())\n"
    srv.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///w/a.py", "languageId": "python",
                                                         "version": 1, "text": text}})
    fake.script([sol("", "def f():\n    return undefined_name\n\nprint(f())")] * 1 + [{"content": "r"}] +
                [sol("", "print(2)")])
    notes = []
    r = srv.call("crucible/ask", {"question": "fix it", "maxIterations": 1,
                                  "context": {"uri": "file:///w/a.py",
                                              "range": {"start": {"line": 2, "character": 0},
                                                        "end": {"line": 6, "character": 0}}}},
                 timeout=30, notifications=notes)
    assert r["result"]["outcome"] == "failed"
    # the answer stands in for the selection (lines 2..): its NameError is on
    # the document's line 3, and is published there
    diag = r["result"]["run"]["diagnostics"][0]
    assert diag["range"]["start"]["line"] == 3 and "NameError" in diag["message"]
    pubs = [n["params"] for n in notes if n.get("method") == "textDocument/publishDiagnostics"]
    deadline = time.time() + 5
    while not any(any(d.get("code") == "runtime" for d in p["diagnostics"]) for p in pubs):
        m = srv.recv(max(0.1, deadline - time.time()))
        if m.get("method") == "textDocument/publishDiagnostics":
            pubs.append(m["params"])
    runtime = [d for p in pubs for d in p["diagnostics"] if d.get("code") == "runtime"]
    assert runtime[-1]["range"]["start"]["line"] == 3
    prompt = chat_user_text(fake.chat_requests()[0])
    assert "return undefined_name" in prompt and "file:///w/a.py" in prompt
    assert "x = 1" not in prompt


def test_transcript_records_prompts_answers_and_reflections(srv, fake):
    fake.script([sol("", "raise ValueError('nope')"), {"content": "reflect: avoid raising"}, sol("", "print(1)")])
    r, notes = ask(srv, {"question": "transcribe me", "task": "tx"})
    assert r["result"]["outcome"] == "passed"
    t = srv.call("crucible/transcript", {"task": "tx"})["result"]
    assert t["question"] == "transcribe me" and t["outcome"] == "passed"
    assert len(t["attempts"]) == 2
    a1 = t["attempts"][0]
    assert a1["reflection"].startswith("reflect:")
    assert any(m["role"] == "system" for m in a1["prompt"])
    assert "ValueError" in a1["error"]
    assert KEY not in json.dumps(t)
    # the CLI shows the same task
    out = subprocess.run([crucible_bin(), "show", t["uid"]], capture_output=True, text=True,
                         env=dict(os.environ, XDG_STATE_HOME=srv_state(srv))).stdout
    assert "transcribe me" in out and "reflect: avoid raising" in out


def srv_state(c):
    return c.env_state


def test_bad_ask_params(srv):
    assert srv.call("crucible/ask", {})["error"]["code"] == -32602
    assert srv.call("crucible/ask", {"question": "q", "maxIterations": 0})["error"]["code"] == -32602
    assert srv.call("crucible/ask", {"question": "q", "language": "cobol"})["error"]["code"] == -32602


def test_cli_ask_passes_and_prints_answer(env, fake):
    fake.script([sol("import math", "print(math.pi > 3)")])
    p = subprocess.run([crucible_bin(), "ask", "is pi more than 3?"], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "print(math.pi > 3)" in p.stdout and "True" in p.stdout
    assert "--- generating" in p.stderr and "--- running" in p.stderr
    fake.script([sol("", "raise SystemExit(2)")] * 5)
    p = subprocess.run([crucible_bin(), "ask", "fail", "--max-iterations", "1", "--json"], capture_output=True,
                       text=True, env=dict(os.environ, **env), timeout=60)
    assert p.returncode == 1
    assert json.loads(p.stdout)["outcome"] == "failed"


def test_docs_context_ranked_cached_and_cited(env, fake, tmp_path):
    from docs_site import DocsSite
    site = DocsSite(slow_delay=0.2).start()
    # the fake site is on 127.0.0.1: a source a client names may reach it
    # only when the user file allows private addresses
    cfgdir = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    cfgdir.mkdir(parents=True, exist_ok=True)
    (cfgdir / "config.json").write_text(json.dumps({"docs": {"allowPrivateNetwork": True}}))
    try:
        c = Client(env=env)
        c.initialize()
        fake.script([sol("", "print('frobnicated')")])
        r, notes = ask(c, {"question": "How do I frobnicate a widget at the highest level?", "docs": [site.url]},
                       timeout=120)
        res = r["result"]
        assert res["outcome"] == "passed"
        urls = [s["url"] for s in res["sources"]]
        assert any("widgets/frobnicate.html" in u for u in urls), urls
        assert not any("garden" in u or "cooking" in u for u in urls), urls
        system = fake.chat_requests()[0]["body"]["messages"][0]["content"]
        assert "frobnicate_widget(level=N)" in system
        assert "Source: " in system
        details = [p.get("detail", "") for p in of(notes, "crucible/phase") if p["phase"] == "retrieving"]
        assert any("pages fetched" in d for d in details), details
        # a second ask within the freshness window downloads nothing again
        site.clear()
        fake.script([sol("", "print('again')")])
        r, notes = ask(c, {"question": "frobnicate level?", "docs": [site.url]}, timeout=120)
        assert r["result"]["outcome"] == "passed"
        unconditional = [q for q in site.requests
                         if "if-none-match" not in q["headers"] and "if-modified-since" not in q["headers"]]
        assert unconditional == [], unconditional
        assert any("widgets/frobnicate.html" in s["url"] for s in r["result"]["sources"])
        finish(c)
    finally:
        site.stop()


def test_server_initiated_progress(env, fake):
    """A client that supports window.workDoneProgress gets a
    window/workDoneProgress/create request; its reply is matched and the
    progress goes to the token the server made."""
    c = Client(env=env)
    c.initialize({"capabilities": {"window": {"workDoneProgress": True}}})
    fake.script([sol("", "print(1)")])
    rid = c.request("crucible/ask", {"question": "q", "task": "sp"})
    notes, res = [], None
    while res is None:
        m = c.recv(30)
        if m.get("method") == "window/workDoneProgress/create":
            token = m["params"]["token"]
            c.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
        elif m.get("id") == rid and "method" not in m:
            res = m
        else:
            notes.append(m)
    assert res["result"]["outcome"] == "passed"
    prog = [n["params"] for n in notes if n.get("method") == "$/progress"]
    assert prog and all(p["token"] == token for p in prog)
    assert prog[0]["value"]["kind"] == "begin" and prog[-1]["value"]["kind"] == "end"
    finish(c)


def test_deny_list_rejects_imports_before_running(env, fake, tmp_path):
    cfgdir = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    cfgdir.mkdir(parents=True)
    (cfgdir / "config.json").write_text(json.dumps({"agent": {"denyImports": ["subprocess"]}}))
    c = Client(env=env)
    r = c.call("initialize", {"capabilities": {}, "initializationOptions": {"agent": {"denyImports": []}}})
    c.notify("initialized", {})
    # a workspace cannot lift the user's deny-list
    assert c.call("crucible/doctor", {})["result"]["settings"]["agent"]["denyImports"] == ["subprocess"]
    chk = c.call("crucible/check", {"code": "import subprocess\n"}, timeout=30)["result"]
    assert chk["imports"][0]["status"] == "denied"
    fake.script([sol("import subprocess", "subprocess.run(['id'])"), {"content": "r"}, sol("", "print('no shell')")])
    r, notes = ask(c, {"question": "run id"})
    assert r["result"]["outcome"] == "passed" and r["result"]["iterations"] == 2
    first = r["result"]["attempts"][0]
    assert first["run"]["outcome"] == "rejected" and "subprocess" in first["error"]
    finish(c)


def test_import_check_run_mode_runs_imports_alone_first(env, fake):
    c = Client(env=env)
    c.initialize({"initializationOptions": {"agent": {"importCheck": "run"}}})
    fake.script([sol("import nosuchmod_run_mode", "print('body ran')"), {"content": "r"},
                 sol("import json", "print(json.dumps([1]))")])
    r, notes = ask(c, {"question": "q"})
    res = r["result"]
    assert res["outcome"] == "passed" and res["iterations"] == 2
    first = res["attempts"][0]
    assert first["failedStage"] == "imports"
    assert "ModuleNotFoundError" in first["error"]
    assert "body ran" not in "".join(o["text"] for o in of(notes, "crucible/output"))
    details = [p.get("detail") for p in of(notes, "crucible/phase") if p["phase"] == "running"]
    assert details.count("import test") == 2 and details.count("code execution") == 1
    finish(c)
