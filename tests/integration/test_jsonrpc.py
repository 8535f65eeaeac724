"""JSON-RPC 2.0 and LSP base protocol, driven against the real binary over
stdio. The spec examples use our own methods where the spec uses 'subtract'."""
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Client, crucible_bin, frame


def no_message_within(client, seconds=0.3):
    try:
        m = client.msgs.get(timeout=seconds)
    except Exception:
        return True
    client.msgs.put(m)
    return False


def test_initialize_result(client):
    res = client.initialize()
    assert res["serverInfo"]["name"] == "crucible"
    assert res["serverInfo"]["version"]
    caps = res["capabilities"]
    assert caps["textDocumentSync"]["change"] == 2
    assert caps["textDocumentSync"]["openClose"] is True
    assert set(caps["executeCommandProvider"]["commands"]) == {
        "crucible.ask", "crucible.run", "crucible.check", "crucible.cancel"}
    assert caps["positionEncoding"] == "utf-16"


def test_utf8_position_encoding_when_offered(client):
    res = client.initialize({"capabilities": {"general": {"positionEncodings": ["utf-16", "utf-8"]}}})
    assert res["capabilities"]["positionEncoding"] == "utf-8"


def test_request_before_initialize_is_32002(client):
    r = client.call("crucible/ping", {})
    assert r["error"]["code"] == -32002
    assert r["id"] == 1
    # a notification before initialize is dropped, not answered
    client.notify("workspace/didChangeConfiguration", {"settings": {}})
    assert "result" in client.call("initialize", {"capabilities": {}})


def test_initialize_twice_is_an_error(ready):
    r = ready.call("initialize", {"capabilities": {}})
    assert r["error"]["code"] == -32600


def test_method_not_found_keeps_id_type(ready):
    r = ready.wait_response(ready.request("foobar", {}, id="abc-1"))
    assert r == {"jsonrpc": "2.0", "id": "abc-1",
                 "error": {"code": -32601, "message": r["error"]["message"]}}
    assert "foobar" in r["error"]["message"]


def test_spec_invalid_json(ready):
    ready.send_raw(frame(b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]'))
    r = ready.recv()
    assert r["error"]["code"] == -32700 and r["id"] is None


def test_spec_invalid_request_object(ready):
    ready.send({"jsonrpc": "2.0", "method": 1, "params": "bar"})
    r = ready.recv()
    assert r["error"]["code"] == -32600 and r["id"] is None


def test_missing_jsonrpc_version(ready):
    ready.send({"id": 7, "method": "crucible/ping"})
    r = ready.recv()
    assert r["error"]["code"] == -32600 and r["id"] == 7


def test_spec_batch_invalid_json(ready):
    ready.send_raw(frame(b'[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]'))
    r = ready.recv()
    assert isinstance(r, dict) and r["error"]["code"] == -32700 and r["id"] is None


def test_spec_empty_array(ready):
    ready.send_raw(frame(b"[]"))
    r = ready.recv()
    assert isinstance(r, dict) and r["error"]["code"] == -32600 and r["id"] is None


def test_spec_invalid_batch_one(ready):
    ready.send_raw(frame(b"[1]"))
    r = ready.recv()
    assert isinstance(r, list) and len(r) == 1
    assert r[0]["error"]["code"] == -32600 and r[0]["id"] is None


def test_spec_invalid_batch_three(ready):
    ready.send_raw(frame(b"[1,2,3]"))
    r = ready.recv()
    assert isinstance(r, list) and len(r) == 3
    assert all(e["error"]["code"] == -32600 for e in r)


def test_spec_mixed_batch(ready):
    batch = [
        {"jsonrpc": "2.0", "method": "crucible/ping", "params": {}, "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "crucible/ping", "params": {}, "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "crucible/ping", "id": "9"},
    ]
    ready.send(batch)
    r = ready.recv()
    assert isinstance(r, list) and len(r) == 5
    by_id = {}
    nulls = []
    for e in r:
        if e["id"] is None:
            nulls.append(e)
        else:
            by_id[e["id"]] = e
    assert set(by_id) == {"1", "2", "5", "9"}
    assert "result" in by_id["1"] and "result" in by_id["2"] and "result" in by_id["9"]
    assert by_id["5"]["error"]["code"] == -32601
    assert len(nulls) == 1 and nulls[0]["error"]["code"] == -32600


def test_spec_all_notification_batch_gets_nothing(ready):
    ready.send([{"jsonrpc": "2.0", "method": "notify_sum", "params": [1, 2, 4]},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}])
    rid = ready.request("crucible/ping", {})
    r = ready.recv()
    assert isinstance(r, dict) and r["id"] == rid, r


