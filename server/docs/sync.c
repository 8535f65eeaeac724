/* A documentation sync on the uv loop: the queue of URLs and paths, its
 * bounds (prefix, depth, page and byte caps), progress, and the sync's
 * lifecycle; crawl.c fetches URLs, walk.c reads local files, index.c turns
 * pages into stored chunks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "log.h"

/* Local files handled per loop turn: the walk never holds the loop long. */
#define PATH_ITEMS_PER_TURN 4
/* How often an open write batch is checked for its age (see store.c). */
#define FLUSH_INTERVAL_MS 100

/* ---- small containers ---- */

static size_t hash_str(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Adds s (copied). Returns false if it was there already. */
static bool strset_add(docs_strset *set, const char *s) {
  if ((set->n + 1) * 2 > set->cap) {
    size_t ncap = set->cap ? set->cap * 2 : 256;
    char **ns = xcalloc(ncap, sizeof *ns);
    for (size_t i = 0; i < set->cap; i++) {
      if (!set->slots[i]) continue;
      size_t j = hash_str(set->slots[i]) & (ncap - 1);
      while (ns[j]) j = (j + 1) & (ncap - 1);
      ns[j] = set->slots[i];
    }
    free(set->slots);
    set->slots = ns;
    set->cap = ncap;
  }
  size_t j = hash_str(s) & (set->cap - 1);
  while (set->slots[j]) {
    if (strcmp(set->slots[j], s) == 0) return false;
    j = (j + 1) & (set->cap - 1);
  }
  set->slots[j] = xstrdup(s);
  set->n++;
  return true;
}

static void strset_close(docs_strset *set) {
  for (size_t i = 0; i < set->cap; i++) free(set->slots[i]);
  free(set->slots);
}

static void queue_push(docs_queue *q, docs_item *it) {
  it->next = NULL;
  if (q->tail) q->tail->next = it;
  else q->head = it;
  q->tail = it;
}

static docs_item *queue_pop(docs_queue *q) {
  docs_item *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head) q->tail = NULL;
  }
  return it;
}

void docs_item_free(docs_item *it) {
  if (!it) return;
  free(it->url);
  free(it);
}

static void queue_clear(docs_queue *q) {
  docs_item *it;
  while ((it = queue_pop(q))) docs_item_free(it);
}

/* ---- scheduling ---- */

static void on_tick(uv_timer_t *t);

void docs_sync_schedule(docs_sync *s) {
  if (!s->finished) uv_timer_start(&s->tick, on_tick, 0, 0);
}

void docs_sync_report(docs_sync *s, const char *url) {
  s->st.pages = s->st.fetched + s->st.cached;
  if (s->progress) s->progress(s->ud, &s->st, url);
}

void docs_sync_enqueue(docs_sync *s, const char *url, int depth, int si) {
  const docs_src *sr = &s->srcs[si];
  if (depth > s->o.max_depth) return;
  if (!docs_url_in_prefix(url, sr->prefix) && strcmp(url, sr->root) != 0) return;
  if (!strset_add(&s->seen, url)) return;
  docs_item *it = xcalloc(1, sizeof *it);
  it->url = xstrdup(url);
  it->depth = depth;
  it->src = si;
  queue_push(sr->is_url ? &s->urls : &s->paths, it);
}

void docs_sync_enqueue_links(docs_sync *s, char *const *links, size_t n, int depth, int si) {
  for (size_t i = 0; i < n; i++) docs_sync_enqueue(s, links[i], depth, si);
}

bool docs_sync_caps_reached(const docs_sync *s) {
  return s->visits >= s->o.max_pages || s->st.bytes + s->inflight >= s->o.max_total_bytes;
}

/* ---- lifecycle ---- */

static void release(docs_sync *s) {
  if (--s->open_handles == 0) free(s);
}

static void on_tick_closed(uv_handle_t *h) {
  release(container_of((uv_timer_t *)h, docs_sync, tick));
}

static void on_flush_closed(uv_handle_t *h) {
  release(container_of((uv_timer_t *)h, docs_sync, flush));
}

static void on_flush(uv_timer_t *t) {
  docs_sync *s = container_of(t, docs_sync, flush);
  docs_store_flush_due(s->store);
}

static void finish(docs_sync *s) {
  s->finished = true;
  uv_timer_stop(&s->tick);
  uv_timer_stop(&s->flush);
  s->st.pages = s->st.fetched + s->st.cached;
  s->st.cancelled = s->cancelled;
  if (!s->cancelled)
    for (size_t i = 0; i < s->n_srcs; i++) {
      if (!s->srcs[i].root) continue;
      if (!s->srcs[i].is_url) s->st.removed += docs_walk_prune(s, &s->srcs[i]);
      docs_store_source_put(s->store, s->srcs[i].root, s->srcs[i].is_url ? "url" : "path", s->srcs[i].prefix);
    }
  if (docs_store_batch_end(s->store))
    log_warn("docs: the last pages of this sync could not be saved; the next sync fetches them again");
  if (docs_sync_embed_start(s)) return;
  docs_sync_finish_done(s);
}

