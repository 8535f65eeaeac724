/* What may reach tree-sitter: a pre-scan that refuses text no real program
 * looks like (too large, too many lines, brackets nested too deep) before it
 * is parsed, and the CPU-time deadline every parse and import query runs
 * under. The text is untrusted (model answers, crawled docs, workspace files)
 * and parsing runs on the server's one loop thread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Where the scan is: program text, or inside a string that can hold nested
 * code (bash "…$(…)…", javascript `…${…}…"). Other strings and comments are
 * skipped whole, so a string full of '(' is not nesting. */
enum { MODE_CODE, MODE_DQUOTE, MODE_TEMPLATE };

/* The mode a closing bracket returns to; one per open bracket. */
typedef struct scan_stack {
  unsigned char mode[CHK_MAX_NESTING + 1];
  size_t depth;
} scan_stack;

static void hit_at(chk_limit *hit, size_t offset, size_t len, const char *msg) {
  hit->offset = offset;
  hit->len = len;
  snprintf(hit->message, sizeof hit->message, "%s", msg);
}

/* End of a quoted string starting after its opening quote at i: the offset
 * after the closing quote, or (when it never closes) the end of its line for
 * one-line strings and the end of the text otherwise. */
static size_t skip_string(const char *s, size_t len, size_t i, char q, bool triple, bool escapes,
                          bool one_line) {
  while (i < len) {
    char c = s[i];
    if (escapes && c == '\\') {
      i += 2;
      continue;
    }
    if (c == '\n' && one_line) return i;
    if (c == q && (!triple || (i + 2 < len && s[i + 1] == q && s[i + 2] == q)))
      return i + (triple ? 3 : 1);
    i++;
  }
  return len;
}

static size_t skip_line(const char *s, size_t len, size_t i) {
  const char *nl = memchr(s + i, '\n', len - i);
  return nl ? (size_t)(nl - s) : len;
}

int chk_prescan(chk_language lang, const char *text, size_t len, chk_limit *hit) {
  char msg[sizeof hit->message];
  if (len > CHK_MAX_BYTES) {
    snprintf(msg, sizeof msg, "too large to check: %zu bytes (the limit is %u)", len,
             (unsigned)CHK_MAX_BYTES);
    hit_at(hit, CHK_MAX_BYTES, 0, msg);
    return -E2BIG;
  }
  size_t lines = 0;
  for (const char *p = text, *end = text + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL;) {
    p++;
    if (++lines == CHK_MAX_LINES && p < end) { /* text after the last allowed line */
      snprintf(msg, sizeof msg, "too many lines to check (the limit is %u)", (unsigned)CHK_MAX_LINES);
      hit_at(hit, (size_t)(p - text), 0, msg);
      return -E2BIG;
    }
  }

  /* CPython's tokenizer refuses the 201st nested bracket with this message;
   * the other languages get a limit of their own. */
  size_t limit = lang == CHK_LANG_PYTHON ? CHK_MAX_NESTING_PYTHON : CHK_MAX_NESTING;
  scan_stack st = {.depth = 0};
  int mode = MODE_CODE;
  size_t i = 0;
  while (i < len) {
    char c = text[i];
    if (mode == MODE_DQUOTE || mode == MODE_TEMPLATE) {
      char q = mode == MODE_DQUOTE ? '"' : '`';
      if (c == '\\') {
        i += 2;
      } else if (c == q) {
        mode = MODE_CODE;
        i++;
      } else if (c == '$' && i + 1 < len && (text[i + 1] == '(' || text[i + 1] == '{') &&
                 (mode == MODE_DQUOTE || text[i + 1] == '{')) {
        if (st.depth == limit) goto too_deep;
        st.mode[st.depth++] = (unsigned char)mode;
        mode = MODE_CODE;
        i += 2;
      } else {
        i++;
      }
      continue;
    }
    switch (c) {
    case '(': case '[': case '{':
      if (st.depth == limit) goto too_deep;
      st.mode[st.depth++] = MODE_CODE;
      i++;
      continue;
    case ')': case ']': case '}':
      /* a closer of another kind still closes: this measures depth, it is
       * not a syntax check (and bash's case patterns have lone ')') */
      if (st.depth > 0) mode = st.mode[--st.depth];
      i++;
      continue;
    default:
      break;
    }
    switch (lang) {
    case CHK_LANG_PYTHON:
      if (c == '#') {
        i = skip_line(text, len, i);
      } else if (c == '\'' || c == '"') {
        bool triple = i + 2 < len && text[i + 1] == c && text[i + 2] == c;
        i = skip_string(text, len, i + (triple ? 3 : 1), c, triple, true, !triple);
      } else {
        i++;
      }
      break;
    case CHK_LANG_JAVASCRIPT:
      if (c == '/' && i + 1 < len && text[i + 1] == '/') {
        i = skip_line(text, len, i);
      } else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
        const char *e = memmem(text + i + 2, len - i - 2, "*/", 2);
        i = e ? (size_t)(e - text) + 2 : len;
      } else if (c == '\'' || c == '"') {
        i = skip_string(text, len, i + 1, c, false, true, true);
      } else if (c == '`') {
        mode = MODE_TEMPLATE;
        i++;
      } else {
        i++;
      }
      break;
    case CHK_LANG_BASH:
      if (c == '\\') {
        i += 2;
      } else if (c == '#' && (i == 0 || strchr(" \t\n;&|()", text[i - 1]))) {
        i = skip_line(text, len, i);
      } else if (c == '\'') {
        /* $'…' takes backslash escapes, '…' none */
        i = skip_string(text, len, i + 1, '\'', false, i > 0 && text[i - 1] == '$', false);
      } else if (c == '"') {
        mode = MODE_DQUOTE;
        i++;
      } else {
        i++;
      }
      break;
    default:
      i++;
      break;
    }
  }
  return 0;

