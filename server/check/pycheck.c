/* What CPython's parser and compiler reject in a program that the
 * tree-sitter grammar accepts, found on the token stream of pytokens.c, one
 * logical line at a time: blocks that must be indented and lines that must
 * not be, clauses without their statement (else, except, finally), headers
 * without ':', Python 2 statements and operators, two operands in a row, an
 * operator with nothing after it, and the compiler's scope checks (return,
 * yield and await outside a function, break outside a loop, nonlocal at
 * module level, duplicate parameters, import * in a function, late
 * __future__ imports). Each error carries CPython's message and position;
 * py_check returns the one CPython would report. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "python.h"

/* What opened an indented block. */
typedef enum frame_kind { F_OTHER = 0, F_DEF, F_ASYNC_DEF, F_CLASS, F_LOOP, F_MATCH } frame_kind;

/* The last statement at an indentation depth, for the clauses that must
 * follow one (elif, else, except, finally). */
typedef enum prev_kind {
  S_NONE = 0,
  S_SIMPLE,
  S_IF,      /* if / elif: elif and else may follow */
  S_LOOP,    /* for / while: else may follow */
  S_TRY,     /* try body: except or finally must follow */
  S_EXCEPT,  /* except clause: except, else, finally may follow */
  S_TRYELSE, /* else of a try: finally may follow */
} prev_kind;

#define MAXDEPTH 101

typedef struct checker {
  const char *s;
  size_t len;
  /* the logical line being collected, with each token's bracket depth */
  py_token *tok;
  int *level;
  uint8_t *flags; /* F_* of each token */
  size_t n, cap;
  int depth; /* open indented blocks */
  frame_kind frame[MAXDEPTH];
  prev_kind prev[MAXDEPTH];
  /* the previous logical line ended with ':' after a compound header: the
   * next token must be an INDENT */
  bool expect_block;
  char block_what[48];
  unsigned block_line;
  frame_kind block_frame;
  unsigned line; /* 1-based line of the token being read (counted incrementally) */
  size_t counted; /* byte up to which newlines were counted into line */
  bool seen_code; /* a statement other than the docstring and __future__ imports */
  bool seen_docstring;
  bool decorated; /* the previous logical line was a decorator */
  uint32_t bare_except[MAXDEPTH][2]; /* a bare 'except:' at this depth: its range, else 0 0 */
  /* the first error of each kind, in file order */
  py_error parse, future, symtable, compile;
} checker;

static void set_err(py_error *e, py_errkind kind, uint32_t a, uint32_t b, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_err(py_error *e, py_errkind kind, uint32_t a, uint32_t b, const char *fmt, ...) {
  if (e->kind && e->start <= a) return; /* the one earliest in the file stands */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  e->kind = kind;
  e->start = a;
  e->end = b > a ? b : a;
}

/* 1-based line of byte off, for offsets that never go backwards. */
static unsigned line_at(checker *c, size_t off) {
  if (off > c->len) off = c->len;
  if (off < c->counted) {
    /* rare: a position before the last one counted; count afresh */
    c->line = 1;
    c->counted = 0;
  }
  for (size_t k = c->counted; k < off; k++) c->line += c->s[k] == '\n';
  c->counted = off;
  return c->line;
}

/* Token t is the literal lit (a string literal: its length is known at
 * compile time, which made the checks 3x faster than strlen). */
#define is(c, t, lit) \
  ((t)->end - (t)->start == sizeof(lit "") - 1 && !memcmp((c)->s + (t)->start, lit, sizeof(lit "") - 1))

static bool is_xdigit_c(char ch) {
  return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}

static bool is_word(const checker *c, const py_token *t, const char *word) {
  size_t n = strlen(word);
  return t->end - t->start == n && !memcmp(c->s + t->start, word, n);
}

/* What a token can be in an expression, computed once per token (push):
 * F_KW a keyword; F_END it can end an operand (a name, number, string,
 * closing bracket, '...', None/True/False); F_START it can only start one
 * (so one right after an operand is an error); F_WANTS an operand must come
 * after it (an operator, or a keyword such as 'in', 'import', 'for'; '*' and
 * '**' are left out for bare '*' and 'import *'); F_CLOSES it cannot come
 * right after such an operator; F_OPKW a keyword that cannot start an operand
 * ("for in x"); F_STMTKW a keyword that starts a statement, so cannot follow
 * an operand ("io import x"). */
enum { F_KW = 1, F_END = 2, F_START = 4, F_WANTS = 8, F_CLOSES = 16, F_OPKW = 32, F_STMTKW = 64 };

/* Keywords and operators with their classes, lengths known up front: the
 * classes of every token are computed once, without strlen (the checks cost
 * 5x more when they compared each token with each word by strlen+memcmp). */
typedef struct word_class {
  const char *w;
  uint8_t len, flags;
} word_class;

#define W(s, f) {s, sizeof(s) - 1, f}
static const word_class name_classes[] = { /* sorted: compute_flags searches it */
    W("False", F_KW | F_END | F_START), W("None", F_KW | F_END | F_START),
    W("True", F_KW | F_END | F_START), W("and", F_KW | F_WANTS | F_OPKW), W("as", F_KW | F_WANTS | F_OPKW),
    W("assert", F_KW | F_WANTS | F_STMTKW), W("async", F_KW), W("await", F_KW | F_START | F_WANTS),
    W("break", F_KW | F_STMTKW), W("class", F_KW | F_STMTKW), W("continue", F_KW | F_STMTKW),
    W("def", F_KW | F_STMTKW), W("del", F_KW | F_WANTS | F_STMTKW),
    W("elif", F_KW | F_WANTS | F_STMTKW), W("else", F_KW | F_OPKW), W("except", F_KW | F_STMTKW),
    W("finally", F_KW | F_STMTKW), W("for", F_KW | F_WANTS | F_OPKW), W("from", F_KW | F_WANTS),
    W("global", F_KW | F_WANTS | F_STMTKW), W("if", F_KW | F_WANTS | F_OPKW),
    W("import", F_KW | F_WANTS | F_OPKW | F_STMTKW), W("in", F_KW | F_WANTS | F_OPKW),
    W("is", F_KW | F_WANTS | F_OPKW), W("lambda", F_KW | F_START), W("nonlocal", F_KW | F_WANTS | F_STMTKW),
    W("not", F_KW | F_WANTS), W("or", F_KW | F_WANTS | F_OPKW), W("pass", F_KW | F_STMTKW),
    W("raise", F_KW | F_STMTKW), W("return", F_KW | F_STMTKW), W("try", F_KW | F_STMTKW),
    W("while", F_KW | F_WANTS | F_STMTKW), W("with", F_KW | F_WANTS | F_STMTKW),
    W("yield", F_KW | F_STMTKW),
};
static const word_class op_classes[] = {
    W(")", F_END | F_CLOSES), W("]", F_END | F_CLOSES), W("}", F_END | F_CLOSES), W("...", F_END),
    W(",", F_CLOSES), W(":", F_CLOSES), W(";", F_CLOSES), W("=", F_WANTS | F_CLOSES),
    W("->", F_WANTS | F_CLOSES), W("+=", F_WANTS), W("-=", F_WANTS), W("*=", F_WANTS),
    W("/=", F_WANTS), W("//=", F_WANTS), W("%=", F_WANTS), W("@=", F_WANTS), W("&=", F_WANTS),
    W("|=", F_WANTS), W("^=", F_WANTS), W(">>=", F_WANTS), W("<<=", F_WANTS), W("**=", F_WANTS),
    W(":=", F_WANTS), W("/", F_WANTS), W("//", F_WANTS), W("%", F_WANTS), W("@", F_WANTS),
    W("<<", F_WANTS), W(">>", F_WANTS), W("&", F_WANTS), W("|", F_WANTS), W("^", F_WANTS),
    W("<", F_WANTS), W(">", F_WANTS), W("<=", F_WANTS), W(">=", F_WANTS), W("==", F_WANTS),
    W("!=", F_WANTS), W(".", F_WANTS), W("+", F_WANTS), W("-", F_WANTS), W("~", F_WANTS),
};
#undef W

static uint8_t compute_flags(const checker *c, const py_token *t) {
  if (t->type == PY_NUMBER || t->type == PY_STRING) return F_END | F_START;
  if (t->type == PY_NEWLINE) return F_CLOSES;
  const char *s = c->s + t->start;
  size_t n = t->end - t->start;
  if (t->type == PY_NAME) {
    /* name_classes is sorted (strcmp order): a binary search */
    if (n < 2 || n > 8) return F_END | F_START;
    size_t lo = 0, hi = ARRAY_LEN(name_classes);
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      const word_class *w = &name_classes[mid];
      int cmp = memcmp(s, w->w, n < w->len ? n : w->len);
      if (!cmp) cmp = n < w->len ? -1 : n > w->len;
      if (!cmp) return w->flags;
      if (cmp < 0) hi = mid;
      else lo = mid + 1;
    }
    return F_END | F_START;
  }
  if (t->type != PY_OP) return 0;
  for (size_t i = 0; i < ARRAY_LEN(op_classes); i++)
    if (op_classes[i].len == n && op_classes[i].w[0] == s[0] && !memcmp(op_classes[i].w, s, n))
      return op_classes[i].flags;
  return 0;
}

