"""Pre-started interpreters (the server's warm pool): a program run in a
sandbox whose interpreter started before the request cannot tell it from a
cold run (argv, __main__, __file__, globals, sys.modules, sys.flags, the
environment, stdin, tracebacks and their line numbers, exit status), and two
consecutive warm runs share nothing (files, environment, memory, processes).

A cold run is forced by asking for another disk size than the default (a
warm sandbox's tmpfs sizes are fixed when it is made); that the warm run
really ran in a pre-started interpreter is checked from inside: its process
is older than the request."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Client, finish  # noqa: E402

# Seconds the interpreter had been alive when the program's first line ran;
# printed first, then stripped before comparing.
AGE = r"""
_st = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
_age = float(open('/proc/uptime').read().split()[0]) - int(_st[19]) / __import__('os').sysconf('SC_CLK_TCK')
print('AGE %.3f' % _age)
del _st, _age
"""

PROBE = """import os, sys
mods = sorted(sys.modules)
""" + AGE + """
print(sys.argv, sys.orig_argv, __name__, __doc__, __file__, __cached__, __spec__, __package__)
print(type(__loader__).__name__, getattr(__loader__, 'path', None), getattr(__loader__, 'name', None))
print(sorted(k for k in globals() if k not in ('mods',)))
print(sys.flags)
print(sys.path)
print(mods)
import __main__
print(__main__.__dict__ is globals(), __main__.__file__)
print(sorted(os.environ.items()))
print(os.getcwd(), sorted(os.listdir('.')))
print(repr(open('/proc/self/cmdline').read()))
print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
print(repr(sys.stdin.read()))
print(open(__file__).read() == open('/sandbox/main.py').read(), len(open(__file__).read()))

def inner(x):
    return {}[x]

def outer():
    try:
        inner('k')
    except KeyError as e:
        raise ValueError('wrapped') from e

