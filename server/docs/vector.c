/* Hybrid ranking's vector side: chunk embeddings stored beside FTS5
 * (chunk_vectors), computed by a sync through the caller's embedder (the
 * LLM client's /embeddings) in batches, the flat cosine scan of a query, and reciprocal
 * rank fusion of the lexical and vector rankings. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "log.h"

/* ---- pure parts ---- */

void docs_vec_normalize(float *v, int dim) {
  double s = 0;
  for (int i = 0; i < dim; i++) s += (double)v[i] * v[i];
  if (s <= 0) return;
  float inv = (float)(1.0 / sqrt(s));
  for (int i = 0; i < dim; i++) v[i] *= inv;
}

float docs_vec_dot(const float *a, const float *b, int dim) {
  /* four sums: the compiler keeps them in vector registers */
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < dim; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

static int cmp_fused(const void *a, const void *b) {
  const docs_fused *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  /* a tie: the lexical side's order, then the vector side's */
  int lx = x->lex_rank ? x->lex_rank : INT32_MAX, ly = y->lex_rank ? y->lex_rank : INT32_MAX;
  if (lx != ly) return lx < ly ? -1 : 1;
  int vx = x->vec_rank ? x->vec_rank : INT32_MAX, vy = y->vec_rank ? y->vec_rank : INT32_MAX;
  if (vx != vy) return vx < vy ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

size_t docs_rrf(const long long *lex, size_t n_lex, const long long *vec, size_t n_vec, docs_fused *out) {
  size_t n = 0;
  for (size_t i = 0; i < n_lex; i++) {
    out[n] = (docs_fused){.id = lex[i], .lex_rank = (int)i + 1, .score = 1.0 / (DOCS_RRF_K + (double)(i + 1))};
    n++;
  }
  for (size_t j = 0; j < n_vec; j++) {
    double add = 1.0 / (DOCS_RRF_K + (double)(j + 1));
    size_t i;
    for (i = 0; i < n; i++)
      if (out[i].id == vec[j]) break;
    if (i == n) out[n++] = (docs_fused){.id = vec[j]};
    if (out[i].vec_rank) continue; /* a repeated id counts once */
    out[i].vec_rank = (int)j + 1;
    out[i].score += add;
  }
  qsort(out, n, sizeof *out, cmp_fused);
  return n;
}

/* ---- the scan ---- */

static void top_push(docs_hit *top, size_t *n, size_t k, double score, long long id) {
  /* a min-heap on score holding the best k */
  if (*n < k) {
    size_t i = (*n)++;
    while (i > 0 && top[(i - 1) / 2].score > score) {
      top[i] = top[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    top[i] = (docs_hit){score, id};
    return;
  }
  if (score <= top[0].score) return;
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && top[c + 1].score < top[c].score) c++;
    if (top[c].score >= score) break;
    top[i] = top[c];
    i = c;
  }
  top[i] = (docs_hit){score, id};
}

int docs_hit_cmp(const void *a, const void *b) {
  const docs_hit *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

long long docs_vec_topk_mem(const docs_vec_cache *c, const long long *allowed, size_t n_allowed, const float *q,
                            size_t k, docs_hit *out, size_t *n_out) {
  int dim = c->dim;
  float *qn = xcalloc((size_t)dim, sizeof *qn);
  memcpy(qn, q, (size_t)dim * sizeof *qn);
  docs_vec_normalize(qn, dim);
  size_t n = 0, a = 0;
  long long scanned = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (allowed) {
      /* both ascending: a merge */
      while (a < n_allowed && allowed[a] < c->ids[i]) a++;
      if (a == n_allowed) break;
      if (allowed[a] != c->ids[i]) continue;
    }
    scanned++;
    top_push(out, &n, k, docs_vec_dot(qn, c->v + i * (size_t)dim, dim), c->ids[i]);
  }
  free(qn);
  qsort(out, n, sizeof *out, docs_hit_cmp);
  *n_out = n;
  return scanned;
}

void docs_vec_cache_close(docs_vec_cache *self) {
  free(self->model);
  free(self->ids);
  free(self->v);
  memset(self, 0, sizeof *self);
}

const docs_vec_cache *docs_vec_cache_get(docs_store *self, const char *model, int dim) {
  docs_vec_cache *c = &self->vecs;
  long long dv = -1;
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_DATA_VERSION);
  if (st && sqlite3_step(st) == SQLITE_ROW) dv = sqlite3_column_int64(st, 0);
  if (st) sqlite3_reset(st);
  if (c->valid && c->gen == self->gen && c->data_version == dv && dv >= 0 && c->dim == dim &&
      !strcmp(c->model, model))
    return c->n ? c : NULL;
  docs_vec_cache_close(c);
  c->model = xstrdup(model);
  c->dim = dim;
  c->gen = self->gen;
  c->data_version = dv;
  st = NULL;
  if (sqlite3_prepare_v2(self->db, "SELECT chunk_id, vec FROM chunk_vectors WHERE model = ?1 AND dim = ?2"
                                   " ORDER BY chunk_id",
                         -1, &st, NULL) != SQLITE_OK) {
    log_warn("docs vectors: %s", sqlite3_errmsg(self->db));
    return NULL;
  }
  sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, dim);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const void *blob = sqlite3_column_blob(st, 1);
    if (!blob || sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float)) continue;
    if (c->n == cap) {
      cap = cap ? cap * 2 : 1024;
      c->ids = xrealloc(c->ids, cap * sizeof *c->ids);
      c->v = xrealloc(c->v, cap * (size_t)dim * sizeof *c->v);
    }
    c->ids[c->n] = sqlite3_column_int64(st, 0);
    memcpy(c->v + c->n * (size_t)dim, blob, (size_t)dim * sizeof(float));
    c->n++;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    log_warn("docs vectors: %s", sqlite3_errmsg(self->db));
    docs_vec_cache_close(c);
    return NULL;
  }
  c->valid = true;
  return c->n ? c : NULL;
}