static uint8_t flags_of(const checker *c, const py_token *t) {
  if (t >= c->tok && t < c->tok + c->n) return c->flags[t - c->tok];
  return compute_flags(c, t); /* a token that ends the line (NEWLINE) */
}

static bool is_keyword(const checker *c, const py_token *t) { return flags_of(c, t) & F_KW; }
static bool ends_operand(const checker *c, const py_token *t) { return flags_of(c, t) & F_END; }
static bool starts_operand(const checker *c, const py_token *t) { return flags_of(c, t) & F_START; }
static bool wants_operand(const checker *c, const py_token *t) { return flags_of(c, t) & F_WANTS; }
static bool closes(const checker *c, const py_token *t) { return flags_of(c, t) & F_CLOSES; }
static bool opkw(const checker *c, const py_token *t) { return flags_of(c, t) & F_OPKW; }
static bool stmtkw(const checker *c, const py_token *t) { return flags_of(c, t) & F_STMTKW; }

static const char *compound_what(const checker *c, const py_token *t) {
  if (is(c, t, "def")) return "function definition";
  if (is(c, t, "class")) return "class definition";
  static const char *const kws[] = {"if", "elif", "else", "while", "for", "with",
                                    "try", "except", "finally", "match", "case"};
  for (size_t i = 0; i < ARRAY_LEN(kws); i++)
    if (is_word(c, t, kws[i])) return kws[i];
  return NULL;
}

static bool in_function(const checker *c) {
  for (int d = c->depth; d >= 1; d--) {
    if (c->frame[d] == F_DEF || c->frame[d] == F_ASYNC_DEF) return true;
    if (c->frame[d] == F_CLASS) return false;
  }
  return false;
}

/* The innermost function frame: F_DEF, F_ASYNC_DEF, or F_OTHER for none
 * (module level, or a class body first). */
static frame_kind innermost_def(const checker *c) {
  for (int d = c->depth; d >= 1; d--)
    if (c->frame[d] == F_DEF || c->frame[d] == F_ASYNC_DEF) return c->frame[d];
  return F_OTHER;
}

static bool in_loop(const checker *c) {
  for (int d = c->depth; d >= 1; d--) {
    if (c->frame[d] == F_LOOP) return true;
    if (c->frame[d] == F_DEF || c->frame[d] == F_ASYNC_DEF || c->frame[d] == F_CLASS) return false;
  }
  return false;
}

static bool at_module_level(const checker *c) {
  for (int d = c->depth; d >= 1; d--)
    if (c->frame[d] == F_DEF || c->frame[d] == F_ASYNC_DEF || c->frame[d] == F_CLASS) return false;
  return true;
}

/* Parameter names of a def's '(' at tokens[a] up to its ')', or of a lambda
 * from tokens[a] (after 'lambda') to its ':': a repeated one is an error. */
static void check_params(checker *c, size_t a, size_t b, bool lambda) {
  int base = c->level[a];
  size_t names[64];
  size_t nn = 0;
  int plv = lambda ? base : base + 1; /* the parameters' bracket level */
  bool bare_star = false;             /* a '*' without a name, and no name after it yet */
  size_t star = 0;
  for (size_t i = lambda ? a : a + 1; i < b; i++) {
    const py_token *t = &c->tok[i];
    int lv = c->level[i];
    bool end = (!lambda && lv == base && t->type == PY_OP && is(c, t, ")")) ||
               (lambda && lv == base && t->type == PY_OP && is(c, t, ":"));
    if (bare_star && (end || (lv == plv && is(c, t, "**")))) {
      set_err(&c->parse, PY_ERR_PARSE, c->tok[star].start, c->tok[star].end,
              "named arguments must follow bare *");
      return;
    }
    if (end) break;
    if (lv == plv && is(c, t, "*") && i + 1 < b &&
        (is(c, &c->tok[i + 1], ",") || is(c, &c->tok[i + 1], ")") || is(c, &c->tok[i + 1], ":"))) {
      bare_star = true;
      star = i;
    }
    /* a lambda in a default value has parameters of its own */
    if (lv == (lambda ? base : base + 1) && is(c, t, "lambda") && i > a) {
      int depth = lv;
      while (++i < b && !(c->level[i] == depth && is(c, &c->tok[i], ":"))) {
      }
      continue;
    }
    if (t->type != PY_NAME || lv != (lambda ? base : base + 1) || is_keyword(c, t)) continue;
    const py_token *p = i > a ? &c->tok[i - 1] : NULL;
    bool param = lambda && i == a;
    if (p && p->type == PY_OP && (is(c, p, "(") || is(c, p, ",") || is(c, p, "*") || is(c, p, "**")))
      param = true;
    if (!param) continue;
    bare_star = false;
    for (size_t k = 0; k < nn; k++) {
      const py_token *q = &c->tok[names[k]];
      if (q->end - q->start == t->end - t->start &&
          !memcmp(c->s + q->start, c->s + t->start, t->end - t->start)) {
        set_err(&c->symtable, PY_ERR_COMPILE, t->start, t->end,
                "duplicate argument '%.*s' in function definition", (int)(t->end - t->start),
                c->s + t->start);
        return;
      }
    }
    if (nn < ARRAY_LEN(names)) names[nn++] = i;
  }
}

