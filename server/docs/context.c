/* The documentation section of a prompt: bm25-ranked chunks packed into a
 * token budget ("search"), or every page in reverse URL order cut at the
 * budget ("all", the tutorial's behaviour), each citing its source. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"
#include "utf8.h"

#define MIN_CANDIDATES 16
#define MAX_CANDIDATES 200
/* Headings weigh this many times body text. Chunk titles carry their page's
 * title ("page › section"), so this also weighs the page's name; at 4 the
 * headings of release notes and of pages that only mention a feature won
 * too often (python3-doc questions: 2 and 1 do better than 4, alike). */
#define TITLE_WEIGHT 2.0
/* A term in more than this share of the chunks is left out of the query
 * while a rarer one is there (see build_search). */
#define COMMON_FRACTION 0.2
#define MAX_MISSES 24
#define MAX_FILTER_SOURCES 64
/* A chunk whose bm25 score is under this fraction of the best one matched
 * only on common words: it would spend the budget on noise. */
#define MIN_RELATIVE_SCORE 0.2
/* The weight of a chunk of release notes (docs_url_is_changelog), and of a
 * generated index page (docs_url_is_generated_index). */
#define CHANGELOG_WEIGHT 0.5
#define GENERATED_INDEX_WEIGHT 0.25
/* The weight of a page that opens by saying it is deprecated (a legacy
 * module: docs_text_deprecated): that of release notes. Such pages describe
 * what the reference pages now do another way, in the same words. */
#define LEGACY_WEIGHT CHANGELOG_WEIGHT
/* The share of the other kept chunks of its page a chunk's score gains
 * (rerank), counting the page's PAGE_EVIDENCE_CHUNKS best others only: a
 * long page (a HOWTO, a big module) holds many chunks that match a common
 * word or two, and their sum outweighed the one page about the question
 * (python3-doc held-out questions: recall@1 0.45 -> 0.55 and 0.25 -> 0.60
 * with the cap at 2; 1 and 3 do no better). */
#define PAGE_EVIDENCE 0.2
#define PAGE_EVIDENCE_CHUNKS 2

size_t docs_pack(const size_t *costs, size_t n, size_t budget, size_t max_misses, bool *chosen) {
  size_t used = 0, misses = 0;
  for (size_t i = 0; i < n; i++) {
    chosen[i] = false;
    if (misses >= max_misses) continue;
    if (costs[i] <= budget - used) {
      chosen[i] = true;
      used += costs[i];
      misses = 0;
    } else {
      misses++;
    }
  }
  return used;
}

typedef struct filter {
  char **exact, **lo, **hi;
  size_t n;
} filter;

static void filter_init(filter *f, const char *const *sources, size_t n) {
  memset(f, 0, sizeof *f);
  if (n > MAX_FILTER_SOURCES) n = MAX_FILTER_SOURCES;
  f->exact = xcalloc(n + 1, sizeof *f->exact);
  f->lo = xcalloc(n + 1, sizeof *f->lo);
  f->hi = xcalloc(n + 1, sizeof *f->hi);
  for (size_t i = 0; i < n; i++) {
    char *p = docs_source_prefix(sources[i], NULL);
    if (!p) continue;
    size_t len = strlen(p);
    f->exact[f->n] = xstrndup(p, len && p[len - 1] == '/' ? len - 1 : len);
    f->hi[f->n] = xasprintf("%s\xff", p);
    f->lo[f->n] = p;
    f->n++;
  }
}

static void filter_close(filter *f) {
  for (size_t i = 0; i < f->n; i++) free(f->exact[i]), free(f->lo[i]), free(f->hi[i]);
  free(f->exact), free(f->lo), free(f->hi);
}

/* " AND (p.url = ?a OR (p.url >= ?b AND p.url < ?c) OR ...)" with parameters
 * numbered from `first`; nothing when no source was given. */
static void filter_sql(const filter *f, dbuf *sql, int first) {
  if (!f->n) return;
  dbuf_adds(sql, " AND (");
  for (size_t i = 0; i < f->n; i++) {
    int k = first + (int)i * 3;
    dbuf_addf(sql, "%s(p.url = ?%d OR (p.url >= ?%d AND p.url < ?%d))", i ? " OR " : "", k, k + 1, k + 2);
  }
  dbuf_adds(sql, ")");
}

static void filter_bind(const filter *f, sqlite3_stmt *st, int first) {
  for (size_t i = 0; i < f->n; i++) {
    int k = first + (int)i * 3;
    sqlite3_bind_text(st, k, f->exact[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k + 1, f->lo[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k + 2, f->hi[i], -1, SQLITE_STATIC);
  }
}

static void source_add(cJSON *used, const char *title, const char *url) {
  cJSON *it;
  cJSON_ArrayForEach(it, used) {
    const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(it, "url"));
    if (u && strcmp(u, url) == 0) return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "title", title && *title ? title : url);
  cJSON_AddStringToObject(o, "url", url);
  cJSON_AddItemToArray(used, o);
}

static const char *text_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? (const char *)t : "";
}