/* ---- storage ---- */

int docs_vec_put(docs_store *self, const char *model, const long long *ids, size_t n, const float *vecs, int dim) {
  sqlite3_stmt *st = NULL;
  int err = 0;
  /* a savepoint: a transaction of its own, or a part of a sync's batch
   * that another sync on this store holds open */
  self->gen++; /* the vector cache reloads */
  if (sqlite3_exec(self->db, "SAVEPOINT vectors", NULL, NULL, NULL) != SQLITE_OK) return -EIO;
  if (sqlite3_prepare_v2(self->db, "INSERT OR REPLACE INTO chunk_vectors (chunk_id, model, dim, vec)"
                                   " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1)",
                         -1, &st, NULL) != SQLITE_OK) {
    err = -EIO;
    goto out;
  }
  float *v = xcalloc((size_t)dim, sizeof *v);
  for (size_t i = 0; i < n && !err; i++) {
    memcpy(v, vecs + i * (size_t)dim, (size_t)dim * sizeof *v);
    docs_vec_normalize(v, dim);
    sqlite3_bind_int64(st, 1, ids[i]);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, dim);
    sqlite3_bind_blob(st, 4, v, dim * (int)sizeof *v, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) err = -EIO;
    sqlite3_reset(st);
  }
  free(v);
out:
  if (err) {
    log_warn("docs vectors: cannot store: %s", sqlite3_errmsg(self->db));
    sqlite3_exec(self->db, "ROLLBACK TO vectors", NULL, NULL, NULL);
  }
  sqlite3_finalize(st);
  sqlite3_exec(self->db, "RELEASE vectors", NULL, NULL, NULL);
  return err;
}

long long docs_vec_count(docs_store *self, const char *model) {
  sqlite3_stmt *st = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(self->db, model ? "SELECT count(*) FROM chunk_vectors WHERE model = ?1"
                                         : "SELECT count(*) FROM chunk_vectors",
                         -1, &st, NULL) == SQLITE_OK) {
    if (model) sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return n;
}

/* ---- a sync's embedding phase ---- */

