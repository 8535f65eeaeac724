"""A corpus of realistic wrong first answers, replayed through the real server
by replay_wrong_answers.py (the fake LLM answers each question wrong first,
then right).

Each case:
  id        short name
  lang      python | javascript | bash
  cls       the class of mistake (the issue's classes)
  question  what was asked
  wrong     the wrong first answer: (imports, code) or (imports, code, test)
  fixed     the right answer the model gives after the feedback
  static    True when the interpreter's compiler (py_compile, node --check,
            bash -n) or an import/name lookup rejects it without running:
            it must be caught with 0 sandbox runs
  error     text of the exact error that must reach the model (a substring of
            what the interpreter or the checks say)
  line      the line of the joined program (imports, then code, then test;
            1-based) the feedback must name (a tuple: any of them — a loop's
            condition or body); None when there is none
  repeat    the model sends the wrong answer twice (identical-answer check)
"""

P, J, B = "python", "javascript", "bash"


def case(id, lang, cls, question, wrong, fixed, static, error, line, repeat=False):
    return dict(id=id, lang=lang, cls=cls, question=question, wrong=wrong, fixed=fixed, static=static,
                error=error, line=line, repeat=repeat)


OK_PY = ("", "print(42)")
OK_JS = ("", "console.log(42);")
OK_SH = ("", "echo 42")

