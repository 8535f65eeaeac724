"""The LLM client against a fake OpenAI-compatible server over real HTTP on
127.0.0.1: streaming, structured-output fallbacks, retries, errors, timeouts,
cancellation. Each test runs the llm_drive test driver once."""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from fake_openai import FakeOpenAI  # noqa: E402

KEY = "sk-secret-test"


def driver_bin():
    build = os.environ.get("CRUCIBLE_BUILD")
    cands = [pathlib.Path(build)] if build else [ROOT / "build", ROOT / "build-asan"]
    for b in cands:
        p = b / "tests" / "unit" / "llm" / "llm_drive"
        if p.exists():
            return str(p)
    pytest.skip("llm_drive not built (build first or set CRUCIBLE_BUILD)")


def drive(url, *args, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("OPENAI_BASE_URL", None)
    e["OPENAI_API_KEY"] = KEY
    e["CRUCIBLE_MODEL"] = "fake-model"
    if env:
        e.update(env)
    t0 = time.time()
    p = subprocess.run([driver_bin(), url, *args], capture_output=True, text=True, env=e, timeout=timeout)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert KEY not in p.stdout and KEY not in p.stderr, "the API key leaked into the driver's output"
    assert p.returncode in (0, 1), "driver failed (rc %d): %s" % (p.returncode, p.stderr)
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 1, "done must be reported exactly once: %r" % events
    return events, done[0], time.time() - t0


def tokens(events):
    return [e["text"] for e in events if e["event"] == "token"]


def test_streamed_answer(fake):
    answer = {"prefix": "p", "imports": "import os", "code": "print(os.sep)"}
    text = json.dumps(answer)
    fake.script([{"chunks": [text[:5], text[5:20], text[20:]], "usage": {"prompt_tokens": 31, "completion_tokens": 9}}])
    events, done, _ = drive(fake.url)
    assert tokens(events) == [text[:5], text[5:20], text[20:]]
    assert done["status"] == "ok" and done["text"] == text
    assert done["usage"] == {"promptTokens": 31, "completionTokens": 9}
    assert done["solution"] == answer
    assert done["mode"] == "json_schema" and done["modeRemembered"] == "json_schema"
    reqs = fake.chat_requests()
    assert len(reqs) == 1
    body = reqs[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert reqs[0]["headers"]["authorization"] == "Bearer " + KEY


def test_usage_chunk_with_null_choices_and_crlf(fake):
    fake.script([{"content": '{"prefix":"a","imports":"","code":"x=1"}', "choices_null": True, "crlf": True,
                  "usage": {"prompt_tokens": 3, "completion_tokens": 2}}])
    _, done, _ = drive(fake.url)
    assert done["status"] == "ok"
    assert done["usage"] == {"promptTokens": 3, "completionTokens": 2}
    assert done["solution"]["code"] == "x=1"


def test_json_schema_rejected_falls_back_to_json_object(fake):
    fake.configure(reject_formats=["json_schema"])
    events, done, _ = drive(fake.url)
    assert done["status"] == "ok", done
    assert done["mode"] == "json_object" and done["modeRemembered"] == "json_object"
    fb = [e for e in events if e["event"] == "fallback"]
    assert [(e["from"], e["to"]) for e in fb] == [("json_schema", "json_object")]
    reqs = fake.chat_requests()
    assert [r["body"].get("response_format", {}).get("type") for r in reqs] == ["json_schema", "json_object"]
    sys_msg = reqs[1]["body"]["messages"][0]
    assert sys_msg["role"] == "system" and '"imports"' in sys_msg["content"]
    assert done["solution"]["imports"] == "import sys"


def test_both_json_modes_rejected_falls_back_to_text(fake):
    fake.configure(reject_formats=["json_schema", "json_object"])
    events, done, _ = drive(fake.url)
    assert done["status"] == "ok", done
    assert done["mode"] == "text"
    reqs = fake.chat_requests()
    assert [r["body"].get("response_format", {}).get("type") for r in reqs] == ["json_schema", "json_object", None]
    assert done["solution"] == {"prefix": "Prints a greeting.", "imports": "import sys",
                                "code": "sys.stdout.write('hello\\n')"}


def test_remembered_mode_is_used_first(fake):
    fake.configure(reject_formats=["json_schema"])
    _, done, _ = drive(fake.url, "--remember", "json_object")
    assert done["status"] == "ok"
    assert [r["body"]["response_format"]["type"] for r in fake.chat_requests()] == ["json_object"]


def test_tool_call_answer(fake):
    args = json.dumps({"prefix": "t", "imports": "", "code": "print(3)"})
    fake.script([{"tool_call": {"name": "code_solution", "arguments": args}}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "ok" and done["toolCall"] is True
    assert "".join(tokens(events)) == args
    assert done["solution"]["code"] == "print(3)"


def test_non_streaming_body_is_accepted(fake):
    fake.script([{"stream": False, "content": '{"prefix":"n","imports":"","code":"pass"}'}])
    _, done, _ = drive(fake.url)
    assert done["status"] == "ok", done
    assert done["solution"]["code"] == "pass"
    assert done["usage"]["completionTokens"] > 0


def test_429_retry_after_then_success(fake):
    fake.script([{"status": 429, "headers": {"retry-after": "1"},
                  "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "ok", done
    retries = [e for e in events if e["event"] == "retry"]
    assert len(retries) == 1 and retries[0]["delayMs"] == 1000 and retries[0]["status"] == 429
    reqs = fake.chat_requests()
    assert len(reqs) == 2
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.95


def test_429_retry_after_ms_preferred(fake):
    fake.script([{"status": 429, "headers": {"retry-after": "30", "retry-after-ms": "150"},
                  "error": {"message": "slow down", "code": "rate_limit_exceeded"}}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "ok"
    assert [e["delayMs"] for e in events if e["event"] == "retry"] == [150]
    reqs = fake.chat_requests()
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.14


def test_429_insufficient_quota_not_retried(fake):
    fake.script([{"status": 429, "error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                           "code": "insufficient_quota"}}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "error"
    assert "429" in done["error"] and "You exceeded your current quota" in done["error"]
    assert not [e for e in events if e["event"] == "retry"]
    assert len(fake.chat_requests()) == 1


def test_500_then_success(fake):
    fake.script([{"status": 500, "error": {"message": "The server had an error", "type": "server_error"}}])
    events, done, _ = drive(fake.url, "--backoff-ms", "50")
    assert done["status"] == "ok"
    assert len([e for e in events if e["event"] == "retry"]) == 1
    assert len(fake.chat_requests()) == 2


def test_retries_exhausted(fake):
    fake.script([{"status": 503, "error": {"message": "overloaded"}}] * 5)
    events, done, _ = drive(fake.url, "--backoff-ms", "20", "--max-retries", "2")
    assert done["status"] == "error" and "503" in done["error"] and "overloaded" in done["error"]
    assert len([e for e in events if e["event"] == "retry"]) == 2
    assert len(fake.chat_requests()) == 3


@pytest.mark.parametrize("status,message", [
    (400, "This model's maximum context length is 8192 tokens"),
    (401, "Incorrect API key provided: " + KEY + "."),
    (403, "Project does not have access to model"),
    (404, "The model `fake-model` does not exist"),
])
def test_client_errors_not_retried(fake, status, message):
    fake.script([{"status": status, "error": {"message": message, "type": "invalid_request_error"}}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "error"
    assert done["error"].startswith("LLM endpoint %s answered %d: " % (fake.url, status)), done["error"]
    assert message.replace(KEY, "[redacted]") in done["error"]
    assert len(fake.chat_requests()) == 1
    assert fake.chat_requests()[0]["headers"]["authorization"] == "Bearer " + KEY
    # drive() already asserted that the key appears nowhere in the driver's output


def test_truncated_stream(fake):
    fake.script([{"content": "x" * 40, "truncate_after": 2}])
    events, done, _ = drive(fake.url)
    assert done["status"] == "error"
    assert "stream ended early" in done["error"]
    assert len(tokens(events)) == 2
    assert len(fake.chat_requests()) == 1


def test_stream_without_done(fake):
    fake.script([{"no_done": True}])
    _, done, _ = drive(fake.url)
    assert done["status"] == "error" and "stream ended early" in done["error"]


def test_mid_stream_error(fake):
    fake.script([{"mid_stream_error": {"message": "model crashed", "type": "server_error"}}])
    _, done, _ = drive(fake.url)
    assert done["status"] == "error"
    assert "mid-stream" in done["error"] and "model crashed" in done["error"]


@pytest.mark.parametrize("garbage", ["data: {not json\n\n", "\x00\xff\xfe binary \x01\n\n", "<html>oops</html>"])
def test_garbage(fake, garbage):
    fake.script([{"garbage": garbage}])
    _, done, _ = drive(fake.url)
    assert done["status"] == "error"
    assert fake.url in done["error"]
    assert "\x00" not in done["error"] and "\x01" not in done["error"]


def test_slow_first_byte_times_out(fake):
    fake.script([{"first_byte_delay": 5}])
    _, done, elapsed = drive(fake.url, "--first-byte-timeout-ms", "300")
    assert done["status"] == "error"
    assert "first-byte timeout" in done["error"] and "300 ms" in done["error"]
    assert len(fake.chat_requests()) == 1


def test_idle_stream_times_out(fake):
    fake.script([{"content": "abcdefgh", "chunks": list("abcdefgh"), "chunk_delay": 2}])
    events, done, _ = drive(fake.url, "--idle-timeout-ms", "300")
    assert done["status"] == "error" and "idle-stream timeout" in done["error"]
    assert tokens(events) == ["a"]


def test_cancel_mid_stream(fake):
    fake.script([{"content": "y" * 200, "chunks": ["y"] * 200, "chunk_delay": 0.1}])
    events, done, _ = drive(fake.url, "--cancel-after-ms", "400")
    assert done["status"] == "cancelled"
    cancel = [e for e in events if e["event"] == "cancel"][0]
    assert 0 < len(tokens(events)) < 200
    assert done["ms"] - cancel["ms"] < 200  # cancellation does not wait for the stream
    deadline = time.time() + 5
    while time.time() < deadline and not fake.chat_requests()[0]["disconnected"]:
        time.sleep(0.05)
    assert fake.chat_requests()[0]["disconnected"], "the fake did not see the connection drop"


def test_cancel_during_hang(fake):
    fake.script([{"hang": True}])
    _, done, _ = drive(fake.url, "--cancel-after-ms", "200")
    assert done["status"] == "cancelled"
    deadline = time.time() + 5
    while time.time() < deadline and not fake.chat_requests()[0]["disconnected"]:
        time.sleep(0.05)
    assert fake.chat_requests()[0]["disconnected"]


def test_dead_endpoint():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = "http://127.0.0.1:%d/v1" % port
    _, done, _ = drive(url)
    assert done["status"] == "error"
    assert done["error"].startswith("cannot connect to LLM endpoint " + url)
    assert "Is the server running" in done["error"]


def test_ping(fake):
    events, _, _ = drive_ping(fake.url)
    assert events["ok"] is True and events["models"] == 1 and events["modelListed"] is True
    assert fake.requests[0]["path"] == "/v1/models"
    assert fake.requests[0]["headers"]["authorization"] == "Bearer " + KEY


def drive_ping(url):
    e = dict(os.environ, OPENAI_API_KEY=KEY, CRUCIBLE_MODEL="fake-model")
    p = subprocess.run([driver_bin(), url, "--ping"], capture_output=True, text=True, env=e, timeout=30)
    assert KEY not in p.stdout + p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return lines[0], p.returncode, p


def test_ping_dead_endpoint():
    ev, rc, _ = drive_ping("http://127.0.0.1:1/v1")
    assert ev["ok"] is False and rc == 1 and "cannot reach LLM endpoint" in ev["error"]


def test_fake_standalone_prints_url(tmp_path):
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"content": '{"prefix":"s","imports":"","code":"1"}'}]))
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakes" / "fake_openai.py"), "--port", "0",
                          "--script", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("/v1")
        _, done, _ = drive(line[len("listening on "):])
        assert done["status"] == "ok" and done["solution"]["code"] == "1"
    finally:
        p.terminate()
        p.wait(5)
