/* Runtime errors to diagnostics: parses an interpreter's stderr (python,
 * node, bash) into {line, column, message} entries on the user's script. */
#include "traceback.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* A line of the input: [s, s+n) without the newline. */
typedef struct span {
  const char *s;
  size_t n;
} span;

/* Splits text into lines; returns a new array (caller frees) and *count. */
static span *split_lines(const char *text, size_t len, int *count) {
  int cap = 16, n = 0;
  span *v = xmalloc(sizeof *v * (size_t)cap);
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    if (n == cap) v = xrealloc(v, sizeof *v * (size_t)(cap *= 2));
    size_t ln = end - i;
    if (ln && text[i + ln - 1] == '\r') ln--;
    v[n++] = (span){text + i, ln};
    i = end + 1;
  }
  *count = n;
  return v;
}

static bool starts(span l, const char *p) {
  size_t k = strlen(p);
  return l.n >= k && !memcmp(l.s, p, k);
}

/* True when path (n bytes) names the script: equal to it or ending in "/script". */
static bool is_script(const char *path, size_t n, const char *script) {
  size_t k = strlen(script);
  if (n == k) return !memcmp(path, script, k);
  return n > k && path[n - k - 1] == '/' && !memcmp(path + n - k, script, k);
}

/* Parses a decimal number at *p (advancing it); returns -1 when none. */
static long parse_num(const char **p, const char *end) {
  long v = 0;
  const char *s = *p;
  if (s >= end || *s < '0' || *s > '9') return -1;
  while (s < end && *s >= '0' && *s <= '9' && v < 100000000) v = v * 10 + (*s++ - '0');
  *p = s;
  return v;
}

static char *trimmed(span l) {
  while (l.n && (l.s[0] == ' ' || l.s[0] == '\t')) l.s++, l.n--;
  while (l.n && (l.s[l.n - 1] == ' ' || l.s[l.n - 1] == '\t')) l.n--;
  return xstrndup(l.s, l.n);
}

static int add(sbx_diag *out, int max, int n, long line1, int col, char *msg, int off) {
  long line = line1 - 1 + off;
  if (n >= max || line1 < 1 || line < 0) {
    free(msg);
    return n;
  }
  out[n].line = (int)line;
  out[n].column = col;
  out[n].message = msg;
  return n + 1;
}

/* `  File "PATH", line N[, in F]` → N when PATH is the script, else -1. */
static long python_frame(span l, const char *script) {
  static const char pre[] = "  File \"";
  if (!starts(l, pre)) return -1;
  const char *p = l.s + sizeof pre - 1, *end = l.s + l.n;
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (!q || !is_script(p, (size_t)(q - p), script)) return -1;
  static const char mid[] = "\", line ";
  if ((size_t)(end - q) < sizeof mid - 1 || memcmp(q, mid, sizeof mid - 1)) return -1;
  p = q + sizeof mid - 1;
  return parse_num(&p, end);
}

static int parse_python(span *v, int nl, const char *script, int off, sbx_diag *out, int max) {
  int frame = -1;
  long line = -1;
  /* A faulthandler dump (the wall time was up: the runner sends SIGABRT,
   * PYTHONFAULTHANDLER is set) lists the most recent call first: the
   * script's first frame there is where the program was. */
  for (int i = 0; i < nl; i++) {
    if (!(starts(v[i], "Current thread ") || starts(v[i], "Thread 0x"))) continue;
    for (int j = i + 1; j < nl && v[j].n; j++) {
      long n = python_frame(v[j], script);
      if (n > 0) return add(out, max, 0, n, -1, xstrdup("the program was running this line when it was stopped"), off);
    }
  }
  for (int i = 0; i < nl; i++) {
    long n = python_frame(v[i], script);
    if (n > 0) frame = i, line = n;
  }
  if (frame < 0) return 0;
  /* The exception line is the last unindented, non-empty line after the frame. */
  int msg = -1, caret = -1;
  for (int i = frame + 1; i < nl; i++) {
    if (v[i].n && v[i].s[0] != ' ' && v[i].s[0] != '\t') msg = i;
    else if (msg < 0 && v[i].n && memchr(v[i].s, '^', v[i].n)) caret = i;
  }
  int col = -1;
  /* A SyntaxError's caret sits under the code line printed after the frame,
   * both indented; the column is relative to the stripped code line. */
  if (caret > frame + 1 && msg >= 0 && !memcmp(v[msg].s, "SyntaxError", v[msg].n < 11 ? v[msg].n : 11)) {
    span code = v[frame + 1], c = v[caret];
    size_t ci = 0, cc = 0;
    while (ci < code.n && code.s[ci] == ' ') ci++;
    while (cc < c.n && c.s[cc] == ' ') cc++;
    if (cc >= ci) col = (int)(cc - ci);
  }
  char *m = msg >= 0 ? trimmed(v[msg]) : xstrdup("error");
  return add(out, max, 0, line, col, m, off);
}

