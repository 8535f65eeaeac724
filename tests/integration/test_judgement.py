"""The ask loop's judgement against the real server, sandbox and CLI with the
fake LLM: what passes, what the model is told, why an ask failed."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from conftest import Client, crucible_bin, finish, llm_env  # noqa: E402


def sol(imports, code, test=None, prefix="p"):
    d = {"prefix": prefix, "imports": imports, "code": code}
    if test is not None:
        d["test"] = test
    return {"content": json.dumps(d)}


THINK = {"content": "I see the error and will fix it."}


@pytest.fixture
def env(tmp_path, fake):
    e = llm_env(tmp_path, fake.url)
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    # 2 s is the programs' limit, not the module probe's (sbx_request.own)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"timeoutMs": 2000}}))
    return e


@pytest.fixture
def srv(env):
    c = Client(env=env)
    c.initialize()
    yield c
    finish(c)


def ask(c, question, language="python", max_iter=3):
    notes = []
    r = c.call("crucible/ask", {"question": question, "language": language, "maxIterations": max_iter},
               timeout=120, notifications=notes)
    return r["result"], notes


def test_failed_ask_says_why_in_one_line(srv, fake):
    fake.script([sol("", "print(a)"), THINK, sol("", "print(b)")])
    res, _ = ask(srv, "print a number", max_iter=2)
    assert res["outcome"] == "failed"
    assert res["failedStage"] == "run"
    assert res["error"] == "line 1: NameError: name 'b' is not defined"
    assert [a["failedStage"] for a in res["attempts"]] == ["run", "run"]
    # the prompt says what the sandbox has and how lines are counted
    system = fake.chat_requests()[0]["body"]["messages"][0]["content"]
    assert "no network access" in system and "no standard input" in system
    assert "line 1 is the first import line" in system
    assert "Third-party modules the environment has" in system or "no third-party modules" in system


def test_syntax_failure_is_a_syntax_stage_that_never_ran(srv, fake):
    fake.script([sol("", "if True:\nprint(1)")])
    res, notes = ask(srv, "print 1", max_iter=1)
    assert res["failedStage"] == "syntax"
    assert res["error"].startswith("line 2, column 1: expected an indented block")
    assert res["run"]["outcome"] == "rejected"
    assert not [n for n in notes if n.get("method") == "crucible/phase" and n["params"]["phase"] == "running"]


def test_identical_answer_is_not_run_again(srv, fake):
    loop = sol("", "while True:\n    pass\nprint(1)")
    fake.script([loop, THINK, loop, THINK, sol("", "print(1)")])
    res, notes = ask(srv, "print 1")
    assert res["outcome"] == "passed" and len(res["attempts"]) == 3
    first, second = res["attempts"][0], res["attempts"][1]
    assert "wall-time limit of 2 s" in first["error"]
    assert second["failedStage"] == "answer" and "same program as attempt 1" in second["error"]
    assert "not run again" in second["error"] and second["run"] is None
    runs = [n for n in notes if n.get("method") == "crucible/phase" and n["params"]["phase"] == "running"]
    assert len(runs) == 2  # the loop once, the fix once: the repeat cost nothing
    # the model heard it at once
    assert "not run again" in json.dumps(fake.chat_requests()[3]["body"]["messages"])


def test_timeout_feedback_names_the_limit_and_the_line(srv, fake):
    fake.script([sol("", "n = 0\nwhile True:\n    n += 1\n"), THINK, sol("", "print(1)")])
    res, _ = ask(srv, "print 1")
    err = res["attempts"][0]["error"]
    assert "stopped at the wall-time limit of 2 s" in err
    assert "It was at line 3" in err or "It was at line 2" in err, err
    assert "signal" not in err


def test_memory_kill_feedback_names_the_limit_and_the_line(tmp_path, fake):
    e = llm_env(tmp_path, fake.url)
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"memoryMb": 96, "timeoutMs": 20000}}))
    c = Client(env=e)
    try:
        c.initialize()
        grow = "def grow():\n    a = []\n    while True:\n        a.append(' ' * 1000000)\n\ngrow()\n"
        fake.script([sol("", grow), THINK, sol("", "print(1)")])
        res, _ = ask(c, "print 1", max_iter=2)
    finally:
        finish(c)
    first = res["attempts"][0]
    run = first["run"]
    if not run["isolation"].startswith("cgroup"):
        pytest.skip("no cgroup here: memory shows only as a MemoryError")
    assert (run["outcome"], run["limit"]) == ("oom", "memory"), run
    # stopped before the kernel's kill, with faulthandler's dump: the line
    # it was growing on
    assert "memory limit of 96 MiB" in first["error"], first["error"]
    assert "line 4" in first["error"], first["error"]
    assert "line 4 in grow" in run["stderr"], run["stderr"]
    assert res["outcome"] == "passed"


def test_empty_output_fails_when_output_is_asked(srv, fake):
    fake.script([sol("", "total = sum(range(101))"), THINK, sol("", "print(sum(range(101)))")])
    res, _ = ask(srv, "print the sum of 1..100")
    a = res["attempts"][0]
    assert a["failedStage"] == "run" and a["passed"] is False
    assert "printed nothing" in a["error"] and a["run"]["outcome"] == "ok"
    assert res["outcome"] == "passed" and res["run"]["stdout"] == "5050\n"


def test_answer_test_must_pass(srv, fake):
    fake.script([sol("", "def sq(x):\n    return x + x\nprint(sq(3))", "assert sq(3) == 9, sq(3)"), THINK,
                 sol("", "def sq(x):\n    return x * x\nprint(sq(3))", "assert sq(3) == 9, sq(3)")])
    res, _ = ask(srv, "print the square of 3")
    a = res["attempts"][0]
    assert a["failedStage"] == "test"
    assert "line 4" in a["error"] and "AssertionError: 6" in a["error"]
    assert res["outcome"] == "passed" and res["solution"]["test"] == "assert sq(3) == 9, sq(3)"
    schema = fake.chat_requests()[0]["body"]["response_format"]["json_schema"]["schema"]
    assert "test" in schema["properties"]


def test_library_frames_condensed(srv, fake):
    fake.script([sol("import json", "print(json.loads('{bad}'))"), THINK, sol("", "print(1)")])
    res, _ = ask(srv, "print the parsed json")
    err = res["attempts"][0]["error"]
    assert "The error is at line 2: json.decoder.JSONDecodeError" in err
    assert "frames in library code omitted" in err and "json/decoder.py\", line" not in err


def test_from_import_of_a_missing_name_is_caught_statically(tmp_path, fake):
    # the default limits: the module probe (learning names too) may take more than 2 s on a loaded machine
    c = Client(env=llm_env(tmp_path, fake.url))
    c.initialize()
    try:
        r = c.call("crucible/check", {"code": "from collections import Mapping, OrderedDict\nfrom os import path\n",
                                       "language": "python"}, timeout=60)
    finally:
        finish(c)
    diags = r["result"]["diagnostics"]
    assert len(diags) == 1, diags
    d = diags[0]
    assert d["code"] == "missing-name" and "cannot import name 'Mapping' from 'collections'" in d["message"]
    assert "collections.abc" in d["message"]
    assert d["range"]["start"] == {"line": 0, "character": 24}


def test_cli_ask_failure_ends_with_one_line_even_quiet(env, fake):
    fake.script([sol("", "if True:\nprint(1)")])
    p = subprocess.run([crucible_bin(), "ask", "print 1", "--max-iterations", "1", "--quiet"], capture_output=True,
                       text=True, env=dict(os.environ, **env), timeout=60)
    assert p.returncode == 1
    assert "Not run: the checks rejected it." in p.stdout and "Ran in the sandbox" not in p.stdout
    last = p.stdout.strip().splitlines()[-1]
    assert last == "Failed at the syntax stage of attempt 1: line 2, column 1: expected an indented block " \
                   "after 'if' statement on line 1", last


def test_a_short_user_timeout_still_checks_imports(tmp_path):
    """The module probe is Crucible's own program: a user's 100 ms sandbox.timeoutMs is the limit of the
    programs it runs, not of the probe, so imports are still checked (before, the probe was killed and
    every import went unchecked)."""
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"timeoutMs": 100}}))
    c = Client(env={"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        c.initialize()
        r = c.call("crucible/check", {"language": "python", "code": "import os\nimport zorblax_nosuch\n"},
                   timeout=120)["result"]
        missing = [d for d in r["diagnostics"] if d.get("code") == "missing-module"]
        assert len(missing) == 1 and "zorblax_nosuch" in missing[0]["message"], r
        # a client's run still gets the user's limit
        r = c.call("crucible/run", {"language": "python", "code": "import time\ntime.sleep(5)\n"},
                   timeout=60)["result"]
        assert r["outcome"] == "timeout" and r["limit"] == "wall", r
    finally:
        finish(c)


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_check_with_a_cached_index_makes_no_cgroup(tmp_path):
    f = tmp_path / "a.py"
    f.write_text("import os\nprint(os.sep)\n")
    e = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    subprocess.run([crucible_bin(), "check", str(f)], env=e, check=True, capture_output=True, timeout=60)
    # LeakSanitizer cannot work under ptrace: an ASan build checks leaks in the run above
    e["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=mkdir,rmdir", crucible_bin(), "check", str(f)], env=e,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "cgroup" not in p.stderr, p.stderr


def test_replayed_wrong_answers_meet_the_targets():
    """A sample of the wrong-answer corpus, one per kind of catch (the whole
    corpus: docs/judgement.md)."""
    only = "py-unexpected-indent,py-from-collections-mapping,py-undefined-name,py-wrong-output,js-unclosed-block," \
           "sh-stray-fi,sh-missing-command"
    p = subprocess.run([sys.executable, str(ROOT / "tests/corpus/replay_wrong_answers.py"), "--only", only],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, CRUCIBLE_BIN=crucible_bin()))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "7 passed, 0 failed" in p.stdout
