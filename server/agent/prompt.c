/* The words of an ask task: prompts and failure feedback. */
#include "prompt.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"

void agent_conv_init(agent_conv *self) {
  self->msgs = NULL;
  self->n = self->cap = 0;
}

void agent_conv_close(agent_conv *self) {
  for (size_t i = 0; i < self->n; i++) {
    free((char *)self->msgs[i].content);
    free((char *)self->msgs[i].tool_calls);
    free((char *)self->msgs[i].tool_call_id);
  }
  free(self->msgs);
  agent_conv_init(self);
}

void agent_conv_take(agent_conv *self, const char *role, char *content) {
  if (self->n == self->cap) {
    self->cap = self->cap ? self->cap * 2 : 8;
    self->msgs = xrealloc(self->msgs, self->cap * sizeof *self->msgs);
  }
  /* roles are static strings */
  self->msgs[self->n] = (llm_message){.role = role, .content = content};
  self->n++;
}

void agent_conv_add_calls(agent_conv *self, const char *content, const char *tool_calls) {
  agent_conv_take(self, "assistant", content ? xstrdup(content) : NULL);
  self->msgs[self->n - 1].tool_calls = tool_calls ? xstrdup(tool_calls) : NULL;
}

void agent_conv_add_tool(agent_conv *self, const char *id, const char *content) {
  agent_conv_add(self, "tool", content ? content : "");
  self->msgs[self->n - 1].tool_call_id = xstrdup(id ? id : "");
}

void agent_conv_add(agent_conv *self, const char *role, const char *content) {
  agent_conv_take(self, role, xstrdup(content));
}

void agent_conv_copy(agent_conv *dst, const agent_conv *src) {
  agent_conv_init(dst);
  for (size_t i = 0; i < src->n; i++) {
    const llm_message *m = &src->msgs[i];
    agent_conv_take(dst, m->role, m->content ? xstrdup(m->content) : NULL);
    dst->msgs[dst->n - 1].tool_calls = m->tool_calls ? xstrdup(m->tool_calls) : NULL;
    dst->msgs[dst->n - 1].tool_call_id = m->tool_call_id ? xstrdup(m->tool_call_id) : NULL;
  }
}

char *agent_system_prompt(const char *language, const char *docs) {
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_addf(&b,
            "You are a coding assistant with expertise in %s.\n"
            "Answer the user's question with a complete, runnable %s program.\n"
            "Your answer has three parts: `prefix`, a short description of the problem and your "
            "approach; `imports`, only the import statements (empty when there are none); and "
            "`code`, the rest of the program, without the imports. The imports followed by the code "
            "must run as one program.\n"
            "The program runs non-interactively in a sandbox: no network access (a connection "
            "fails), no standard input (input() and reads of stdin get end of file), no files except "
            "its own working directory, limited memory and time, only the modules installed on the "
            "system. Print the results to stdout. Exit with a non-zero status only on failure.\n"
            "Error messages count lines in the program as it runs: the imports, then the code, then "
            "the test, joined; line 1 is the first import line.\n"
            "You may add `test`: assertions that check the result, run after the code in the same "
            "program; the answer passes only when they pass.\n",
            language, language);
  if (docs && *docs) {
    dbuf_adds(&b, "\nHere is documentation that may help. Cite nothing; use it to write correct code.\n"
                  "-------\n");
    dbuf_adds(&b, docs);
    dbuf_adds(&b, "\n-------\n");
  }
  return dbuf_take(&b);
}

char *agent_question_prompt(const char *question, const char *context_text, const char *context_uri) {
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_adds(&b, question);
  if (context_text && *context_text) {
    dbuf_addf(&b, "\n\nThe question is about this code%s%s:\n```\n", context_uri ? " from " : "",
              context_uri ? context_uri : "");
    dbuf_adds(&b, context_text);
    if (context_text[strlen(context_text) - 1] != '\n') dbuf_adds(&b, "\n");
    dbuf_adds(&b, "```\n");
  }
  return dbuf_take(&b);
}

