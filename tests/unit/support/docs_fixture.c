#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common.h"
#include "docs_fixture.h"
#include "tmpdir.h"

void tu_docs_init(tu_docs *d, const char *tag) {
  memset(d, 0, sizeof *d);
  tu_tmpdir_make(d->dir, sizeof d->dir, tag);
  snprintf(d->docs, sizeof d->docs, "%s/docs", d->dir);
  snprintf(d->db, sizeof d->db, "%s/docs.db", d->dir);
  assert_int_equal(mkdir(d->docs, 0700), 0);
  char err[256] = "";
  d->store = docs_store_open(d->db, err, sizeof err);
  if (!d->store) fprintf(stderr, "docs_store_open: %s\n", err);
  assert_non_null(d->store);
}

void tu_docs_close(tu_docs *d) {
  docs_store_free(d->store);
  d->store = NULL;
  tu_tmpdir_remove(d->dir);
}

static void on_progress(void *ud, const docs_sync_stats *st, const char *url) {
  (void)st, (void)url;
  ((tu_sync_result *)ud)->progress_calls++;
}

static void on_done(void *ud, const docs_sync_stats *st, const char *error) {
  tu_sync_result *r = ud;
  r->done_calls++;
  r->st = *st;
  r->st.embed_error = st->embed_error ? "set" : NULL;
  r->error = error ? xstrdup(error) : NULL;
}

tu_sync_result tu_docs_sync(docs_store *store, uv_loop_t *loop, const docs_sync_opts *o, bool cancel) {
  uv_loop_t own;
  if (!loop) {
    assert_int_equal(uv_loop_init(&own), 0);
    loop = &own;
  }
  tu_sync_result r;
  memset(&r, 0, sizeof r);
  docs_sync *s = NULL;
  assert_int_equal(docs_sync_start(store, loop, o, on_progress, on_done, &r, &s), 0);
  assert_non_null(s);
  assert_int_equal(r.done_calls, 0); /* never from inside start */
  if (cancel) docs_sync_cancel(s);
  uv_run(loop, UV_RUN_DEFAULT);
  if (loop == &own) assert_int_equal(uv_loop_close(&own), 0);
  assert_int_equal(r.done_calls, 1);
  return r;
}

tu_sync_result tu_docs_sync_folder(docs_store *store, const char *folder) {
  const char *src[] = {folder};
  docs_sync_opts o = {.sources = src, .n_sources = 1, .max_depth = 5, .freshness_s = -1};
  tu_sync_result r = tu_docs_sync(store, NULL, &o, false);
  if (r.error) fprintf(stderr, "sync of %s: %s\n", folder, r.error);
  assert_null(r.error);
  return r;
}
