/* Documentation as context: crawl URL and folder sources once, cache and
 * index them in SQLite (FTS5), and build a prompt section from the chunks that
 * matter within a token budget, citing their sources. */
#ifndef CRUCIBLE_DOCS_H
#define CRUCIBLE_DOCS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "defaults.h"

typedef struct docs_store docs_store;
typedef struct docs_sync docs_sync;

/* A source of embeddings, wired by the caller (the agent's adapter of the
 * LLM client's /embeddings): docs knows no endpoint. `done` gets n x dim
 * floats (borrowed for the call) or an error (non-NULL; "cancelled" after
 * cancel), exactly once, from the loop. */
typedef void (*docs_embed_fn)(void *ud, const float *vecs, size_t n, int dim, const char *error);
typedef struct docs_embedder {
  const char *model; /* docs.embeddingModel: vectors are stored and matched under this name */
  /* Starts embedding texts[0..n) within timeout_ms (<= 0: the endpoint's
   * default). 0 and *req (for cancel), or a negative errno and no call. */
  int (*start)(const struct docs_embedder *self, const char *const *texts, size_t n, long timeout_ms,
               docs_embed_fn done, void *ud, void **req);
  /* Aborts a request; done follows from the loop with an error. */
  void (*cancel)(void *req);
} docs_embedder;

/* Defaults used when an option is 0. */
#define DOCS_DEFAULT_MAX_DEPTH CFG_DEFAULT_DOCS_MAX_DEPTH /* the settings' (config/defaults.h) */
#define DOCS_DEFAULT_MAX_PAGES CFG_DEFAULT_DOCS_MAX_PAGES
#define DOCS_DEFAULT_MAX_PAGE_BYTES (2u << 20)
#define DOCS_DEFAULT_MAX_TOTAL_BYTES (64u << 20)
#define DOCS_DEFAULT_FRESHNESS_S 3600
#define DOCS_DEFAULT_CONCURRENCY 4
#define DOCS_DEFAULT_TIMEOUT_MS 15000
#define DOCS_CHUNK_CHARS 1500

/* Opens (creating it and its directory if needed) the docs cache at `path`;
 * NULL = $XDG_CACHE_HOME/crucible/docs.db, else ~/.cache/crucible/docs.db.
 * Returns NULL and writes a message to err on failure. */
docs_store *docs_store_open(const char *path, char *err, size_t errlen);
/* Closes the store. A sync still running on it must have finished first.
 * NULL is a no-op. */
void docs_store_free(docs_store *self);

typedef struct docs_sync_opts {
  const char *const *sources;  /* http(s) URLs or local paths (files or folders); copied */
  size_t n_sources;
  const bool *public_only;     /* NULL, or one flag per source: that URL source's pages are fetched only
                                  from public addresses (http_addr_is_public, checked at connect time);
                                  for sources named by a workspace rather than the user */
  int max_depth;               /* links followed from a start page (folders: levels); <0 = 0 */
  int max_pages;               /* URLs visited (fetched, revalidated or answered from the cache) per sync */
  size_t max_page_bytes;       /* a larger page is skipped */
  size_t max_total_bytes;      /* body bytes received over the whole sync; then the crawl stops */
  int freshness_s;             /* pages checked more recently are not asked for again; 0 = always revalidate,
                                  <0 = the default */
  int concurrency;             /* transfers at once */
  int timeout_ms;              /* per request, whole transfer */
  /* Embeddings (hybrid ranking): when non-NULL, the chunks without a
   * vector of embedder->model are embedded after the crawl, in batches of
   * DOCS_EMBED_BATCH, one request at a time on the loop. It must outlive
   * the sync. A failure stops the embedding, is logged once and reported
   * in embed_error: the sync itself still succeeds. */
  const docs_embedder *embedder;
} docs_sync_opts;

#define DOCS_EMBED_BATCH 64

typedef struct docs_sync_stats {
  int fetched;      /* pages downloaded and indexed */
  int cached;       /* pages answered by a 304, or fresh enough not to ask */
  int skipped;      /* outside the bounds: content type, size caps, page cap */
  int errors;       /* HTTP errors, timeouts, unreadable files */
  unsigned long long bytes; /* body bytes received */
  int pages;        /* fetched + cached */
  bool cancelled;
  int removed;      /* pages of local files that no longer exist, dropped from the cache */
  int refused;      /* requests of public_only sources refused: the host is not a public address
                       (also counted in errors) */
  int embedded;     /* chunks whose embedding was computed and stored */
  const char *embed_error; /* NULL, or why embedding stopped (valid during the callback) */
} docs_sync_stats;

/* Progress, called from the loop after every page. `url` is the page just
 * handled (borrowed for the call). */
typedef void (*docs_progress_fn)(void *ud, const docs_sync_stats *st, const char *url);
/* Called exactly once per successful docs_sync_start, from the loop (never
 * from inside docs_sync_start or docs_sync_cancel). `error` is NULL, or the
 * reason the whole sync failed (e.g. no source could be read); the sync
 * object is freed when this returns. */
typedef void (*docs_done_fn)(void *ud, const docs_sync_stats *st, const char *error);

/* Starts fetching or revalidating every source on `loop`. Pages are stored
 * in batched transactions (committed at least every ~100 ms and when the
 * sync ends); at the end, pages of local files that no longer exist are
 * removed. Returns 0 and sets
 * *out (may be NULL) to a handle valid until `done` returns, or a negative
 * errno (-EINVAL for bad options or sources) and nothing is called back. The
 * store must outlive the sync. */
