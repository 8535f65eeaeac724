/* The LLM client: chats and pings on the loop over one HTTP client, and the
 * memory of which structured-output mode works for each endpoint and
 * model. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"

unsigned llm__rng_next(llm_client *c) {
  unsigned x = c->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return c->rng = x ? x : 0x9e3779b9u;
}

int llm_client_new(uv_loop_t *loop, llm_client **out) {
  llm_client *c = xcalloc(1, sizeof *c);
  int err = http_client_new(loop, &c->http);
  if (err < 0) {
    free(c);
    return err;
  }
  c->loop = loop;
  c->rng = (unsigned)(now_ns() ^ ((unsigned long long)getpid() << 16));
  c->refs = 1;
  *out = c;
  return 0;
}

void llm__client_unref(llm_client *c) {
  if (--c->refs > 0) return;
  for (size_t i = 0; i < c->n_modes; i++) {
    free(c->modes[i].base_url);
    free(c->modes[i].model);
  }
  free(c->modes);
  free(c);
}

void llm_client_free(llm_client *self) {
  if (!self || self->closing) return;
  self->closing = true;
  /* Chats waiting on a timer end here; chats with a transfer end when the
   * HTTP client cancels it (now, or once it unwinds if we are inside it). */
  llm__chats_cancel_idle(self);
  http_client_free(self->http);
  llm__client_unref(self);
}

static llm__mode_entry *mode_find(const llm_client *self, const char *base_url, const char *model) {
  for (size_t i = 0; i < self->n_modes; i++)
    if (strcmp(self->modes[i].base_url, base_url) == 0 && strcmp(self->modes[i].model, model) == 0)
      return &self->modes[i];
  return NULL;
}

llm_mode llm_client_mode_get(const llm_client *self, const char *base_url, const char *model) {
  llm__mode_entry *e = mode_find(self, base_url, model);
  return e ? e->mode : LLM_MODE_AUTO;
}

void llm_client_mode_set(llm_client *self, const char *base_url, const char *model, llm_mode mode) {
  llm__mode_entry *e = mode_find(self, base_url, model);
  if (!e) {
    if (mode == LLM_MODE_AUTO) return;
    self->modes = xrealloc(self->modes, (self->n_modes + 1) * sizeof *self->modes);
    e = &self->modes[self->n_modes++];
    e->base_url = xstrdup(base_url);
    e->model = xstrdup(model);
  }
  e->mode = mode;
}

char *llm__redact(const char *key, char *s) {
  if (!s || !key || strlen(key) < 4 || !strstr(s, key)) return s;
  dbuf b;
  dbuf_init(&b, 0);
  const char *p = s, *hit;
  while ((hit = strstr(p, key))) {
    dbuf_add(&b, p, (size_t)(hit - p));
    dbuf_adds(&b, "[redacted]");
    p = hit + strlen(key);
  }
  dbuf_adds(&b, p);
  free(s);
  return dbuf_take(&b);
}
