/* Fetching and revalidating documentation sources on the uv loop: a bounded
 * breadth-first crawl over the shared HTTP client (several transfers at once,
 * prefix, depth, page and byte caps, conditional requests), and a walk of
 * local folders, both feeding the SQLite index. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "crucible_config.h"
#include "dbuf.h"
#include "http.h"
#include "internal.h"
#include "log.h"

/* Local files handled per loop turn: the walk never holds the loop long. */
#define PATH_ITEMS_PER_TURN 4
/* How often an open write batch is checked for its age (see store.c). */
#define FLUSH_INTERVAL_MS 100

typedef enum content_kind { KIND_SKIP, KIND_HTML, KIND_TEXT, KIND_RST } content_kind;

typedef struct item {
  struct item *next;
  char *url;  /* canonical URL or real path */
  int depth;
  int src;
} item;

typedef struct queue {
  item *head, *tail;
} queue;

typedef struct src {
  char *root, *prefix;
  bool is_url;
  bool public_only;
} src;

/* A set of strings (open addressing), for canonical URLs already queued. */
typedef struct strset {
  char **slots;
  size_t cap, n;
} strset;

typedef struct xfer {
  docs_sync *sync;
  item *it;
  http_request *req;
  docs_page_info info;  /* what the cache knew (validators, links) */
  bool known;
  dbuf body;
  content_kind kind;
  const char *skip_reason;
  bool remember_skip;   /* a property of the page (not of this sync's budget) */
  char *etag, *last_modified;
  struct xfer *prev, *next;
} xfer;

struct docs_sync {
  docs_store *store;
  uv_loop_t *loop;
  http_client *http;
  docs_sync_opts o;
  char **source_copies;
  src *srcs;
  size_t n_srcs;
  queue urls, paths;
  strset seen;
  xfer *active;
  int n_active;
  docs_sync_stats st;
  unsigned long long inflight;
  int visits;
  bool cancelled, finished;
  uv_timer_t tick;
  uv_timer_t flush;  /* commits the store's write batch while the sync waits on the network */
  int open_handles;
  docs_progress_fn progress;
  docs_done_fn done;
  void *ud;
  char *error;
};

/* ---- small containers ---- */

static size_t hash_str(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Adds s (copied). Returns false if it was there already. */
static bool strset_add(strset *set, const char *s) {
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

static void strset_close(strset *set) {
  for (size_t i = 0; i < set->cap; i++) free(set->slots[i]);
  free(set->slots);
}

static void queue_push(queue *q, item *it) {
  it->next = NULL;
  if (q->tail) q->tail->next = it;
  else q->head = it;
  q->tail = it;
}

static item *queue_pop(queue *q) {
  item *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head) q->tail = NULL;
  }
  return it;
}

static void item_free(item *it) {
  if (!it) return;
  free(it->url);
  free(it);
}

static void queue_clear(queue *q) {
  item *it;
  while ((it = queue_pop(q))) item_free(it);
}

/* ---- scheduling ---- */

static void on_tick(uv_timer_t *t);

static void schedule(docs_sync *s) {
  if (!s->finished) uv_timer_start(&s->tick, on_tick, 0, 0);
}

static void report(docs_sync *s, const char *url) {
  s->st.pages = s->st.fetched + s->st.cached;
  if (s->progress) s->progress(s->ud, &s->st, url);
}

/* Queues a canonical URL or real path found at `depth` under source `si`, if
 * it is within the source's bounds and new. */
static void enqueue(docs_sync *s, const char *url, int depth, int si) {
  const src *sr = &s->srcs[si];
  if (depth > s->o.max_depth) return;
  if (!docs_url_in_prefix(url, sr->prefix) && strcmp(url, sr->root) != 0) return;
  if (!strset_add(&s->seen, url)) return;
  item *it = xcalloc(1, sizeof *it);
  it->url = xstrdup(url);
  it->depth = depth;
  it->src = si;
  queue_push(sr->is_url ? &s->urls : &s->paths, it);
}

static bool caps_reached(docs_sync *s) {
  return s->visits >= s->o.max_pages || s->st.bytes + s->inflight >= s->o.max_total_bytes;
}

/* ---- indexing ---- */