/* The byte where the expression holding token i starts, as CPython's
 * "Perhaps you forgot a comma?" range does: back over operands and
 * operators to the nearest opening bracket, ',' or ':' at its depth. */
static size_t expr_start_index(const checker *c, size_t i, size_t first) {
  int lv = c->level[i];
  while (i > first) {
    const py_token *p = &c->tok[i - 1];
    if (c->level[i - 1] < lv) break;
    if (c->level[i - 1] == lv && p->type == PY_OP &&
        (is(c, p, ",") || is(c, p, ":") || is(c, p, "=") || is(c, p, "(") || is(c, p, "[") ||
         is(c, p, "{") || is(c, p, ":=")))
      break;
    if (c->level[i - 1] == lv && p->type == PY_NAME && is_keyword(c, p) && !is(c, p, "and") &&
        !is(c, p, "or") && !is(c, p, "not") && !is(c, p, "is") && !is(c, p, "in") &&
        !is(c, p, "None") && !is(c, p, "True") && !is(c, p, "False") && !is(c, p, "await"))
      break;
    i--;
  }
  return i;
}

/* Escapes CPython refuses in a string literal ("\\x4", "\\u12", "\\N"
 * without braces), reported at `at`: the token after the literal and the
 * ones concatenated to it, where the parser is when it decodes them.
 * Returns false after an error. */
static bool check_escapes(checker *c, const py_token *t, uint32_t at) {
  const char *s = c->s + t->start;
  size_t n = t->end - t->start, i = 0;
  bool raw = false, bytes = false;
  while (i < n && s[i] != '\'' && s[i] != '"') {
    raw |= (s[i] | 0x20) == 'r';
    bytes |= (s[i] | 0x20) == 'b';
    i++;
  }
  if (raw || i >= n) return true;
  size_t q = (i + 2 < n && s[i + 1] == s[i] && s[i + 2] == s[i] && n - i >= 6) ? 3 : 1;
  size_t body = i + q, stop = n >= q ? n - q : n;
  for (size_t k = body; k < stop; k++) {
    if (s[k] != '\\') continue;
    if (k + 1 >= stop) break;
    char e = s[k + 1];
    size_t want = e == 'x' ? 2 : (!bytes && e == 'u') ? 4 : (!bytes && e == 'U') ? 8 : 0;
    if (want) {
      size_t h = 0;
      while (h < want && k + 2 + h < stop && is_xdigit_c(s[k + 2 + h])) h++;
      if (h < want) {
        if (bytes)
          set_err(&c->parse, PY_ERR_PARSE, at, at, "(value error) invalid \\x escape at position %zu",
                  k - body);
        else
          set_err(&c->parse, PY_ERR_PARSE, at, at,
                  "(unicode error) 'unicodeescape' codec can't decode bytes in position %zu-%zu: "
                  "truncated \\%s escape",
                  k - body, k - body + 1 + h, e == 'x' ? "xXX" : e == 'u' ? "uXXXX" : "UXXXXXXXX");
        return false;
      }
    } else if (!bytes && e == 'N' && (k + 2 >= stop || s[k + 2] != '{' || !memchr(s + k + 2, '}', stop - k - 2))) {
      set_err(&c->parse, PY_ERR_PARSE, at, at,
              "(unicode error) 'unicodeescape' codec can't decode bytes in position %zu-%zu: "
              "malformed \\N character escape",
              k - body, k - body + 1);
      return false;
    }
    k++; /* the escaped character */
  }
  return true;
}

/* Token-pair errors in tokens [a, b) of one statement or header; nl is the
 * token that ends the statement (NEWLINE, ';' or the header's ':'). */
