/* BM25 ranking inside FTS5 that skips the rows which cannot make the top of
 * the list: an FTS5 auxiliary function, crucible_rank(), plus the stemming of
 * query words with the index's own tokenizer (to look their document
 * frequencies up in the fts5vocab table). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "log.h"

#define RANK_PTR_TYPE "crucible_docs_rank"
/* Length normalisation (rank_fn): BM25's, with a floor: a chunk shorter than the
 * average chunk scores as if it were of the average length. Sections of one
 * API entry ("os.getcwd()": a line of text) are much shorter than the
 * average, and BM25 gave them up to twice the score of an average chunk for
 * one matching word, so entries that mention a question's word once
 * outranked the section that answers it (python3-doc: recall@1 0.56 -> 0.60
 * tuning set, 0.65 -> 0.70 and 0.60 -> 0.65 held out; half the average did
 * no better, 1.5 and 2 times worse). */

static void heap_push(docs_rank *r, double v, long long id) {
  docs_hit *h = r->heap, hit = {v, id};
  size_t i;
  if (r->n_heap < r->k) {
    i = r->n_heap++;
    while (i > 0 && h[(i - 1) / 2].score > v) {
      h[i] = h[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    h[i] = hit;
    return;
  }
  if (v <= h[0].score) return;
  /* replace the smallest and sift down */
  i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= r->n_heap) break;
    if (c + 1 < r->n_heap && h[c + 1].score < h[c].score) c++;
    if (h[c].score >= v) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = hit;
}

/* The score a row must beat to matter: the k-th best so far, and the share
 * of the best under which the context drops a chunk anyway. Both only rise
 * as rows come, so a row under it now is under it at the end. */
static double floor_score(const docs_rank *r) {
  double f = r->best * r->min_relative;
  if (r->n_heap == r->k && r->heap[0].score > f) f = r->heap[0].score;
  return f;
}

/* The row's length from the cache, -1 if it is not there. */
static long long cached_length(docs_rank *r, long long id) {
  const docs_lengths *l = r->lengths;
  if (!l) return -1;
  size_t i = r->pos;
  if (i >= l->n || l->ids[i] > id) i = 0;
  /* rows come in ascending rowid order: gallop forward, then bisect */
  size_t step = 1, lo = i, hi = i;
  while (hi < l->n && l->ids[hi] < id) {
    lo = hi;
    hi += step;
    step *= 2;
  }
  if (hi > l->n) hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->ids[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  r->pos = lo;
  return lo < l->n && l->ids[lo] == id ? (long long)l->len[lo] : -1;
}

static void rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                    sqlite3_value **val) {
  docs_rank *r = nval >= 1 ? sqlite3_value_pointer(val[0], RANK_PTR_TYPE) : NULL;
  if (!r || !r->k) {
    sqlite3_result_error(ctx, "crucible_rank(chunks_fts, ctx) needs its context", -1);
    return;
  }
  if (!r->have_avg) {
    sqlite3_int64 rows = 0, t0 = 0, t1 = 0;
    api->xRowCount(fts, &rows);
    api->xColumnTotalSize(fts, 0, &t0);
    api->xColumnTotalSize(fts, 1, &t1);
    r->avgdl = rows > 0 ? (double)(t0 + t1) / (double)rows : 1.0;
    if (r->avgdl <= 0) r->avgdl = 1.0;
    r->have_avg = true;
  }
  if (r->parts && api->xRowid(fts) != r->parts->id) {
    sqlite3_result_int(ctx, 0);
    return;
  }
  r->rows++;
  const double k1 = DOCS_BM25_K1, b = DOCS_BM25_B;
  double freq[DOCS_MAX_QUERY_TERMS], bound = 0;
  int n = r->n_terms < api->xPhraseCount(fts) ? r->n_terms : api->xPhraseCount(fts);
  for (int p = 0; p < n; p++) {
    Fts5PhraseIter it;
    int col = -1, off = 0;
    double f = 0;
    if (api->xPhraseFirst(fts, p, &it, &col, &off) != SQLITE_OK) col = -1;
    for (; col >= 0; api->xPhraseNext(fts, &it, &col, &off)) f += col == 0 ? r->title_weight : col == 1 ? 1.0 : 0.0;
    freq[p] = f;
    /* the score this term would give to the shortest document: one of the
     * average length (a length norm of k1) */
    if (f > 0) bound += r->idf[p] * f * (k1 + 1) / (f + k1);
  }
  sqlite3_result_int(ctx, 0);
  if (bound <= 0 || (r->prune && !r->parts && bound <= floor_score(r))) return;
  long long id = api->xRowid(fts), dl = cached_length(r, id);
  if (dl < 0) {
    int n0 = 0, n1 = 0;
    api->xColumnSize(fts, 0, &n0);
    api->xColumnSize(fts, 1, &n1);
    dl = (long long)n0 + n1;
  }
  /* shorter than the average scores as the average (the note at the top) */
  double len = (double)dl < r->avgdl ? r->avgdl : (double)dl;
  double norm = k1 * (1 - b + b * len / r->avgdl), score = 0;
  for (int p = 0; p < n; p++)
    if (freq[p] > 0) score += r->idf[p] * freq[p] * (k1 + 1) / (freq[p] + norm);
  if (r->parts) {
    docs_rank_parts *o = r->parts;
    o->found = true;
    o->length = dl;
    o->norm = norm;
    o->total = score;
    for (int p = 0; p < n; p++) {
      o->freq[p] = freq[p];
      o->score[p] = freq[p] > 0 ? r->idf[p] * freq[p] * (k1 + 1) / (freq[p] + norm) : 0;
    }
    return;
  }
  r->scored++;
  if (score > r->best) r->best = score;
  heap_push(r, score, id);
}

void docs_rank_reset(docs_rank *self) {
  free(self->heap);
  self->heap = self->k ? xcalloc(self->k, sizeof *self->heap) : NULL;
  self->n_heap = 0;
  self->best = 0;
  self->have_avg = false;
  self->pos = 0;
  self->rows = self->scored = 0;
}

static int cmp_hit(const void *a, const void *b) {
  const docs_hit *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

size_t docs_rank_sort(docs_rank *self) {
  qsort(self->heap, self->n_heap, sizeof *self->heap, cmp_hit);
  return self->n_heap;
}

void docs_rank_close(docs_rank *self) {
  free(self->heap);
  self->heap = NULL;
}

void docs_lengths_close(docs_lengths *self) {
  free(self->ids);
  free(self->len);
  memset(self, 0, sizeof *self);
}

/* The tokens of the first two columns in a docsize blob: SQLite varints. */
static unsigned blob_length(const unsigned char *p, int n) {
  unsigned total = 0;
  int i = 0;
  for (int col = 0; col < 2 && i < n; col++) {
    unsigned v = 0;
    for (int k = 0; k < 5 && i < n; k++) {
      unsigned char c = p[i++];
      v = (v << 7) | (c & 0x7f);
      if (!(c & 0x80)) break;
    }
    total += v;
  }
  return total;
}

void docs_store_caches_free(docs_store *self) {
  docs_lengths_close(&self->lengths);
  for (size_t i = 0; i < self->n_df; i++) free(self->df_terms[i]);
  free(self->df_terms);
  free(self->df);
  self->df_terms = NULL;
  self->df = NULL;
  self->n_df = 0;
}

static void df_clear(docs_store *self) {
  for (size_t i = 0; i < self->n_df; i++) free(self->df_terms[i]);
  free(self->df_terms);
  free(self->df);
  self->df_terms = NULL;
  self->df = NULL;
  self->n_df = 0;
}

void docs_store_check_caches(docs_store *self) {
  long long dv = -1;
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_DATA_VERSION);
  if (st && sqlite3_step(st) == SQLITE_ROW) dv = sqlite3_column_int64(st, 0);
  if (st) sqlite3_reset(st);
  /* data_version moves with other connections' commits only; gen counts
   * ours */
  if (self->cache_gen == self->gen && self->cache_data_version == dv && dv >= 0) return;
  docs_store_caches_free(self);
  self->cache_gen = self->gen;
  self->cache_data_version = dv;
}

/* Query terms kept per index version: common words come back in most
 * questions, and counting their rows reads their whole doclist. */
#define DF_CACHE_MAX 1024

long long docs_store_term_rows(docs_store *self, const char *term) {
  for (size_t i = 0; i < self->n_df; i++)
    if (strcmp(self->df_terms[i], term) == 0) return self->df[i];
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_VOCAB_DOC);
  if (!st) return -1;
  sqlite3_bind_text(st, 1, term, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  long long n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
  sqlite3_reset(st);
  if (n < 0) return n;
  if (self->n_df == DF_CACHE_MAX) df_clear(self);
  self->df_terms = xrealloc(self->df_terms, (self->n_df + 1) * sizeof *self->df_terms);
  self->df = xrealloc(self->df, (self->n_df + 1) * sizeof *self->df);
  self->df_terms[self->n_df] = xstrdup(term);
  self->df[self->n_df++] = n;
  return n;
}

const docs_lengths *docs_lengths_get(docs_store *self) {
  docs_lengths *l = &self->lengths;
  if (l->valid) return l;
  sqlite3_stmt *st;
  if (!(st = docs_store_stmt(self, DOCS_STMT_LENGTHS))) return NULL;
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (l->n == cap) {
      cap = cap ? cap * 2 : 4096;
      l->ids = xrealloc(l->ids, cap * sizeof *l->ids);
      l->len = xrealloc(l->len, cap * sizeof *l->len);
    }
    l->ids[l->n] = sqlite3_column_int64(st, 0);
    l->len[l->n] = blob_length(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
    l->n++;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    docs_lengths_close(l);
    return NULL;
  }
  l->valid = true;
  return l;
}

static fts5_api *fts5_api_get(sqlite3 *db) {
  fts5_api *api = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
  sqlite3_step(st);
  sqlite3_finalize(st);
  return api;
}

int docs_rank_register(docs_store *self) {
  fts5_api *api = fts5_api_get(self->db);
  if (!api || api->iVersion < 2) return -ENOSYS;
  if (api->xCreateFunction(api, "crucible_rank", NULL, rank_fn, NULL) != SQLITE_OK) return -EIO;
  /* chunks_fts is tokenize='porter unicode61': the same pair stems the query */
  void *ud = NULL;
  if (api->xFindTokenizer(api, "porter", &ud, &self->tok) != SQLITE_OK) return -ENOSYS;
  const char *args[] = {"unicode61"};
  if (self->tok.xCreate(ud, args, 1, &self->tok_inst) != SQLITE_OK) {
    self->tok_inst = NULL;
    return -ENOSYS;
  }
  return 0;
}

void docs_rank_unregister(docs_store *self) {
  if (self->tok_inst) self->tok.xDelete(self->tok_inst);
  self->tok_inst = NULL;
}

typedef struct term_out {
  char *term;
  int n;
} term_out;

static int on_token(void *ud, int flags, const char *tok, int n, int start, int end) {
  (void)flags, (void)start, (void)end;
  term_out *o = ud;
  if (o->n++ == 0) o->term = xstrndup(tok, (size_t)n);
  return SQLITE_OK;
}

char *docs_rank_term(docs_store *self, const char *word) {
  if (!self->tok_inst) return NULL;
  term_out o = {0};
  self->tok.xTokenize(self->tok_inst, &o, FTS5_TOKENIZE_QUERY, word, (int)strlen(word), on_token);
  if (o.n != 1) {
    free(o.term);
    return NULL;
  }
  return o.term;
}