static content_kind kind_from_name(const char *name) {
  const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
  if (!dot || (slash && dot < slash)) return KIND_SKIP;
  if (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm") || !strcasecmp(dot, ".xhtml")) return KIND_HTML;
  if (!strcasecmp(dot, ".md") || !strcasecmp(dot, ".markdown") || !strcasecmp(dot, ".txt")) return KIND_TEXT;
  if (!strcasecmp(dot, ".rst")) return KIND_RST;
  return KIND_SKIP;
}

static content_kind kind_from_type(const char *ctype, const char *url) {
  if (!ctype || !*ctype) {
    /* no Content-Type: trust a known extension, else assume a web page */
    content_kind k = kind_from_name(url);
    return k == KIND_SKIP ? KIND_HTML : k;
  }
  size_t n = strcspn(ctype, "; \t");
  if (!strncasecmp(ctype, "text/html", n) && n == 9) return KIND_HTML;
  if (!strncasecmp(ctype, "application/xhtml+xml", n) && n == 21) return KIND_HTML;
  if (!strncasecmp(ctype, "text/x-rst", n) && n == 10) return KIND_RST;
  if ((!strncasecmp(ctype, "text/plain", n) && n == 10) || (!strncasecmp(ctype, "text/markdown", n) && n == 13) ||
      (!strncasecmp(ctype, "text/x-markdown", n) && n == 15))
    return kind_from_name(url) == KIND_RST ? KIND_RST : KIND_TEXT;
  return KIND_SKIP;
}

static char *last_segment(const char *url) {
  size_t n = strcspn(url, "?#");
  while (n > 0 && url[n - 1] == '/') n--;
  size_t a = n;
  while (a > 0 && url[a - 1] != '/') a--;
  return n > a ? xstrndup(url + a, n - a) : xstrdup(url);
}

/* Parses a page, stores its chunks, and returns its in-bounds links
 * (canonical; resolved against `base` for URL sources). */
static int index_page(docs_sync *s, const char *url, int si, content_kind kind, const char *body, size_t len,
                      const char *etag, const char *lm, char ***links_out, size_t *n_links_out) {
  char *title = NULL, *text = NULL;
  size_t text_len = 0;
  char **links = NULL;
  size_t n_links = 0;
  const src *sr = &s->srcs[si];
  if (kind == KIND_HTML) {
    docs_html h;
    docs_html_extract(body, len, &h);
    title = h.title, h.title = NULL;
    text = h.text, h.text = NULL;
    text_len = h.text_len;
    if (sr->is_url) {
      links = xcalloc(h.n_links + 1, sizeof *links);
      for (size_t i = 0; i < h.n_links; i++) {
        char *c = docs_url_canon(url, h.links[i]);
        if (c && docs_url_in_prefix(c, sr->prefix)) links[n_links++] = c;
        else free(c);
      }
    }
    docs_html_close(&h);
  } else {
    text = docs_utf8_clean(body, len);
    text_len = len;
    if (kind == KIND_RST) {
      char *md = docs_rst_to_md(text, text_len, &text_len);
      free(text);
      text = md;
    }
    title = docs_first_heading(text, text_len);
  }
  if (!title) title = last_segment(url);
  docs_chunks chunks = {0};
  docs_chunk_split(text, text_len, title, DOCS_CHUNK_CHARS, &chunks);
  int err = docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_OK, title, etag, lm, links, n_links, &chunks,
                                len);
  docs_chunks_close(&chunks);
  free(title);
  free(text);
  *links_out = links;
  *n_links_out = n_links;
  return err;
}

static void enqueue_links(docs_sync *s, char *const *links, size_t n, int depth, int si) {
  for (size_t i = 0; i < n; i++) enqueue(s, links[i], depth, si);
}

static void free_links(char **links, size_t n) {
  for (size_t i = 0; i < n; i++) free(links[i]);
  free(links);
}

/* ---- URLs ---- */

static int on_headers(http_request *req, long status, void *ud) {
  xfer *x = ud;
  docs_sync *s = x->sync;
  if (status != 200) return 0;
  const char *et = http_request_header(req, "etag"), *lm = http_request_header(req, "last-modified");
  x->etag = et ? xstrdup(et) : NULL;
  x->last_modified = lm ? xstrdup(lm) : NULL;
  x->kind = kind_from_type(http_request_header(req, "content-type"), x->it->url);
  if (x->kind == KIND_SKIP) {
    x->skip_reason = "not a text or HTML document";
    x->remember_skip = true;
    return 1;
  }
  const char *cl = http_request_header(req, "content-length");
  if (cl && strtoull(cl, NULL, 10) > s->o.max_page_bytes) {
    x->skip_reason = "page larger than the per-page cap";
    x->remember_skip = true;
    return 1;
  }
  return 0;
}

