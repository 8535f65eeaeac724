/* The launchers of pre-started interpreters: the first program a warm
 * sandbox's interpreter runs, in place of the user's script and under the
 * script's own name, that waits for the real program on a pipe, puts it
 * where the script is, and runs it as the interpreter would have run the
 * script itself (docs/sandbox.md, "Pre-started interpreters"). */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "internal.h"

/* Python. Started as `python3 main.py` exactly like a cold run, so
 * sys.argv, sys.orig_argv, sys.flags, sys.path[0], /proc/self/cmdline and
 * __main__'s __file__/__loader__/__cached__ are the interpreter's own. The
 * launcher then:
 *  - snapshots its globals before binding any name: that is exactly the
 *    namespace a fresh script gets;
 *  - reads the program from descriptor FD to end of file and closes it;
 *  - writes it over main.py, so tracebacks (linecache) show its lines;
 *  - a program holding a NUL byte, which compile() refuses while the
 *    interpreter's file reader copes in its own way, gets the interpreter
 *    itself: exec of the same command line (a cold start, same pid);
 *  - puts a fresh __main__ module with that namespace into sys.modules and
 *    executes the program compiled under the script's file name;
 *  - reports an uncaught exception the way the interpreter does (through
 *    sys.excepthook, exit status 1; KeyboardInterrupt: finalisation, then
 *    death by SIGINT), with its traceback starting at the program's own
 *    module frame, so the launcher never shows. SystemExit passes through
 *    to the interpreter unchanged.
 * Everything it uses (os, sys, builtins) is loaded by every start-up
 * already: sys.modules is the same as a cold run's. Names start with
 * "_crucible_" only in the launcher's own namespace, which the program
 * never sees. No docstring: __doc__ stays None. */
static const char PY_LAUNCHER[] =
    "_crucible_g = dict(globals())\n"
    "import os as _crucible_os, sys as _crucible_sys\n"
    "_crucible_b = bytearray()\n"
    "while True:\n"
    "    _crucible_c = _crucible_os.read(%d, 1 << 16)\n"
    "    if not _crucible_c:\n"
    "        break\n"
    "    _crucible_b += _crucible_c\n"
    "_crucible_os.close(%d)\n"
    "del _crucible_c\n"
    "with open(_crucible_g['__file__'], 'wb') as _crucible_w:\n"
    "    _crucible_w.write(_crucible_b)\n"
    "del _crucible_w\n"
    "if 0 in _crucible_b:\n"
    "    _crucible_os.execv(_crucible_sys.executable, _crucible_sys.orig_argv)\n"
    "_crucible_m = type(_crucible_sys)('__main__')\n"
    "_crucible_m.__dict__.update(_crucible_g)\n"
    "_crucible_sys.modules['__main__'] = _crucible_m\n"
    "_crucible_x = None\n"
    "try:\n"
    "    _crucible_x = compile(bytes(_crucible_b), _crucible_g['__file__'], 'exec', dont_inherit=True)\n"
    "    del _crucible_b\n"
    "    exec(_crucible_x, _crucible_m.__dict__)\n"
    "except SystemExit:\n"
    "    raise\n"
    "except BaseException as _crucible_e:\n"
    "    _crucible_t = _crucible_e.__traceback__\n"
    "    while _crucible_t is not None and _crucible_t.tb_frame.f_code is not _crucible_x:\n"
    "        _crucible_t = _crucible_t.tb_next\n"
    "    _crucible_e.__traceback__ = _crucible_t\n"
    "    _crucible_sys.last_type, _crucible_sys.last_value, _crucible_sys.last_traceback = "
    "type(_crucible_e), _crucible_e, _crucible_t\n"
    "    _crucible_sys.excepthook(type(_crucible_e), _crucible_e, _crucible_t)\n"
    "    if isinstance(_crucible_e, KeyboardInterrupt):\n"
    "        _crucible_th = _crucible_sys.modules.get('threading')\n"
    "        if _crucible_th is not None:\n"
    "            _crucible_th._shutdown()\n"
    "        import atexit as _crucible_a, signal as _crucible_s\n"
    "        _crucible_a._run_exitfuncs()\n"
    "        for _crucible_f in (_crucible_sys.stdout, _crucible_sys.stderr):\n"
    "            try:\n"
    "                _crucible_f.flush()\n"
    "            except Exception:\n"
    "                pass\n"
    "        _crucible_s.signal(2, _crucible_s.SIG_DFL)\n"
    "        _crucible_os.kill(_crucible_os.getpid(), 2)\n"
    "    del _crucible_e, _crucible_t\n"
    "    raise SystemExit(1)\n";

