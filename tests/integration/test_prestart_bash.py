"""The pre-started bash (server/sandbox/prelude.c): a warm sandbox's bash has
started as `bash main.sh` before the request and runs the program itself,
with no second exec. A program cannot tell it from a cold run: the shell's
variables (`declare -p`), functions, options, traps, `$_`, `$?`, PIPESTATUS
after a command, the call stack variables, LINENO, SECONDS, SHLVL, the
environment, its descriptors and command line, `$0`, stdin, exit status, a
syntax error's message and line, `set -e`, a program larger than 64 KiB and
one without a final newline all come out the same as in a cold run. The
three differences left are asserted as documented (docs/sandbox.md):
PIPESTATUS before the program's first command, BASH_ARGC as `set` lists it
before the program names it, and /proc/self/environ.

A cold run is forced by another disk size than the default (a warm
sandbox's tmpfs sizes are fixed when it is made); that the warm run really
ran in a bash started ahead is checked from inside: its process is older
than the request."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Client, finish  # noqa: E402
import test_prestart as prestart  # noqa: E402

# The age of the shell's process when the line runs, in seconds (builtins
# only: `$_`, the hash table and PIPESTATUS are the same in both runs).
AGE = r"""read up _ < /proc/uptime; up=${up/./}; read -a st < /proc/$$/stat
age=$(( up - st[21] )); printf 'AGE %d.%02d\n' $((age / 100)) $((age % 100)); unset up st age
"""

PROBE = r"""echo "start [$_] [$?] [$LINENO] [$SECONDS] [$0] [$#] [$*] [$-] [$SHLVL] [$BASH] ps0 [${PIPESTATUS[*]}]"
""" + AGE + r"""set > /tmp/set_early  # before anything names BASH_ARGC or BASH_ARGV
true | false
echo "ps [${PIPESTATUS[*]}] [$?]"
echo "stack [${BASH_ARGV[*]}] [${BASH_ARGC[*]}] [${BASH_SOURCE[*]}] [${BASH_LINENO[*]}] [${FUNCNAME[*]}] [$LINENO]"
caller; echo "caller $?"
f() { echo "in f [${BASH_SOURCE[*]}] [${BASH_LINENO[*]}] [${FUNCNAME[*]}] [$LINENO]"; caller; }
f; unset -f f
echo "env"; env | sort
ls -l /proc/$$/fd > /tmp/fds; ls -l /proc/self/fd > /tmp/child_fds  # no pipe of the shell's open meanwhile
echo "fds"; awk 'NR > 1 {print $9, $10, $11}' /tmp/fds | sed 's/pipe:\[[0-9]*\]/pipe/'
echo "child fds"; awk 'NR > 1 {print $9, $10, $11}' /tmp/child_fds | sed -e 's/pipe:\[[0-9]*\]/pipe/'
echo "cmdline"; tr '\0' ' ' < /proc/$$/cmdline; echo
echo "declare -p"
declare -p | grep -Ev '^declare -[-a-zA-Z]* (BASHPID|RANDOM|SRANDOM|EPOCHREALTIME|EPOCHSECONDS)='
echo "declare -f"; declare -f
echo "set -o"; set -o
echo "shopt"; shopt
echo "trap -p"; trap -p
echo "times"; times | sed 's/[0-9]*m[0-9.]*s/T/g'
echo "hash"; hash
echo "set early"; grep -Ev '^(BASHPID|RANDOM|SRANDOM|EPOCHREALTIME|EPOCHSECONDS)=' /tmp/set_early
echo "environ"; tr '\0' '\n' < /proc/$$/environ
echo "end environ"
return 7
echo "after return $?"
read -r line; echo "stdin [$line]"
IFS= read -r -d '' rest; echo "rest [$rest]"
exit 3
"""


def run(c, code, lim=None, stdin=None):
    return prestart.run(c, code, lim, stdin, language="bash")


def split_age(res):
    """(the shell's age in s, stdout without the AGE line)."""
    m = re.search(r"^AGE (\d+\.\d+)\n", res["stdout"], re.M)
    assert m, res
    return float(m.group(1)), res["stdout"][:m.start()] + res["stdout"][m.end():]


def warm_and_cold(c, code, stdin=None):
    """The same program in a pre-started bash and in a cold one: (warm
    result, cold result, warm stdout, cold stdout), AGE lines taken out."""
    time.sleep(2.0)  # the pool's next bash starts in the background
    t0 = time.monotonic()
    warm = run(c, code, stdin=stdin)
    req_s = time.monotonic() - t0
    cold = run(c, code, lim={"diskMb": 63}, stdin=stdin)
    w_age, w_out = split_age(warm)
    c_age, c_out = split_age(cold)
    # the warm run's bash started before its request was sent; the cold
    # one's after
    assert w_age > req_s + 0.3, (w_age, req_s)
    assert c_age < w_age, (c_age, w_age)
    for k in ("outcome", "exitCode", "signal", "stderr", "diagnostics", "truncated"):
        assert warm[k] == cold[k], (k, warm[k], cold[k])
    return warm, cold, w_out, c_out


def section(out, name, end):
    """The lines between the line `name` and the line `end`."""
    after = out.split("\n" + name + "\n", 1)[1]
    return "" if after.startswith(end + "\n") else after.split("\n" + end + "\n", 1)[0]


def test_prestarted_bash_state_is_a_cold_shells():
    c = Client()
    try:
        c.initialize()
        run(c, "true")  # bash asked for: the pool keeps one
        warm, cold, w_out, c_out = warm_and_cold(c, PROBE, stdin="typed line\nmore\n")
        # the documented differences first: PIPESTATUS before any command,
        # and the environment block bash was started with
        w_first, w_rest = w_out.split("\n", 1)
        c_first, c_rest = c_out.split("\n", 1)
        assert c_first.endswith(" ps0 []") and w_first.endswith(" ps0 [0]"), (c_first, w_first)
        assert w_first[:-len(" ps0 [0]")] == c_first[:-len(" ps0 []")]
        w_env = section(w_rest, "environ", "end environ").split("\n")
        c_env = section(c_rest, "environ", "end environ").split("\n")
        assert [v for v in w_env if v != "BASH_ENV=main.sh"] == c_env, (w_env, c_env)
        assert "BASH_ENV=main.sh" in w_env
        w_rest = w_rest.replace("\n".join(w_env), "\n".join(c_env))
        # a cold bash fills BASH_ARGC when it is first named at the top
        # level; the pre-started one filled it while sourcing its loader
        w_set = section(w_rest, "set early", "environ").split("\n")
        c_set = section(c_rest, "set early", "environ").split("\n")
        assert 'BASH_ARGC=([0]="0")' in w_set and "BASH_ARGC=()" in c_set, (w_set, c_set)
        assert [v for v in w_set if v != 'BASH_ARGC=([0]="0")'] == [v for v in c_set if v != "BASH_ARGC=()"]
        w_rest = w_rest.replace('\nBASH_ARGC=([0]="0")\n', "\nBASH_ARGC=()\n", 1)
        # everything else, line for line
        assert w_rest == c_rest
        assert c_first == "start [/usr/bin/bash] [0] [1] [0] [main.sh] [0] [] [hB] [1] [/usr/bin/bash] ps0 []"
        out = "\n" + w_rest
        assert "\nps [0 1] [1]\n" in out
        assert "\nstack [] [0] [main.sh] [0] [] [7]\n" in out
        assert "\n0 NULL\ncaller 0\n" in out
        assert "\nin f [main.sh main.sh] [10 0] [f main] [9]\n10 main.sh\n" in out
        env = section(out, "env", "fds")
        assert "BASH_ENV" not in env and "_crucible" not in out and "SHLVL=1" in env
        # only stdio and the script: the launcher's descriptors are closed
        assert section(out, "fds", "child fds") == "0 -> /memfd:crucible-stdin\n1 -> pipe\n2 -> pipe\n255 -> /sandbox/main.sh"
        assert section(out, "cmdline", "declare -p") == "/usr/bin/bash main.sh "
        decl = section(out, "declare -p", "declare -f")
        assert 'declare -i SECONDS="0"' in decl and "PIPESTATUS" in decl
        assert section(out, "declare -f", "set -o") == ""
        assert section(out, "trap -p", "times") == ""
        assert "\nstdin [typed line]\nrest [more\n]\n" in out
        assert warm["exitCode"] == 3 and warm["outcome"] == "error"
        # a top-level return fails as in a script (line 31 of the probe)
        assert re.search(r"main\.sh: line \d+: return: can only `return' from a function or sourced script",
                         warm["stderr"]), warm["stderr"]
        assert "after return 2" in out
    finally:
        finish(c)


def test_prestarted_bash_runs_programs_as_cold():
    big_body = "".join("v%d=%d\n" % (i, i) for i in range(7000))
    programs = {
        # a syntax error: the lines before it ran, its message and line
        "syntax": AGE + "echo before\nif then fi\necho never\n",
        # set -e stops at the first failure with its status
        "errexit": AGE + "set -e\necho a\nfalse\necho b\n",
        # larger than 64 KiB (bash reads its script in blocks), then lines
        # that show the whole text was read from its start
        "big": AGE + "echo first $LINENO\n" + big_body + 'echo "last $v6999 $LINENO"\nexit 5\n',
        # no newline at the end
        "no_newline": AGE + "echo one\necho two $LINENO",
        # $0, arguments and stdin
        "stdin": AGE + 'echo "$0 $# $BASH_SOURCE"; cat; echo "rc $?"',
    }
    assert len(programs["big"]) > 65536
    c = Client()
    try:
        c.initialize()
        run(c, "true")  # bash asked for: the pool keeps one
        res = {}
        for name, code in programs.items():
            warm, cold, w_out, c_out = warm_and_cold(c, code, stdin="in\nput" if name == "stdin" else None)
            assert w_out == c_out, name
            res[name] = (warm, w_out)
        warm, out = res["syntax"]
        assert out == "before\n" and warm["exitCode"] == 2
        assert "main.sh: line 4: syntax error near unexpected token `then'" in warm["stderr"], warm["stderr"]
        warm, out = res["errexit"]
        assert out == "a\n" and warm["exitCode"] == 1
        warm, out = res["big"]
        assert out == "first 3\nlast 6999 7004\n" and warm["exitCode"] == 5
        warm, out = res["no_newline"]
        assert out == "one\ntwo 4\n" and warm["exitCode"] == 0
        warm, out = res["stdin"]
        assert out == "main.sh 0 main.sh\nin\nputrc 0\n" and warm["exitCode"] == 0
    finally:
        finish(c)