static int on_data(http_request *req, const char *p, size_t n, void *ud) {
  xfer *x = ud;
  docs_sync *s = x->sync;
  if (x->body.len + n > s->o.max_page_bytes) {
    x->skip_reason = "page larger than the per-page cap";
    x->remember_skip = true;
    return 1;
  }
  if (s->st.bytes + s->inflight + n > s->o.max_total_bytes) {
    x->skip_reason = "total byte cap of the crawl reached";
    return 1;
  }
  dbuf_add(&x->body, p, n);
  s->inflight += n;
  return 0;
}

static void xfer_free(xfer *x) {
  docs_page_info_close(&x->info);
  dbuf_close(&x->body);
  free(x->etag);
  free(x->last_modified);
  item_free(x->it);
  free(x);
}

static void handle_response(docs_sync *s, xfer *x, http_request *req, const http_result *res) {
  const char *url = x->it->url;
  int depth = x->it->depth, si = x->it->src;
  if (x->skip_reason) {
    s->st.skipped++;
    log_info("docs: skipped %s: %s", url, x->skip_reason);
    if (x->remember_skip)
      docs_store_page_put(s->store, url, s->srcs[si].root, DOCS_PAGE_SKIPPED, NULL, x->etag, x->last_modified,
                          NULL, 0, NULL, 0);
    return;
  }
  if (res->outcome == HTTP_REFUSED) {
    s->st.errors++;
    s->st.refused++;
    log_warn("docs: %s: %s. The source %s was named by the editor or a workspace; to let such sources "
             "reach private addresses, set docs.allowPrivateNetwork: true in the user config file, or list "
             "the source in its docs.sources", url, res->error, s->srcs[si].root);
    return;
  }
  if (res->outcome != HTTP_DONE) {
    s->st.errors++;
    log_info("docs: %s: %s", url, res->error);
    return;
  }
  long status = res->status;
  if (status == 304 && x->known) {
    docs_store_page_touch(s->store, x->info.id);
    if (x->info.state == DOCS_PAGE_SKIPPED) {
      s->st.skipped++;
      return;
    }
    s->st.cached++;
    enqueue_links(s, x->info.links, x->info.n_links, depth + 1, si);
    return;
  }
  if (status >= 300 && status < 400 && status != 304) {
    const char *loc = http_request_header(req, "location");
    char *target = loc ? docs_url_canon(url, loc) : NULL;
    if (target && docs_url_in_prefix(target, s->srcs[si].prefix)) {
      docs_store_page_put(s->store, url, s->srcs[si].root, DOCS_PAGE_REDIRECT, NULL, NULL, NULL, &target, 1, NULL, 0);
      enqueue(s, target, depth, si);
    } else {
      s->st.skipped++;
      log_info("docs: skipped %s: redirects outside %s", url, s->srcs[si].prefix);
      docs_store_page_put(s->store, url, s->srcs[si].root, DOCS_PAGE_SKIPPED, NULL, NULL, NULL, NULL, 0, NULL, 0);
    }
    free(target);
    return;
  }
  if (status == 200) {
    char **links = NULL;
    size_t n = 0;
    if (x->kind != KIND_HTML && memchr(x->body.data ? x->body.data : "", '\0', x->body.len)) {
      s->st.skipped++;
      docs_store_page_put(s->store, url, s->srcs[si].root, DOCS_PAGE_SKIPPED, NULL, x->etag, x->last_modified,
                          NULL, 0, NULL, 0);
      return;
    }
    if (index_page(s, url, si, x->kind, x->body.data ? x->body.data : "", x->body.len, x->etag,
                   x->last_modified, &links, &n) == 0)
      s->st.fetched++;
    else
      s->st.errors++;
    enqueue_links(s, links, n, depth + 1, si);
    free_links(links, n);
    return;
  }
  s->st.errors++;
  log_info("docs: %s: HTTP status %ld", url, status);
  /* 4xx: the page is gone; remember that while fresh, and drop its chunks */
  if (status >= 400 && status < 500)
    docs_store_page_put(s->store, url, s->srcs[si].root, DOCS_PAGE_GONE, NULL, NULL, NULL, NULL, 0, NULL, 0);
}

static void on_done(http_request *req, const http_result *res, void *ud) {
  xfer *x = ud;
  docs_sync *s = x->sync;
  if (x->prev) x->prev->next = x->next;
  else s->active = x->next;
  if (x->next) x->next->prev = x->prev;
  s->n_active--;
  s->inflight -= x->body.len;
  s->st.bytes += x->body.len;
  if (res->outcome == HTTP_CANCELLED || s->cancelled) {
    xfer_free(x);
    schedule(s);
    return;
  }
  handle_response(s, x, req, res);
  report(s, x->it->url);
  xfer_free(x);
  schedule(s);
}