typedef struct candidate {
  char *entry;  /* the formatted "### ...\nSource: ...\n<text>\n\n" */
  size_t len;
  char *title, *url;
  size_t hit; /* its index in the ranking */
} candidate;

static char *chunk_title(const char *page_title, const char *chunk_title) {
  if (!*chunk_title) return xstrdup(page_title);
  /* stored titles carry their page ("page › section", index.c): the
   * section part */
  size_t pl = strlen(page_title), sl = strlen(" \u203a ");
  if (pl && strncmp(chunk_title, page_title, pl) == 0 && strncmp(chunk_title + pl, " \u203a ", sl) == 0)
    chunk_title += pl + sl;
  if (!*page_title || strcmp(page_title, chunk_title) == 0) return xstrdup(chunk_title);
  return xasprintf("%s — %s", page_title, chunk_title);
}

/* Whether url is under one of the filter's sources (the rule of filter_sql). */
static bool filter_has(const filter *f, const char *url) {
  if (!f->n) return true;
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(url, f->exact[i]) == 0 || strncmp(url, f->lo[i], strlen(f->lo[i])) == 0) return true;
  return false;
}

static long long count_rows(docs_store *self, docs_stmt which, const char *arg) {
  sqlite3_stmt *st = docs_store_stmt(self, which);
  if (!st) return -1;
  if (arg) sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_reset(st);
  return n;
}

typedef struct qterm {
  char *word, *term;
  long long df;
} qterm;

/* Whether the store has a page outside the filter's only source (three
 * probes of the url index). */
static bool pages_outside(docs_store *self, const filter *f) {
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_PAGES_OUTSIDE);
  if (!st) return true;
  sqlite3_bind_text(st, 1, f->exact[0], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, f->lo[0], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, f->hi[0], -1, SQLITE_STATIC);
  bool out = sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0;
  sqlite3_reset(st);
  return out;
}

/* " AND loc : (...)" selecting the filter's sources inside FTS5, so the
 * ranking only ever sees their rows. Nothing is added when every page is
 * under the one source asked for. */
static void filter_match(docs_store *self, const filter *f, dbuf *q) {
  if (!f->n || (f->n == 1 && !pages_outside(self, f))) return;
  dbuf_adds(q, " AND loc : (");
  for (size_t i = 0; i < f->n; i++) {
    char tok[DOCS_LOC_TOKEN_SIZE];
    docs_loc_token(f->lo[i], strlen(f->lo[i]), tok);
    dbuf_addf(q, "%s\"%s\"", i ? " OR " : "", tok);
    if (strcmp(f->exact[i], f->lo[i]) != 0) {
      docs_loc_token(f->exact[i], strlen(f->exact[i]), tok);
      dbuf_addf(q, " OR \"%s\"", tok);
    }
  }
  dbuf_adds(q, ")");
}

/* Formats the ranked hits best first into out while they fit the budget
 * (stopping under MIN_RELATIVE_SCORE of the best, or after MAX_MISSES that
 * did not fit). Unless `last`, returns false when every hit was used and
 * the budget still had room (more candidates might help); out is then left
 * as is. */
static bool format_hits(docs_store *self, const docs_rank *r, size_t nh, const filter *f, size_t budget,
                        bool last, dbuf *out, cJSON *used, bool *in_prompt) {
  candidate *cand = xcalloc(nh + 1, sizeof *cand);
  size_t *costs = xcalloc(nh + 1, sizeof *costs);
  bool *chosen = xcalloc(nh + 1, sizeof *chosen);
  size_t nc = 0, misses = 0, used_len = 0, i;
  bool stopped = false;
  for (i = 0; i < nh && !stopped; i++) {
    if (misses >= MAX_MISSES || r->heap[i].score < r->heap[0].score * MIN_RELATIVE_SCORE) {
      stopped = true;
      break;
    }
    sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_CHUNK_GET);
    if (!st) break;
    sqlite3_bind_int64(st, 1, r->heap[i].id);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_reset(st);
      continue;
    }
    const char *ct = text_col(st, 0), *body = text_col(st, 1), *url = text_col(st, 2), *pt = text_col(st, 3);
    /* the location tokens already selected the sources; this guards against
     * a hash collision */
    if (filter_has(f, url)) {
      char *title = chunk_title(pt, ct);
      size_t cost = strlen(title) + strlen(url) + strlen(body) + 16;
      if (cost > budget - used_len) {
        misses++;
      } else {
        misses = 0;
        used_len += cost;
        cand[nc].entry = xasprintf("### %s\nSource: %s\n%s\n\n", title, url, body);
        cand[nc].len = strlen(cand[nc].entry);
        cand[nc].title = xstrdup(*pt ? pt : url);
        cand[nc].url = xstrdup(url);
        cand[nc].hit = i;
        costs[nc] = cand[nc].len;
        nc++;
      }
      free(title);
    }
    sqlite3_reset(st);
  }
  /* all used, room left: let the caller ask for more */
  bool done = last || stopped || i < nh || used_len * 10 >= budget * 9;
  if (done) {
    docs_pack(costs, nc, budget, MAX_MISSES, chosen);
    for (size_t j = 0; j < nc; j++) {
      if (!chosen[j]) continue;
      dbuf_add(out, cand[j].entry, cand[j].len);
      source_add(used, cand[j].title, cand[j].url);
      if (in_prompt) in_prompt[cand[j].hit] = true;
    }
  }
  for (size_t j = 0; j < nc; j++) free(cand[j].entry), free(cand[j].title), free(cand[j].url);
  free(cand), free(costs), free(chosen);
  return done;
}

