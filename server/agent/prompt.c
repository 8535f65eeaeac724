/* The words of an ask task: prompts and failure feedback. */
#include "prompt.h"

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
  for (size_t i = 0; i < self->n; i++) free((char *)self->msgs[i].content);
  free(self->msgs);
  agent_conv_init(self);
}

void agent_conv_take(agent_conv *self, const char *role, char *content) {
  if (self->n == self->cap) {
    self->cap = self->cap ? self->cap * 2 : 8;
    self->msgs = xrealloc(self->msgs, self->cap * sizeof *self->msgs);
  }
  /* roles are static strings */
  self->msgs[self->n].role = role;
  self->msgs[self->n].content = content;
  self->n++;
}

void agent_conv_add(agent_conv *self, const char *role, const char *content) {
  agent_conv_take(self, role, xstrdup(content));
}

void agent_conv_copy(agent_conv *dst, const agent_conv *src) {
  agent_conv_init(dst);
  for (size_t i = 0; i < src->n; i++) agent_conv_add(dst, src->msgs[i].role, src->msgs[i].content);
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
            "The program runs non-interactively in a sandbox: no network access, no files except "
            "its own working directory, limited memory and time, only the modules installed on the "
            "system. Print the results to stdout. Exit with a non-zero status only on failure.\n",
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

char *agent_run_feedback(const sbx_result *res, const char *stage, size_t budget) {
  dbuf b;
  dbuf_init(&b, 0);
  const char *outcome = sbx_outcome_name(res->outcome);
  dbuf_addf(&b, "The %s failed: outcome %s", stage, outcome);
  if (res->limit) dbuf_addf(&b, ", ended by the %s limit", sbx_limit_name(res->limit));
  if (res->signal)
    dbuf_addf(&b, ", killed by signal %d", res->signal);
  else if (res->exit_code >= 0)
    dbuf_addf(&b, ", exit code %d", res->exit_code);
  dbuf_adds(&b, ".\n");
  if (res->error) dbuf_addf(&b, "%s\n", res->error);
  size_t err_budget = budget * 3 / 4, out_budget = budget / 4;
  if (res->err_len) {
    char *t = agent_tail(res->err, res->err_len, err_budget);
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
