/* Unit tests of hybrid ranking's parts: reciprocal rank fusion, the vector
 * arithmetic, and the vector store on a real SQLite file synced from a real
 * folder with an embedder on the loop (vectors stored in batches, deleted
 * with their chunks, a failing embedder leaving the sync intact), and the
 * hybrid context finding a chunk by its vector alone. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "docs.h"
#include "internal.h"
#include "docs_fixture.h"
#include "tmpdir.h"

/* ---- pure ---- */

static void test_rrf_order_and_scores(void **state) {
  (void)state;
  long long lex[] = {1, 2, 3}, vec[] = {3, 4};
  docs_fused out[5];
  size_t n = docs_rrf(lex, 3, vec, 2, out);
  assert_int_equal(n, 4);
  /* 3: in both (1/63 + 1/61); 1: lexical first; 2 and 4 tie at 1/62: the
   * lexical side's order first */
  long long want[] = {3, 1, 2, 4};
  for (size_t i = 0; i < n; i++) assert_int_equal(out[i].id, want[i]);
  assert_true(fabs(out[0].score - (1.0 / 63 + 1.0 / 61)) < 1e-12);
  assert_int_equal(out[0].lex_rank, 3);
  assert_int_equal(out[0].vec_rank, 1);
  assert_true(fabs(out[1].score - 1.0 / 61) < 1e-12);
  assert_int_equal(out[1].vec_rank, 0);
  assert_true(fabs(out[3].score - 1.0 / 62) < 1e-12);
  assert_int_equal(out[3].lex_rank, 0);
  assert_int_equal(out[3].vec_rank, 1 + 1);
}

static void test_rrf_edges(void **state) {
  (void)state;
  docs_fused out[4];
  /* one side empty: that side's order */
  long long vec[] = {7, 8, 7};
  size_t n = docs_rrf(NULL, 0, vec, 3, out);
  assert_int_equal(n, 2); /* a repeated id counts once */
  assert_int_equal(out[0].id, 7);
  assert_true(fabs(out[0].score - 1.0 / 61) < 1e-12);
  assert_int_equal(out[1].id, 8);
  assert_int_equal(docs_rrf(NULL, 0, NULL, 0, out), 0);
}

static void test_vector_math(void **state) {
  (void)state;
  float v[5] = {3, 4, 0, 0, 0};
  docs_vec_normalize(v, 5);
  assert_true(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f);
  assert_true(fabsf(docs_vec_dot(v, v, 5) - 1.0f) < 1e-6f);
  float z[3] = {0, 0, 0};
  docs_vec_normalize(z, 3); /* stays zero, no NaN */
  assert_true(z[0] == 0 && !isnan(z[0]));
  float a[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  assert_true(fabsf(docs_vec_dot(a, b, 9) - 45.0f) < 1e-5f); /* the tail after the groups of 4 */
}

/* ---- the store, with an embedder on the loop ---- */

#define DIM 16

/* A bag of words hashed into DIM dimensions, "pause" counted as "sleep". */
static void bag(const char *text, float *v) {
  memset(v, 0, DIM * sizeof *v);
  const char *p = text;
  while (*p) {
    while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) p++;
    const char *w = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
    size_t n = (size_t)(p - w);
    if (n < 3) continue;
    if (n == 5 && !strncmp(w, "pause", 5)) w = "sleep";
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)(w[i] | 0x20)) * 16777619u;
    v[h % DIM] += 1;
  }
}

typedef struct fake_embedder {
  docs_embedder base;
  uv_loop_t *loop;
  bool fail;
  int requests;
  size_t max_batch;
} fake_embedder;

typedef struct pending {
  uv_timer_t timer;
  fake_embedder *e;
  float *vecs;
  size_t n;
  docs_embed_fn done;
  void *ud;
} pending;

static void pending_closed(uv_handle_t *h) {
  pending *p = container_of((uv_timer_t *)h, pending, timer);
  free(p->vecs);
  free(p);
}

