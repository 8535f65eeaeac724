"""The ask loop at its edges with a misbehaving LLM endpoint: bytes that are
not UTF-8 (in an error body, a 500 answer, the streamed answer itself) never
reach a client as invalid UTF-8, over JSON-RPC or from `crucible ask --json`;
and one request's whole time, retries included, is bounded by llm.timeoutMs
however slowly the endpoint trickles its answer."""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import Client, crucible_bin, finish, llm_env  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

BAD = "\xff\xfe \xc3( \xed\xa0\x80"  # latin-1 characters = the raw bytes sent: three kinds of invalid UTF-8


@pytest.fixture
def env(tmp_path, fake):
    return llm_env(tmp_path, fake.url)


def start(env, llm=None):
    c = Client(env=env)
    c.initialize({"initializationOptions": {"llm": dict({"maxRetries": 0}, **(llm or {}))}})
    return c


def ask(c, params, timeout=60):
    notes = []
    return c.call("crucible/ask", params, timeout=timeout, notifications=notes), notes


def error_body():
    return '{"error": {"message": "quota ' + BAD + ' exceeded", "type": "invalid_request_error"}}'


# The conftest Client decodes every frame as strict UTF-8 and JSON; a frame
# that fails is kept aside as garbage, and finish() fails on garbage. So a
# reply that arrives at all, and a clean finish, prove the frames were valid.
@pytest.mark.parametrize("fault", [
    {"status": 400, "error_body": error_body()},
    {"status": 500, "error_body": error_body()},
    {"status": 400, "error_body": "not json " + BAD},
])
def test_invalid_utf8_in_error_answers_reaches_client_repaired(env, fake, fault):
    fake.script([fault])
    c = start(env)
    try:
        r, notes = ask(c, {"question": "q"})
        res = r["result"]
        assert res["outcome"] == "error" and res["errorKind"] == "status"
        assert "\ufffd" in res["error"] and str(fault["status"]) in res["error"]
    finally:
        finish(c)


def test_invalid_utf8_in_streamed_answer_reaches_client_repaired(env, fake):
    answer = json.dumps({"prefix": "caf\u00e9 @@", "imports": "", "code": "print('ok')"})
    escaped = json.dumps(answer)[1:-1]  # as it sits inside the stream's JSON string
    pieces = [p.replace("@@", BAD) for p in (escaped[:20], escaped[20:])]
    fake.script([{"raw_chunks": pieces}])
    c = start(env)
    try:
        r, notes = ask(c, {"question": "q"})
        res = r["result"]
        assert res["outcome"] == "passed", res
        assert res["solution"]["prefix"].startswith("caf\u00e9 \ufffd")
        tokens = "".join(n["params"]["text"] for n in notes if n.get("method") == "crucible/token")
        assert "\ufffd" in tokens
    finally:
        finish(c)


def test_cli_ask_json_is_valid_utf8(env, fake):
    fake.script([{"status": 400, "error_body": error_body()}])
    p = subprocess.run([crucible_bin(), "ask", "q", "--json"], capture_output=True, timeout=60,
                       env=dict(os.environ, **env))
    assert p.returncode == 3, p.stderr
    res = json.loads(p.stdout.decode("utf-8"))  # strict: raises on invalid UTF-8
    assert res["outcome"] == "error" and "\ufffd" in res["error"]


def test_trickling_answer_ends_at_the_request_budget(env, fake):
    """One byte a second would take minutes; the ask ends with a timeout at
    llm.timeoutMs, while the fake is still sending."""
    fake.script([{"trickle": 1.0}])
    c = start(env, {"timeoutMs": 2500})
    try:
        t0 = time.time()
        r, notes = ask(c, {"question": "q"}, timeout=120)
        res = r["result"]
        assert res["outcome"] == "error" and res["errorKind"] == "timeout", res
        assert "2500 ms" in res["error"] and "llm.timeoutMs" in res["error"]
        assert time.time() - t0 < 60  # sanity only: the trickle itself would take > 10 minutes
        deadline = time.time() + 10
        while not fake.chat_requests()[0]["disconnected"] and time.time() < deadline:
            time.sleep(0.1)
        req = fake.chat_requests()[0]
        assert req["disconnected"] and not req.get("completed")
    finally:
        finish(c)


def test_retries_share_the_request_budget(env, fake):
    """Each 503 asks for a 1.5 s wait and 10 retries are allowed: without one
    budget for the whole request that is 15 s; with llm.timeoutMs 2000 the
    retry that would start past the budget is not made."""
    fake.script([{"status": 503, "headers": {"retry-after-ms": "1500"}}] * 11)
    cfg = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"llm": {"maxRetries": 10, "timeoutMs": 2000}}))
    c = Client(env=env)
    c.initialize()
    try:
        r, notes = ask(c, {"question": "q"}, timeout=120)
        res = r["result"]
        assert res["outcome"] == "error" and "503" in res["error"], res
        assert 1 <= len(fake.chat_requests()) <= 2
    finally:
        finish(c)