static void check_pairs(checker *c, size_t a, size_t b, const py_token *end) {
  for (size_t i = a; i < b; i++) {
    const py_token *t = &c->tok[i];
    const py_token *u = i + 1 < b ? &c->tok[i + 1] : end;
    if (t->type == PY_STRING && (i == a || c->tok[i - 1].type != PY_STRING)) {
      /* a run of strings is one literal, decoded (and its escapes refused)
       * before the parser looks at what follows */
      size_t j = i;
      while (j + 1 < b && c->tok[j + 1].type == PY_STRING) j++;
      uint32_t at = j + 1 < b ? c->tok[j + 1].start : end->start;
      int bytes = 0;
      for (size_t k = i; k <= j; k++) {
        const char *q = c->s + c->tok[k].start;
        bool bb = false;
        while (*q != '\'' && *q != '"') bb |= (*q++ | 0x20) == 'b';
        bytes += bb;
      }
      if (bytes > 0 && bytes <= (int)(j - i)) {
        set_err(&c->parse, PY_ERR_PARSE, at, at, "cannot mix bytes and nonbytes literals");
        return;
      }
      for (size_t k = i; k <= j; k++)
        if (memchr(c->s + c->tok[k].start, '\\', c->tok[k].end - c->tok[k].start) &&
            !check_escapes(c, &c->tok[k], at))
          return;
    }
    /* tokens Python 3 has no use for */
    if (t->type == PY_OP &&
        (is(c, t, "`") || is(c, t, "$") || is(c, t, "?") || is(c, t, "!") || is(c, t, "<>"))) {
      set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "invalid syntax");
      return;
    }
    if (!u) continue;
    /* an opening bracket before what cannot start an element */
    if (t->type == PY_OP && (is(c, t, "(") || is(c, t, "[") || is(c, t, "{")) &&
        u->type == PY_OP &&
        (is(c, u, ",") || is(c, u, "=") || is(c, u, ";") || (!is(c, t, "[") && is(c, u, ":")))) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    if (t->type == PY_OP && is(c, t, ";") && c->level[i] > 0) {
      set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "invalid syntax");
      return;
    }
    /* "a, from x": a statement keyword where an item must come */
    if (is(c, t, ",") && u != end && (stmtkw(c, u) || is(c, u, "from"))) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    /* "a,, b"; "f(a, =1)" (but "x, = y" unpacks one item) */
    if (t->type == PY_OP && is(c, t, ",") && u->type == PY_OP &&
        (is(c, u, ",") || (is(c, u, "=") && c->level[i] > 0))) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    /* "from ...pkg import x": dots of a relative import */
    bool dots = is(c, t, "...") && i > 0 && (is(c, &c->tok[i - 1], "from") || is(c, &c->tok[i - 1], ".") ||
                                             is(c, &c->tok[i - 1], "..."));
    if (ends_operand(c, t) && u != end && starts_operand(c, u) && !dots &&
        !(t->type == PY_STRING && u->type == PY_STRING)) {
      bool import = is(c, &c->tok[a], "from") || is(c, &c->tok[a], "import");
      /* CPython's rule: !(NAME STRING | SOFT_KEYWORD) a=disjunction b=…,
       * the lookahead at the start of the first expression */
      size_t k = expr_start_index(c, i, a);
      const py_token *f = &c->tok[k];
      bool name_string = f->type == PY_NAME && !is_keyword(c, f) && k + 1 <= i + 1 &&
                         (k + 1 == i + 1 ? u : &c->tok[k + 1])->type == PY_STRING;
      bool soft = is(c, f, "match") || is(c, f, "case") || is(c, f, "_");
      if (c->level[i + 1] > 0 && !import && !name_string && !soft) {
        set_err(&c->parse, PY_ERR_PARSE, f->start, u->end,
                "invalid syntax. Perhaps you forgot a comma?");
      } else {
        set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      }
      return;
    }
    /* an attribute is a name: "x.'a'", "x.(", "await .f" (dots of a
     * relative import aside) */
    if (is(c, t, ".") && u != end && !is(c, u, ".") && !is(c, u, "...") &&
        (u->type != PY_NAME ||
         (is_keyword(c, u) && !(is(c, u, "import") && is(c, &c->tok[a], "from"))))) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    if (wants_operand(c, t) && !is(c, t, "from") && !is(c, t, "import") && !is(c, t, ".") && u != end &&
        is(c, u, ".")) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    /* "for in x", "if and y"; "not in" and "from . import" are fine */
    if (wants_operand(c, t) && u != end && opkw(c, u) && !(is(c, t, "not") && is(c, u, "in")) &&
        !is(c, t, ".")) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    if (ends_operand(c, t) && u != end && stmtkw(c, u) &&
        !(is(c, u, "import") && is(c, &c->tok[a], "from"))) {
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
    /* '/' before ',' or ')' (or a lambda's ':') ends positional-only parameters */
    bool slash = is(c, t, "/") && (is(c, u, ",") || is(c, u, ")") || is(c, u, ":"));
    if (wants_operand(c, t) && closes(c, u) && !slash) {
      /* "x = (a, *)" aside, an operator before a closer has no operand */
      set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
      return;
    }
  }
}

/* Python 2's print and exec statements: the name, then an operand. */
static bool legacy_statement(checker *c, size_t a, size_t b, const py_token *end) {
  const py_token *t = &c->tok[a];
  if (a + 1 >= b || !(is(c, t, "print") || is(c, t, "exec"))) return false;
  const py_token *u = &c->tok[a + 1];
  bool operand = starts_operand(c, u) || is(c, u, "not") ||
                 (u->type == PY_OP && (is(c, u, "{") || is(c, u, "~") || is(c, u, "...")));
  if (!operand) return false;
  const py_token *last = &c->tok[b - 1];
  (void)end;
  set_err(&c->parse, PY_ERR_PARSE, t->start, last->end,
          "Missing parentheses in call to '%.*s'. Did you mean %.*s(...)?", (int)(t->end - t->start),
          c->s + t->start, (int)(t->end - t->start), c->s + t->start);
  return true;
}

/* An open bracket in check_brackets. */
typedef struct open {
  size_t at;     /* index of the bracket */
  int colons;    /* ':' in the current dict entry, less the lambdas' */
  bool dict;     /* an entry with ':' was seen */
  size_t entry;  /* first token of the current entry or argument */
  bool call;     /* '(' right after an operand */
  bool kwarg;    /* a keyword argument was seen */
  bool comp;     /* a comprehension: a 'for' at this level */
  bool positional_late; /* a positional argument after a keyword one */
  int lambdas;   /* lambdas at this level whose ':' has not come yet */
  bool commas;   /* a ',' at this level */
  size_t kw0;    /* first of this call's keywords in kws */
} open;

/* The dict entry of o ending before token i: in a dict, an entry without
 * ':' (other than **x) lacks it. Returns false after an error. */
static bool dict_entry(checker *c, open *o, size_t i) {
  if (!o->dict || o->comp || o->colons > 0 || o->entry >= i) return true;
  const py_token *e = &c->tok[o->entry];
  if (is(c, e, "**")) return true;
  for (size_t k = o->entry; k < i; k++)
    if (is(c, &c->tok[k], "for")) return true; /* a comprehension's clause */
  set_err(&c->parse, PY_ERR_PARSE, e->start, c->tok[i - 1].end, "':' expected after dictionary key");
  return false;
}

/* Token i directly inside a call's '(' (or after one of its ','): a
 * positional argument after a keyword argument is an error. */
static void arg_start(checker *c, open *o, size_t i) {
  if (!o->call) return;
  const py_token *p = &c->tok[i - 1];
  if (!(i - 1 == o->at || (is(c, p, ",") && c->level[i - 1] == c->level[o->at] + 1))) return;
  const py_token *t = &c->tok[i];
  if (t->type == PY_OP && (is(c, t, ")") || is(c, t, "*") || is(c, t, "**"))) return;
  bool kw = t->type == PY_NAME && i + 1 < c->n && is(c, &c->tok[i + 1], "=");
  if (kw) o->kwarg = true;
  else if (o->kwarg)
    o->positional_late = true; /* CPython reports it where the arguments end */
}

/* Inside brackets: a dict entry with two ':' ("'a': 'b' 'c': 'd'", a
 * missing comma), and a keyword argument given twice in one call (a compiler
 * error). One pass with a stack of the open brackets. */