/* The text of line `row` (0-based) of program, without its newline. */
static void line_of(const char *program, uint32_t row, const char **start, size_t *len) {
  const char *p = program;
  for (uint32_t r = 0; r < row && p; r++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p) {
    *start = "";
    *len = 0;
    return;
  }
  const char *nl = strchr(p, '\n');
  *start = p;
  *len = nl ? (size_t)(nl - p) : strlen(p);
}

char *agent_check_feedback(const chk_report *report, const char *program, size_t budget) {
  dbuf b;
  dbuf_init(&b, 0);
  size_t shown = 0, errors = chk_report_errors(report);
  dbuf_addf(&b, "The program was rejected before running: %zu error%s found by the checks.\n", errors,
            errors == 1 ? "" : "s");
  for (size_t i = 0; i < report->ndiags; i++) {
    const chk_diag *d = &report->diags[i];
    if (d->severity != CHK_SEV_ERROR) continue;
    if (b.len > budget || shown == 10) {
      dbuf_addf(&b, "(%zu more not shown)\n", errors - shown);
      break;
    }
    const char *ls;
    size_t ll;
    line_of(program, d->start.row, &ls, &ll);
    if (ll > 200) ll = 200;
    dbuf_addf(&b, "line %u, column %u: %s\n    %.*s\n", d->start.row + 1, d->start.column + 1, d->message,
              (int)ll, ls);
    shown++;
  }
  return dbuf_take(&b);
}

char *agent_tail(const char *text, size_t len, size_t budget) {
  if (len <= budget) return xstrndup(text, len);
  const char *start = text + (len - budget);
  const char *nl = memchr(start, '\n', len - (size_t)(start - text));
  if (nl && (size_t)(nl - start) < budget / 4) start = nl + 1;
  size_t keep = len - (size_t)(start - text);
  return xasprintf("[... %zu bytes cut ...]\n%.*s", len - keep, (int)keep, start);
}

/* What the limit that ended a run was, in words: "the wall-time limit of
 * 10 s (the program was still running: an endless loop, or a wait that
 * never ends?)". Empty when no limit ended it. */
static void limit_words(dbuf *b, const sbx_result *res) {
  switch (res->limit) {
  case SBX_LIMIT_WALL:
    dbuf_addf(b, ": it was stopped at the wall-time limit of %.3g s (still running then: an endless loop, a "
                 "wait that never ends, or too slow an algorithm?)", (double)res->limits.timeout_ms / 1000);
    break;
  case SBX_LIMIT_CPU:
    dbuf_addf(b, ": it was stopped at the CPU-time limit of %ld s (an endless loop or too slow an algorithm?)",
              res->limits.cpu_seconds);
    break;
  case SBX_LIMIT_MEMORY:
    dbuf_addf(b, ": it was stopped at the memory limit of %ld MiB (data that keeps growing?)",
              res->limits.memory_mb);
    break;
  case SBX_LIMIT_PIDS: dbuf_addf(b, ": it reached the limit of %ld processes", res->limits.pids); break;
  case SBX_LIMIT_OUTPUT:
    dbuf_addf(b, ": it printed more than the output limit of %ld bytes", res->limits.output_bytes);
    break;
  case SBX_LIMIT_DISK: dbuf_addf(b, ": it reached the disk limit of %ld MiB", res->limits.disk_mb); break;
  default:
    if (res->outcome == SBX_OOM) dbuf_addf(b, ": it ran out of memory (limit %ld MiB)", res->limits.memory_mb);
    break;
  }
}