too_deep:
  if (lang == CHK_LANG_PYTHON) snprintf(msg, sizeof msg, "too many nested parentheses");
  else snprintf(msg, sizeof msg, "nesting deeper than %zu levels: not checked", limit);
  hit_at(hit, i, text[i] == '$' ? 2 : 1, msg);
  return -E2BIG;
}

/* ---- the deadline ---- */

/* Sanitizers and -O0 make tree-sitter several times slower; the budget
 * scales so a debug or ASan build checks the same programs a release build
 * does (the tests run there too). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BUDGET_SCALE 20
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BUDGET_SCALE 20
#endif
#endif
#ifndef BUDGET_SCALE
#ifdef __OPTIMIZE__
#define BUDGET_SCALE 1
#else
#define BUDGET_SCALE 4
#endif
#endif

uint64_t chk_budget_us(uint64_t base_us, uint64_t ns_per_byte, size_t len) {
  return (base_us + ns_per_byte * (uint64_t)len / 1000) * BUDGET_SCALE;
}

/* CPU time of this thread, not wall time: what the input costs, whatever else
 * the machine is doing, so a program is not refused because the machine is
 * busy. The loop stalls for about this long (plus any preemption). */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void chk_deadline_start(chk_deadline *self, uint64_t budget_us) {
  self->budget_us = budget_us;
  self->end_ns = thread_cpu_ns() + budget_us * 1000;
  self->at = 0;
  self->polls = 0;
  self->expired = false;
}

bool chk_deadline_passed(chk_deadline *self) {
  /* tree-sitter polls every 100 operations (a few µs); reading the thread's
   * CPU clock is a system call, and every poll cost a parse 20%. Every 16th
   * poll (the first included) bounds the overshoot to well under a ms. */
  if (!self->expired && self->polls++ % 16 == 0 && thread_cpu_ns() > self->end_ns)
    self->expired = true;
  return self->expired;
}