def test_params_must_be_structured(ready):
    ready.send({"jsonrpc": "2.0", "id": 3, "method": "crucible/ping", "params": 5})
    r = ready.recv()
    assert r["error"]["code"] == -32600 and r["id"] == 3


def test_invalid_utf8_is_an_error_reply_and_server_survives(ready):
    body = b'{"jsonrpc":"2.0","id":4,"method":"crucible/ping","params":{"x":"\xff\xfe"}}'
    ready.send_raw(frame(body))
    r = ready.recv()
    assert r["error"]["code"] == -32700
    assert "UTF-8" in r["error"]["message"]
    assert "result" in ready.call("crucible/ping", {})


def test_nul_escape_is_answered_with_its_id_and_never_run(ready):
    # cJSON would read "shutdown\u0000x" as "shutdown": the request is refused
    # under its own id, and the server is neither shut down nor confused
    body = b'{"jsonrpc":"2.0","id":"n1","method":"shutdown\\u0000x"}'
    ready.send_raw(frame(body))
    r = ready.recv()
    assert r["id"] == "n1" and r["error"]["code"] == -32600
    assert "\\u0000" in r["error"]["message"]
    body = b'{"jsonrpc":"2.0","id":9,"method":"crucible/check","params":{"code":"x\\u0000y"}}'
    ready.send_raw(frame(body))
    r = ready.recv()
    assert r["id"] == 9 and r["error"]["code"] == -32600
    # in a batch the element cannot be told: the whole body is a parse error
    ready.send_raw(frame(b'[{"jsonrpc":"2.0","id":10,"method":"crucible/ping","params":{"x":"\\u0000"}}]'))
    r = ready.recv()
    assert r["id"] is None and r["error"]["code"] == -32700
    assert "result" in ready.call("crucible/ping", {})


def test_deep_nesting_rejected(ready):
    body = b'{"jsonrpc":"2.0","id":5,"method":"crucible/ping","params":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}"
    ready.send_raw(frame(body))
    r = ready.recv()
    assert "error" in r
    assert "result" in ready.call("crucible/ping", {})


def test_byte_by_byte_and_many_in_one_write(ready):
    data = frame({"jsonrpc": "2.0", "id": 100, "method": "crucible/ping"})
    for i in range(len(data)):
        ready.proc.stdin.write(data[i:i + 1])
        ready.proc.stdin.flush()
    assert ready.recv()["id"] == 100
    many = b"".join(frame({"jsonrpc": "2.0", "id": 200 + i, "method": "crucible/ping"}) for i in range(20))
    ready.send_raw(many)
    ids = [ready.recv()["id"] for _ in range(20)]
    assert sorted(ids) == list(range(200, 220))


def test_header_names_case_insensitive_and_content_type(ready):
    body = json.dumps({"jsonrpc": "2.0", "id": 11, "method": "crucible/ping"}).encode()
    ready.send_raw(b"content-type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: %d\r\n\r\n" % len(body) + body)
    assert ready.recv()["id"] == 11


def test_framing_error_closes_connection_with_reason():
    c = Client(("serve", "--max-message", "1000"))
    c.initialize()
    c.send_raw(b"Content-Length: 5000\r\n\r\n" + b" " * 10)
    assert c.proc.wait(timeout=10) == 1
    err = "".join(c.stderr_lines)
    assert "framing" in err.lower() and "1000" in err, err