static void visit_url(docs_sync *s, item *it) {
  docs_page_info info;
  int known = docs_store_page_get(s->store, it->url, &info);
  double now = docs_wall_now();
  if (known == 1 && s->o.freshness_s > 0 && now - info.checked_at < s->o.freshness_s) {
    switch (info.state) {
      case DOCS_PAGE_OK:
        s->st.cached++;
        enqueue_links(s, info.links, info.n_links, it->depth + 1, it->src);
        break;
      case DOCS_PAGE_REDIRECT:
        if (info.n_links) enqueue(s, info.links[0], it->depth, it->src);
        break;
      case DOCS_PAGE_SKIPPED: s->st.skipped++; break;
      case DOCS_PAGE_GONE: s->st.errors++; break;
    }
    report(s, it->url);
    docs_page_info_close(&info);
    item_free(it);
    return;
  }
  xfer *x = xcalloc(1, sizeof *x);
  x->sync = s;
  x->it = it;
  if (known == 1) {
    x->info = info;
    x->known = true;
  }
  dbuf_init(&x->body, 0);
  char *hdrs[4] = {0};
  int nh = 0;
  static char accept[] = "Accept: text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.9,*/*;q=0.1";
  hdrs[nh++] = accept;
  if (x->known && (x->info.state == DOCS_PAGE_OK || x->info.state == DOCS_PAGE_SKIPPED)) {
    if (x->info.etag) hdrs[nh++] = xasprintf("If-None-Match: %s", x->info.etag);
    if (x->info.last_modified) hdrs[nh++] = xasprintf("If-Modified-Since: %s", x->info.last_modified);
  }
  http_request_opts ro = {
      .url = it->url,
      .headers = (const char *const *)hdrs,
      .user_agent = "crucible/" CRUCIBLE_VERSION " (+docs crawler)",
      .connect_timeout_ms = s->o.timeout_ms < 10000 ? s->o.timeout_ms : 10000,
      .first_byte_timeout_ms = s->o.timeout_ms,
      .total_timeout_ms = s->o.timeout_ms,
      .max_body = s->o.max_page_bytes + 1,
      /* redirects are followed by us, so each hop is checked against the prefix */
      .max_redirects = 0,
      .accept_compressed = true,
      .public_only = s->srcs[it->src].public_only,
      .on_data = on_data,
      .on_headers = on_headers,
      .on_done = on_done,
      .ud = x,
  };
  x->next = s->active;
  if (s->active) s->active->prev = x;
  s->active = x;
  s->n_active++;
  int r = http_request_start(s->http, &ro, &x->req);
  for (int i = 1; i < nh; i++) free(hdrs[i]);
  if (r < 0) {
    s->active = x->next;
    if (x->next) x->next->prev = NULL;
    s->n_active--;
    s->st.errors++;
    log_warn("docs: cannot start a request for %s: %s", it->url, strerror(-r));
    report(s, it->url);
    xfer_free(x);
  }
}

/* ---- local paths ---- */

static int read_file(const char *path, size_t max, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  dbuf b;
  dbuf_init(&b, max);
  char buf[65536];
  int err = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = -errno;
      break;
    }
    if (r == 0) break;
    if (dbuf_add(&b, buf, (size_t)r) < 0) {
      err = -EFBIG;
      break;
    }
  }
  close(fd);
  if (err) {
    dbuf_close(&b);
    return err;
  }
  *len = b.len;
  *out = dbuf_take(&b);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void visit_dir(docs_sync *s, item *it) {
  DIR *d = opendir(it->url);
  if (!d) {
    s->st.errors++;
    log_info("docs: cannot read the folder %s: %s", it->url, strerror(errno));
    return;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue; /* ., .., and hidden files such as .git */
    names = xrealloc(names, (n + 1) * sizeof *names);
    names[n++] = xstrdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    char *p = xasprintf("%s/%s", strcmp(it->url, "/") ? it->url : "", names[i]);
    /* real paths: a symlink out of the folder lands outside its prefix */
    char *real = realpath(p, NULL);
    if (real) enqueue(s, real, it->depth + 1, it->src);
    free(real);
    free(p);
    free(names[i]);
  }
  free(names);
}

