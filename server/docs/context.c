/* The documentation section of a prompt: bm25-ranked chunks packed into a
 * token budget ("search"), or every page in reverse URL order cut at the
 * budget ("all", the tutorial's behaviour), each citing its source. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"

#define MAX_QUERY_TERMS 48
#define MAX_CANDIDATES 200
#define MAX_MISSES 24
#define MAX_FILTER_SOURCES 64
/* A chunk whose bm25 score is under this fraction of the best one matched
 * only on common words: it would spend the budget on noise. */
#define MIN_RELATIVE_SCORE 0.2

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
} candidate;

static char *chunk_title(const char *page_title, const char *chunk_title) {
  if (!*chunk_title) return xstrdup(page_title);
  if (!*page_title || strcmp(page_title, chunk_title) == 0) return xstrdup(chunk_title);
  return xasprintf("%s — %s", page_title, chunk_title);
}

static void build_search(docs_store *self, const char *query, const filter *f, size_t budget, dbuf *out,
                         cJSON *used) {
  char *fts = docs_fts_query(query, MAX_QUERY_TERMS);
  if (!fts) return;
  dbuf sql;
  dbuf_init(&sql, 0);
  /* Titles (headings) weigh 4x body text in bm25(); lower is better. */
  /* The inner query ranks inside the FTS index alone and keeps the best
   * rows; only those are joined and filtered. Joining every match first
   * costs tens of milliseconds on a large index. With a source filter the
   * window is wider, since rows of other sources are dropped after it. */
  dbuf_addf(&sql,
            "SELECT c.title, c.body, p.url, p.title, f.r FROM"
            " (SELECT rowid AS id, bm25(chunks_fts, 4.0, 1.0) AS r FROM chunks_fts WHERE chunks_fts MATCH ?1"
            "  ORDER BY r LIMIT %d) f"
            " JOIN chunks c ON c.id = f.id JOIN pages p ON p.id = c.page_id WHERE p.state = 0",
            f->n ? MAX_CANDIDATES * 5 : MAX_CANDIDATES);
  filter_sql(f, &sql, 2);
  dbuf_addf(&sql, " ORDER BY f.r LIMIT %d", MAX_CANDIDATES);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(self->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
    log_warn("docs search: %s", sqlite3_errmsg(self->db));
    goto out;
  }
  sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
  filter_bind(f, st, 2);
  candidate *cand = xcalloc(MAX_CANDIDATES, sizeof *cand);
  size_t *costs = xcalloc(MAX_CANDIDATES, sizeof *costs);
  bool *chosen = xcalloc(MAX_CANDIDATES, sizeof *chosen);
  size_t n = 0, misses = 0, used_len = 0;
  double best = 0;
  bool first = true;
  /* Rows come best first; formatting stops once nothing more can fit. */
  while (n < MAX_CANDIDATES && misses < MAX_MISSES && sqlite3_step(st) == SQLITE_ROW) {
    /* bm25() is negative, better is lower */
    double score = sqlite3_column_double(st, 4);
    if (first) best = score, first = false;
    if (best < 0 && score > best * MIN_RELATIVE_SCORE) break;
    const char *ct = text_col(st, 0), *body = text_col(st, 1), *url = text_col(st, 2), *pt = text_col(st, 3);
    char *title = chunk_title(pt, ct);
    size_t cost = strlen(title) + strlen(url) + strlen(body) + 16;
    if (cost > budget - used_len) {
      misses++;
      free(title);
      continue;
    }
    misses = 0;
    used_len += cost;
    cand[n].entry = xasprintf("### %s\nSource: %s\n%s\n\n", title, url, body);
    cand[n].len = strlen(cand[n].entry);
    cand[n].title = xstrdup(*pt ? pt : url);
    cand[n].url = xstrdup(url);
    costs[n] = cand[n].len;
    n++;
    free(title);
  }
  docs_pack(costs, n, budget, MAX_MISSES, chosen);
  for (size_t i = 0; i < n; i++) {
    if (chosen[i]) {
      dbuf_add(out, cand[i].entry, cand[i].len);
      source_add(used, cand[i].title, cand[i].url);
    }
    free(cand[i].entry), free(cand[i].title), free(cand[i].url);
  }
  free(cand), free(costs), free(chosen);
out:
  sqlite3_finalize(st);
  dbuf_close(&sql);
  free(fts);
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
  while (room > 0 && ((unsigned char)s[room] & 0xC0) == 0x80) room--;
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

char *docs_context_build(docs_store *self, const char *query, const char *const *sources, size_t n_sources,
                         const char *mode, int budget_tokens, cJSON **sources_used, char **warning) {
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
    build_search(self, query ? query : "", &f, budget, &out, used);
  }
  filter_close(&f);
  if (sources_used) *sources_used = used;
  else cJSON_Delete(used);
  if (warning) *warning = warn;
  else free(warn);
  return dbuf_take(&out);
}