/* Node. Started as `node main.js` like a cold run (process.argv,
 * process.execArgv, /proc/self/cmdline are node's own). The loader reads
 * the program from FD, writes it over main.js, drops itself from the
 * module cache and lets node's own entry point load main.js as the main
 * module on the next tick: require.main, module.id '.', process.mainModule,
 * require.cache, __filename and the CommonJS/ES module decision are node's.
 * Deferring to the tick keeps the loader's frames out of every stack; the
 * one trace left is the outermost internal frame of an uncaught error's
 * stack (process.processTicksAndRejections instead of
 * node:internal/main/run_main_module). */
static const char JS_LAUNCHER[] =
    "const fs = require('fs');\n"
    "const src = fs.readFileSync(%d);\n"
    "fs.closeSync(%d);\n"
    "fs.writeFileSync(__filename, src);\n"
    "const Module = require('module');\n"
    "delete Module._cache[__filename];\n"
    "process.nextTick(Reflect.apply, Module.runMain, Module, []);\n";

/* Bash. Started as `bash main.sh` like a cold run, with BASH_ENV=main.sh
 * in its environment: a non-interactive bash sources $BASH_ENV after its
 * own start-up and before it opens its script, so main.sh holds this
 * loader first, and by the time bash opens main.sh to run it, the
 * program. The loader
 *  - keeps `$_` as bash set it at start (the path it was started as);
 *  - waits for end of file on descriptor FD (the server closes it once the
 *    program's text is in the memfd TEXT_FD: a seekable file, which `read`
 *    reads in blocks, where a pipe is read a byte per system call);
 *  - reads the text (the read builtin: exact bytes up to the first NUL;
 *    a program holding a NUL never comes here, sbx__prelude_accepts),
 *    closes both descriptors and writes the text over main.sh;
 *  - restarts SECONDS, so it counts from the program's start;
 *  - unsets its variables and BASH_ENV, in one last command whose last
 *    argument is the saved `$_` (eval's own argument, behind a comment).
 * Then bash goes on as in a cold run: it opens main.sh and reads the
 * program from its first byte. Nothing is exec'd: the start-up is paid
 * before the request. It runs no other command, defines no function,
 * sets no option or trap, and its variables are gone; what a program can
 * still tell (docs/sandbox.md): PIPESTATUS is (0) before its first command
 * where a cold run has none, BASH_ARGC was filled by the sourcing (a cold
 * bash fills it when first named: `set` shows the difference before), and
 * /proc/self/environ (the environment bash was started with) still holds
 * BASH_ENV. */
static const char SH_LAUNCHER[] =
    "_crucible_u=$_\n"
    "read -r -u %d _crucible_src\n"
    "IFS= read -r -d '' -u %d _crucible_src\n"
    "exec %d<&- %d<&-\n"
    "printf '%%s' \"$_crucible_src\" > \"$0\"\n"
    "SECONDS=0\n"
    "eval 'unset -v _crucible_src _crucible_u BASH_ENV #' \"$_crucible_u\"\n";

/* Bash finds its launcher through BASH_ENV. */
static const char *const SH_ENV[] = {"BASH_ENV", "main.sh", NULL, NULL};

bool sbx__prelude_has(sbx_lang lang) {
  return lang == SBX_LANG_PYTHON || lang == SBX_LANG_JAVASCRIPT || lang == SBX_LANG_BASH;
}

bool sbx__prelude_text_fd(sbx_lang lang) {
  return lang == SBX_LANG_BASH;
}

const char *const *sbx__prelude_env(sbx_lang lang) {
  return lang == SBX_LANG_BASH ? SH_ENV : NULL;
}

bool sbx__prelude_accepts(sbx_lang lang, const char *code, size_t len) {
  return lang != SBX_LANG_BASH || !memchr(code, '\0', len);
}

char *sbx__prelude_script(sbx_lang lang, int fd, int text_fd) {
  if (lang == SBX_LANG_PYTHON) return xasprintf(PY_LAUNCHER, fd, fd);
  if (lang == SBX_LANG_JAVASCRIPT) return xasprintf(JS_LAUNCHER, fd, fd);
  if (lang == SBX_LANG_BASH) return xasprintf(SH_LAUNCHER, fd, text_fd, fd, text_fd);
  return NULL;
}