static void visit_path(docs_sync *s, item *it) {
  struct stat st;
  if (stat(it->url, &st) != 0) {
    s->st.errors++;
    log_info("docs: %s: %s", it->url, strerror(errno));
    report(s, it->url);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    visit_dir(s, it);
    return;
  }
  content_kind kind = S_ISREG(st.st_mode) ? kind_from_name(it->url) : KIND_SKIP;
  if (kind == KIND_SKIP) return; /* images, sources, build files: not documentation */
  if (caps_reached(s) || (size_t)st.st_size > s->o.max_page_bytes) {
    s->st.skipped++;
    report(s, it->url);
    return;
  }
  s->visits++;
  char etag[64];
  snprintf(etag, sizeof etag, "%lld.%09ld-%lld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long long)st.st_size);
  docs_page_info info;
  int known = docs_store_page_get(s->store, it->url, &info);
  if (known == 1 && info.state == DOCS_PAGE_OK && info.etag && strcmp(info.etag, etag) == 0) {
    docs_store_page_touch(s->store, info.id);
    s->st.cached++;
  } else {
    char *body = NULL;
    size_t len = 0;
    int r = read_file(it->url, s->o.max_page_bytes, &body, &len);
    if (r < 0) {
      s->st.errors++;
      log_info("docs: cannot read %s: %s", it->url, strerror(-r));
    } else if (kind != KIND_HTML && memchr(body, '\0', len)) {
      s->st.skipped++;
    } else {
      char **links = NULL;
      size_t n = 0;
      s->st.bytes += len;
      if (index_page(s, it->url, it->src, kind, body, len, etag, NULL, &links, &n) == 0) s->st.fetched++;
      else s->st.errors++;
      free_links(links, n);
    }
    free(body);
  }
  if (known == 1) docs_page_info_close(&info);
  report(s, it->url);
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

/* Removes the pages of a folder (or file) source whose files are gone.
 * Only a missing file counts: a file left out by this sync's depth or page
 * caps keeps its pages. Runs once at the end of a sync; a stat per page. */
static int prune_missing(docs_sync *s, const src *sr) {
  size_t n = strlen(sr->prefix);
  char *exact = xstrndup(sr->prefix, n && sr->prefix[n - 1] == '/' ? n - 1 : n);
  char *hi = xasprintf("%s\xff", sr->prefix);
  long long *gone = NULL;
  size_t n_gone = 0;
  sqlite3_stmt *st = docs_store_stmt(s->store, DOCS_STMT_PAGES_UNDER);
  if (st) {
    sqlite3_bind_text(st, 1, exact, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sr->prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *path = (const char *)sqlite3_column_text(st, 1);
      struct stat sb;
      if (!path || lstat(path, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR)) continue;
      gone = xrealloc(gone, (n_gone + 1) * sizeof *gone);
      gone[n_gone++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
  }
  /* deleted after the scan: never while the statement walks the table */
  int removed = 0;
  for (size_t i = 0; i < n_gone; i++)
    if (docs_store_page_del(s->store, gone[i]) == 0) removed++;
  free(gone);
  free(exact);
  free(hi);
  return removed;
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
      if (!s->srcs[i].is_url) s->st.removed += prune_missing(s, &s->srcs[i]);
      docs_store_source_put(s->store, s->srcs[i].root, s->srcs[i].is_url ? "url" : "path", s->srcs[i].prefix);
    }
  if (docs_store_batch_end(s->store))
    log_warn("docs: the last pages of this sync could not be saved; the next sync fetches them again");
  s->done(s->ud, &s->st, s->error);
  http_client_free(s->http);
  queue_clear(&s->urls);
  queue_clear(&s->paths);
  strset_close(&s->seen);
  for (size_t i = 0; i < s->n_srcs; i++) free(s->srcs[i].root), free(s->srcs[i].prefix);
  free(s->srcs);
  free(s->error);
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
    item *it = queue_pop(&s->paths);
    if (!it) break;
    visit_path(s, it);
    item_free(it);
  }
  while (s->n_active < s->o.concurrency && s->urls.head) {
    item *it = queue_pop(&s->urls);
    if (caps_reached(s)) {
      s->st.skipped++;
      report(s, it->url);
      item_free(it);
      continue;
    }
    s->visits++;
    visit_url(s, it);
  }
  if (s->paths.head) schedule(s);
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
    src *sr = &s->srcs[s->n_srcs];
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
  for (size_t i = 0; i < s->n_srcs; i++) enqueue(s, s->srcs[i].root, 0, (int)i);
  if (opts->n_sources && !usable)
    s->error = xstrdup("none of the documentation sources could be used: give http(s) URLs or existing paths");
  schedule(s);
  if (out) *out = s;
  return 0;
}

void docs_sync_cancel(docs_sync *self) {
  if (!self || self->finished || self->cancelled) return;
  self->cancelled = true;
  for (xfer *x = self->active; x; x = x->next) http_request_cancel(x->req);
  schedule(self);
}
