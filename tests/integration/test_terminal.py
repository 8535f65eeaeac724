"""What Crucible's command line writes to a real terminal: control sequences
from untrusted text (program output, the model's text, stored transcripts,
crawled documentation) are shown escaped, never obeyed; a pipe gets the
bytes unchanged. The terminal is a pseudo-terminal in raw mode (no \\n ->
\\r\\n translation), so every byte the binary writes is seen as written."""
import json
import os
import pathlib
import subprocess
import sys
import tty

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from conftest import crucible_bin  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

# What a hostile program prints: OSC 52 (replace the clipboard), a window
# title, a fake status line drawn over with \r, cursor-position and
# device-attribute queries (a terminal answers them as typed input), a raw
# 8-bit CSI byte, U+009B (CSI as a character), backspace, clear-screen, and a
# euro sign cut across two writes.
HOSTILE = r'''
import sys, time
out = sys.stdout.buffer
out.write(b"\x1b]52;c;cm0gLXJmIH4vKgo=\x07")
out.write(b"\x1b]0;owned title\x07")
out.write(b"compiling...\rcrucible: ok\n")
out.write(b"\x1b[6n\x1b[c")
out.write(b"raw\x9b6n char\xc2\x9b31m bs\x08 euro:\xe2")
out.flush()
time.sleep(0.05)
out.write(b"\x82\xac end\n")
out.flush()
sys.stderr.buffer.write(b"err\x1b[2J\x07\r\n")
'''
HOSTILE_STDOUT = (b"\x1b]52;c;cm0gLXJmIH4vKgo=\x07\x1b]0;owned title\x07compiling...\rcrucible: ok\n"
                  b"\x1b[6n\x1b[craw\x9b6n char\xc2\x9b31m bs\x08 euro:\xe2\x82\xac end\n")
FORBIDDEN = [b"\x1b", b"\x07", b"\r", b"\x08", b"\x9b"]


def run_in_pty(args, env=None, timeout=60):
    """Runs the command with stdin, stdout and stderr on a raw pty; returns
    (exit status, every byte written to the terminal)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    data = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    return p.wait(timeout=timeout), bytes(data)


def assert_inert(data):
    for b in FORBIDDEN:
        assert b not in data, "%r reached the terminal: %r" % (b, data)


@pytest.fixture
def prog(tmp_path):
    f = tmp_path / "hostile.py"
    f.write_text(HOSTILE)
    return f


def test_run_escapes_program_output_on_a_terminal(prog):
    rc, data = run_in_pty([crucible_bin(), "run", str(prog)])
    assert rc == 0, data
    assert_inert(data)
    text = data.decode("utf-8")  # and it is valid UTF-8
    # shown, in the documented form, not dropped
    assert "\\u001b]52;c;cm0gLXJmIH4vKgo=\\u0007" in text
    assert "compiling...\\u000dcrucible: ok\n" in text
    assert "\\u001b[6n\\u001b[c" in text
    assert "raw\\x9b6n char\\u009b31m bs\\u0008 euro:\u20ac end\n" in text  # the cut euro sign is whole
    assert "err\\u001b[2J\\u0007\\u000d\n" in text
    # Crucible's own summary line is still there, as the only "crucible: ok" line
    assert "\ncrucible: ok, exit 0" in text


def test_run_keeps_bytes_raw_in_a_pipe_and_with_raw_output(prog):
    p = subprocess.run([crucible_bin(), "run", str(prog)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == HOSTILE_STDOUT
    assert p.stderr.startswith(b"err\x1b[2J\x07\r\n")
    rc, data = run_in_pty([crucible_bin(), "run", str(prog), "--raw-output"])
    assert rc == 0
    assert HOSTILE_STDOUT in data


def test_ask_history_show_escape_model_text_and_output(tmp_path, fake):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="k",
               CRUCIBLE_MODEL="fake-model")
    code = "import sys\nsys.stdout.write('\\x1b]52;c;ZXZpbA==\\x07out\\rcrucible: ok\\n')"
    answer = {"prefix": "Done.\x1b]0;model title\x07\x1b[6n\r\x9b", "imports": "", "code": code}
    fake.script([{"content": json.dumps(answer)}])
    rc, data = run_in_pty([crucible_bin(), "ask", "print \x1b[31mred\x1b[0m"], env=env)
    assert rc == 0, data
    assert_inert(data)
    text = data.decode("utf-8")
    assert "Done.\\u001b]0;model title\\u0007\\u001b[6n\\u000d\\u009b" in text   # the model's prefix
    assert "\\u001b]52;c;ZXZpbA==\\u0007out\\u000dcrucible: ok" in text      # program output

    rc, data = run_in_pty([crucible_bin(), "history"], env=env)
    assert rc == 0 and b"print " in data
    assert_inert(data)
    task = subprocess.run([crucible_bin(), "history", "--json"], capture_output=True, env=env, timeout=30)
    uid = json.loads(task.stdout)[0]["uid"]
    rc, data = run_in_pty([crucible_bin(), "show", uid], env=env)
    assert rc == 0 and b"sys.stdout.write" in data
    assert_inert(data)
    rc, data = run_in_pty([crucible_bin(), "show", uid, "--json"], env=env)
    assert rc == 0
    assert_inert(data)
    assert json.loads(data.decode("utf-8"))["uid"] == uid  # still JSON, and the same task


def test_docs_search_escapes_crawled_text(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.md").write_text("# Frobnicate\n\nTo frobnicate \x1b]52;c;ZXZpbA==\x07 a widget,\r"
                                     "call frob(\x1b[6n).\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    subprocess.run([crucible_bin(), "docs", "add", str(folder)], check=True, capture_output=True, env=env,
                   timeout=60)
    rc, data = run_in_pty([crucible_bin(), "docs", "search", "frobnicate widget", "--source", str(folder)],
                          env=env)
    assert rc == 0, data
    assert_inert(data)
    assert b"frobnicate \\u001b]52;c;ZXZpbA==\\u0007 a widget" in data
    p = subprocess.run([crucible_bin(), "docs", "search", "frobnicate widget", "--source", str(folder)],
                       capture_output=True, env=env, timeout=60)
    assert b"\x1b]52;c;ZXZpbA==\x07 a widget" in p.stdout


def test_summary_line_names_the_limit_in_parentheses(tmp_path):
    prog = tmp_path / "loop.py"
    prog.write_text("while True:\n    pass\n")
    rc, data = run_in_pty([crucible_bin(), "run", "--timeout", "300", str(prog)])
    text = data.decode("utf-8")
    assert rc != 0
    assert "\ncrucible: timeout (wall), exit -1, signal " in text, text
