"""A fake OpenAI-compatible chat-completions server for tests: real HTTP on
127.0.0.1, SSE streaming, scripted replies and failures, and a record of every
request it was sent. It also serves POST /v1/embeddings (a deterministic hashed
bag of words with a small synonym table; fake.configure_embeddings(failure=
"404"|"500"|"garbage"|"slow", delay=S) makes it misbehave).

As a module:  fake = FakeOpenAI().start(); fake.script([...]); fake.url; fake.requests; fake.stop()
              fake.connections: TCP connections accepted so far; each request's record names the
              connection it came on ("conn", from 1), so a test can see connections being reused
As a program: python3 fake_openai.py --port 0 [--script FILE] [--reject json_schema,json_object]
              prints "listening on http://127.0.0.1:PORT/v1" on stdout.

A scripted reply is a dict; every key is optional:
  content        answer text (default: a valid solution in the format the request asked for)
  chunks         explicit list of content pieces to stream (overrides content splitting)
  tool_call      {"name": "code_solution", "arguments": "<json text>"}: answer as a tool call
  tool_calls     [{"name", "arguments" (json text or an object), "id"?}, ...]: answer with these calls
                 (e.g. docs_search, docs_read); streamed as OpenAI streams parallel calls: each call's
                 first delta carries its index, id and name, then the arguments follow in fragments,
                 the calls' fragments interleaved, keyed by "index"; finish_reason "tool_calls";
                 with `content`, that text comes first, beside the calls
  status         HTTP status (default 200); >= 400 sends `error` as {"error": {...}}
  error          {"message", "type", "code"} for an error status
  headers        extra response headers, e.g. {"retry-after": "1"}
  usage          {"prompt_tokens", "completion_tokens"} (default computed); sent in a usage-only final chunk
  choices_null   the usage-only chunk says "choices": null instead of []
  first_byte_delay  seconds before anything is sent
  chunk_delay    seconds between stream chunks
  truncate_after close the connection abruptly after N content chunks (no [DONE])
  no_done        end the stream cleanly but without [DONE]
  mid_stream_error  after the content chunks, send {"error": {...}} as an SSE data payload
  garbage        send these bytes (a string) as the 200 response body instead of a stream
  hang           send nothing and keep the connection open until the client leaves
  stream         force streaming (true) or a plain JSON body (false) whatever was asked
  crlf           use CRLF line endings in the stream
  error_body     with an error status: send these bytes (a latin-1 string) as the body, as they are
                 (e.g. invalid UTF-8)
  raw_chunks     content pieces (latin-1 strings) put into the stream's JSON as raw bytes, unescaped
                 (e.g. invalid UTF-8)
  trickle        seconds between bytes: the whole stream is sent one byte at a time; the request's
                 record gets "completed": true when the last byte went out
"""
import argparse
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

from local_server import LocalServer

DEFAULT_SOLUTION = {
    "prefix": "Prints a greeting.",
    "imports": "import sys",
    "code": "sys.stdout.write('hello\\n')",
}


def default_content(req_body):
    rf = (req_body or {}).get("response_format") or {}
    if rf.get("type") in ("json_schema", "json_object"):
        return json.dumps(DEFAULT_SOLUTION)
    return ("Prints a greeting.\n\n```python\n" + DEFAULT_SOLUTION["imports"] + "\n\n"
            + DEFAULT_SOLUTION["code"] + "\n```\n")