static void check_brackets(checker *c, size_t a, size_t b) {
  open st[200];
  size_t depth = 0;
  size_t *kws = NULL, nkw = 0, capkw = 0;
  for (size_t i = a; i < b; i++) {
    const py_token *t = &c->tok[i];
    if (t->type == PY_OP && (is(c, t, "(") || is(c, t, "[") || is(c, t, "{"))) {
      if (depth == ARRAY_LEN(st)) break;
      if (depth > 0) arg_start(c, &st[depth - 1], i);
      st[depth++] = (open){.at = i, .entry = i + 1,
                           /* a def's parameters are no call */
                           .call = is(c, t, "(") && i > a && ends_operand(c, &c->tok[i - 1]) &&
                                   !is_keyword(c, &c->tok[i - 1]) &&
                                   !(i >= 2 && is(c, &c->tok[i - 2], "def")),
                           .kw0 = nkw};
      continue;
    }
    if (t->type == PY_OP && (is(c, t, ")") || is(c, t, "]") || is(c, t, "}"))) {
      if (depth == 0) break;
      open *o = &st[depth - 1];
      if (is(c, t, "}") && !dict_entry(c, o, i)) break;
      /* "(*a)": a starred expression alone in parentheses (not a call, no
       * comma, no comprehension) */
      if (is(c, t, ")") && !o->call && !o->comp && !o->commas && o->at + 1 < i &&
          is(c, &c->tok[o->at + 1], "*") && !(o->at >= 2 && is(c, &c->tok[o->at - 2], "def"))) {
        const py_token *star = &c->tok[o->at + 1];
        set_err(&c->parse, PY_ERR_PARSE, star->start, star->end, "cannot use starred expression here");
        break;
      }
      if (o->positional_late) {
        set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "positional argument follows keyword argument");
        break;
      }
      nkw = st[--depth].kw0;
      continue;
    }
    if (depth == 0) continue;
    open *o = &st[depth - 1];
    const py_token *ob = &c->tok[o->at];
    if (is(c, t, "for")) o->comp = true;
    /* a lambda's parameters, up to its ':', hold ',' of their own */
    if (is(c, t, "lambda")) {
      arg_start(c, o, i);
      o->lambdas++;
      continue;
    }
    if (o->lambdas > 0) {
      if (is(c, t, ":")) o->lambdas--;
      continue;
    }
    arg_start(c, o, i);
    if (c->parse.kind && c->parse.start <= t->start) break;
    if (is(c, t, ",")) o->commas = true;
    const py_token *prev = &c->tok[i - 1];
    bool first = i - 1 == o->at || (is(c, prev, ",") && c->level[i - 1] == c->level[o->at] + 1);
    if (first) o->entry = i;
    /* "f(x: 1)", "{a: 1, : 2}": a ':' with nothing before it, or in a call */
    if (is(c, t, ":") && ((o->call) || (is(c, ob, "{") && first))) {
      set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "invalid syntax");
      break;
    }
    /* '=' in brackets: a keyword argument, or a mistaken '==' */
    if (is(c, t, "=") && o->entry < i) {
      const py_token *e = &c->tok[o->entry];
      bool literal = e->type == PY_STRING || e->type == PY_NUMBER || is(c, e, "None") ||
                     is(c, e, "True") || is(c, e, "False");
      if (o->call && !(e->type == PY_NAME && o->entry + 1 == i)) {
        set_err(&c->parse, PY_ERR_PARSE, e->start, t->start,
                "expression cannot contain assignment, perhaps you meant \"==\"?");
        break;
      }
      if (!o->call && literal) {
        set_err(&c->parse, PY_ERR_PARSE, e->start, t->start,
                "cannot assign to literal here. Maybe you meant '==' instead of '='?");
        break;
      }
    }
    if (is(c, ob, "{")) {
      if (is(c, t, ",")) {
        if (!dict_entry(c, o, i)) break;
        o->colons = 0;
        o->entry = i + 1;
      } else if (is(c, t, ":") && (o->dict = true) && ++o->colons > 1) {
        set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "invalid syntax");
        break;
      }
    }
    if (o->call && t->type == PY_NAME && i + 1 < b && is(c, &c->tok[i + 1], "=") &&
        (is(c, &c->tok[i - 1], "(") || is(c, &c->tok[i - 1], ","))) {
      for (size_t k = o->kw0; k < nkw; k++) {
        const py_token *q = &c->tok[kws[k]];
        if (q->end - q->start == t->end - t->start &&
            !memcmp(c->s + q->start, c->s + t->start, t->end - t->start)) {
          set_err(&c->compile, PY_ERR_COMPILE, t->start, t->end, "keyword argument repeated: %.*s",
                  (int)(t->end - t->start), c->s + t->start);
          break;
        }
      }
      if (nkw == capkw) {
        capkw = capkw ? capkw * 2 : 16;
        kws = xrealloc(kws, capkw * sizeof *kws);
      }
      kws[nkw++] = i;
    }
  }
  free(kws);
}

static const char *const future_features[] = {
    "nested_scopes", "generators", "division", "absolute_import", "with_statement",
    "print_function", "unicode_literals", "barry_as_FLUFL", "generator_stop", "annotations"};