int docs_sync_start(docs_store *store, uv_loop_t *loop, const docs_sync_opts *opts, docs_progress_fn progress,
                    docs_done_fn done, void *ud, docs_sync **out);
/* Aborts every transfer; `done` follows soon with st->cancelled set. Must not
 * be called after done. */
void docs_sync_cancel(docs_sync *self);

/* Builds the documentation section of a prompt for `query` from the pages
 * under the given sources (URL prefixes or paths as given to a sync; none =
 * every page in the store). mode "search" (or NULL): the best-ranked chunks
 * that fit in budget_tokens (tokens estimated as chars/4); "all": every page,
 * newest-URL-first (URLs sorted in reverse), cut at the budget with a warning.
 * Each chunk reads "### <title>\nSource: <url>\n<text>\n\n". Returns a new
 * string the caller frees ("" when nothing matched). *sources_used (when
 * non-NULL) gets a new array [{title, url}] of the pages used; *warning (when
 * non-NULL) a new string or NULL. Returns NULL only for a bad mode. */
char *docs_context_build(docs_store *store, const char *query, const char *const *sources, size_t n_sources,
                         const char *mode, int budget_tokens, cJSON **sources_used, char **warning);
/* docs_context_build in mode "search", and in *explain (a new object) why
 * each kept chunk ranked: {ranking:"lexical", match (the FTS5 query),
 * titleWeight, rowsScored, terms:[{word, term, rows, idf}] (a rare term
 * repeated in the common terms' group has idf 0 there), hits:[{rank, title,
 * url, score, relative (to the first), urlWeight (release notes 0.5,
 * generated index pages 0.25, else 1), inPrompt, bm25,
 * pageEvidence, length, lengthNorm, parts:[{term, tf, idf, score}]}]} (score = bm25 x
 * urlWeight + pageEvidence; tf counts a heading's occurrence titleWeight times). */
char *docs_context_explain(docs_store *store, const char *query, const char *const *sources, size_t n_sources,
                           int budget_tokens, cJSON **sources_used, char **warning, cJSON **explain);

/* The question's embedding, for hybrid ranking (vector.c). */
typedef struct docs_query_vec {
  const char *model; /* the docs.embeddingModel the chunks were embedded with */
  const float *v;
  int dim;
} docs_query_vec;

/* docs_context_build (explain NULL) or docs_context_explain (explain
 * non-NULL; in hybrid ranking each hit also has lexicalRank, vectorRank (0 =
 * not in that ranking), cosine, and score is the fused one), with hybrid
 * ranking in mode "search" when qv is non-NULL: the chunks of the filtered
 * sources that have a vector of qv->model are scored by cosine (a flat
 * scan), and the lexical and vector rankings are fused by reciprocal rank
 * fusion (score = sum of 1/(DOCS_RRF_K + rank)) after the URL weight and
 * before the page evidence. *hybrid (may be NULL) says whether the vector
 * side ran: false when qv is NULL or no chunk there has a vector of the
 * model. */
char *docs_context_build_hybrid(docs_store *store, const char *query, const docs_query_vec *qv,
                                const char *const *sources, size_t n_sources, const char *mode, int budget_tokens,
                                cJSON **sources_used, char **warning, cJSON **explain, bool *hybrid);

/* Vectors stored for `model` (NULL: any), or <0 on error. */
long long docs_vec_count(docs_store *self, const char *model);

/* The documentation tools a model may call (tools.c). Both see only the
 * pages under `sources` (none = every page), as docs_context_build does.
 *
 * docs_tool_search: the best-ranked sections for `query` (the ranking of
 * docs_context_build), at most max_hits, each title and URL once: "N. <page
 * — section>\n   <url>\n". A new string, "" when nothing matched. */
char *docs_tool_search(docs_store *store, const char *query, const char *const *sources, size_t n_sources,
                       int max_hits);
/* docs_tool_read: the text of the page `url` (canonicalised as the crawler
 * does; a path as stored), its chunks in order from the first section whose
 * title contains `section` (any case; NULL or "" = the start; not found =
 * the start, said in the text), headed "# <title>\nSource: <url>", cut near
 * max_bytes with a note naming how much is left and the sections from the
 * cut. Returns 0 and *out (a new string), or -EACCES (not under the
 * sources), -ENOENT (no such indexed page), -EINVAL (not a URL or path),
 * -EIO; *out is then NULL. */
int docs_tool_read(docs_store *store, const char *url, const char *section, const char *const *sources,
                   size_t n_sources, size_t max_bytes, char **out);

/* The sources the store knows: a new array of {source, kind:"url"|"path",
 * prefix, pages, chunks, syncedAt, oldestFetch, newestFetch} (times in Unix
 * seconds). */
cJSON *docs_store_list(docs_store *self);

/* Vets a documentation source named by a client (a workspace), not by the
 * user. `roots` are the client's workspace folders (real paths, no trailing
 * slash). A local path is resolved with realpath (symlinks followed) and must
 * lie inside one of the roots unless allow_local. Returns:
 *   0  usable as given; *resolved = the source to use (a new string: the real
 *      path for a local path, a copy for a URL);
 *   1  an http(s) URL to fetch from public addresses only (unless
 *      allow_private; then 0); *resolved = a copy;
 *  -EACCES / -ENOENT  refused; *why = a new message naming the source and
 *      the setting that would allow it.
 * Exactly one of *resolved / *why is set. */
int docs_source_vet(const char *source, const char *const *roots, size_t n_roots, bool allow_local,
                    bool allow_private, char **resolved, char **why);

/* The default store path into buf. */
const char *docs_store_default_path(char *buf, size_t cap);

#endif
