/* The module index of each sandbox interpreter, learned in the sandbox. */
#include "modindex.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"

#define PROBE_OUTPUT_MAX (8 << 20)

typedef struct probe_ctx {
  agent_modindex *idx;
  chk_language lang;
} probe_ctx;

void agent_modindex_init(agent_modindex *self, sbx_runner *runner, const char *const interpreters[CHK_LANG_COUNT]) {
  memset(self, 0, sizeof *self);
  self->runner = runner;
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    self->interpreters[i] = interpreters && interpreters[i] ? xstrdup(interpreters[i]) : NULL;
    dbuf_init(&self->probe_out[i], PROBE_OUTPUT_MAX);
  }
}

static void notify(agent_modindex *self, chk_language lang) {
  agent_modindex_waiter *w = self->waiters[lang];
  self->waiters[lang] = NULL;
  while (w) {
    agent_modindex_waiter *next = w->next;
    w->cb(w->ud, self->sets[lang], self->sets[lang] ? NULL : (self->errors[lang] ? self->errors[lang] : "shutting down"));
    free(w);
    w = next;
  }
}

void agent_modindex_close(agent_modindex *self) {
  self->closing = true;
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    if (self->probes[i]) sbx_run_cancel(self->probes[i]); /* on_done still follows */
  }
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    notify(self, (chk_language)i);
    chk_modset_free(self->sets[i]);
    self->sets[i] = NULL;
    free(self->errors[i]);
    self->errors[i] = NULL;
    free(self->interpreters[i]);
    self->interpreters[i] = NULL;
    dbuf_close(&self->probe_out[i]);
  }
}

const chk_modset *agent_modindex_peek(agent_modindex *self, chk_language lang) {
  if (lang < 0 || lang >= CHK_LANG_COUNT) return NULL;
  if (!self->sets[lang] && self->interpreters[lang] && !self->probes[lang]) {
    self->sets[lang] = chk_modset_cache_load(chk_language_name(lang), self->interpreters[lang], NULL);
  }
  return self->sets[lang];
}

static void probe_output(void *ud, int stream, const char *bytes, size_t len) {
  probe_ctx *p = ud;
  if (stream == 1) dbuf_add_head(&p->idx->probe_out[p->lang], bytes, len);
}

static void probe_done(void *ud, const sbx_result *res) {
  probe_ctx *p = ud;
  agent_modindex *self = p->idx;
  chk_language lang = p->lang;
  free(p);
  self->probes[lang] = NULL;
  if (self->closing) return;
  dbuf *out = &self->probe_out[lang];
  char *err = NULL;
  if (res->outcome == SBX_OK && res->exit_code == 0) {
    self->sets[lang] = chk_modset_from_probe(chk_language_name(lang), out->data ? out->data : "", out->len,
                                             self->interpreters[lang], &err);
    if (self->sets[lang]) {
      int e = chk_modset_cache_store(self->sets[lang]);
      if (e) log_warn("cannot write the module index cache: %s", strerror(-e));
      log_info("learned the %s module index in the sandbox: %zu modules", chk_language_name(lang),
               chk_modset_count(self->sets[lang]));
    }
  } else {
    err = xasprintf("the module probe failed in the sandbox (%s%s%s)", sbx_outcome_name(res->outcome),
                    res->error ? ": " : "", res->error ? res->error : "");
  }
  if (err) {
    log_warn("%s: %s", chk_language_name(lang), err);
    free(self->errors[lang]);
    self->errors[lang] = err;
  }
  dbuf_reset(out);
  notify(self, lang);
}

void agent_modindex_get(agent_modindex *self, chk_language lang, agent_modindex_fn cb, void *ud) {
  if (lang < 0 || lang >= CHK_LANG_COUNT || self->closing) {
    cb(ud, NULL, "no module index for this language");
    return;
  }
  const chk_modset *set = agent_modindex_peek(self, lang);
  if (set) {
    cb(ud, set, NULL);
    return;
  }
  agent_modindex_waiter *w = xcalloc(1, sizeof *w);
  w->cb = cb;
  w->ud = ud;
  w->next = self->waiters[lang];
  self->waiters[lang] = w;
  if (self->probes[lang]) return;
  free(self->errors[lang]);
  self->errors[lang] = NULL;
  const char *script = chk_probe_script(chk_language_name(lang));
  probe_ctx *p = xcalloc(1, sizeof *p);
  p->idx = self;
  p->lang = lang;
  sbx_request req = {0};
  req.language = chk_language_name(lang);
  req.code = script;
  req.code_len = strlen(script);
  sbx_callbacks cbs = {.on_output = probe_output, .on_done = probe_done};
  int err = sbx_run_start(self->runner, &req, &cbs, p, &self->probes[lang]);
  if (err) {
    free(p);
    self->probes[lang] = NULL;
    self->errors[lang] = xasprintf("cannot start the module probe: %s", strerror(-err));
    notify(self, lang);
  }
}

void agent_modindex_unwait(agent_modindex *self, chk_language lang, agent_modindex_fn cb, void *ud) {
  if (lang < 0 || lang >= CHK_LANG_COUNT) return;
  for (agent_modindex_waiter **pp = &self->waiters[lang]; *pp; pp = &(*pp)->next) {
    if ((*pp)->cb == cb && (*pp)->ud == ud) {
      agent_modindex_waiter *w = *pp;
      *pp = w->next;
      free(w);
      return;
    }
  }
}