/* One simple statement: tokens [a, b), ended by end. */
static void simple_statement(checker *c, size_t a, size_t b, const py_token *end) {
  if (a >= b) return;
  const py_token *t = &c->tok[a];
  bool docstring = t->type == PY_STRING && b == a + 1;
  bool future = is(c, t, "from") && a + 1 < b && is(c, &c->tok[a + 1], "__future__");
  if (future) {
    if (c->seen_code)
      set_err(&c->future, PY_ERR_COMPILE, t->start, c->tok[b - 1].end,
              "from __future__ imports must occur at the beginning of the file");
    for (size_t i = a + 3; i < b; i++) {
      const py_token *f = &c->tok[i];
      if (f->type != PY_NAME || (i > a + 3 && !is(c, &c->tok[i - 1], ",") && !is(c, &c->tok[i - 1], "(")))
        continue;
      if (is(c, f, "braces")) {
        set_err(&c->future, PY_ERR_COMPILE, f->start, f->end, "not a chance");
        break;
      }
      bool known = false;
      for (size_t k = 0; k < ARRAY_LEN(future_features); k++) known |= is_word(c, f, future_features[k]);
      if (!known) {
        set_err(&c->future, PY_ERR_COMPILE, f->start, f->end, "future feature %.*s is not defined",
                (int)(f->end - f->start), c->s + f->start);
        break;
      }
    }
  } else if (docstring && !c->seen_code && !c->seen_docstring) {
    c->seen_docstring = true;
  } else {
    c->seen_code = true;
  }

  if (legacy_statement(c, a, b, end)) return;
  if (t->type == PY_OP && !is(c, t, "(") && !is(c, t, "[") && !is(c, t, "{") && !is(c, t, "-") &&
      !is(c, t, "+") && !is(c, t, "~") && !is(c, t, "*") && !is(c, t, "...") && !is(c, t, "@")) {
    set_err(&c->parse, PY_ERR_PARSE, t->start, t->end, "invalid syntax");
    return;
  }
  check_pairs(c, a, b, end);
  check_brackets(c, a, b);
  for (size_t i = a; i < b; i++)
    if (c->level[i] == 0 && is(c, &c->tok[i], ":=")) {
      /* an assignment expression needs parentheses at statement level */
      set_err(&c->parse, PY_ERR_PARSE, c->tok[i].start, c->tok[i].end, "invalid syntax");
      break;
    }
  if (is(c, t, "from")) {
    bool import = false;
    size_t imp = 0;
    for (size_t i = a + 1; i < b && !import; i++)
      if ((import = is(c, &c->tok[i], "import"))) imp = i;
    for (size_t i = imp + 1; import && i < b; i++)
      if (is(c, &c->tok[i], ".")) {
        /* "from . import a.b": the names imported are plain names */
        set_err(&c->parse, PY_ERR_PARSE, c->tok[i].start, c->tok[i].end, "invalid syntax");
        break;
      }
    if (!import) set_err(&c->parse, PY_ERR_PARSE, end->start, end->end, "invalid syntax");
  }
  if (is(c, t, "from") && is(c, &c->tok[b - 1], ",")) {
    for (size_t i = a + 1; i + 1 < b; i++)
      if (is(c, &c->tok[i], "import") && !is(c, &c->tok[i + 1], "(")) {
        set_err(&c->parse, PY_ERR_PARSE, c->tok[b - 1].start, c->tok[b - 1].end,
                "trailing comma not allowed without surrounding parentheses");
        break;
      }
  }
  /* "x = a: b": an annotation belongs to a single target, before any '=' */
  {
    bool assigned = false;
    int lambdas = 0;
    for (size_t i = a; i < b; i++) {
      if (c->level[i] != 0) continue;
      const py_token *u = &c->tok[i];
      if (is(c, u, "lambda")) lambdas++;
      else if (is(c, u, "=")) assigned = true;
      else if (is(c, u, ":")) {
        if (lambdas > 0) lambdas--;
        else if (assigned) {
          set_err(&c->parse, PY_ERR_PARSE, u->start, u->end, "invalid syntax");
          break;
        }
      }
    }
  }
  /* "x:" is an annotation without its type */
  if (c->level[b - 1] == 0 && is(c, &c->tok[b - 1], ":"))
    set_err(&c->parse, PY_ERR_PARSE, end->start, end->end, "invalid syntax");

  /* "return *a", "x = *a": a starred value needs a tuple (a ',') */
  {
    size_t v = SIZE_MAX;
    if ((is(c, t, "return") || is(c, t, "yield")) && a + 1 < b) v = a + 1;
    for (size_t i = a; i < b; i++)
      if (c->level[i] == 0 && is(c, &c->tok[i], "=") && i + 1 < b) v = i + 1;
    if (v != SIZE_MAX && is(c, &c->tok[v], "*")) {
      bool comma = false;
      for (size_t i = v; i < b && !comma; i++) comma = c->level[i] == 0 && is(c, &c->tok[i], ",");
      if (!comma)
        set_err(&c->compile, PY_ERR_COMPILE, c->tok[v].start, c->tok[b - 1].end,
                "can't use starred expression here");
    }
  }
  if (is(c, t, "return") && !in_function(c))
    set_err(&c->compile, PY_ERR_COMPILE, t->start, c->tok[b - 1].end, "'return' outside function");
  else if (is(c, t, "break") && !in_loop(c))
    set_err(&c->compile, PY_ERR_COMPILE, t->start, t->end, "'break' outside loop");
  else if (is(c, t, "continue") && !in_loop(c))
    set_err(&c->compile, PY_ERR_COMPILE, t->start, t->end, "'continue' not properly in loop");
  else if (is(c, t, "nonlocal") && at_module_level(c))
    set_err(&c->symtable, PY_ERR_COMPILE, t->start, c->tok[b - 1].end,
            "nonlocal declaration not allowed at module level");
  if ((is(c, t, "from") || is(c, t, "import")) && is(c, &c->tok[b - 1], "*") && !at_module_level(c))
    set_err(&c->symtable, PY_ERR_COMPILE, t->start, c->tok[b - 1].end,
            "import * only allowed at module level");

  bool lambda = false;
  /* "(f(x) for x in y if await g(x))" in a plain def is an asynchronous
   * generator expression, which CPython allows */
  bool comprehension = false;
  for (size_t i = a; i < b && !comprehension; i++)
    comprehension = c->level[i] > 0 && is(c, &c->tok[i], "for");
  for (size_t i = a; i < b; i++) {
    const py_token *u = &c->tok[i];
    if (u->type != PY_NAME) continue;
    if (is(c, u, "lambda")) {
      lambda = true;
      check_params(c, i + 1, b, true);
    } else if (!lambda && is(c, u, "yield") && !in_function(c)) {
      set_err(&c->compile, PY_ERR_COMPILE, u->start, c->tok[b - 1].end, "'yield' outside function");
    } else if (!lambda && !comprehension && is(c, u, "await")) {
      frame_kind f = innermost_def(c);
      if (f == F_OTHER)
        set_err(&c->compile, PY_ERR_COMPILE, u->start, c->tok[b - 1].end, "'await' outside function");
      else if (f == F_DEF)
        set_err(&c->compile, PY_ERR_COMPILE, u->start, c->tok[b - 1].end,
                "'await' outside async function");
    }
  }
}

/* Simple statements separated by ';' in tokens [a, b); end ends the last. */
static void simple_statements(checker *c, size_t a, size_t b, const py_token *end) {
  size_t s = a;
  for (size_t i = a; i <= b; i++) {
    if (i == b || (c->level[i] == 0 && is(c, &c->tok[i], ";"))) {
      if (i > s) simple_statement(c, s, i, i == b ? end : &c->tok[i]);
      else if (i < b) set_err(&c->parse, PY_ERR_PARSE, c->tok[i].start, c->tok[i].end, "invalid syntax");
      s = i + 1;
    }
  }
}

/* The index of the ':' that ends the header starting at a, or SIZE_MAX:
 * the first one outside brackets that no lambda claims. */
static size_t header_colon(const checker *c, size_t a, size_t n) {
  int lambdas = 0;
  for (size_t i = a; i < n; i++) {
    if (c->level[i] != 0) continue;
    if (is(c, &c->tok[i], "lambda")) lambdas++;
    else if (c->tok[i].type == PY_OP && is(c, &c->tok[i], ":")) {
      if (lambdas == 0) return i;
      lambdas--;
    }
  }
  return SIZE_MAX;
}

/* Clause rules at the start of a statement at the current depth: what may
 * follow what. kw is the statement's first keyword token (or NULL). */