char *agent_run_feedback(const sbx_result *res, const char *stage, size_t budget) {
  dbuf b;
  dbuf_init(&b, 0);
  const char *outcome = sbx_outcome_name(res->outcome);
  dbuf_addf(&b, "The %s failed: outcome %s", stage, outcome);
  limit_words(&b, res);
  if (res->limit || res->outcome == SBX_OOM)
    ; /* the limit says why it stopped: its signal (SIGABRT for Python's traceback) says nothing more */
  else if (res->signal)
    dbuf_addf(&b, ", killed by signal %d", res->signal);
  else if (res->exit_code >= 0)
    dbuf_addf(&b, ", exit code %d", res->exit_code);
  dbuf_adds(&b, ".\n");
  if (res->ndiags > 0)
    dbuf_addf(&b, "%s at line %d: %s\n", res->limit ? "It was" : "The error is", res->diags[res->ndiags - 1].line + 1,
              res->diags[res->ndiags - 1].message);
  if (res->error) dbuf_addf(&b, "%s\n", res->error);
  size_t err_budget = budget * 3 / 4, out_budget = budget / 4;
  if (res->err_len) {
    char *c = agent_condense_traceback(res->lang, res->err, res->err_len, sbx_lang_script(res->lang));
    char *t = agent_tail(c, strlen(c), err_budget);
    free(c);
    dbuf_addf(&b, "stderr:\n%s%s", t, t[strlen(t) - 1] == '\n' ? "" : "\n");
    free(t);
  }
  if (res->out_len) {
    char *t = agent_tail(res->out, res->out_len, out_budget);
    dbuf_addf(&b, "stdout:\n%s%s", t, t[strlen(t) - 1] == '\n' ? "" : "\n");
    free(t);
  }
  if (!res->err_len && !res->out_len) dbuf_adds(&b, "The program printed nothing.\n");
  return dbuf_take(&b);
}

const char *agent_reflect_prompt(void) {
  return "Reflect on this error and on your previous attempt. Explain briefly what went wrong and "
         "how to fix it. Do not write the full program yet.";
}

const char *agent_retry_prompt(void) {
  return "Now try again. Answer with the three parts: prefix, imports and code.";
}

char *agent_modules_note(const char *const *modules, size_t n) {
  if (!n) return xstrdup("The environment has no third-party modules: use the standard library only.\n");
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_adds(&b, "Third-party modules the environment has (nothing else beyond the standard library): ");
  size_t shown = 0;
  for (; shown < n && b.len < 1500; shown++) dbuf_addf(&b, "%s%s", shown ? ", " : "", modules[shown]);
  if (shown < n) dbuf_addf(&b, " and %zu more", n - shown);
  dbuf_adds(&b, ".\n");
  return dbuf_take(&b);
}

/* ---- judging answers ---- */

/* True when [s, s+n) names the script: it is "script" or ends in "/script". */
static bool names_script(const char *s, size_t n, const char *script) {
  size_t k = strlen(script);
  if (n == k) return !memcmp(s, script, k);
  return n > k && s[n - k - 1] == '/' && !memcmp(s + n - k, script, k);
}

/* Python: a frame line `  File "PATH", line N, in F`; *path and *plen the
 * path. */
static bool py_frame(const char *l, size_t n, const char **path, size_t *plen) {
  static const char pre[] = "  File \"";
  if (n < sizeof pre || memcmp(l, pre, sizeof pre - 1)) return false;
  const char *p = l + sizeof pre - 1;
  const char *q = memchr(p, '"', n - (size_t)(p - l));
  if (!q) return false;
  *path = p;
  *plen = (size_t)(q - p);
  return true;
}

static void flush_omitted(dbuf *b, int *omitted, const char *last, size_t last_len, const char *indent) {
  if (!*omitted) return;
  dbuf_addf(b, "%s[%d frame%s in library code omitted, the last in %.*s]\n", indent, *omitted,
            *omitted == 1 ? "" : "s", (int)last_len, last);
  *omitted = 0;
}