/* Reads the next batch of chunks without a vector of the model (after the
 * cursor) and asks for their embeddings. Returns 0 when a request is under
 * way, 1 when nothing is left, <0 on an error (s->st.embed_error set). */
static int embed_batch(docs_sync *s);

static void embed_end(docs_sync *s) {
  for (size_t i = 0; i < s->embed_n; i++) free(s->embed_texts[i]);
  s->embed_n = 0;
  s->embed_req = NULL;
  docs_sync_finish_done(s);
}

static void embed_fail(docs_sync *s, const char *why) {
  snprintf(s->embed_error, sizeof s->embed_error, "%s", why);
  s->st.embed_error = s->embed_error;
  /* said once per sync: the ranking of these sources stays lexical where
   * their chunks have no vector */
  log_warn("docs: embeddings with model '%s' failed (%s); ranking falls back to lexical for the chunks without "
           "a vector (check docs.embeddingModel and that the endpoint serves /v1/embeddings)",
           s->embed_model, why);
}

static void on_embedded(void *ud, const float *vecs, size_t n, int dim, const char *error) {
  docs_sync *s = ud;
  s->embed_req = NULL;
  if (s->cancelled) {
    s->st.cancelled = true;
    embed_end(s);
    return;
  }
  if (error || !vecs || n != s->embed_n || dim <= 0) {
    embed_fail(s, error ? error : "the answer holds the wrong number of vectors");
    embed_end(s);
    return;
  }
  if (docs_vec_put(s->store, s->embed_model, s->embed_ids, s->embed_n, vecs, dim)) {
    embed_fail(s, "the vectors could not be stored");
    embed_end(s);
    return;
  }
  s->st.embedded += (int)s->embed_n;
  for (size_t i = 0; i < s->embed_n; i++) free(s->embed_texts[i]);
  s->embed_n = 0;
  if (s->progress) s->progress(s->ud, &s->st, "embeddings");
  if (embed_batch(s) != 0) embed_end(s);
}

static int embed_batch(docs_sync *s) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->store->db,
                         "SELECT c.id, c.title, c.body FROM chunks c WHERE c.id > ?2 AND NOT EXISTS"
                         " (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id AND v.model = ?1)"
                         " ORDER BY c.id LIMIT ?3",
                         -1, &st, NULL) != SQLITE_OK) {
    embed_fail(s, sqlite3_errmsg(s->store->db));
    return -EIO;
  }
  sqlite3_bind_text(st, 1, s->embed_model, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, s->embed_cursor);
  sqlite3_bind_int(st, 3, DOCS_EMBED_BATCH);
  s->embed_n = 0;
  while (s->embed_n < DOCS_EMBED_BATCH && sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 1), *b = sqlite3_column_text(st, 2);
    s->embed_ids[s->embed_n] = sqlite3_column_int64(st, 0);
    s->embed_texts[s->embed_n] = xasprintf("%s\n%s", t ? (const char *)t : "", b ? (const char *)b : "");
    s->embed_cursor = s->embed_ids[s->embed_n];
    s->embed_n++;
  }
  sqlite3_finalize(st);
  if (!s->embed_n) return 1;
  int err = s->o.embedder->start(s->o.embedder, (const char *const *)s->embed_texts, s->embed_n, 0, on_embedded, s,
                                 &s->embed_req);
  if (err) {
    char why[128];
    snprintf(why, sizeof why, "the request could not start: %s", strerror(-err));
    embed_fail(s, why);
    return err;
  }
  return 0;
}

bool docs_sync_embed_start(docs_sync *s) {
  if (!s->embed_model || s->cancelled || s->error) return false;
  s->embedding = true;
  if (embed_batch(s) == 0) return true;
  for (size_t i = 0; i < s->embed_n; i++) free(s->embed_texts[i]);
  s->embed_n = 0;
  return false;
}

void docs_sync_embed_cancel(docs_sync *s) {
  if (s->embed_req && s->o.embedder->cancel) s->o.embedder->cancel(s->embed_req);
}