CASES = [
    # ---- Python: caught by the compiler ----
    case("py-unexpected-indent", P, "indentation", "print the sum of 1..10",
         ("", "total = 0\nfor i in range(11):\n    total += i\n        print(total)"), ("", "print(sum(range(11)))"),
         True, "unexpected indent", 4),
    case("py-unindent-mismatch", P, "indentation", "print the squares of 1..3",
         ("", "for i in range(1, 4):\n        sq = i * i\n    print(sq)"),
         ("", "for i in range(1, 4):\n    print(i * i)"), True, "unindent does not match", 3),
    case("py-expected-block", P, "indentation", "print each letter of 'abc'",
         ("", "for ch in 'abc':\nprint(ch)"), ("", "for ch in 'abc':\n    print(ch)"),
         True, "expected an indented block", 2),
    case("py-taberror", P, "indentation", "print 1 and 2 when x is set",
         ("", "x = 1\nif x:\n        print(1)\n\tprint(2)"), ("", "x = 1\nif x:\n    print(1)\n    print(2)"),
         True, "inconsistent use of tabs", 4),
    case("py2-print", P, "python 2 syntax", "print hello",
         ("", "name = 'world'\nprint 'hello', name"), ("", "name = 'world'\nprint('hello', name)"),
         True, "Missing parentheses in call to 'print'", 2),
    case("py2-except-comma", P, "python 2 syntax", "print the value of int('x') or an error message",
         ("", "try:\n    print(int('x'))\nexcept ValueError, e:\n    print('bad', e)"),
         ("", "try:\n    print(int('x'))\nexcept ValueError as e:\n    print('bad', e)"),
         True, "multiple exception types must be parenthesized", 3),
    case("py2-backticks", P, "python 2 syntax", "print the repr of 5",
         ("", "x = 5\nprint(`x`)"), ("", "x = 5\nprint(repr(x))"), True, "invalid syntax", 2),
    case("py2-diamond", P, "python 2 syntax", "print whether 1 differs from 2",
         ("", "print(1 <> 2)"), ("", "print(1 != 2)"), True, "invalid syntax", 1),
    case("py2-exec", P, "python 2 syntax", "run a statement and print x",
         ("", "exec 'x = 3'\nprint(x)"), ("", "x = 3\nprint(x)"),
         True, "Missing parentheses in call to 'exec'", 1),
    case("py-truncated-call", P, "truncation", "print the max of three numbers",
         ("", "nums = [3, 9, 4]\nprint(max(nums)"), ("", "nums = [3, 9, 4]\nprint(max(nums))"),
         True, "'(' was never closed", 2),
    case("py-truncated-expr", P, "truncation", "print 2 + 3",
         ("", "def f(a):\n    return a +\nprint(f(2))"), ("", "def f(a):\n    return a + 3\nprint(f(2))"),
         True, "invalid syntax", 2),
    case("py-missing-colon", P, "syntax", "print a greeting from a function",
         ("", "def greet()\n    print('hi')\ngreet()"), ("", "def greet():\n    print('hi')\ngreet()"),
         True, "expected ':'", 1),
    case("py-return-outside", P, "syntax", "print 7",
         ("", "x = 7\nprint(x)\nreturn x"), ("", "x = 7\nprint(x)"), True, "'return' outside function", 3),
    case("py-dup-arg", P, "syntax", "print the sum of two numbers with a function",
         ("", "def add(a, a):\n    return a + a\nprint(add(1, 2))"),
         ("", "def add(a, b):\n    return a + b\nprint(add(1, 2))"),
         True, "duplicate argument 'a'", 1),
    case("py-octal", P, "python 2 syntax", "print the permissions 0777 in octal",
         ("", "mode = 0777\nprint(oct(mode))"), ("", "mode = 0o777\nprint(oct(mode))"),
         True, "leading zeros", 1),
    # ---- Python: imports ----
    case("py-hallucinated-module", P, "hallucinated module", "print the current time as ISO",
         ("import timeutils", "print(timeutils.now_iso())"),
         ("import datetime", "print(datetime.datetime.now().isoformat())"), True, "timeutils", 1),
    case("py-not-installed", P, "not-installed package", "fetch nothing; print the mean of 1,2,3 with numpy",
         ("import numpy as np", "print(np.mean([1, 2, 3]))"),
         ("import statistics", "print(statistics.mean([1, 2, 3]))"), True, "numpy", 1),
    case("py-from-collections-mapping", P, "hallucinated attribute", "print whether {} is a Mapping",
         ("from collections import Mapping", "print(isinstance({}, Mapping))"),
         ("from collections.abc import Mapping", "print(isinstance({}, Mapping))"),
         True, "cannot import name 'Mapping' from 'collections'", 1),
    case("py-from-typing-typo", P, "hallucinated attribute", "print an empty typed dict",
         ("from typing import Dictionary", "d: Dictionary = {}\nprint(d)"),
         ("from typing import Dict", "d: Dict = {}\nprint(d)"),
         True, "cannot import name 'Dictionary' from 'typing'", 1),
    # ---- Python: found by running ----
    case("py-attr-at-runtime", P, "hallucinated attribute", "print the square root of 16",
         ("import math", "print(math.sqroot(16))"), ("import math", "print(math.sqrt(16))"),
         False, "AttributeError: module 'math' has no attribute 'sqroot'", 2),
    case("py-undefined-name", P, "undefined name", "print the total of a list",
         ("", "values = [1, 2, 3]\nprint(totl)"), ("", "values = [1, 2, 3]\nprint(sum(values))"),
         False, "NameError: name 'totl' is not defined", 2),
    case("py-wrong-signature", P, "wrong signature", "print 'a-b' joined from a list",
         ("", "parts = ['a', 'b']\nprint('-'.join(parts, ''))"), ("", "parts = ['a', 'b']\nprint('-'.join(parts))"),
         False, "TypeError: str.join() takes exactly one argument (2 given)", 2),
    case("py-missing-file", P, "missing file", "print the number of lines of data.csv",
         ("", "with open('data.csv') as f:\n    print(sum(1 for _ in f))"),
         ("", "import os\nprint(sum(1 for _ in open('data.csv')) if os.path.exists('data.csv') else 0)"),
         False, "FileNotFoundError", 1),
    case("py-network", P, "network use", "print the status of example.com",
         ("import urllib.request", "r = urllib.request.urlopen('http://127.0.0.1:9/')\nprint(r.status)"),
         ("", "print('no network in the sandbox')"), False, "URLError", 2),
    case("py-input", P, "input()", "print the square of a number",
         ("", "n = int(input('n? '))\nprint(n * n)"), ("", "n = 7\nprint(n * n)"),
         False, "EOFError", 1),
    case("py-infinite-loop", P, "infinite loop", "print the first power of two above 1000",
         ("", "n = 1\nwhile n != 1000:\n    n *= 2\nprint(n)"),
         ("", "n = 1\nwhile n <= 1000:\n    n *= 2\nprint(n)"), False, "wall-time limit of 3 s", (2, 3)),
    case("py-memory", P, "memory blow-up", "print the length of a big list",
         ("", "chunks = []\nwhile True:\n    chunks.append(b'x' * (50 << 20))\nprint(len(chunks))"),
         ("", "print(len([0] * 1000))"), False, "memory limit of", None),
    case("py-empty-output", P, "empty output", "print the sum of 1..100",
         ("", "total = sum(range(101))"), ("", "print(sum(range(101)))"), False, "printed nothing", None),
    case("py-wrong-output", P, "wrong output", "print the 10th Fibonacci number (55)",
         ("", "def fib(n):\n    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, a + b\n    return a\n"
              "print(fib(10))", "assert fib(10) == 55, fib(10)"),
         ("", "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
              "print(fib(10))", "assert fib(10) == 55, fib(10)"),
         False, "AssertionError: 34", 7),
    case("py-repeat-loop", P, "identical resubmission", "print the first multiple of 7 above 50",
         ("", "n = 50\nwhile n % 7 != 0 or n == 50:\n    n += 0\nprint(n)"),
         ("", "n = 51\nwhile n % 7:\n    n += 1\nprint(n)"), False, "wall-time limit of 3 s", (2, 3), repeat=True),
    case("py-library-traceback", P, "library error", "parse the JSON text '{bad}' and print it",
         ("import json", "print(json.loads('{bad}'))"), ("import json", "print(json.loads('{\"bad\": 1}'))"),
         False, "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes", 2),
    # ---- JavaScript ----
    case("js-unclosed-block", J, "truncation", "print 1..3",
         ("", "for (let i = 1; i <= 3; i++) {\n  console.log(i);\n"), ("", "for (let i = 1; i <= 3; i++) {\n  console.log(i);\n}"),
         True, "missing '}'", 1),
    case("js-missing-paren", J, "syntax", "print the max of two numbers",
         ("", "console.log(Math.max(2, 5);"), ("", "console.log(Math.max(2, 5));"), True, "')'", 1),
    # node 20.19+ runs a main.js with import statements as ESM: require is then undefined
    case("js-esm-cjs-mix", J, "CJS/ESM mix", "print the platform's path separator and the cwd",
         ("import path from 'path';", "const os = require('os');\nconsole.log(path.sep, os.platform());"),
         ("const path = require('path');\nconst os = require('os');", "console.log(path.sep, os.platform());"),
         False, "require is not defined in ES module scope", 2),
    case("js-missing-module", J, "not-installed package", "print a random id with uuid",
         ("const { v4 } = require('uuid');", "console.log(v4());"),
         ("const crypto = require('crypto');", "console.log(crypto.randomUUID());"), True, "uuid", 1),
    case("js-undefined", J, "undefined name", "print the sum of [1,2,3]",
         ("", "const xs = [1, 2, 3];\nconsole.log(xs.reduce((a, b) => a + b, 0) + totl);"),
         ("", "const xs = [1, 2, 3];\nconsole.log(xs.reduce((a, b) => a + b, 0));"),
         False, "ReferenceError: totl is not defined", 2),
    case("js-missing-file", J, "missing file", "print the size of data.json",
         ("const fs = require('fs');", "console.log(fs.readFileSync('data.json').length);"),
         ("const fs = require('fs');", "console.log(fs.existsSync('data.json') ? 1 : 0);"),
         False, "ENOENT", 2),
    case("js-infinite-loop", J, "infinite loop", "print 10",
         ("", "let i = 0;\nwhile (i < 10) { }\nconsole.log(i);"), ("", "console.log(10);"),
         False, "wall-time limit of 3 s", None),
    case("js-empty-output", J, "empty output", "print the product of 6 and 7",
         ("", "const p = 6 * 7;"), ("", "console.log(6 * 7);"), False, "printed nothing", None),
    # ---- Bash ----
    case("sh-missing-fi", B, "truncation", "print yes when 1 equals 1",
         ("", "if [ 1 -eq 1 ]; then\n  echo yes"), ("", "if [ 1 -eq 1 ]; then\n  echo yes\nfi"),
         True, "'fi'", 1),
    case("sh-stray-fi", B, "syntax", "print done",
         ("", "echo done\nfi"), ("", "echo done"), True, "fi", 2),
    case("sh-missing-command", B, "missing command", "print a CSV as a table",
         ("", "printf 'a,b\\n1,2\\n' | csvlook"), ("", "printf 'a,b\\n1,2\\n' | column -t -s,"),
         True, "csvlook", 1),
    case("sh-missing-file", B, "missing file", "print the first line of notes.txt",
         ("", "set -e\nhead -n 1 notes.txt"), ("", "[ -f notes.txt ] && head -n 1 notes.txt || echo none"),
         False, "notes.txt", None),
    case("sh-unset-var", B, "undefined name", "print the user's name from NAME",
         ("", "set -u\necho \"hello $NAME\""), ("", "echo \"hello ${NAME:-world}\""),
         False, "NAME: unbound variable", 2),
    case("sh-empty-output", B, "empty output", "print the number of files in /etc",
         ("", "n=$(ls /etc | wc -l)"), ("", "ls /etc | wc -l"), False, "printed nothing", None),
]
