"""Python errors as CPython reports them, through the real binary: `crucible
check` and `crucible/check` name the compiler's line, column and message for
what tree-sitter's grammar accepts (indentation, Python 2 statements, scope
errors), and the ground-truth corpus (tests/corpus/check_python.py) agrees
with the host's compile() on a sample of mutated standard-library files."""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from conftest import SANITIZER_MARKS, Client, crucible_bin, finish  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


CASES = [
    # (file name, source, the line crucible check prints)
    ("indent.py", "x = 1\n    y = 2\n", "2:5: error: unexpected indent"),
    ("print2.py", "print 'hello'\n",
     "1:1: error: Missing parentheses in call to 'print'. Did you mean print(...)?"),
    ("plus.py", "def f(a):\n    return a +\n", "2:15: error: invalid syntax"),
    ("colon.py", "def f(x)\n    \"\"\"Doc.\"\"\"\n    return x\n", "1:9: error: expected ':'"),
    ("ret.py", "return 1\n", "1:1: error: 'return' outside function"),
    ("octal.py", "mode = 0777\n",
     "1:8: error: leading zeros in decimal integer literals are not permitted; use an 0o prefix for "
     "octal integers"),
]


def test_cli_check_reports_what_cpython_reports(tmp_path, env):
    paths = []
    for name, src, _ in CASES:
        p = tmp_path / name
        p.write_text(src)
        paths.append(str(p))
    fi = tmp_path / "fi.sh"
    fi.write_text("x=1\nif true; then\n  echo $x")  # no final newline, as answers come
    p = subprocess.run([crucible_bin(), "check"] + paths + [str(fi)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **env})
    assert p.returncode == 1, (p.returncode, p.stderr)
    for (name, _, want), path in zip(CASES, paths):
        lines = [l for l in p.stdout.splitlines() if l.startswith(path + ":")]
        assert lines == ["%s:%s" % (path, want)], (name, p.stdout)
    assert "error: missing 'fi' to close 'if' at line 2" in p.stdout
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr


def test_check_request_names_the_compiler_line(env):
    c = Client(env=env)
    c.initialize()
    r = c.call("crucible/check", {"code": "import os\nif os.sep:\nprint(os.sep)\n"}, timeout=60)
    diags = r["result"]["diagnostics"]
    assert [d["message"] for d in diags] == ["expected an indented block after 'if' statement on line 2"]
    assert diags[0]["range"]["start"] == {"line": 2, "character": 0}
    r = c.call("crucible/check", {"code": "for x in range(3):\n    pass\nelse:\n    break\n"}, timeout=60)
    assert [d["message"] for d in r["result"]["diagnostics"]] == ["'break' outside loop"]
    r = c.call("crucible/check", {"code": "def f(a, b):\n    return a + b\n"}, timeout=60)
    assert r["result"]["diagnostics"] == []
    finish(c)


@pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                    reason="the checks follow CPython 3.11; the Python running the tests is another")
def test_corpus_agrees_with_compile(tmp_path, env):
    """A small deterministic sample (the full counts are in docs/checks.md):
    no false alarm on the originals or harmless mutants, every rejected mutant
    diagnosed on the line compile() names."""
    details = tmp_path / "details.txt"
    # the truth is this interpreter's compile() and its standard library
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "corpus" / "check_python.py"), "--crucible",
                        crucible_bin(), "--files", "60", "--mutants", "6", "--seed", "13", "--details",
                        str(details)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, **env})
    assert p.returncode == 0, p.stdout + details.read_text()