outer()
"""


def run(c, code, lim=None, stdin=None, language="python"):
    p = {"code": code, "language": language}
    if lim:
        p["limits"] = lim
    if stdin is not None:
        p["stdin"] = stdin
    r = c.call("crucible/run", p, timeout=60)
    assert "result" in r, r
    return r["result"]


def split_age(res):
    """(the interpreter's age in s, the rest of stdout); age None when the
    program never ran its first line (a syntax error)."""
    first, _, rest = res["stdout"].partition("\n")
    if not first.startswith("AGE "):
        assert "SyntaxError" in res["stderr"], res
        return None, res["stdout"]
    return float(first[4:]), rest


def settle(seconds=1.5):
    # the pool's sandboxes start their interpreters in the background
    time.sleep(seconds)


def test_prestarted_python_cannot_be_told_from_cold():
    c = Client()
    try:
        c.initialize()
        settle()
        t0 = time.monotonic()
        warm = run(c, PROBE, stdin="line one\nline two\n")
        req_s = time.monotonic() - t0
        cold = run(c, PROBE, lim={"diskMb": 63}, stdin="line one\nline two\n")
        w_age, w_out = split_age(warm)
        c_age, c_out = split_age(cold)
        # the warm run's interpreter started before its request was sent;
        # the cold one's after
        assert w_age > req_s + 0.3, (w_age, req_s)
        assert c_age < 0.5 + req_s, c_age
        for k in ("outcome", "exitCode", "signal", "stderr", "diagnostics", "truncated"):
            assert warm[k] == cold[k], (k, warm[k], cold[k])
        assert w_out == c_out
        assert warm["outcome"] == "error" and warm["exitCode"] == 1
        # the traceback names the program's file and lines, chained as cold
        assert 'File "/sandbox/main.py", line 29, in outer' in warm["stderr"]
        assert 'File "/sandbox/main.py", line 25, in inner' in warm["stderr"]
        assert 'File "/sandbox/main.py", line 33, in <module>' in warm["stderr"]
        assert "The above exception was the direct cause" in warm["stderr"]
        assert "_crucible" not in warm["stdout"] + warm["stderr"]
        assert "'line one\\nline two\\n'" in w_out
        assert warm["diagnostics"] and warm["diagnostics"][0]["range"]["start"]["line"] in (24, 30, 32)
    finally:
        finish(c)


ENDINGS = [
    ("import sys\nprint('x')\nsys.exit(3)\n", None),
    ("import sys\nsys.exit('bye now')\n", None),
    ("x = (\n", None),                                  # SyntaxError: no traceback header, as cold
    ("raise KeyboardInterrupt\n", None),                # death by SIGINT after finalisation
    ("import atexit\natexit.register(print, 'at exit')\nprint(input())\n", "typed\n"),
    ("import warnings\nwarnings.warn('careful', DeprecationWarning)\n", None),
    ("import os\nos._exit(7)\n", None),
]


def test_prestarted_python_endings_match_cold():
    c = Client()
    try:
        c.initialize()
        for code, stdin in ENDINGS:
            settle(1.0)
            warm = run(c, AGE + code, stdin=stdin)
            cold = run(c, AGE + code, lim={"diskMb": 63},
                       stdin=stdin)
            w_age, w_out = split_age(warm)
            _, c_out = split_age(cold)
            assert w_age is None or w_age > 0.3, (code, w_age)
            assert w_out == c_out, code
            for k in ("outcome", "exitCode", "signal", "stderr", "diagnostics"):
                assert warm[k] == cold[k], (code, k, warm[k], cold[k])
    finally:
        finish(c)


def test_consecutive_warm_runs_share_nothing():
    """Run 1 leaves files in every writable place, an environment variable,
    values in interpreter state and a process behind; run 2, in the next
    warm sandbox of the pool, sees none of it."""
    leave = AGE + """
import os, sys, builtins, subprocess
marker = 'crucible-leak-' + str(os.getpid() * 7919)
for d in ('/sandbox', '/tmp', '/dev/shm'):
    open(d + '/leak.txt', 'w').write(marker)
os.environ['CRUCIBLE_LEAK'] = marker
builtins.crucible_leak = sys.crucible_leak = os.crucible_leak = marker
big = bytearray(marker.encode()) * 100000
subprocess.Popen(['sleep', '30'], start_new_session=True)
print('left', marker)
"""
    look = AGE + """
import os, sys, builtins, gc
found = []
for d in ('/sandbox', '/tmp', '/dev/shm'):
    found += [d + '/' + f for f in os.listdir(d) if f != 'main.py']
found += [k for k in os.environ if 'LEAK' in k]
found += [m.__name__ for m in (builtins, sys, os) if hasattr(m, 'crucible_leak')]
found += [o[:40] for o in gc.get_objects() if isinstance(o, (bytes, bytearray)) and b'crucible-leak-' in o]
procs = []
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            procs.append(open('/proc/%s/cmdline' % p).read().replace('\\0', ' ').strip())
        except OSError:
            pass
found += [p for p in procs if 'sleep' in p]
print('found', found)
"""
    c = Client()
    try:
        c.initialize()
        settle()
        r1 = run(c, leave)
        a1, out1 = split_age(r1)
        assert r1["outcome"] == "ok" and out1.startswith("left crucible-leak-"), r1
        settle()
        r2 = run(c, look)
        a2, out2 = split_age(r2)
        assert a1 > 0.3 and a2 > 0.3, (a1, a2)  # both in pre-started interpreters
        assert r2["outcome"] == "ok", r2
        assert out2 == "found []\n", out2
    finally:
        finish(c)


def test_prestarted_sandbox_has_the_limits_of_the_request():
    """A warm sandbox was made with the default limits; a request's own
    memory, pids and time limits apply to it from its first line."""
    c = Client()
    try:
        c.initialize()
        settle()
        code = AGE + "x = bytearray(200 * 1024 * 1024)\nprint('allocated')\n"
        r = run(c, code, lim={"memoryMb": 64})
        age, _ = split_age(r)
        assert age > 0.3
        assert r["outcome"] == "oom", r
        settle()
        r = run(c, AGE + "while True:\n    pass\n", lim={"timeoutMs": 500})
        assert r["outcome"] == "timeout", r
        assert r["durationMs"] < 5000
        settle()
        code = AGE + ("import os\nn = 0\ntry:\n    for i in range(64):\n        if os.fork() == 0:\n"
                      "            import time; time.sleep(5); os._exit(0)\n        n += 1\n"
                      "except OSError as e:\n    print('fork failed after', n)\n")
        r = run(c, code, lim={"pids": 8, "timeoutMs": 3000})
        _, out = split_age(r)
        assert "fork failed after" in out, r
        assert int(out.split()[-1]) < 8, out
    finally:
        finish(c)


JS_PROBE = r"""console.log('AGE ' + process.uptime().toFixed(3));
console.log(JSON.stringify([process.argv, process.execArgv, require.main === module, module.id, __filename,
  __dirname, Object.keys(require.cache), module.parent, process.mainModule === module, typeof exports,
  this === module.exports, process.cwd(), require('fs').readdirSync('.'),
  require('fs').readFileSync('/proc/self/cmdline', 'utf8'), Object.entries(process.env).sort()]));
console.log(JSON.stringify(require('fs').readFileSync(0, 'utf8')));
process.nextTick(() => console.log('tick'));
Promise.resolve().then(() => console.log('micro'));
setTimeout(() => { console.log('timer'); inner(); }, 0);
function inner() { throw new TypeError('boom'); }
"""


def test_prestarted_node_cannot_be_told_from_cold():
    c = Client()
    try:
        c.initialize()
        run(c, "1", language="javascript")  # javascript was asked for: the pool keeps one
        settle(2.0)
        warm = run(c, JS_PROBE, language="javascript", stdin="from stdin\n")
        cold = run(c, JS_PROBE, language="javascript", stdin="from stdin\n", lim={"diskMb": 63})
        w_age, w_out = split_age(warm)
        c_age, c_out = split_age(cold)
        assert w_age > 0.3 and c_age < w_age, (w_age, c_age)
        assert w_out == c_out
        assert '"from stdin\\n"' in w_out and "tick\nmicro\ntimer\n" in w_out
        for k in ("outcome", "exitCode", "signal", "diagnostics"):
            assert warm[k] == cold[k], (k, warm[k], cold[k])
        assert warm["exitCode"] == 1
        # the same error, lines and frames; only node's outermost internal
        # frame differs (docs/sandbox.md)
        assert "/sandbox/main.js:9" in warm["stderr"] and "TypeError: boom" in warm["stderr"]
        user = [ln for ln in warm["stderr"].splitlines() if "node:internal" not in ln]
        assert user == [ln for ln in cold["stderr"].splitlines() if "node:internal" not in ln]
    finally:
        finish(c)


SH_PROBE = r"""read up _ < /proc/uptime; up=${up/./}; read -a st < /proc/$$/stat
age=$(( up - st[21] )); printf 'AGE %d.%02d\n' $((age / 100)) $((age % 100)); unset up st age
echo "$0 $# $BASH $SHLVL $$ $-"
env | sort
set | grep -v -e '^_=' -e '^BASHPID=' -e '^RANDOM=' -e '^SRANDOM=' -e '^EPOCH' -e '^SECONDS=' -e '^BASH_ARGC=' | md5sum
shopt | md5sum
ls -la /proc/self/fd | wc -l
read x; echo "got $x"
nosuch_command_xyz
exit 3
"""


# BASH_ARGC as `set` lists it before the program names it is one of the
# pre-started bash's documented differences, asserted in
# test_prestart_bash.py with everything else a bash program can see.
def test_prestarted_bash_cannot_be_told_from_cold():
    c = Client()
    try:
        c.initialize()
        run(c, "true", language="bash")  # bash was asked for: the pool keeps one
        settle(2.0)
        warm = run(c, SH_PROBE, language="bash", stdin="typed\n")
        cold = run(c, SH_PROBE, language="bash", stdin="typed\n", lim={"diskMb": 63})
        w_age, w_out = split_age(warm)
        c_age, c_out = split_age(cold)
        assert w_age > 0.3 and c_age < w_age, (w_age, c_age)
        assert w_out == c_out
        assert "got typed" in w_out and w_out.startswith("main.sh 0 /usr/bin/bash 1 2 hB\n"), w_out
        for k in ("outcome", "exitCode", "signal", "stderr", "diagnostics"):
            assert warm[k] == cold[k], (k, warm[k], cold[k])
        assert warm["exitCode"] == 3 and "line 9: nosuch_command_xyz" in warm["stderr"]
    finally:
        finish(c)