/* Looks up the index term of `word` and its rows; appends it to qt unless it
 * is found nowhere or is a term already there (widget, widgets). Takes
 * `word`. */
static void term_add(docs_store *self, qterm *qt, size_t *n, char *word) {
  char *term = docs_rank_term(self, word);
  long long df;
  if (term) {
    for (size_t j = 0; j < *n; j++)
      if (strcmp(qt[j].term, term) == 0) {
        free(term), free(word);
        return;
      }
    df = docs_store_term_rows(self, term);
  } else {
    /* a word the tokenizer splits: count the phrase's rows */
    char *m = xasprintf("{title body} : \"%s\"", word);
    df = count_rows(self, DOCS_STMT_COUNT, m);
    free(m);
    term = xstrdup(word);
  }
  if (df <= 0) {
    free(term), free(word);
    return;
  }
  qt[*n].word = word;
  qt[*n].term = term;
  qt[*n].df = df;
  (*n)++;
}

static double term_idf(long long rows, long long df) {
  double idf = log(((double)rows - (double)df + 0.5) / ((double)df + 0.5));
  return idf > 0 ? idf : 1e-6; /* as bm25() */
}

bool docs_url_is_changelog(const char *url) {
  static const char *const names[] = {"whatsnew", "changelog", "changes", "news", "history", "release-notes",
                                      "releasenotes", "release_notes"};
  const char *scheme = strstr(url, "://");
  const char *p = url;
  if (scheme) { /* the path: a host is no page name */
    p = scheme + 3;
    p += strcspn(p, "/?#");
  }
  size_t end = strcspn(p, "?#");
  while (end) {
    /* each segment, a last one without its extension */
    size_t a = end;
    while (a > 0 && p[a - 1] != '/') a--;
    size_t n = end - a;
    const char *dot = memchr(p + a, '.', n);
    if (dot) n = (size_t)(dot - (p + a));
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
      if (n == strlen(names[i]) && strncasecmp(p + a, names[i], n) == 0) return true;
    end = a ? a - 1 : 0;
  }
  return false;
}

bool docs_url_is_generated_index(const char *url) {
  size_t end = strcspn(url, "?#");
  size_t a = end;
  while (a > 0 && url[a - 1] != '/') a--;
  const char *seg = url + a;
  size_t n = end - a;
  const char *dot = memchr(seg, '.', n);
  if (dot) n = (size_t)(dot - seg);
  if (n >= 8 && strncasecmp(seg, "genindex", 8) == 0) return true; /* genindex, genindex-all, genindex-A */
  static const char *const names[] = {"py-modindex", "modindex", "search"};
  for (size_t i = 0; i < ARRAY_LEN(names); i++)
    if (n == strlen(names[i]) && strncasecmp(seg, names[i], n) == 0) return true;
  return false;
}

/* The weight of a page's chunks by what its URL says it is. */
static double url_weight(const char *url) {
  if (docs_url_is_changelog(url)) return CHANGELOG_WEIGHT;
  if (docs_url_is_generated_index(url)) return GENERATED_INDEX_WEIGHT;
  return 1.0;
}

/* The page a hit is on: its URL, and whether it says it is deprecated
 * (pages.legacy). */
typedef struct hit_page {
  char *url; /* NULL when the chunk is gone */
  bool legacy;
} hit_page;

/* The weight of a hit's page: its URL's, times LEGACY_WEIGHT for a page
 * that says it is deprecated (docs_text_deprecated). */
static double page_weight(const hit_page *p) {
  if (!p->url) return 1.0;
  return url_weight(p->url) * (p->legacy ? LEGACY_WEIGHT : 1.0);
}

/* Release notes name every feature in their headings, so they match
 * questions about features as well as the feature's reference page does,
 * while they describe a change, often of an older version: their chunks
 * weigh CHANGELOG_WEIGHT. Generated index pages (Sphinx's genindex and module
 * index) list every name with no text about it: GENERATED_INDEX_WEIGHT.
 * Then each gains its page's evidence (below), and
 * the ranked rows are sorted again. (Only the order of the kept rows
 * changes: a demoted row never pushes out another.) */
/* The pages of the chunks of a list of hits (URLs new strings, NULL where
 * the chunk is gone). */