def split_content(text, n=4):
    if not text:
        return []
    size = max(1, len(text) // n)
    return [text[i:i + size] for i in range(0, len(text), size)]


# The fake embedding model: a hashed bag of words, each word first mapped
# through a small synonym table, so texts that share no word can still share
# a meaning ("pause" and "sleep"). Deterministic; it shows that hybrid
# ranking can find what lexical ranking misses, never how good a real model
# is.
EMBED_SYNONYMS = {
    "pause": "sleep", "wait": "sleep", "delay": "sleep", "halt": "sleep", "suspend": "sleep",
    "constants": "enumeration", "constant": "enumeration", "enum": "enumeration", "enumerations": "enumeration",
    "slow": "profile", "slowly": "profile", "profiling": "profile", "profiler": "profile", "bottleneck": "profile",
}
EMBED_DIM = 64


def embed_text(text, dim=EMBED_DIM):
    import hashlib
    import re
    v = [0.0] * dim
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) < 3:
            continue
        w = EMBED_SYNONYMS.get(w, w)
        h = hashlib.sha256(w.encode()).digest()
        v[int.from_bytes(h[:4], "little") % dim] += 1.0 if h[4] & 1 else -1.0
    return v


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def setup(self):
        super().setup()
        # small SSE writes would otherwise meet the client's delayed ACK (~40 ms each)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake.lock:
            self.fake.connections += 1
            self.conn_id = self.fake.connections

    @property
    def fake(self):
        return self.server.fake

    # -- helpers --------------------------------------------------------
    def _client_gone(self, timeout):
        """Waits up to `timeout` seconds; returns True early if the client closed."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if r:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True
                if not data:
                    return True
                time.sleep(min(left, 0.05))

    def _send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return raw, json.loads(raw) if raw else None
        except ValueError:
            return raw, None

    def _record(self, raw, parsed):
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": parsed if parsed is not None else raw.decode(errors="replace"),
            "time": time.time(),
            "conn": self.conn_id,
            "disconnected": False,
        }
        with self.fake.lock:
            self.fake._requests.append(rec)
        return rec

    # -- routes ---------------------------------------------------------
    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._record(b"", None)
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.models]})
        elif self.path == "/_control/requests":
            self._send_json(200, self.fake.requests)
        else:
            self._send_json(404, {"error": {"message": "no route " + self.path, "type": "invalid_request_error"}})

    def do_POST(self):
        raw, body = self._read_body()
        if self.path == "/_control/script":
            self.fake.script(body or [])
            return self._send_json(200, {"ok": True})
        if self.path == "/_control/config":
            self.fake.configure(**(body or {}))
            return self._send_json(200, {"ok": True})
        if self.path == "/_control/embeddings":
            self.fake.configure_embeddings(**(body or {}))
            return self._send_json(200, {"ok": True})
        if self.path.rstrip("/") == "/v1/embeddings":
            return self._embeddings(raw, body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send_json(404, {"error": {"message": "no route " + self.path}})
        rec = self._record(raw, body)
        if not isinstance(body, dict):
            return self._send_json(400, {"error": {"message": "We could not parse the JSON body of your request.",
                                                   "type": "invalid_request_error"}})
        rf = (body.get("response_format") or {}).get("type")
        if rf and rf in self.fake.reject_formats:
            return self._send_json(400, {"error": {
                "message": "Invalid parameter: 'response_format' of type '%s' is not supported with this model." % rf,
                "type": "invalid_request_error", "param": "response_format", "code": None}})
        reply = self.fake._next_reply()
        try:
            self._reply(reply, body)
        except (BrokenPipeError, ConnectionResetError):
            rec["disconnected"] = True
        self.close_connection = True if rec["disconnected"] else self.close_connection

    def _embeddings(self, raw, body):
        """POST /v1/embeddings in OpenAI's wire format, or the failure set by
        configure_embeddings (404, 500, garbage, slow)."""
        rec = self._record(raw, body)
        with self.fake.lock:
            failure, delay, dim = self.fake.embed_failure, self.fake.embed_delay, self.fake.embed_dim
        if failure == "404":
            return self._send_json(404, {"error": {"message": "no route " + self.path,
                                                   "type": "invalid_request_error"}})
        if failure == "500":
            return self._send_json(500, {"error": {"message": "the embedding model crashed", "type": "server_error"}})
        if failure == "garbage":
            data = b'{"object": "list", "data": [{"embedding": [0.1, "x"'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if failure == "slow" or delay:
            if self._client_gone(delay or 30):
                rec["disconnected"] = True
                return
        inp = (body or {}).get("input")
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(inp, list) or not inp or not all(isinstance(t, str) for t in inp):
            return self._send_json(400, {"error": {"message": "'input' must be a string or a list of strings",
                                                   "type": "invalid_request_error"}})
        data = [{"object": "embedding", "index": i, "embedding": embed_text(t, dim)} for i, t in enumerate(inp)]
        self._send_json(200, {"object": "list", "data": data, "model": body.get("model", ""),
                              "usage": {"prompt_tokens": sum(len(t.split()) for t in inp),
                                        "total_tokens": sum(len(t.split()) for t in inp)}})

    def _reply(self, reply, body):
        rec = self.fake._requests[-1]
        if reply.get("first_byte_delay"):
            if self._client_gone(reply["first_byte_delay"]):
                rec["disconnected"] = True
                self.close_connection = True
                return
        if reply.get("hang"):
            if self._client_gone(60):
                rec["disconnected"] = True
            self.close_connection = True
            return
        status = reply.get("status", 200)
        headers = reply.get("headers") or {}
        if status >= 400 and "error_body" in reply:
            data = reply["error_body"].encode("latin-1")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if status >= 400:
            err = reply.get("error") or {"message": "error %d" % status, "type": "server_error"}
            return self._send_json(status, {"error": err}, headers)
        if "garbage" in reply:
            data = reply["garbage"].encode("latin-1")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if reply.get("tool_calls"):
            return self._reply_tool_calls(reply, body)
        content = reply.get("content")
        if content is None and not reply.get("tool_call"):
            content = default_content(body)
        content = content or ""
        usage = reply.get("usage") or {"prompt_tokens": 10 + len(json.dumps(body.get("messages", []))) // 4,
                                       "completion_tokens": max(1, len(content) // 4)}
        stream = reply.get("stream", body.get("stream", False))
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "")}
        if not stream:
            msg = {"role": "assistant", "content": content if not reply.get("tool_call") else None}
            if reply.get("tool_call"):
                tc = reply["tool_call"]
                msg["tool_calls"] = [{"id": "call_1", "type": "function",
                                      "function": {"name": tc.get("name", "code_solution"),
                                                   "arguments": tc.get("arguments", "")}}]
            obj = dict(base, object="chat.completion",
                       choices=[{"index": 0, "message": msg,
                                 "finish_reason": "tool_calls" if reply.get("tool_call") else "stop"}],
                       usage=usage)
            return self._send_json(200, obj, headers)

        eol = b"\r\n" if reply.get("crlf") else b"\n"
        if reply.get("trickle"):
            return self._trickle(reply, base, content, usage, eol, rec)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()

        def event(obj):
            data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self._chunk(b"data: " + data + eol + eol)

        self._chunk(b": keep-alive" + eol + eol)
        event(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None}]))
        if reply.get("tool_call"):
            tc = reply["tool_call"]
            args = tc.get("arguments", "")
            pieces = reply.get("chunks") or split_content(args)
            for i, piece in enumerate(pieces):
                fn = {"arguments": piece}
                if i == 0:
                    fn["name"] = tc.get("name", "code_solution")
                delta = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": fn}]}
                event(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]))
                if reply.get("chunk_delay") and self._client_gone(reply["chunk_delay"]):
                    raise BrokenPipeError
            finish = "tool_calls"
        elif reply.get("raw_chunks"):
            for piece in reply["raw_chunks"]:
                head = json.dumps(dict(base, choices=[{"index": 0, "delta": {"content": "@@"},
                                                       "finish_reason": None}])).encode()
                event(head.replace(b"@@", piece.encode("latin-1")))
            finish = "stop"
        else:
            pieces = reply.get("chunks") or split_content(content)
            for i, piece in enumerate(pieces):
                if reply.get("truncate_after") is not None and i >= reply["truncate_after"]:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                event(dict(base, choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
                if reply.get("chunk_delay") and self._client_gone(reply["chunk_delay"]):
                    raise BrokenPipeError
            finish = "stop"
        if reply.get("mid_stream_error"):
            event({"error": reply["mid_stream_error"]})
            self._chunk(b"")
            return
        event(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        event(dict(base, choices=None if reply.get("choices_null") else [], usage=usage))
        if not reply.get("no_done"):
            event(b"[DONE]")
        self._chunk(b"")


    def _reply_tool_calls(self, reply, body):
        """A scripted answer made of tool calls (reply["tool_calls"])."""
        calls = []
        for i, tc in enumerate(reply["tool_calls"]):
            args = tc.get("arguments", "")
            calls.append({"id": tc.get("id", "call_%d_%d" % (len(self.fake._requests), i + 1)),
                          "name": tc.get("name", "docs_search"),
                          "arguments": args if isinstance(args, str) else json.dumps(args)})
        usage = reply.get("usage") or {"prompt_tokens": 10 + len(json.dumps(body.get("messages", []))) // 4,
                                       "completion_tokens": 5}
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "")}
        if not reply.get("stream", body.get("stream", False)):
            msg = {"role": "assistant", "content": reply.get("content"),
                   "tool_calls": [{"id": c["id"], "type": "function",
                                   "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}
            return self._send_json(200, dict(base, object="chat.completion", usage=usage, choices=[
                {"index": 0, "message": msg, "finish_reason": "tool_calls"}]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(obj):
            data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self._chunk(b"data: " + data + b"\n\n")

        def delta(d):
            event(dict(base, choices=[{"index": 0, "delta": d, "finish_reason": None}]))

        delta({"role": "assistant", "content": reply.get("content")})
        for i, c in enumerate(calls):
            delta({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                   "function": {"name": c["name"], "arguments": ""}}]})
        pieces = [split_content(c["arguments"], 3) for c in calls]
        for k in range(max((len(p) for p in pieces), default=0)):
            for i, p in enumerate(pieces):
                if k < len(p):
                    delta({"tool_calls": [{"index": i, "function": {"arguments": p[k]}}]})
        event(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
        event(dict(base, choices=[], usage=usage))
        event(b"[DONE]")
        self._chunk(b"")

    def _trickle(self, reply, base, content, usage, eol, rec):
        """The whole answer as one stream, sent one byte every reply["trickle"] seconds."""
        body = b""
        for obj in ([dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}])]
                    + [dict(base, choices=[{"index": 0, "delta": {"content": p}, "finish_reason": None}])
                       for p in split_content(content)]
                    + [dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                       dict(base, choices=[], usage=usage)]):
            body += b"data: " + json.dumps(obj).encode() + eol + eol
        body += b"data: [DONE]" + eol + eol
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(len(body)):
            self._chunk(body[i:i + 1])
            if self._client_gone(reply["trickle"]):
                rec["disconnected"] = True
                self.close_connection = True
                return
        self._chunk(b"")
        rec["completed"] = True


class FakeOpenAI(LocalServer):
    """The fake server. Thread-safe; one scripted reply is used per chat request,
    in order; when the script runs out, replies are default answers."""

    def __init__(self, port=0, models=("fake-model",)):
        self.lock = threading.Lock()
        self._script = []
        self._requests = []
        self.connections = 0
        self.reject_formats = set()
        self.models = list(models)
        self.embed_failure, self.embed_delay, self.embed_dim = None, 0, EMBED_DIM
        super().__init__(_Handler, port)
        self.url = "http://127.0.0.1:%d/v1" % self.port

    def script(self, replies):
        with self.lock:
            self._script = list(replies)

    def configure(self, reject_formats=None, models=None):
        with self.lock:
            if reject_formats is not None:
                self.reject_formats = set(reject_formats)
            if models is not None:
                self.models = list(models)

    def configure_embeddings(self, failure=None, delay=0, dim=EMBED_DIM):
        """/v1/embeddings: failure None (answer), "404", "500", "garbage" (a cut JSON body) or "slow"
        (answer after `delay` seconds, default 30, unless the client leaves); dim: vector length."""
        with self.lock:
            self.embed_failure = failure
            self.embed_delay = delay
            self.embed_dim = dim

    def embedding_requests(self):
        return [r for r in self.requests if r["path"].rstrip("/") == "/v1/embeddings"]

    def _next_reply(self):
        with self.lock:
            return self._script.pop(0) if self._script else {}

    @property
    def requests(self):
        with self.lock:
            return json.loads(json.dumps(self._requests))

    def chat_requests(self):
        return [r for r in self.requests if r["path"].startswith("/v1/chat/completions")]

    def chat_messages(self):
        """The messages of each chat request, in order (what the client sent the model)."""
        return [r["body"].get("messages", []) for r in self.chat_requests() if isinstance(r["body"], dict)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", help="JSON file holding a list of scripted replies")
    ap.add_argument("--reject", default="", help="comma-separated response_format types to refuse with 400")
    args = ap.parse_args()
    fake = FakeOpenAI(port=args.port)
    if args.script:
        with open(args.script) as f:
            fake.script(json.load(f))
    if args.reject:
        fake.configure(reject_formats=[s for s in args.reject.split(",") if s])
    print("listening on %s" % fake.url, flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
