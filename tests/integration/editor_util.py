"""What the editor tests share: the environment of a client process (and the server it starts), and the
check that nothing it started is left running."""
import os
import time

from conftest import crucible_bin


def editor_env(tmp_path, fake, marker):
    """The fake LLM, private XDG dirs, and a marker in the environment that finds every process left
    behind."""
    env = dict(os.environ)
    env.update({
        "CRUCIBLE_BIN": os.path.abspath(crucible_bin()),
        "CRUCIBLE_TEST_DIR": str(tmp_path),
        "CRUCIBLE_TEST_MARKER": marker,
        "OPENAI_BASE_URL": fake.url,
        "OPENAI_API_KEY": "test-key",
        "CRUCIBLE_MODEL": "fake-model",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    })
    return env


def processes_with(marker):
    """pid and command line of every live process whose environment holds marker."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                found.append("%s %s" % (pid, f.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            continue
    return found


def assert_no_strays(marker):
    deadline = time.time() + 5
    left = processes_with(marker)
    while left and time.time() < deadline:
        time.sleep(0.05)
        left = processes_with(marker)
    assert not left, "processes left behind:\n" + "\n".join(left)