static hit_page *hit_pages(docs_store *self, const docs_hit *h, size_t nh) {
  hit_page *pages = xcalloc(nh + 1, sizeof *pages);
  for (size_t i = 0; i < nh; i++) {
    sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_CHUNK_GET);
    if (!st) break;
    sqlite3_bind_int64(st, 1, h[i].id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      pages[i].url = xstrdup(text_col(st, 2));
      pages[i].legacy = sqlite3_column_int(st, 4) != 0;
    }
    sqlite3_reset(st);
  }
  return pages;
}

static void pages_free(hit_page *pages, size_t n) {
  for (size_t i = 0; i < n; i++) free(pages[i].url);
  free(pages);
}

/* Multiplies each hit's score by its page's weight; true when one changed. */
static bool weigh_pages(const hit_page *pages, docs_hit *h, size_t nh) {
  bool any = false;
  for (size_t i = 0; i < nh; i++) {
    double w = page_weight(&pages[i]);
    if (w != 1.0) {
      h[i].score *= w;
      any = true;
    }
  }
  return any;
}

/* The vector side of a hybrid query, and its fusion with the lexical one
 * (filled by hybrid_fuse, read by the explanation). */
typedef struct hybrid {
  const docs_query_vec *qv;
  bool ran;            /* vectors of the model were found for the filtered sources */
  docs_fused *fused;
  size_t n_fused;
  long long scanned;
  double scan_ms;
} hybrid;

static void rerank_evidence(docs_store *self, docs_rank *r, size_t nh, bool any);

/* Ranks the filtered sources' chunks by cosine with the question and fuses
 * that ranking with the lexical one in r->heap (best first, URL weights
 * applied) by reciprocal rank fusion; r->heap then holds the fused list
 * (scores = the RRF scores, with the vector side's cosine weighted by URL
 * too). Returns the new count. */
static size_t hybrid_fuse(docs_store *self, docs_rank *r, size_t nh, const filter *f, size_t k, hybrid *hy) {
  /* twice as many: the URL weights below may reorder them */
  size_t kv = 2 * k;
  docs_hit *vh = xcalloc(kv + 1, sizeof *vh);
  size_t nv = 0;
  unsigned long long t0 = now_ns();
  const docs_vec_cache *vc = docs_vec_cache_get(self, hy->qv->model, hy->qv->dim);
  long long *allowed = NULL;
  size_t n_allowed = 0, cap = 0;
  /* the filtered sources' chunks (none to pick when every page is under
   * the one source asked for) */
  if (vc && f->n && !(f->n == 1 && !pages_outside(self, f))) {
    dbuf sql;
    dbuf_init(&sql, 0);
    dbuf_adds(&sql, "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id WHERE p.state = 0");
    filter_sql(f, &sql, 1);
    dbuf_adds(&sql, " ORDER BY c.id");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(self->db, sql.data, -1, &st, NULL) == SQLITE_OK) {
      filter_bind(f, st, 1);
      while (sqlite3_step(st) == SQLITE_ROW) {
        if (n_allowed == cap) {
          cap = cap ? cap * 2 : 1024;
          allowed = xrealloc(allowed, cap * sizeof *allowed);
        }
        allowed[n_allowed++] = sqlite3_column_int64(st, 0);
      }
    }
    sqlite3_finalize(st);
    dbuf_close(&sql);
    if (!allowed) allowed = xcalloc(1, sizeof *allowed); /* nothing allowed, not everything */
  }
  if (vc) hy->scanned = docs_vec_topk_mem(vc, allowed, n_allowed, hy->qv->v, kv, vh, &nv);
  free(allowed);
  hy->scan_ms = (double)(now_ns() - t0) / 1e6;
  if (hy->scanned <= 0) {
    free(vh);
    return nh;
  }
  hy->ran = true;
  hit_page *vpages = hit_pages(self, vh, nv);
  if (weigh_pages(vpages, vh, nv)) qsort(vh, nv, sizeof *vh, docs_hit_cmp);
  pages_free(vpages, nv);
  if (nv > k) nv = k;
  long long *lex = xcalloc(nh + 1, sizeof *lex), *vec = xcalloc(nv + 1, sizeof *vec);
  for (size_t i = 0; i < nh; i++) lex[i] = r->heap[i].id;
  for (size_t i = 0; i < nv; i++) vec[i] = vh[i].id;
  hy->fused = xcalloc(nh + nv + 1, sizeof *hy->fused);
  hy->n_fused = docs_rrf(lex, nh, vec, nv, hy->fused);
  for (size_t i = 0; i < hy->n_fused; i++)
    if (hy->fused[i].vec_rank) hy->fused[i].cosine = (float)vh[hy->fused[i].vec_rank - 1].score;
  free(r->heap);
  r->heap = xcalloc(hy->n_fused + 1, sizeof *r->heap);
  for (size_t i = 0; i < hy->n_fused; i++) r->heap[i] = (docs_hit){hy->fused[i].score, hy->fused[i].id};
  r->n_heap = hy->n_fused;
  free(lex), free(vec), free(vh);
  return hy->n_fused;
}