def test_garbage_header_closes_connection():
    c = Client()
    c.send_raw(b"Hello there\r\n\r\n")
    assert c.proc.wait(timeout=10) == 1
    assert "framing" in "".join(c.stderr_lines).lower()


def test_keeps_answering_after_bad_input(ready):
    for bad in [b"{", b"null", b"42", b'"str"', b'{"jsonrpc":"2.0"}', b'{"jsonrpc":"2.0","id":{},"method":"x"}']:
        ready.send_raw(frame(bad))
        r = ready.recv()
        assert "error" in r, (bad, r)
    assert "result" in ready.call("crucible/ping", {})


def test_lifecycle_shutdown_then_exit_status_0(ready):
    r = ready.call("shutdown")
    assert r["result"] is None
    r = ready.call("crucible/ping", {})
    assert r["error"]["code"] == -32600
    ready.notify("exit")
    assert ready.proc.wait(timeout=10) == 0


def test_exit_without_shutdown_is_status_1(ready):
    ready.notify("exit")
    assert ready.proc.wait(timeout=10) == 1


def test_eof_ends_cleanly(ready):
    ready.proc.stdin.close()
    assert ready.proc.wait(timeout=10) == 0
    assert not any("LeakSanitizer" in l for l in ready.stderr_lines), ready.stderr_lines


def test_cancel_unknown_request_is_harmless(ready):
    ready.notify("$/cancelRequest", {"id": 999})
    ready.notify("$/cancelRequest", {})
    assert "result" in ready.call("crucible/ping", {})


def test_response_to_unknown_server_request_is_ignored(ready):
    ready.send({"jsonrpc": "2.0", "id": 12345, "result": None})
    assert "result" in ready.call("crucible/ping", {})


def test_execute_command_maps_to_handler(ready):
    r = ready.call("workspace/executeCommand", {"command": "crucible.nope", "arguments": []})
    assert r["error"]["code"] == -32602
    assert "crucible.nope" in r["error"]["message"]


def settings_of(client):
    return client.call("crucible/doctor", {}, timeout=30)["result"]["settings"]


def test_settings_layers_and_validation(tmp_path):
    cfgdir = tmp_path / "crucible"
    cfgdir.mkdir()
    (cfgdir / "config.json").write_text(json.dumps({
        "llm": {"model": "from-file", "baseUrl": "http://127.0.0.1:9/v1"},
        "sandbox": {"memoryMb": 300},
        "bogus": 1}))
    c = Client(env={"XDG_CONFIG_HOME": str(tmp_path), "CRUCIBLE_MODEL": ""})
    try:
        logs = []
        r = c.call("initialize", {"capabilities": {}, "initializationOptions": {
            "agent": {"maxIterations": 5, "reflect": "yes"},
            "sandbox": {"memoryMb": 200, "timeoutMs": 999999},
            "llm": {"baseUrl": "http://evil.example/v1"},
            "docs": {"nope": 1}}}, notifications=logs)
        assert "result" in r
        c.notify("initialized", {})
        s = settings_of(c)
        assert s["llm"]["model"] == "from-file"
        assert s["llm"]["baseUrl"] == "http://127.0.0.1:9/v1"      # a client may not redirect the LLM
        assert s["agent"]["maxIterations"] == 3                     # a cost bound: not raised
        assert s["agent"]["reflect"] is True                        # wrong type rejected
        assert s["sandbox"]["memoryMb"] == 200                      # tightened
        assert s["sandbox"]["timeoutMs"] == 10000                   # not loosened
        text = " ".join(m["params"]["message"] for m in logs if m.get("method") == "window/logMessage")
        assert "agent.reflect" in text and "boolean" in text
        assert "llm.baseUrl" in text
        assert "sandbox.timeoutMs" in text
        assert "docs.nope" in text
        assert "agent.maxIterations" in text
        # later layer wins
        c.notify("workspace/didChangeConfiguration", {"settings": {"crucible": {"agent": {"maxIterations": 2}}}})
        assert settings_of(c)["agent"]["maxIterations"] == 2
    finally:
        c.kill()