/* "PATH:N" (the whole line) → N when PATH is the script. */
static long node_header(span l, const char *script) {
  const char *end = l.s + l.n, *c = end;
  while (c > l.s && c[-1] >= '0' && c[-1] <= '9') c--;
  if (c == end || c == l.s || c[-1] != ':') return -1;
  if (!is_script(l.s, (size_t)(c - 1 - l.s), script)) return -1;
  return parse_num(&c, end);
}

/* "    at ... (PATH:N:C)" or "    at PATH:N:C" → N and *col when PATH is the script. */
static long node_frame(span l, const char *script, int *col) {
  if (!starts(l, "    at ")) return -1;
  const char *s = l.s + 7, *end = l.s + l.n;
  if (end > s && end[-1] == ')') {
    const char *o = memchr(s, '(', (size_t)(end - s));
    if (!o) return -1;
    s = o + 1;
    end--;
  }
  /* PATH:N:C — find the last two colons. */
  const char *c2 = end;
  while (c2 > s && c2[-1] != ':') c2--;
  if (c2 <= s) return -1;
  const char *c1 = c2 - 1;
  while (c1 > s && c1[-1] != ':') c1--;
  if (c1 <= s) return -1;
  if (!is_script(s, (size_t)(c1 - 1 - s), script)) return -1;
  const char *p = c1;
  long n = parse_num(&p, end);
  const char *q = c2;
  long c = parse_num(&q, end);
  if (n < 1 || c < 1) return -1;
  *col = (int)c - 1;
  return n;
}

static int parse_node(span *v, int nl, const char *script, int off, sbx_diag *out, int max) {
  for (int i = 0; i < nl; i++) {
    long line = node_header(v[i], script);
    if (line < 1) continue;
    /* Header, source line, caret line, blank, then the message. */
    int col = -1, j = i + 1;
    if (j + 1 < nl) {
      const char *caret = memchr(v[j + 1].s, '^', v[j + 1].n);
      if (caret && v[j + 1].n) col = (int)(caret - v[j + 1].s), j += 2;
    }
    for (; j < nl; j++) {
      if (!v[j].n || starts(v[j], "    at ")) continue;
      return add(out, max, 0, line, col, trimmed(v[j]), off);
    }
    return add(out, max, 0, line, col, xstrdup("uncaught exception"), off);
  }
  /* No header (e.g. an error thrown from a callback): first stack frame in the script. */
  for (int i = 0; i < nl; i++) {
    int col = -1;
    long line = node_frame(v[i], script, &col);
    if (line < 1) continue;
    int m = i;
    while (m > 0 && starts(v[m], "    at ")) m--;
    return add(out, max, 0, line, col, trimmed(v[m]), off);
  }
  return 0;
}

static int parse_bash(span *v, int nl, const char *script, int off, sbx_diag *out, int max) {
  int n = 0;
  for (int i = 0; i < nl && n < max; i++) {
    static const char mid[] = ": line ";
    const char *s = v[i].s, *end = s + v[i].n;
    const char *m = NULL;
    for (const char *p = s; p + sizeof mid - 1 <= end; p++)
      if (!memcmp(p, mid, sizeof mid - 1)) {
        m = p;
        break;
      }
    if (!m || !is_script(s, (size_t)(m - s), script)) continue;
    const char *p = m + sizeof mid - 1;
    long line = parse_num(&p, end);
    if (line < 1 || p + 2 > end || p[0] != ':' || p[1] != ' ') continue;
    bool seen = false;
    for (int k = 0; k < n; k++)
      if (out[k].line == (int)(line - 1 + off)) seen = true;
    if (seen) continue;
    n = add(out, max, n, line, -1, xstrndup(p + 2, (size_t)(end - p - 2)), off);
  }
  return n;
}

int sbx_traceback_parse(sbx_lang lang, const char *text, size_t len, const char *script,
                        int line_offset, sbx_diag *out, int max) {
  if (!text || !len || max <= 0 || !script) return 0;
  int nl = 0;
  span *v = split_lines(text, len, &nl);
  int n = 0;
  switch (lang) {
  case SBX_LANG_PYTHON: n = parse_python(v, nl, script, line_offset, out, max); break;
  case SBX_LANG_JAVASCRIPT: n = parse_node(v, nl, script, line_offset, out, max); break;
  case SBX_LANG_BASH: n = parse_bash(v, nl, script, line_offset, out, max); break;
  default: break;
  }
  free(v);
  return n;
}

void sbx_diags_free(sbx_diag *diags, int n) {
  for (int i = 0; diags && i < n; i++) {
    free(diags[i].message);
    diags[i].message = NULL;
  }
}