static void rerank(docs_store *self, docs_rank *r, size_t nh) {
  hit_page *pages = hit_pages(self, r->heap, nh);
  bool any = weigh_pages(pages, r->heap, nh);
  pages_free(pages, nh);
  rerank_evidence(self, r, nh, any);
}

/* Page evidence (below), then the rows sorted again when a score changed. */
static void rerank_evidence(docs_store *self, docs_rank *r, size_t nh, bool any) {
  hit_page *pages = hit_pages(self, r->heap, nh);
  /* Page evidence: a chunk gains PAGE_EVIDENCE of the scores of the best
   * other kept chunks of its page. The page that is about the question holds
   * several matching sections; a page that mentions its words once, in
   * passing, holds one. (Also only a reordering of the kept rows.) */
  double *add = xcalloc(nh + 1, sizeof *add);
  for (size_t i = 0; i < nh; i++) {
    /* the rows come best first (a page's rows share one URL weight) */
    int counted = 0;
    for (size_t j = 0; j < nh && counted < PAGE_EVIDENCE_CHUNKS; j++)
      if (j != i && pages[i].url && pages[j].url && !strcmp(pages[i].url, pages[j].url))
        add[i] += r->heap[j].score, counted++;
  }
  for (size_t i = 0; i < nh; i++) {
    r->heap[i].score += PAGE_EVIDENCE * add[i];
    if (add[i] > 0) any = true;
  }
  free(add);
  pages_free(pages, nh);
  if (any) {
    r->n_heap = nh;
    docs_rank_sort(r);
  }
}

/* The parts of one ranked row's score (see docs_rank_parts), by running
 * the query again over that row alone. */
static bool rank_parts(docs_store *self, const docs_rank *r, const char *match, long long id,
                       docs_rank_parts *parts) {
  sqlite3_stmt *st = NULL;
  docs_rank one = *r;
  one.heap = NULL;
  one.k = 1;
  one.prune = false;
  one.lengths = NULL;
  one.parts = parts;
  memset(parts, 0, sizeof *parts);
  parts->id = id;
  docs_rank_reset(&one);
  one.have_avg = r->have_avg;
  one.avgdl = r->avgdl;
  if (sqlite3_prepare_v2(self->db,
                         "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 AND rowid = ?3"
                         " AND crucible_rank(chunks_fts, ?2)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_pointer(st, 2, &one, "crucible_docs_rank", NULL);
    sqlite3_bind_int64(st, 3, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
    }
  }
  sqlite3_finalize(st);
  docs_rank_close(&one);
  return parts->found;
}

/* The explanation of a ranking (docs_context_explain). */
static void explain_fill(docs_store *self, cJSON *ex, const docs_rank *r, size_t nh, const char *match,
                         const qterm *const *terms, const bool *in_prompt, const hybrid *hy) {
  cJSON_AddStringToObject(ex, "match", match);
  if (hy) {
    cJSON_AddNumberToObject(ex, "rrfK", DOCS_RRF_K);
    cJSON_AddStringToObject(ex, "embeddingModel", hy->qv->model);
    cJSON_AddNumberToObject(ex, "vectorsScanned", (double)hy->scanned);
    cJSON_AddNumberToObject(ex, "vectorScanMs", hy->scan_ms);
  }
  cJSON_AddNumberToObject(ex, "titleWeight", r->title_weight);
  cJSON_AddNumberToObject(ex, "rowsScored", (double)r->scored);
  cJSON *ta = cJSON_AddArrayToObject(ex, "terms");
  for (int t = 0; t < r->n_terms; t++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "word", terms[t]->word);
    cJSON_AddStringToObject(o, "term", terms[t]->term);
    cJSON_AddNumberToObject(o, "rows", (double)terms[t]->df);
    cJSON_AddNumberToObject(o, "idf", r->idf[t]);
    cJSON_AddItemToArray(ta, o);
  }
  cJSON *ha = cJSON_AddArrayToObject(ex, "hits");
  for (size_t i = 0; i < nh; i++) {
    sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_CHUNK_GET);
    if (!st) break;
    sqlite3_bind_int64(st, 1, r->heap[i].id);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_reset(st);
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    char *title = chunk_title(text_col(st, 3), text_col(st, 0));
    const char *url = text_col(st, 2);
    cJSON_AddNumberToObject(o, "rank", (double)(i + 1));
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddStringToObject(o, "url", url);
    cJSON_AddNumberToObject(o, "score", r->heap[i].score);
    cJSON_AddNumberToObject(o, "relative", r->heap[0].score > 0 ? r->heap[i].score / r->heap[0].score : 0);
    bool legacy = sqlite3_column_int(st, 4) != 0;
    double cw = page_weight(&(hit_page){.url = (char *)url, .legacy = legacy});
    cJSON_AddNumberToObject(o, "urlWeight", cw);
    if (legacy) cJSON_AddBoolToObject(o, "legacy", true);
    cJSON_AddBoolToObject(o, "inPrompt", in_prompt[i]);
    free(title);
    sqlite3_reset(st);
    const docs_fused *fu = NULL;
    for (size_t j = 0; hy && j < hy->n_fused && !fu; j++)
      if (hy->fused[j].id == r->heap[i].id) fu = &hy->fused[j];
    if (fu) {
      cJSON_AddNumberToObject(o, "lexicalRank", fu->lex_rank);
      cJSON_AddNumberToObject(o, "vectorRank", fu->vec_rank);
      if (fu->vec_rank) cJSON_AddNumberToObject(o, "cosine", fu->cosine);
      cJSON_AddNumberToObject(o, "rrf", fu->score);
      cJSON_AddNumberToObject(o, "pageEvidence", r->heap[i].score - fu->score);
    }
    docs_rank_parts parts;
    if (*match && rank_parts(self, r, match, r->heap[i].id, &parts)) {
      cJSON_AddNumberToObject(o, "bm25", parts.total);
      if (!fu) cJSON_AddNumberToObject(o, "pageEvidence", r->heap[i].score - parts.total * cw);
      cJSON_AddNumberToObject(o, "length", (double)parts.length);
      cJSON_AddNumberToObject(o, "lengthNorm", parts.norm);
      cJSON *pa = cJSON_AddArrayToObject(o, "parts");
      for (int t = 0; t < r->n_terms; t++) {
        if (parts.freq[t] <= 0 || r->idf[t] <= 0) continue; /* a rare term's repeat weighs 0 */
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "term", terms[t]->term);
        cJSON_AddNumberToObject(p, "tf", parts.freq[t]);
        cJSON_AddNumberToObject(p, "idf", r->idf[t]);
        cJSON_AddNumberToObject(p, "score", parts.score[t]);
        cJSON_AddItemToArray(pa, p);
      }
    }
    cJSON_AddItemToArray(ha, o);
  }
}

