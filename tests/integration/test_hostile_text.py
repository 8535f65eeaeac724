"""Hostile code text against the real binary: the inputs that crashed the
server (100,000 nested '[': a double free in Debian's tree-sitter 0.20.7) or
blocked it (40,000 nested '$(' in bash: 41.6 s in didOpen) now come back as a
diagnostic at the place the limit was crossed, and the server goes on
answering. Timeouts here are the suite's normal ones, not timing goals."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import SANITIZER_MARKS, Client, crucible_bin, finish  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

DEEP_PY = "x = " + "[" * 100000 + "\n"
DEEP_SH = "echo " + "$(" * 40000 + "\n"
PY_MSG = "too many nested parentheses"
SH_MSG = "nesting deeper than 256 levels: not checked"


def limit_diags(diags):
    return [d for d in diags if d.get("code") == "limit"]


@pytest.fixture
def env(tmp_path):
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_cli_check_reports_deep_nesting(tmp_path, env):
    py = tmp_path / "deep.py"
    py.write_text(DEEP_PY)
    sh = tmp_path / "deep.sh"
    sh.write_text(DEEP_SH)
    p = subprocess.run([crucible_bin(), "check", str(py), str(sh)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **env})
    assert p.returncode == 1, (p.returncode, p.stderr)  # errors found; not a signal
    # CPython reports the 201st '[' at column 205; the '(' of bash's 257th '$(' is column 519
    assert "%s:1:205: error: %s" % (py, PY_MSG) in p.stdout
    assert "%s:1:519: error: %s" % (sh, SH_MSG) in p.stdout
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr


def test_check_request_hostile_then_normal(env):
    c = Client(env=env)
    c.initialize()
    r = c.call("crucible/check", {"code": DEEP_PY}, timeout=60)
    diags = r["result"]["diagnostics"]
    assert [d["message"] for d in diags] == [PY_MSG]
    assert diags[0]["range"]["start"] == {"line": 0, "character": 204}
    assert diags[0]["severity"] == 1 and r["result"]["imports"] == []

    r = c.call("crucible/check", {"code": DEEP_SH, "language": "bash"}, timeout=60)
    assert [d["message"] for d in r["result"]["diagnostics"]] == [SH_MSG]

    # the server still answers, and checks normal code as before
    r = c.call("crucible/check", {"code": "import os\nprint(os.getcwd())\n"}, timeout=60)
    assert r["result"]["diagnostics"] == []
    assert [i["module"] for i in r["result"]["imports"]] == ["os"]
    finish(c)


def test_did_open_hostile_does_not_block(env):
    c = Client(env=env)
    c.initialize()
    uri = "file:///w/deep.sh"
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "shellscript",
                                                        "version": 1, "text": DEEP_SH}})
    # requests are handled in order: this answer comes after didOpen was handled
    notes = []
    r = c.call("textDocument/codeAction", {"textDocument": {"uri": uri},
                                           "range": {"start": {"line": 0, "character": 0},
                                                     "end": {"line": 0, "character": 0}},
                                           "context": {"diagnostics": []}}, notifications=notes)
    assert [a["command"]["command"] for a in r["result"]] == ["crucible.run"]

    def published(version):
        # The document is checked again once the module index is learned, so
        # a version may be published twice: skip the older versions.
        def wanted(m):
            return (m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
                    and m["params"]["version"] == version)
        for m in notes:
            if wanted(m):
                notes.remove(m)
                return m["params"]
        while True:
            m = c.recv(timeout=60)
            if wanted(m):
                return m["params"]

    p = published(1)
    d = limit_diags(p["diagnostics"])
    assert [x["message"] for x in d] == [SH_MSG]
    assert d[0]["range"]["start"] == {"line": 0, "character": 5 + 256 * 2 + 1}

    # an edit that removes the nesting: the document is parsed again
    c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                        "contentChanges": [{"range": {"start": {"line": 0, "character": 5},
                                                                      "end": {"line": 0, "character": 5 + 80000}},
                                                            "text": "hi"}]})
    p = published(2)
    assert limit_diags(p["diagnostics"]) == [], p
    finish(c)


def test_ask_answer_with_hostile_code_is_rejected(env):
    fake = FakeOpenAI().start()
    try:
        env = {**env, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-test",
               "CRUCIBLE_MODEL": "fake-model"}
        fake.script([
            {"content": json.dumps({"prefix": "p", "imports": "", "code": DEEP_PY})},
            {"content": "Far too deeply nested; write a flat list."},
            {"content": json.dumps({"prefix": "p", "imports": "", "code": "print([1])"})},
        ])
        c = Client(env=env)
        c.initialize()
        r = c.call("crucible/ask", {"question": "a list"}, timeout=120)
        res = r["result"]
        assert res["outcome"] == "passed" and res["iterations"] == 2, res.get("error")
        first = res["attempts"][0]
        assert first["run"]["outcome"] == "rejected" and first["failedStage"] == "syntax"
        assert PY_MSG in first["error"]
        assert res["run"]["stdout"] == "[1]\n"
        # the server is alive and answers a following request
        r = c.call("crucible/check", {"code": "x = 1\n"}, timeout=60)
        assert r["result"]["diagnostics"] == []
        finish(c)
    finally:
        fake.stop()