char *agent_condense_traceback(sbx_lang lang, const char *text, size_t len, const char *script) {
  dbuf b;
  dbuf_init(&b, 0);
  int omitted = 0;
  const char *last = "";
  size_t last_len = 0;
  bool skipping = false; /* inside a library frame: its source lines go too */
  for (size_t i = 0; i < len;) {
    const char *l = text + i;
    const char *nl = memchr(l, '\n', len - i);
    size_t n = nl ? (size_t)(nl - l) : len - i;
    i += n + 1;
    if (lang == SBX_LANG_PYTHON) {
      const char *path;
      size_t plen;
      /* faulthandler's dump when the wall time stopped it (bwrap.c): its
       * "Fatal Python error: Aborted" is the stop, not the program's fault */
      if ((n >= 27 && !memcmp(l, "Fatal Python error: Aborted", 27)) || (n >= 18 && !memcmp(l, "Extension modules:", 18)))
        continue;
      if ((n >= 15 && !memcmp(l, "Current thread ", 15)) || (n >= 9 && !memcmp(l, "Thread 0x", 9))) {
        flush_omitted(&b, &omitted, last, last_len, "  ");
        dbuf_adds(&b, "Where it was when it was stopped (most recent call first):\n");
        skipping = false;
        continue;
      }
      if (py_frame(l, n, &path, &plen)) {
        skipping = !names_script(path, plen, script);
        if (skipping) {
          omitted++;
          last = path;
          last_len = plen;
          continue;
        }
        flush_omitted(&b, &omitted, last, last_len, "  ");
      } else if (skipping && n > 4 && !memcmp(l, "    ", 4)) {
        continue; /* the library frame's source line and carets */
      } else {
        skipping = false;
        flush_omitted(&b, &omitted, last, last_len, "  ");
      }
    } else if (lang == SBX_LANG_JAVASCRIPT) {
      size_t k = 0;
      while (k < n && l[k] == ' ') k++;
      if (k >= 2 && n - k > 3 && !memcmp(l + k, "at ", 3)) {
        size_t sl = strlen(script);
        bool mine = false;
        for (size_t j = k; j + sl <= n && !mine; j++) mine = !memcmp(l + j, script, sl);
        if (!mine) {
          omitted++;
          last = l + k + 3;
          last_len = n - k - 3;
          continue;
        }
      }
      flush_omitted(&b, &omitted, last, last_len, "    ");
    }
    dbuf_add(&b, l, n);
    dbuf_adds(&b, "\n");
  }
  flush_omitted(&b, &omitted, last, last_len, lang == SBX_LANG_PYTHON ? "  " : "    ");
  return dbuf_take(&b);
}

char *agent_program_key(const char *program) {
  dbuf b;
  dbuf_init(&b, 0);
  for (const char *p = program; *p;) {
    size_t n = strcspn(p, "\n");
    size_t k = n;
    while (k && (p[k - 1] == ' ' || p[k - 1] == '\t' || p[k - 1] == '\r')) k--;
    if (k) {
      dbuf_add(&b, p, k);
      dbuf_adds(&b, "\n");
    }
    p += n;
    if (*p) p++;
  }
  if (!b.len) dbuf_adds(&b, "");
  return dbuf_take(&b);
}

bool agent_question_wants_output(const char *question) {
  static const char *const words[] = {"print", "show", "display", "output", "list", "what", "how many",
                                      "how much", "compute", "calculate", "count", "find", "sum", "total",
                                      "report", "tell", "average", "mean", "top", "largest", "smallest",
                                      "generate", "convert", "parse", "sort", "fibonacci", "prime", "echo",
                                      "table", "summar"};
  size_t n = strlen(question);
  char *low = xmalloc(n + 1);
  for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)question[i]);
  bool yes = false;
  for (size_t w = 0; w < ARRAY_LEN(words) && !yes; w++) {
    for (const char *p = strstr(low, words[w]); p && !yes; p = strstr(p + 1, words[w]))
      yes = p == low || !isalnum((unsigned char)p[-1]); /* the start of a word */
  }
  free(low);
  return yes;
}
