"""The Neovim plugin as its users meet it (issue 14): one headless nvim per behaviour, driven by
tests/editors/nvim/scenarios.lua against the real server and the fake LLM; plus :checkhealth, :help after
the documented install, and a screen capture of Neovim in a terminal (kept under the build directory).

CRUCIBLE_NVIM_PLUGIN names the plugin folder to test (default: editors/nvim), so the scenarios can be run
against another version of the plugin."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from editor_util import assert_no_strays, editor_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from fake_openai import FakeOpenAI  # noqa: E402

PLUGIN = pathlib.Path(os.environ.get("CRUCIBLE_NVIM_PLUGIN") or (ROOT / "editors" / "nvim"))
SCENARIOS = ROOT / "tests" / "editors" / "nvim" / "scenarios.lua"
ANSWER = {"prefix": "Prints the answer.", "imports": "", "code": "print('the answer is', 6 * 7)"}

pytestmark = pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim not installed (Debian package: neovim)")


def sol(prefix, code, imports="", delay=0.0):
    return {"content": json.dumps({"prefix": prefix, "imports": imports, "code": code}), "chunk_delay": delay}


def chunked(text, n, delay):
    size = max(1, len(text) // n)
    return {"chunks": [text[i:i + size] for i in range(0, len(text), size)], "chunk_delay": delay}


GREET = "def greet(name):\n    if not name:\n        raise ValueError('empty name')\n    print('hello', name)\n\ngreet('')"
GREET_OK = "def greet(name):\n    print('hello', name or 'world')\n\ngreet('')"
REFLECTION = "The first try raised ValueError because the name was empty. Use a default instead."

# what the fake model answers in each scenario
SCRIPTS = {
    "code_actions": [sol("Prints the answer.", ANSWER["code"], delay=0.02)],
    "cancel": [{"hang": True}],
    "streaming": [sol("Greets someone.", GREET), chunked(REFLECTION, 20, 0.01),
                  {"chunks": [json.dumps({"prefix": "Greets someone.", "imports": "", "code": GREET_OK})[i:i + 6]
                              for i in range(0, 200, 6)], "chunk_delay": 0.04}],
    "run_buffer": [],
    "range_ask": [sol("Prints more.", "print(1)\nraise ValueError('generated')")],
    "range_imports": [],
    "crash": [],
    "refused_settings": [],
    "two_asks": [sol("First.", "print('first')", delay=0.05), sol("Second.", "print('second')", delay=0.05)],
    "doctor": [],
    "rejected": [sol("Broken.", "def f(:\n    pass"), {"content": "r"}, sol("Fixed.", "print(1)")],
    "extras": [sol("Prints the answer.", ANSWER["code"])],
}


@pytest.fixture
def fake():
    f = FakeOpenAI().start()
    yield f
    f.stop()


def nvim_cmd(*extra):
    return ["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n", "--cmd", "set rtp^=" + str(PLUGIN), *extra]


def test_nvim_environment(tmp_path, fake):
    """:CrucibleEnv packages tinypkg, then :CrucibleRun: the environment is built from a fake package index
    (tests/fakes/package_index.py) with its install lines in the run panel."""
    if not shutil.which("pip3") and subprocess.run([sys.executable, "-m", "pip", "--version"],
                                                   capture_output=True).returncode != 0:
        pytest.skip("pip not installed (Debian packages: python3-pip python3-venv)")
    from package_index import SimpleIndex, make_wheel
    # the sandbox's user reads the environment: a cache folder others may enter
    base = pathlib.Path(tempfile.mkdtemp(prefix="crucible-nvim-env-", dir="/tmp"))
    os.chmod(base, 0o755)
    idx = SimpleIndex().start()
    try:
        (base / "wheels").mkdir()
        (base / "cache").mkdir()
        os.chmod(base / "cache", 0o755)
        idx.add_wheel(make_wheel(str(base / "wheels"), "tinypkg", "1.0",
                                 {"tinypkg/__init__.py": "def answer():\n    return 6 * 7\n"}))
        marker = "crucible-nvim-test-" + uuid.uuid4().hex
        env = editor_env(tmp_path, fake, marker)
        cfg = tmp_path / "config" / "crucible"
        cfg.mkdir(parents=True)
        (cfg / "config.json").write_text(json.dumps({"sandbox": {"packageIndex": idx.url}}))
        env.update({"CRUCIBLE_NVIM_SCENARIO": "environment", "XDG_CACHE_HOME": str(base / "cache")})
        p = subprocess.run(nvim_cmd("-c", "luafile " + str(SCENARIOS)), env=env, cwd=str(tmp_path),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=240)
        out = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
        panels = tmp_path / "panels.txt"
        shown = ("\n--- panels\n" + panels.read_text()) if panels.exists() else ""
        assert p.returncode == 0 and "\ndone" in out, "rc %d:\n%s%s" % (p.returncode, out, shown)
        assert_no_strays(marker)
    finally:
        idx.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("scenario", sorted(SCRIPTS))
def test_nvim_scenario(scenario, tmp_path, fake):
    fake.script(SCRIPTS[scenario])
    marker = "crucible-nvim-test-" + uuid.uuid4().hex
    env = editor_env(tmp_path, fake, marker)
    env["CRUCIBLE_NVIM_SCENARIO"] = scenario
    if scenario == "doctor":
        env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens there
    p = subprocess.run(nvim_cmd("-c", "luafile " + str(SCENARIOS)), env=env, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=150)
    out = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
    panels = tmp_path / "panels.txt"
    shown = ("\n--- panels\n" + panels.read_text()) if panels.exists() else ""
    assert p.returncode == 0 and "\ndone" in out, "scenario %s failed (rc %d):\n%s%s" % (
        scenario, p.returncode, out, shown)
    assert_no_strays(marker)


def test_nvim_checkhealth(tmp_path, fake):
    """:checkhealth crucible reports the server, the sandbox and the LLM."""
    env = editor_env(tmp_path, fake, "crucible-nvim-test-" + uuid.uuid4().hex)
    out = tmp_path / "health.txt"
    lua = ("require('crucible').setup({cmd = {os.getenv('CRUCIBLE_BIN'), 'serve'}}); vim.cmd('checkhealth crucible'); "
           "vim.fn.writefile(vim.api.nvim_buf_get_lines(0, 0, -1, false), %s)" % json.dumps(str(out)))
    p = subprocess.run(nvim_cmd("-c", "lua " + lua, "-c", "qall!"), env=env, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    text = out.read_text() if out.exists() else ""
    assert p.returncode == 0 and "crucible" in text, "rc %d\n%s\n%s" % (p.returncode, text, p.stderr.decode())
    assert "OK" in text and "server" in text and "LLM" in text, text
    assert "ERROR" not in text, text


def test_nvim_help_after_documented_install(tmp_path):
    """The install steps of docs/editors.md, in a private XDG_DATA_HOME: then :help crucible works."""
    data = tmp_path / "data"
    start = data / "nvim" / "site" / "pack" / "crucible" / "start"
    start.mkdir(parents=True)
    shutil.copytree(PLUGIN, start / "crucible")  # the docs link it; a copy keeps tags out of the tree
    env = dict(os.environ, XDG_DATA_HOME=str(data), XDG_CONFIG_HOME=str(tmp_path / "config"))
    # the step from docs/editors.md
    subprocess.run(["nvim", "--headless", "-c", "helptags ALL", "-c", "q"], env=env, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = tmp_path / "help.txt"
    p = subprocess.run(["nvim", "--headless", "-i", "NONE", "-c", "help crucible",
                        "-c", "call writefile([expand('%:t'), getline('.')], '" + str(out) + "')", "-c", "qall!"],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    got = out.read_text().splitlines() if out.exists() else []
    assert p.returncode == 0 and got and got[0] == "crucible.txt", (got, p.stderr.decode())
    assert "*crucible*" in got[1], got


# -- a screen capture of Neovim in a terminal --------------------------------------------------------------

PALETTE = {"black": (0, 0, 0), "red": (205, 49, 49), "green": (13, 188, 121), "brown": (229, 229, 16),
           "yellow": (229, 229, 16), "blue": (36, 114, 200), "magenta": (188, 63, 188), "cyan": (17, 168, 205),
           "white": (229, 229, 229), "brightblack": (102, 102, 102), "brightred": (241, 76, 76),
           "brightgreen": (35, 209, 139), "brightyellow": (245, 245, 67), "brightblue": (59, 142, 234),
           "brightmagenta": (214, 112, 214), "brightcyan": (41, 184, 219), "brightwhite": (255, 255, 255)}
FG, BG = (212, 212, 212), (30, 30, 30)


def rgb(color, default):
    if color == "default":
        return default
    if color in PALETTE:
        return PALETTE[color]
    try:
        return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return default


def save_png(screen, path):
    """The pyte screen as a PNG: each cell's character in its colours."""
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 14)
    except OSError:
        font = ImageFont.load_default()
    cw, ch = 9, 18
    img = Image.new("RGB", (screen.columns * cw, screen.lines * ch), BG)
    draw = ImageDraw.Draw(img)
    for y in range(screen.lines):
        row = screen.buffer[y]
        for x in range(screen.columns):
            c = row[x]
            fg, bg = rgb(c.fg, FG), rgb(c.bg, BG)
            if c.reverse:
                fg, bg = bg, fg
            if bg != BG:
                draw.rectangle([x * cw, y * ch, (x + 1) * cw - 1, (y + 1) * ch - 1], fill=bg)
            if c.data.strip():
                draw.text((x * cw, y * ch + 1), c.data, font=font, fill=fg)
    img.save(path)