void docs_sync_finish_done(docs_sync *s) {
  s->embedding = false;
  s->done(s->ud, &s->st, s->error);
  http_client_free(s->http);
  queue_clear(&s->urls);
  queue_clear(&s->paths);
  strset_close(&s->seen);
  for (size_t i = 0; i < s->n_srcs; i++) free(s->srcs[i].root), free(s->srcs[i].prefix);
  free(s->srcs);
  free(s->error);
  free(s->embed_model);
  uv_close((uv_handle_t *)&s->tick, on_tick_closed);
  uv_close((uv_handle_t *)&s->flush, on_flush_closed);
}

static void on_tick(uv_timer_t *t) {
  docs_sync *s = container_of(t, docs_sync, tick);
  if (s->finished) return;
  if (s->cancelled) {
    if (s->n_active == 0) finish(s);
    return;
  }
  for (int i = 0; i < PATH_ITEMS_PER_TURN; i++) {
    docs_item *it = queue_pop(&s->paths);
    if (!it) break;
    docs_walk_visit(s, it);
    docs_item_free(it);
  }
  while (s->n_active < s->o.concurrency && s->urls.head) {
    docs_item *it = queue_pop(&s->urls);
    if (docs_sync_caps_reached(s)) {
      s->st.skipped++;
      docs_sync_report(s, it->url);
      docs_item_free(it);
      continue;
    }
    s->visits++;
    docs_crawl_visit(s, it);
  }
  if (s->paths.head) docs_sync_schedule(s);
  else if (s->n_active == 0 && !s->urls.head) finish(s);
}

int docs_sync_start(docs_store *store, uv_loop_t *loop, const docs_sync_opts *opts, docs_progress_fn progress,
                    docs_done_fn done, void *ud, docs_sync **out) {
  if (out) *out = NULL;
  if (!store || !loop || !opts || !done || (opts->n_sources && !opts->sources)) return -EINVAL;
  docs_sync *s = xcalloc(1, sizeof *s);
  s->store = store;
  s->loop = loop;
  s->o = *opts;
  s->o.sources = NULL;
  if (opts->embedder && opts->embedder->model && *opts->embedder->model && opts->embedder->start)
    s->embed_model = xstrdup(opts->embedder->model);
  if (s->o.max_depth < 0) s->o.max_depth = 0;
  if (s->o.max_pages <= 0) s->o.max_pages = DOCS_DEFAULT_MAX_PAGES;
  if (!s->o.max_page_bytes) s->o.max_page_bytes = DOCS_DEFAULT_MAX_PAGE_BYTES;
  if (!s->o.max_total_bytes) s->o.max_total_bytes = DOCS_DEFAULT_MAX_TOTAL_BYTES;
  if (s->o.freshness_s < 0) s->o.freshness_s = DOCS_DEFAULT_FRESHNESS_S;
  if (s->o.concurrency <= 0) s->o.concurrency = DOCS_DEFAULT_CONCURRENCY;
  if (s->o.timeout_ms <= 0) s->o.timeout_ms = DOCS_DEFAULT_TIMEOUT_MS;
  s->progress = progress;
  s->done = done;
  s->ud = ud;
  s->srcs = xcalloc(opts->n_sources + 1, sizeof *s->srcs);
  bool any_url = false;
  size_t usable = 0;
  for (size_t i = 0; i < opts->n_sources; i++) {
    docs_src *sr = &s->srcs[s->n_srcs];
    sr->prefix = docs_source_prefix(opts->sources[i], &sr->root);
    if (!sr->prefix) {
      s->st.errors++;
      log_warn("docs: cannot use the source '%s': %s", opts->sources[i],
               docs_is_url(opts->sources[i]) ? "not a valid http(s) URL" : "no such file or folder");
      continue;
    }
    sr->is_url = docs_is_url(opts->sources[i]);
    sr->public_only = sr->is_url && opts->public_only && opts->public_only[i];
    any_url |= sr->is_url;
    s->n_srcs++;
    usable++;
  }
  if (any_url) {
    int r = http_client_new(loop, &s->http);
    if (r < 0) {
      for (size_t i = 0; i < s->n_srcs; i++) free(s->srcs[i].root), free(s->srcs[i].prefix);
      free(s->srcs);
      free(s->embed_model);
      free(s);
      return r;
    }
  }
  uv_timer_init(loop, &s->tick);
  uv_timer_init(loop, &s->flush);
  s->open_handles = 2;
  /* pages are written in batches (one transaction per ~100 ms of work):
   * committing each page alone made storage 96% of indexing time */
  docs_store_batch_begin(store);
  uv_timer_start(&s->flush, on_flush, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
  for (size_t i = 0; i < s->n_srcs; i++) docs_sync_enqueue(s, s->srcs[i].root, 0, (int)i);
  if (opts->n_sources && !usable)
    s->error = xstrdup("none of the documentation sources could be used: give http(s) URLs or existing paths");
  docs_sync_schedule(s);
  if (out) *out = s;
  return 0;
}

void docs_sync_cancel(docs_sync *self) {
  if (self && self->embedding && !self->cancelled) {
    /* the embedding request ends through its callback, from the loop */
    self->cancelled = true;
    docs_sync_embed_cancel(self);
    return;
  }
  if (!self || self->finished || self->cancelled) return;
  self->cancelled = true;
  docs_crawl_cancel(self);
  docs_sync_schedule(self);
}