def test_api_key_never_in_settings_output(ready):
    s = json.dumps(settings_of(ready))
    assert "sk-" not in s


def test_unix_listener_serves_two_clients_at_once(tmp_path):
    path = str(tmp_path / "c.sock")
    p = subprocess.Popen([crucible_bin(), "serve", "--listen", "unix:" + path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.02)
        socks = []
        for i in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            socks.append(s)
        for i, s in enumerate(socks):
            s.sendall(frame({"jsonrpc": "2.0", "id": i, "method": "initialize", "params": {"capabilities": {}}}))
        for i, s in enumerate(socks):
            data = read_frame(s)
            assert data["id"] == i and data["result"]["serverInfo"]["name"] == "crucible"
        # one client leaving does not end the other
        socks[0].sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
        socks[0].close()
        socks[1].sendall(frame({"jsonrpc": "2.0", "id": 9, "method": "crucible/ping"}))
        assert read_frame(socks[1])["id"] == 9
        socks[1].close()
        assert p.poll() is None
        assert (os.lstat(path).st_mode & 0o777) == 0o600
    finally:
        p.terminate()
        rc = p.wait(timeout=10)
    assert not os.path.exists(path)
    assert p.stdout.read() == b""


def read_frame(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, "connection closed"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int(head.split(b":")[1])
    while len(rest) < n:
        rest += s.recv(4096)
    return json.loads(rest[:n])


def test_tcp_listener_loopback_only(tmp_path):
    (tmp_path / "run").mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"))
    r = subprocess.run([crucible_bin(), "serve", "--listen", "tcp:0.0.0.0:0"], capture_output=True, timeout=10,
                       env=env)
    assert r.returncode != 0
    assert b"loopback" in r.stderr
    p = subprocess.Popen([crucible_bin(), "serve", "--listen", "tcp:127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = seen = ""
        while "listening on" not in line:  # log lines may come first
            line = p.stderr.readline().decode()
            seen += line
            if not line:
                break
        assert "listening on tcp:127.0.0.1:" in line, seen
        port = int(line.rsplit(":", 1)[1])
        # the first message must carry the token (tests/integration/test_socket_access.py)
        token = (tmp_path / "run" / "crucible" / "token").read_text().strip()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"capabilities": {}, "initializationOptions": {"token": token}}}))
        assert read_frame(s)["result"]["serverInfo"]["name"] == "crucible"
        s.close()
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_stdin_from_file(tmp_path):
    f = tmp_path / "in.bin"
    f.write_bytes(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}) +
                  frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}) +
                  frame({"jsonrpc": "2.0", "method": "exit"}))
    out = tmp_path / "out.bin"
    with open(f, "rb") as fi, open(out, "wb") as fo:
        rc = subprocess.run([crucible_bin(), "serve"], stdin=fi, stdout=fo, timeout=10).returncode
    assert rc == 0
    data = out.read_bytes()
    assert data.count(b"Content-Length:") == 2


def test_version_and_help():
    r = subprocess.run([crucible_bin(), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("crucible ")
    r = subprocess.run([crucible_bin(), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "serve" in r.stdout and "doctor" in r.stdout
    r = subprocess.run([crucible_bin(), "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_doctor_reports_sandbox_checks_and_llm(ready):
    r = ready.call("crucible/doctor", {}, timeout=30)["result"]
    assert r["server"]["name"] == "crucible"
    assert r["sandbox"]["bwrap"]["found"] is True
    assert r["checks"]["grammars"]
    assert "reachable" in r["llm"] and r["llm"]["apiKeyEnv"]
    assert r["ok"] is True
    # the loop kept serving while the report was gathered
    assert "result" in ready.call("crucible/ping")