def test_nvim_screen_capture(tmp_path, fake):
    """Neovim in a real terminal (a pty, 110x34) with a failing run and an ask: the screen is kept as text and
    PNG under the build directory (screenshots/nvim.txt, .png) and must show the panel, the code and the
    diagnostic."""
    pyte = pytest.importorskip("pyte", reason="python3-pyte not installed (Debian package)")
    import pty
    import select
    fake.script([sol("Prints the answer.", ANSWER["code"], delay=0.02)])
    marker = "crucible-nvim-test-" + uuid.uuid4().hex
    env = editor_env(tmp_path, fake, marker)
    env.update({"CRUCIBLE_NVIM_SCENARIO": "screen", "TERM": "xterm-256color", "COLORTERM": ""})
    cols, rows = 110, 34
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(str(tmp_path))
        os.execvpe("nvim", ["nvim", "-u", "NONE", "-i", "NONE", "-n", "--cmd", "set rtp^=" + str(PLUGIN),
                            "--cmd", "syntax on", "--cmd", "set laststatus=2 signcolumn=yes cmdheight=2",
                            "-c", "luafile " + str(SCENARIOS)], env)
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.kill(pid, 28)  # SIGWINCH: nvim reads the size again

    def pump(seconds):
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                stream.feed(data)
        return True

    ready = tmp_path / "screen-ready"
    deadline = time.time() + 90
    try:
        while not ready.exists() and time.time() < deadline:
            if not pump(0.2):
                break
        pump(1.0)
        text = "\n".join(screen.display)
        build = pathlib.Path(os.environ.get("CRUCIBLE_BUILD") or (ROOT / "build"))
        shots = build / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        (shots / "nvim.txt").write_text(text + "\n")
        try:
            save_png(screen, shots / "nvim.png")
        except ImportError:
            pass
        assert ready.exists(), "nvim never got ready; the screen:\n" + text
        assert "crucible://ask" in text and "print('the answer is', 6 * 7)" in text, text
        assert "══ passed" in text and "KeyError" in text, text
    finally:
        os.write(fd, b"\x1b:qa!\r")
        pump(1.0)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
    assert_no_strays(marker)