static void clause_order(checker *c, const py_token *first, const char *kw) {
  prev_kind *p = &c->prev[c->depth];
  bool except = kw && !strcmp(kw, "except"), finally = kw && !strcmp(kw, "finally");
  if (*p == S_TRY && !except && !finally) {
    set_err(&c->parse, PY_ERR_PARSE, first->start, first->end, "expected 'except' or 'finally' block");
    return;
  }
  bool ok = true;
  if (kw && !strcmp(kw, "elif")) ok = *p == S_IF;
  else if (kw && !strcmp(kw, "else")) ok = *p == S_IF || *p == S_LOOP || *p == S_EXCEPT;
  else if (except) ok = *p == S_TRY || *p == S_EXCEPT;
  else if (finally) ok = *p == S_TRY || *p == S_EXCEPT || *p == S_TRYELSE;
  if (!ok) set_err(&c->parse, PY_ERR_PARSE, first->start, first->end, "invalid syntax");
}

/* One logical line: tokens [0, n), then nl (its NEWLINE). */
static void logical_line(checker *c, const py_token *nl) {
  size_t n = c->n;
  if (n == 0) return;
  const py_token *t0 = &c->tok[0];
  size_t k = 0;
  bool is_async = false;
  if (is(c, t0, "async") && n > 1) {
    is_async = true;
    k = 1;
  }
  const py_token *kt = &c->tok[k];
  const char *what = compound_what(c, kt);
  bool soft = what && (!strcmp(what, "match") || !strcmp(what, "case"));
  if (soft) {
    /* soft keywords: a header only where a name cannot be */
    bool header = false;
    if (!strcmp(what, "match"))
      header = n > 2 && is(c, &c->tok[n - 1], ":") && !(c->tok[1].type == PY_OP && (is(c, &c->tok[1], "=") || is(c, &c->tok[1], ".") || is(c, &c->tok[1], ":")));
    else
      header = c->depth > 0 && c->frame[c->depth] == F_MATCH && n > 1 &&
               !(c->tok[1].type == PY_OP && (is(c, &c->tok[1], "=") || is(c, &c->tok[1], ".")));
    if (!header) what = NULL;
  }
  /* the clause order: a statement at this depth, after the one before */
  {
    const char *kw = what && !is_async ? what : NULL;
    for (int d = c->depth + 1; d < MAXDEPTH && c->prev[d]; d++) {
      if (c->prev[d] == S_TRY)
        set_err(&c->parse, PY_ERR_PARSE, t0->start, t0->end, "expected 'except' or 'finally' block");
      c->prev[d] = S_NONE;
    }
    clause_order(c, t0, kw);
  }
  if (!what) {
    c->prev[c->depth] = S_SIMPLE;
    if (t0->type == PY_OP && is(c, t0, "@")) {
      c->decorated = true;
      if (n == 1) set_err(&c->parse, PY_ERR_PARSE, nl->start, nl->end, "invalid syntax");
      check_pairs(c, 1, n, nl);
      return;
    }
    simple_statements(c, 0, n, nl);
    return;
  }
  c->seen_code = true;

  size_t colon = header_colon(c, k + (soft ? 1 : 0), n);
  if (colon == SIZE_MAX) {
    /* the header before the newline, then the ':' it lacks */
    check_pairs(c, k + 1, n, nl);
    if (!is(c, kt, "else") && !is(c, kt, "try") && !is(c, kt, "finally") && n == k + 1) {
      /* "if" alone: the condition is missing */
      set_err(&c->parse, PY_ERR_PARSE, nl->start, nl->end, "invalid syntax");
    }
    set_err(&c->parse, PY_ERR_PARSE, nl->start, nl->end, "expected ':'");
    return;
  }

  /* header checks */
  if (!strcmp(what, "except")) {
    size_t e = k + 1;
    if (e < colon && is(c, &c->tok[e], "*")) e++;
    bool as = false;
    for (size_t i = e; i < colon; i++) as |= c->level[i] == 0 && is(c, &c->tok[i], "as");
    for (size_t i = e; i < colon && !as; i++)
      if (c->level[i] == 0 && is(c, &c->tok[i], ",")) {
        set_err(&c->parse, PY_ERR_PARSE, c->tok[e].start, c->tok[colon - 1].end,
                "multiple exception types must be parenthesized");
        break;
      }
  }
  bool bare = is(c, kt, "else") || is(c, kt, "try") || is(c, kt, "finally");
  if (bare && colon != k + 1) set_err(&c->parse, PY_ERR_PARSE, c->tok[k + 1].start, c->tok[k + 1].end, "expected ':'");
  if (!bare && colon == k + 1 && strcmp(what, "except") && strcmp(what, "case"))
    set_err(&c->parse, PY_ERR_PARSE, c->tok[colon].start, c->tok[colon].end, "invalid syntax");
  check_pairs(c, soft ? k + 1 : k, colon, &c->tok[colon]);
  check_brackets(c, k + 1, colon);
  if ((!strcmp(what, "function definition") || !strcmp(what, "class definition")) &&
      c->tok[k + 1].type != PY_NAME)
    set_err(&c->parse, PY_ERR_PARSE, c->tok[k + 1].start, c->tok[k + 1].end, "invalid syntax");
  if (!strcmp(what, "function definition") && k + 2 < colon && is(c, &c->tok[k + 2], "("))
    check_params(c, k + 2, colon, false);
  if (is_async && (!strcmp(what, "for") || !strcmp(what, "with")) && innermost_def(c) != F_ASYNC_DEF)
    set_err(&c->compile, PY_ERR_COMPILE, t0->start, c->tok[colon].end, "'async %s' outside async function",
            what);
  for (size_t i = k + 1; i < colon; i++)
    if (is(c, &c->tok[i], "lambda")) check_params(c, i + 1, colon, true);
  for (size_t i = k + 1; i < colon; i++) {
    const py_token *u = &c->tok[i];
    if (is(c, u, "yield") && !in_function(c))
      set_err(&c->compile, PY_ERR_COMPILE, u->start, u->end, "'yield' outside function");
    if (is(c, u, "await") && innermost_def(c) != F_ASYNC_DEF)
      set_err(&c->compile, PY_ERR_COMPILE, u->start, u->end,
              innermost_def(c) == F_OTHER ? "'await' outside function" : "'await' outside async function");
  }

  /* what the statement leaves for the next one at this depth */
  prev_kind *p = &c->prev[c->depth];
  if (!strcmp(what, "if") || !strcmp(what, "elif")) *p = S_IF;
  else if (!strcmp(what, "for") || !strcmp(what, "while")) *p = S_LOOP;
  else if (!strcmp(what, "try")) *p = S_TRY;
  else if (!strcmp(what, "except")) {
    uint32_t *be = c->bare_except[c->depth];
    if (*p == S_EXCEPT && be[1] > be[0])
      set_err(&c->compile, PY_ERR_COMPILE, be[0], be[1], "default 'except:' must be last");
    be[0] = be[1] = 0;
    if (colon == k + 1) {
      be[0] = kt->start;
      be[1] = c->tok[colon].end;
    }
    *p = S_EXCEPT;
  }
  else if (!strcmp(what, "else")) *p = *p == S_EXCEPT ? S_TRYELSE : S_SIMPLE;
  else *p = S_SIMPLE;

  frame_kind fk = F_OTHER;
  if (!strcmp(what, "function definition")) fk = is_async ? F_ASYNC_DEF : F_DEF;
  else if (!strcmp(what, "class definition")) fk = F_CLASS;
  else if (!strcmp(what, "for") || !strcmp(what, "while")) fk = F_LOOP;
  else if (!strcmp(what, "match")) fk = F_MATCH;

  if (colon + 1 == n) {
    c->expect_block = true;
    c->block_line = line_at(c, kt->start);
    c->block_frame = fk;
    if (!strcmp(what, "function definition") || !strcmp(what, "class definition"))
      snprintf(c->block_what, sizeof c->block_what, "%s", what);
    else
      snprintf(c->block_what, sizeof c->block_what, "'%s' statement", what);
    return;
  }
  if (fk == F_MATCH) {
    set_err(&c->parse, PY_ERR_PARSE, c->tok[colon + 1].start, c->tok[colon + 1].end, "invalid syntax");
    return;
  }
  /* a body on the header's line runs in the block's frame */
  if (c->depth + 1 < MAXDEPTH) {
    c->depth++;
    c->frame[c->depth] = fk;
    prev_kind saved = c->prev[c->depth];
    c->prev[c->depth] = S_NONE;
    bool seen = c->seen_code;
    simple_statements(c, colon + 1, n, nl);
    c->seen_code = seen;
    c->prev[c->depth] = saved;
    c->depth--;
  }
}

