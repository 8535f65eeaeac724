/* The container engines of a docker runner: placement by free capacity,
 * marking down, and the asynchronous probe that brings an engine back. */
#include "engines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"
#include "log.h"

/* "HOST?max=N": the host alone into *host (caller frees), N or 0. */
static int split_cap(const char *h, char **host) {
  const char *q = strstr(h, "?max=");
  if (!q) {
    *host = xstrdup(h);
    return 0;
  }
  *host = xstrndup(h, (size_t)(q - h));
  long n = strtol(q + 5, NULL, 10);
  return n > 0 && n < 100000 ? (int)n : 0;
}

int sbx_dk_engines_open(sbx_dk_engines *self, uv_loop_t *loop, const char *const *hosts, int default_cap,
                        const char *cert_path, char **why) {
  memset(self, 0, sizeof *self);
  self->loop = loop;
  *why = NULL;
  static const char *const dflt[] = {"", NULL};
  if (!hosts || !hosts[0]) hosts = dflt;
  while (hosts[self->n]) self->n++;
  self->v = xcalloc((size_t)self->n, sizeof *self->v);
  dbuf errs;
  dbuf_init(&errs, 0);
  int nup = 0;
  for (int i = 0; i < self->n; i++) {
    sbx_dk_slot *s = &self->v[i];
    s->set = self;
    char *host = NULL, *w = NULL;
    int cap = split_cap(hosts[i], &host);
    s->cap = cap > 0 ? cap : default_cap;
    if (sbx_dk_engine_open_with(&s->eng, host, cert_path, &w) == 0) {
      s->up = s->ever_up = true;
      nup++;
      int n = sbx_dk_sweep(&s->eng);
      if (n) log_info("sandbox: removed %d container(s) of dead crucible processes from %s", n, s->eng.host);
    } else {
      s->why = w;
      s->down_at = uv_now(loop);
      if (errs.len) dbuf_add(&errs, "; ", 2);
      dbuf_add(&errs, w, strlen(w));
    }
    free(host);
  }
  if (!nup) {
    *why = xstrndup(errs.data ? errs.data : "no container engine", errs.len);
    dbuf_close(&errs);
    return -ENOENT;
  }
  if (errs.len) log_warn("sandbox: container engine(s) down, retried later: %.*s", (int)errs.len, errs.data);
  dbuf_close(&errs);
  return 0;
}

void sbx_dk_engines_close(sbx_dk_engines *self) {
  for (int i = 0; i < self->n; i++) {
    sbx_dk_engine_close(&self->v[i].eng);
    free(self->v[i].why);
  }
  free(self->v);
  memset(self, 0, sizeof *self);
}

void sbx_dk_http_opts(const sbx_dk_engine *e, http_request_opts *o) {
  o->unix_socket = e->socket;
  o->tls_ca = e->ca;
  o->tls_cert = e->cert;
  o->tls_key = e->key;
}

static void probed(http_request *req, const http_result *res, void *ud) {
  sbx_dk_slot *s = ud;
  (void)req;
  s->probing = false;
  if (res->outcome == HTTP_CANCELLED) return;
  if (res->outcome != HTTP_DONE || res->status != 200) {
    s->down_at = uv_now(s->set->loop);
    return;
  }
  char *w = NULL;
  if (sbx_dk_engine_parse_version(&s->eng, res->body, &w)) {
    free(s->why);
    s->why = w;
    s->down_at = uv_now(s->set->loop);
    return;
  }
  /* Back: what it held of our runs when it died is ours to remove (no run
   * of ours is placed on a down engine, so none of them is live). */
  int n = sbx_dk_sweep_own(&s->eng);
  log_info("sandbox: the container engine %s answers again%s", s->eng.host,
           n ? " (its leftover containers of ours were removed)" : "");
  s->up = s->ever_up = true;
  free(s->why);
  s->why = NULL;
}

static void maybe_probe(sbx_dk_engines *self, sbx_dk_slot *s) {
  if (s->up || s->probing || !self->http || !s->eng.base) return;
  if (uv_now(self->loop) - s->down_at < SBX_DK_RETRY_MS) return;
  char *url = xasprintf("%s/version", s->eng.base);
  http_request_opts o = {.method = "GET", .url = url, .connect_timeout_ms = 3000, .total_timeout_ms = 5000,
                         .max_body = 1u << 16, .on_done = probed, .ud = s};
  sbx_dk_http_opts(&s->eng, &o);
  if (http_request_start(self->http, &o, NULL) == 0) s->probing = true;
  free(url);
}

int sbx_dk_engines_pick(sbx_dk_engines *self, char **why) {
  *why = NULL;
  int best = -1;
  for (int i = 0; i < self->n; i++) {
    sbx_dk_slot *s = &self->v[i];
    maybe_probe(self, s);
    if (!s->up) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    sbx_dk_slot *b = &self->v[best];
    int free_s = s->cap - s->nlive, free_b = b->cap - b->nlive;
    /* Free slots first; all full: the smaller share of its capacity. */
    if (free_b > 0 || free_s > 0 ? free_s > free_b : (long)s->nlive * b->cap < (long)b->nlive * s->cap)
      best = i;
  }
  if (best >= 0) return best;
  dbuf d;
  dbuf_init(&d, 0);
  for (int i = 0; i < self->n; i++) {
    const char *w = self->v[i].why ? self->v[i].why : "down";
    if (d.len) dbuf_add(&d, "; ", 2);
    dbuf_add(&d, w, strlen(w));
  }
  *why = xasprintf("no container engine is up (retried every %d s): %.*s", SBX_DK_RETRY_MS / 1000,
                   (int)d.len, d.data ? d.data : "");
  dbuf_close(&d);
  return -1;
}

void sbx_dk_engines_down(sbx_dk_engines *self, int i, const char *why) {
  sbx_dk_slot *s = &self->v[i];
  if (!s->up) return;
  s->up = false;
  s->down_at = uv_now(self->loop);
  free(s->why);
  s->why = xasprintf("the container engine %s failed: %s", s->eng.host, why);
  log_warn("sandbox: %s; its runs go to the other engines until it answers again", s->why);
}