static void build_search(docs_store *self, const char *query, const filter *f, size_t budget, dbuf *out,
                         cJSON *used, cJSON *explain, hybrid *hy) {
  size_t nw = 0, nc = 0;
  char **words = docs_query_words(query, DOCS_MAX_QUERY_TERMS, &nw);
  char **compounds = docs_query_compounds(query, DOCS_MAX_QUERY_TERMS, &nc);
  qterm *qt = xcalloc(nw + nc + 1, sizeof *qt);
  const qterm *by_phrase[DOCS_MAX_QUERY_TERMS]; /* the term of each phrase of the query */
  bool *in_prompt = NULL;
  size_t n = 0;
  dbuf q;
  dbuf_init(&q, 0);
  docs_rank r = {.title_weight = TITLE_WEIGHT, .min_relative = MIN_RELATIVE_SCORE, .prune = !self->no_prune};
  sqlite3_stmt *st = NULL;
  docs_store_check_caches(self);
  long long rows = count_rows(self, DOCS_STMT_ROWS, NULL);
  if (rows <= 0) goto out;
  /* Document frequencies from the index's vocabulary: terms found nowhere
   * are dropped (so are the compounds that name no identifier). */
  for (size_t i = 0; i < nw; i++) {
    term_add(self, qt, &n, words[i]);
    words[i] = NULL;
  }
  for (size_t i = 0; i < nc; i++) {
    term_add(self, qt, &n, compounds[i]);
    compounds[i] = NULL;
  }
  /* Very common terms select no rows while a rarer term is there: they would
   * make most of the rows to score. They still score the rows the rare
   * terms select ("named" in "named constants"): the query is
   * (rare...) AND (common... OR rare...), whose rows are the rare terms'
   * rows, and whose phrases report every term found in a row; the repeated
   * rare terms weigh 0. */
  long long common = (long long)(rows * COMMON_FRACTION), rarest = -1;
  for (size_t i = 0; i < n; i++)
    if (rarest < 0 || qt[i].df < rarest) rarest = qt[i].df;
  bool split = rarest <= common;
  size_t n_rare = 0, n_common = 0;
  for (size_t i = 0; i < n; i++) {
    if (split && qt[i].df > common) n_common++;
    else n_rare++;
  }
  if (n_rare > DOCS_MAX_QUERY_TERMS) n_rare = DOCS_MAX_QUERY_TERMS;
  if (n_common && 2 * n_rare + n_common > DOCS_MAX_QUERY_TERMS)
    n_common = 2 * n_rare < DOCS_MAX_QUERY_TERMS ? DOCS_MAX_QUERY_TERMS - 2 * n_rare : 0;
  dbuf_adds(&q, "(");
  for (size_t i = 0, k = 0; i < n && k < n_rare; i++) {
    if (split && qt[i].df > common) continue;
    by_phrase[r.n_terms] = &qt[i];
    r.idf[r.n_terms++] = term_idf(rows, qt[i].df);
    dbuf_addf(&q, "%s\"%s\"", k++ ? " OR " : "", qt[i].word);
  }
  dbuf_adds(&q, ")");
  if (n_common) {
    dbuf_adds(&q, " AND (");
    for (size_t i = 0, k = 0; i < n && k < n_common; i++) {
      if (qt[i].df <= common) continue;
      by_phrase[r.n_terms] = &qt[i];
      r.idf[r.n_terms++] = term_idf(rows, qt[i].df);
      dbuf_addf(&q, "%s\"%s\"", k++ ? " OR " : "", qt[i].word);
    }
    for (size_t i = 0, k = 0; i < n && k < n_rare; i++) {
      if (qt[i].df > common) continue;
      by_phrase[r.n_terms] = &qt[i];
      r.idf[r.n_terms++] = 0; /* counted once, above */
      dbuf_addf(&q, " OR \"%s\"", qt[i].word);
      k++;
    }
    dbuf_adds(&q, ")");
  }
  if (!r.n_terms && !hy) goto out;
  if (r.n_terms) filter_match(self, f, &q);
  /* Enough candidates to fill the budget with ~1,000-char chunks and skip a
   * few; fewer candidates rank faster (a higher bar to enter the top). When
   * they run out before the budget is full, the ranking runs again wider. */
  size_t k = budget / 512;
  if (k < MIN_CANDIDATES) k = MIN_CANDIDATES;
  if (k > MAX_CANDIDATES) k = MAX_CANDIDATES;
  r.lengths = self->no_length_cache ? NULL : docs_lengths_get(self);
  for (;;) {
    r.k = k;
    docs_rank_reset(&r);
    if (r.n_terms) {
      if (!(st = docs_store_stmt(self, DOCS_STMT_RANK))) goto out;
      sqlite3_bind_text(st, 1, q.data, -1, SQLITE_STATIC);
      sqlite3_bind_pointer(st, 2, &r, "crucible_docs_rank", NULL);
      int rc = sqlite3_step(st);
      if (rc != SQLITE_DONE) log_warn("docs search: %s", sqlite3_errmsg(self->db));
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
    size_t n_lex = docs_rank_sort(&r), nh = n_lex;
    if (hy) {
      /* the URL weights, then the fusion, then the page evidence */
      hit_page *pages = hit_pages(self, r.heap, nh);
      if (weigh_pages(pages, r.heap, nh)) docs_rank_sort(&r);
      pages_free(pages, nh);
      free(hy->fused);
      hy->fused = NULL;
      hy->n_fused = 0;
      nh = hybrid_fuse(self, &r, nh, f, k, hy);
      rerank_evidence(self, &r, nh, true);
    } else {
      rerank(self, &r, nh);
    }
    log_debug("docs search: %lld rows, %lld scored, top %zu kept: %s", r.rows, r.scored, nh, q.data);
    free(in_prompt);
    in_prompt = xcalloc(nh + 1, sizeof *in_prompt);
    if (format_hits(self, &r, nh, f, budget, n_lex < k || k >= MAX_CANDIDATES, out, used, in_prompt)) {
      if (explain) explain_fill(self, explain, &r, nh, r.n_terms ? q.data : "", by_phrase, in_prompt, hy && hy->ran ? hy : NULL);
      break;
    }
    k = MAX_CANDIDATES;
  }
out:
  free(in_prompt);
  docs_rank_close(&r);
  for (size_t i = 0; i < n; i++) free(qt[i].word), free(qt[i].term);
  for (size_t i = 0; i < nw; i++) free(words[i]);
  for (size_t i = 0; i < nc; i++) free(compounds[i]);
  free(words);
  free(compounds);
  free(qt);
  dbuf_close(&q);
}

/* Appends as much of s as fits in budget (never splitting a UTF-8 sequence);
 * returns false when it did not all fit. */
static bool add_capped(dbuf *out, const char *s, size_t budget) {
  size_t n = strlen(s);
  if (out->len + n <= budget) {
    dbuf_add(out, s, n);
    return true;
  }
  size_t room = budget > out->len ? budget - out->len : 0;
  room = utf8_char_start(s, n, room);
  dbuf_add(out, s, room);
  return false;
}

static void build_all(docs_store *self, const filter *f, size_t budget, dbuf *out, cJSON *used, char **warning,
                      int budget_tokens) {
  dbuf sql;
  dbuf_init(&sql, 0);
  dbuf_adds(&sql, "SELECT p.id, p.url, p.title FROM pages p WHERE p.state = 0");
  filter_sql(f, &sql, 1);
  /* The tutorial sorts its documents by source URL, reversed. */
  dbuf_adds(&sql, " ORDER BY p.url DESC");
  sqlite3_stmt *st = NULL, *ch = NULL;
  if (sqlite3_prepare_v2(self->db, sql.data, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(self->db, "SELECT title, body FROM chunks WHERE page_id = ?1 ORDER BY seq", -1, &ch,
                         NULL) != SQLITE_OK) {
    log_warn("docs context: %s", sqlite3_errmsg(self->db));
    goto out;
  }
  filter_bind(f, st, 1);
  size_t pages = 0, included = 0;
  bool cut = false;
  dbuf page;
  dbuf_init(&page, 0);
  while (sqlite3_step(st) == SQLITE_ROW) {
    pages++;
    if (cut) continue;
    const char *url = text_col(st, 1), *pt = text_col(st, 2);
    dbuf_reset(&page);
    dbuf_addf(&page, "### %s\nSource: %s\n", *pt ? pt : url, url);
    sqlite3_bind_int64(ch, 1, sqlite3_column_int64(st, 0));
    char *prev = NULL;
    while (sqlite3_step(ch) == SQLITE_ROW) {
      const char *ct = text_col(ch, 0);
      /* the page's title is this entry's heading already */
      size_t pl = strlen(pt);
      if (pl && strncmp(ct, pt, pl) == 0 && strncmp(ct + pl, " \u203a ", strlen(" \u203a ")) == 0)
        ct += pl + strlen(" \u203a ");
      if (*ct && strcmp(ct, pt) != 0 && (!prev || strcmp(prev, ct) != 0)) dbuf_addf(&page, "#### %s\n", ct);
      free(prev);
      prev = xstrdup(ct);
      dbuf_adds(&page, text_col(ch, 1));
      dbuf_adds(&page, "\n\n");
    }
    free(prev);
    sqlite3_reset(ch);
    size_t before = out->len;
    if (!add_capped(out, page.data, budget)) cut = true;
    if (out->len > before) source_add(used, pt, url);
    if (!cut) included++;
  }
  dbuf_close(&page);
  if (cut)
    *warning = xasprintf("documentation cut at the budget of %d tokens: %zu of %zu pages fit whole; raise "
                         "docs.budgetTokens or use docs.mode \"search\" to send only the relevant parts",
                         budget_tokens, included, pages);
out:
  sqlite3_finalize(ch);
  sqlite3_finalize(st);
  dbuf_close(&sql);
}

static char *context_build(docs_store *self, const char *query, const char *const *sources, size_t n_sources,
                           const char *mode, int budget_tokens, cJSON **sources_used, char **warning,
                           cJSON *explain, hybrid *hy) {
  if (sources_used) *sources_used = NULL;
  if (warning) *warning = NULL;
  bool all = false;
  if (mode && strcmp(mode, "all") == 0) all = true;
  else if (mode && *mode && strcmp(mode, "search") != 0) return NULL;
  if (budget_tokens < 0) budget_tokens = 0;
  size_t budget = (size_t)budget_tokens * 4;
  filter f;
  filter_init(&f, sources, n_sources);
  dbuf out;
  dbuf_init(&out, 0);
  cJSON *used = cJSON_CreateArray();
  char *warn = NULL;
  if (n_sources && !f.n) {
    warn = xstrdup("none of the documentation sources could be read; check docs.sources");
  } else if (all) {
    build_all(self, &f, budget, &out, used, &warn, budget_tokens);
  } else {
    build_search(self, query ? query : "", &f, budget, &out, used, explain, hy);
  }
  filter_close(&f);
  if (sources_used) *sources_used = used;
  else cJSON_Delete(used);
  if (warning) *warning = warn;
  else free(warn);
  return dbuf_take(&out);
}

char *docs_context_build(docs_store *self, const char *query, const char *const *sources, size_t n_sources,
                         const char *mode, int budget_tokens, cJSON **sources_used, char **warning) {
  return context_build(self, query, sources, n_sources, mode, budget_tokens, sources_used, warning, NULL, NULL);
}

char *docs_context_explain(docs_store *self, const char *query, const char *const *sources, size_t n_sources,
                           int budget_tokens, cJSON **sources_used, char **warning, cJSON **explain) {
  return docs_context_build_hybrid(self, query, NULL, sources, n_sources, "search", budget_tokens, sources_used,
                                   warning, explain, NULL);
}

char *docs_context_build_hybrid(docs_store *self, const char *query, const docs_query_vec *qv,
                                const char *const *sources, size_t n_sources, const char *mode, int budget_tokens,
                                cJSON **sources_used, char **warning, cJSON **explain, bool *hybrid_out) {
  hybrid hy = {.qv = qv};
  bool use = qv && qv->v && qv->dim > 0 && qv->model && *qv->model;
  cJSON *ex = NULL;
  if (explain) {
    ex = *explain = cJSON_CreateObject();
    cJSON_AddStringToObject(ex, "ranking", "lexical");
  }
  char *ctx = context_build(self, query, sources, n_sources, explain ? "search" : mode, budget_tokens, sources_used,
                            warning, ex, use ? &hy : NULL);
  if (ex && hy.ran) cJSON_ReplaceItemInObjectCaseSensitive(ex, "ranking", cJSON_CreateString("hybrid"));
  free(hy.fused);
  if (hybrid_out) *hybrid_out = hy.ran;
  return ctx;
}