static void pending_fire(uv_timer_t *t) {
  pending *p = container_of(t, pending, timer);
  if (p->e->fail) p->done(p->ud, NULL, 0, 0, "the embedding model is down");
  else p->done(p->ud, p->vecs, p->n, DIM, NULL);
  uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static int fake_start(const docs_embedder *base, const char *const *texts, size_t n, long timeout_ms,
                      docs_embed_fn done, void *ud, void **req) {
  fake_embedder *e = container_of(base, fake_embedder, base);
  e->requests++;
  if (n > e->max_batch) e->max_batch = n;
  pending *p = xcalloc(1, sizeof *p);
  p->e = e;
  p->n = n;
  p->done = done;
  p->ud = ud;
  p->vecs = xcalloc(n * DIM, sizeof *p->vecs);
  for (size_t i = 0; i < n; i++) bag(texts[i], p->vecs + i * DIM);
  uv_timer_init(e->loop, &p->timer);
  uv_timer_start(&p->timer, pending_fire, 1, 0);
  if (req) *req = p;
  return 0;
}

typedef struct fixture {
  tu_docs d;
  uv_loop_t loop;
  fake_embedder emb;
} fixture;

static int setup(void **state) {
  fixture *f = xcalloc(1, sizeof *f);
  tu_docs_init(&f->d, "vec-test");
  tu_write_file(f->d.docs, "timing.md", "# Sleeping\n\nCall time.sleep to sleep; the sleep blocks the thread.\n");
  tu_write_file(f->d.docs, "json.md", "# JSON\n\njson.loads parses a document; json.dumps writes one.\n");
  /* enough chunks for two batches */
  for (int i = 0; i < 70; i++) {
    char name[32], text[128];
    snprintf(name, sizeof name, "topic%02d.md", i);
    snprintf(text, sizeof text, "# Topic %d\n\nThe widget number %d is configured here.\n", i, i);
    tu_write_file(f->d.docs, name, text);
  }
  uv_loop_init(&f->loop);
  f->emb.base.model = "bag";
  f->emb.base.start = fake_start;
  f->emb.loop = &f->loop;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_docs_close(&f->d);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static docs_sync_stats sync_now(fixture *f, bool embed) {
  const char *src[] = {f->d.docs};
  docs_sync_opts o = {.sources = src, .n_sources = 1, .max_depth = 5, .freshness_s = 0, .embedder = embed ? &f->emb.base : NULL};
  tu_sync_result r = tu_docs_sync(f->d.store, &f->loop, &o, false);
  assert_null(r.error);
  return r.st;
}

static long long q1(fixture *f, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(f->d.store->db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void test_vectors_stored_and_deleted_with_chunks(void **state) {
  fixture *f = *state;
  docs_sync_stats st = sync_now(f, true);
  long long chunks = q1(f, "SELECT count(*) FROM chunks");
  assert_true(chunks >= 72);
  assert_int_equal(st.embedded, chunks);
  assert_null(st.embed_error);
  assert_int_equal(docs_vec_count(f->d.store, "bag"), chunks);
  assert_int_equal(docs_vec_count(f->d.store, "other"), 0);
  assert_int_equal(f->emb.max_batch, DOCS_EMBED_BATCH);
  assert_int_equal(f->emb.requests, (chunks + DOCS_EMBED_BATCH - 1) / DOCS_EMBED_BATCH);
  /* stored unit length, dim as given */
  assert_int_equal(q1(f, "SELECT count(*) FROM chunk_vectors WHERE dim != 16 OR length(vec) != 64"), 0);
  /* nothing new: no request */
  int before = f->emb.requests;
  st = sync_now(f, true);
  assert_int_equal(st.embedded, 0);
  assert_int_equal(f->emb.requests, before);
  /* a changed page gets new vectors, a removed one takes its vectors along */
  tu_write_file(f->d.docs, "timing.md", "# Sleeping\n\nCall time.sleep to sleep.\n\n## More\n\nsleep(0) yields.\n");
  char path[400];
  snprintf(path, sizeof path, "%s/json.md", f->d.docs);
  unlink(path);
  st = sync_now(f, true);
  assert_true(st.embedded >= 1);
  assert_int_equal(q1(f, "SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)"), 0);
  assert_int_equal(docs_vec_count(f->d.store, "bag"), q1(f, "SELECT count(*) FROM chunks"));
}

static void test_failing_embedder_keeps_the_sync(void **state) {
  fixture *f = *state;
  f->emb.fail = true;
  docs_sync_stats st = sync_now(f, true);
  assert_true(st.pages >= 72);
  assert_int_equal(st.embedded, 0);
  assert_non_null(st.embed_error);
  assert_int_equal(f->emb.requests, 1); /* stops at the first failure */
  assert_int_equal(docs_vec_count(f->d.store, "bag"), 0);
  /* hybrid asked, no vectors: lexical */
  float q[DIM];
  bag("parse a json document", q);
  docs_query_vec qv = {.model = "bag", .v = q, .dim = DIM};
  bool hybrid = true;
  char *ctx = docs_context_build_hybrid(f->d.store, "parse a json document", &qv, NULL, 0, "search", 2000, NULL, NULL,
                                        NULL, &hybrid);
  assert_false(hybrid);
  assert_non_null(strstr(ctx, "json.loads"));
  free(ctx);
}

static void test_hybrid_finds_by_vector(void **state) {
  fixture *f = *state;
  sync_now(f, true);
  float q[DIM];
  bag("how to pause", q);
  docs_query_vec qv = {.model = "bag", .v = q, .dim = DIM};
  bool hybrid = false;
  cJSON *used = NULL, *why = NULL;
  char *ctx = docs_context_build_hybrid(f->d.store, "how to pause", &qv, NULL, 0, "search", 2000, &used, NULL, &why,
                                        &hybrid);
  assert_true(hybrid);
  const char *first = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(used, 0), "url"));
  assert_non_null(first);
  assert_non_null(strstr(first, "/timing.md"));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(why, "ranking")), "hybrid");
  cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(why, "hits"), 0);
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(top, "vectorRank")), 1);
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(top, "lexicalRank")), 0);
  free(ctx);
  cJSON_Delete(used);
  cJSON_Delete(why);
  /* the same without the vector: lexical finds nothing for "pause" */
  ctx = docs_context_build_hybrid(f->d.store, "how to pause", NULL, NULL, 0, "search", 2000, NULL, NULL, NULL, &hybrid);
  assert_false(hybrid);
  assert_null(strstr(ctx, "time.sleep"));
  free(ctx);
  /* a source filter applies to the vector side too */
  char other[400];
  snprintf(other, sizeof other, "%s/json.md", f->d.docs);
  const char *only[] = {other};
  ctx = docs_context_build_hybrid(f->d.store, "how to pause", &qv, only, 1, "search", 2000, NULL, NULL, NULL, &hybrid);
  assert_null(strstr(ctx, "time.sleep"));
  free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rrf_order_and_scores),
      cmocka_unit_test(test_rrf_edges),
      cmocka_unit_test(test_vector_math),
      cmocka_unit_test_setup_teardown(test_vectors_stored_and_deleted_with_chunks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failing_embedder_keeps_the_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_finds_by_vector, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
