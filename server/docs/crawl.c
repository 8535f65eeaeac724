/* The URL side of a sync: fetching and revalidating pages over the shared
 * HTTP client (conditional requests, page and byte caps, redirects followed
 * by hand so each hop is checked against the source's prefix), several
 * transfers at once. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crucible_config.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"

struct docs_xfer {
  docs_sync *sync;
  docs_item *it;
  http_request *req;
  docs_page_info info;  /* what the cache knew (validators, links) */
  bool known;
  dbuf body;
  docs_kind kind;
  const char *skip_reason;
  bool remember_skip;   /* a property of the page (not of this sync's budget) */
  char *etag, *last_modified;
  docs_xfer *prev, *next;
};

static int on_headers(http_request *req, long status, void *ud) {
  docs_xfer *x = ud;
  docs_sync *s = x->sync;
  if (status != 200) return 0;
  const char *et = http_request_header(req, "etag"), *lm = http_request_header(req, "last-modified");
  x->etag = et ? xstrdup(et) : NULL;
  x->last_modified = lm ? xstrdup(lm) : NULL;
  x->kind = docs_kind_from_type(http_request_header(req, "content-type"), x->it->url);
  if (x->kind == DOCS_KIND_SKIP) {
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
  docs_xfer *x = ud;
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

static void xfer_free(docs_xfer *x) {
  docs_page_info_close(&x->info);
  dbuf_close(&x->body);
  free(x->etag);
  free(x->last_modified);
  docs_item_free(x->it);
  free(x);
}

static void handle_response(docs_sync *s, docs_xfer *x, http_request *req, const http_result *res) {
  const char *url = x->it->url;
  int depth = x->it->depth, si = x->it->src;
  const docs_src *sr = &s->srcs[si];
  if (x->skip_reason) {
    s->st.skipped++;
    log_info("docs: skipped %s: %s", url, x->skip_reason);
    if (x->remember_skip)
      docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_SKIPPED, NULL, x->etag, x->last_modified, NULL, 0,
                          NULL, 0);
    return;
  }
  if (res->outcome == HTTP_REFUSED) {
    s->st.errors++;
    s->st.refused++;
    log_warn("docs: %s: %s. The source %s was named by the editor or a workspace; to let such sources "
             "reach private addresses, set docs.allowPrivateNetwork: true in the user config file, or list "
             "the source in its docs.sources", url, res->error, sr->root);
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
      docs_sync_enqueue_links(s, x->info.links, x->info.n_links, depth + 1, si);
      return;
    }
    s->st.cached++;
    docs_sync_enqueue_links(s, x->info.links, x->info.n_links, depth + 1, si);
    return;
  }
  if (status >= 300 && status < 400 && status != 304) {
    const char *loc = http_request_header(req, "location");
    char *target = loc ? docs_url_canon(url, loc) : NULL;
    if (target && docs_url_in_prefix(target, sr->prefix)) {
      docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_REDIRECT, NULL, NULL, NULL, &target, 1, NULL, 0);
      docs_sync_enqueue(s, target, depth, si);
    } else {
      s->st.skipped++;
      log_info("docs: skipped %s: redirects outside %s", url, sr->prefix);
      docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_SKIPPED, NULL, NULL, NULL, NULL, 0, NULL, 0);
    }
    free(target);
    return;
  }
  if (status == 200) {
    char **links = NULL;
    size_t n = 0;
    if (x->kind != DOCS_KIND_HTML && memchr(x->body.data ? x->body.data : "", '\0', x->body.len)) {
      s->st.skipped++;
      docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_SKIPPED, NULL, x->etag, x->last_modified, NULL, 0,
                          NULL, 0);
      return;
    }
    int r = docs_index_page(s->store, sr, url, x->kind, x->body.data ? x->body.data : "", x->body.len, x->etag,
                            x->last_modified, &links, &n);
    if (r == 0) s->st.fetched++;
    else if (r > 0) s->st.skipped++;
    else s->st.errors++;
    docs_sync_enqueue_links(s, links, n, depth + 1, si);
    docs_links_free(links, n);
    return;
  }
  s->st.errors++;
  log_info("docs: %s: HTTP status %ld", url, status);
  /* 4xx: the page is gone; remember that while fresh, and drop its chunks */
  if (status >= 400 && status < 500)
    docs_store_page_put(s->store, url, sr->root, DOCS_PAGE_GONE, NULL, NULL, NULL, NULL, 0, NULL, 0);
}

static void on_done(http_request *req, const http_result *res, void *ud) {
  docs_xfer *x = ud;
  docs_sync *s = x->sync;
  if (x->prev) x->prev->next = x->next;
  else s->active = x->next;
  if (x->next) x->next->prev = x->prev;
  s->n_active--;
  s->inflight -= x->body.len;
  s->st.bytes += x->body.len;
  if (res->outcome == HTTP_CANCELLED || s->cancelled) {
    xfer_free(x);
    docs_sync_schedule(s);
    return;
  }
  handle_response(s, x, req, res);
  docs_sync_report(s, x->it->url);
  xfer_free(x);
  docs_sync_schedule(s);
}

void docs_crawl_visit(docs_sync *s, docs_item *it) {
  docs_page_info info;
  int known = docs_store_page_get(s->store, it->url, &info);
  double now = docs_wall_now();
  if (known == 1 && s->o.freshness_s > 0 && now - info.checked_at < s->o.freshness_s) {
    switch (info.state) {
      case DOCS_PAGE_OK:
        s->st.cached++;
        docs_sync_enqueue_links(s, info.links, info.n_links, it->depth + 1, it->src);
        break;
      case DOCS_PAGE_REDIRECT:
        if (info.n_links) docs_sync_enqueue(s, info.links[0], it->depth, it->src);
        break;
      case DOCS_PAGE_SKIPPED:
        /* a copy of another page's text keeps its links (docs_index_page) */
        s->st.skipped++;
        docs_sync_enqueue_links(s, info.links, info.n_links, it->depth + 1, it->src);
        break;
      case DOCS_PAGE_GONE: s->st.errors++; break;
    }
    docs_sync_report(s, it->url);
    docs_page_info_close(&info);
    docs_item_free(it);
    return;
  }
  docs_xfer *x = xcalloc(1, sizeof *x);
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
    docs_sync_report(s, it->url);
    xfer_free(x);
  }
}

void docs_crawl_cancel(docs_sync *s) {
  for (docs_xfer *x = s->active; x; x = x->next) http_request_cancel(x->req);
}