static void push(checker *c, py_token t, int level) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    c->tok = xrealloc(c->tok, c->cap * sizeof *c->tok);
    c->level = xrealloc(c->level, c->cap * sizeof *c->level);
    c->flags = xrealloc(c->flags, c->cap * sizeof *c->flags);
  }
  c->tok[c->n] = t;
  c->level[c->n] = level;
  c->flags[c->n] = compute_flags(c, &t);
  c->n++;
}

/* Runs the tokenizer and the line checks; fills tokerr with the tokenizer's
 * error and the checker's error slots. */
static void run(checker *c, py_error *tokerr) {
  py_tokenizer tz;
  py_tokenizer_init(&tz, c->s, c->len);
  int level = 0;
  for (;;) {
    py_token t = py_tokenizer_next(&tz);
    if (t.type == PY_ERRORTOKEN) {
      *tokerr = tz.err;
      if (tz.err.kind == PY_ERR_EOF && c->n > 0) {
        /* CPython's parser reads on to the end of the file inside the open
         * bracket: the errors it meets there decide whether "'(' was never
         * closed" is what it reports */
        py_token end = {PY_NEWLINE, (uint32_t)c->len, (uint32_t)c->len};
        logical_line(c, &end);
      }
      return;
    }
    if (c->expect_block && t.type != PY_INDENT) {
      set_err(&c->parse, PY_ERR_PARSE, t.start, t.end, "expected an indented block after %s on line %u",
              c->block_what, c->block_line);
      c->parse.kind = PY_ERR_PARSE;
    }
    if (t.type == PY_INDENT) {
      if (!c->expect_block)
        set_err(&c->parse, PY_ERR_INDENT_TOKEN, t.start, t.end, "unexpected indent");
      if (c->depth + 1 < MAXDEPTH) {
        c->depth++;
        c->frame[c->depth] = c->expect_block ? c->block_frame : F_OTHER;
        c->prev[c->depth] = S_NONE;
      }
      c->expect_block = false;
      continue;
    }
    c->expect_block = false;
    if (c->decorated) {
      /* a decorator is followed by a def, a class or another decorator */
      c->decorated = false;
      if (t.type == PY_DEDENT)
        set_err(&c->parse, PY_ERR_INDENT_TOKEN, t.start, t.end, "unexpected unindent");
      else if (!(t.type == PY_NAME && (is(c, &t, "def") || is(c, &t, "class") || is(c, &t, "async"))) &&
               !(t.type == PY_OP && is(c, &t, "@")))
        set_err(&c->parse, PY_ERR_PARSE, t.start, t.end, "invalid syntax");
    }
    if (t.type == PY_DEDENT) {
      if (c->depth > 0) c->depth--;
      continue;
    }
    if (t.type == PY_ENDMARKER) {
      for (int d = 0; d < MAXDEPTH && d <= c->depth + 1; d++)
        if (c->prev[d] == S_TRY)
          set_err(&c->parse, PY_ERR_PARSE, t.start, t.end, "expected 'except' or 'finally' block");
      return;
    }
    if (t.type == PY_NEWLINE) {
      logical_line(c, &t);
      c->n = 0;
      level = 0;
      continue;
    }
    if (t.type == PY_OP && t.end - t.start == 1) {
      char ch = c->s[t.start];
      if (ch == ')' || ch == ']' || ch == '}') level--;
      push(c, t, level < 0 ? 0 : level);
      if (ch == '(' || ch == '[' || ch == '{') level++;
      continue;
    }
    push(c, t, level);
  }
}

void py_check(const chk_doc *doc, const py_error *ts, py_error *out) {
  checker c = {.s = doc->text, .len = doc->len, .line = 1};
  py_error tokerr = {0};
  run(&c, &tokerr);
  memset(out, 0, sizeof *out);
  /* the parser's first error: ours, or tree-sitter's when it comes on an
   * earlier line (on the same line ours is the more precise) */
  const py_error *p = c.parse.kind ? &c.parse : NULL;
  if (ts && ts->kind && !p) p = ts;
  /* then CPython's order (see py_errkind) */
  if (tokerr.kind == PY_ERR_TOKEN && !(p && p->kind == PY_ERR_INDENT_TOKEN && p->start < tokerr.start))
    *out = tokerr;
  else if (tokerr.kind == PY_ERR_INDENT && (!p || tokerr.start < p->start || p->kind == PY_ERR_TS))
    *out = tokerr;
  else if (tokerr.kind == PY_ERR_EOF &&
           (!p || p->kind == PY_ERR_TS || line_at(&c, tokerr.start) < line_at(&c, p->start)))
    *out = tokerr; /* tree-sitter's errors inside the open bracket are no parser's line */
  else if (p) *out = *p;
  else if (tokerr.kind) *out = tokerr;
  else if (c.future.kind) *out = c.future;
  else if (c.symtable.kind) *out = c.symtable;
  else if (c.compile.kind) *out = c.compile;
  free(c.tok);
  free(c.level);
  free(c.flags);
}
