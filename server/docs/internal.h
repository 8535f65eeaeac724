/* The pure parts of the docs module (URLs, HTML to text, chunking, FTS
 * queries, budget packing), the store's internal interface, and the parts of
 * a sync (crawl, walk, index), shared by the module's files and its unit
 * tests. */
#ifndef CRUCIBLE_DOCS_INTERNAL_H
#define CRUCIBLE_DOCS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>
#include <uv.h>

#include "docs.h"
#include "http.h"

/* ---- url.c ---- */

/* Resolves `href` against `base` (NULL = href must be absolute) and returns
 * the canonical form the crawler keys pages by, a new string: http/https
 * only, scheme and host lowercased, default port dropped, dot segments
 * resolved, fragment dropped, an empty path made "/", a trailing
 * "index.html"/"index.htm" dropped. NULL when the result is not an http(s)
 * URL or does not parse. */
char *docs_url_canon(const char *base, const char *href);
/* The crawl prefix of a canonical start URL, a new string: scheme://host[:port]
 * plus the start path up to its last '/' (a last segment without a '.' is
 * taken as a folder: "/docs" -> "/docs/"). Query dropped. */
char *docs_url_prefix(const char *canon_start);
/* Whether canonical `url` is under `prefix` (or is the prefix without its
 * final '/'). */
bool docs_url_in_prefix(const char *url, const char *prefix);
bool docs_is_url(const char *s);
/* The prefix a source's pages are stored under, a new string: for a URL the
 * crawl prefix of its canonical form, for a folder its real path plus "/",
 * for a file its real path. *root (when non-NULL) gets a new string: the
 * canonical start URL or the real path. NULL when the source is unusable
 * (a bad URL, a path that does not exist). */
char *docs_source_prefix(const char *source, char **root);

/* ---- html.c ---- */

typedef struct docs_html {
  char *title;   /* <title>, else the first h1, else NULL */
  char *text;    /* markdown-like: "#"-headings, ``` fenced code kept verbatim */
  size_t text_len;
  char **links;  /* raw href values, as written (resolve with docs_url_canon) */
  char *canonical; /* <link rel="canonical" href>, as written, or NULL */
  size_t n_links;
} docs_html;

/* Extracts text, title and links from an HTML document of `len` bytes
 * (script, style, nav, header, footer, aside and the like dropped). Never
 * fails on bad input (libxml2's recovering parser); returns 0, or -EINVAL if
 * not even an empty document could be made (out is then zeroed). Release
 * with docs_html_close. */
int docs_html_extract(const char *html, size_t len, docs_html *out);
void docs_html_close(docs_html *self);

/* ---- text.c ---- */

typedef struct docs_chunk {
  char *title;   /* the heading the chunk falls under, else the page title */
  char *text;
  size_t len;
} docs_chunk;

typedef struct docs_chunks {
  docs_chunk *v;
  size_t n, cap;
  bool legacy; /* the page says it is deprecated (docs_text_deprecated) */
} docs_chunks;

/* Splits markdown-like text along its headings (# lines outside ``` fences)
 * into chunks of at most max_chars bytes (longer sections are split at blank
 * lines, then at line ends, then hard; never inside a UTF-8 sequence). Empty
 * sections are dropped. Appends to *out; release with docs_chunks_close. */
void docs_chunk_split(const char *text, size_t len, const char *page_title, size_t max_chars, docs_chunks *out);
void docs_chunks_close(docs_chunks *self);
/* Whether a page opens by saying it is deprecated: its first paragraph of
 * prose (headings, "Source code:" lines and admonition labels such as
 * "Note" skipped) starts with "Deprecated" or says "is deprecated"/"are
 * deprecated" — the notice Sphinx, and most writers, put atop a legacy
 * module's page. A deprecation further down (one function of a current
 * module) does not count. */
bool docs_text_deprecated(const char *text, size_t len);
/* reStructuredText section titles (a line underlined with = - ~ ^ " ' ` # * +)
 * rewritten as "## title" lines. Returns a new string. */
char *docs_rst_to_md(const char *text, size_t len, size_t *out_len);
/* A copy of text with NULs and invalid UTF-8 replaced by '?'. */
char *docs_utf8_clean(const char *text, size_t len);
/* The first heading of markdown-like text (without its #s), a new string, or NULL. */
char *docs_first_heading(const char *text, size_t len);
/* Estimated tokens of n bytes of text (chars/4, rounded up). */
static inline size_t docs_tokens(size_t n) {
  return (n + 3) / 4;
}

/* ---- query.c ---- */

/* The search words of free text, as docs_fts_query picks them: a new array
 * of *n new strings (release each and the array), NULL when none. */
char **docs_query_words(const char *text, size_t max_terms, size_t *n);

/* Identifiers a question may spell as separate words: each pair and triple of
 * adjacent words (stopwords included) written together, lowercased ("extract
 * all" -> "extractall", "thread pool executor" -> "threadpoolexecutor"; an
 * index tokenizes ZipFile.extractall and getLogger to such terms). Most are
 * not words; the caller keeps those the index holds. A new array of *n new
 * strings (release each and the array), NULL when none; at most max_terms. */
char **docs_query_compounds(const char *text, size_t max_terms, size_t *n);

/* Turns free text (a question, an error message) into a safe FTS5 query:
 * words (letters, digits; split at everything else, as FTS5's unicode61
 * tokenizer does) lowercased, stopwords and one-letter words dropped,
 * duplicates dropped, at most max_terms, each double-quoted and joined with
 * OR. Returns a new string, or NULL when no term is left. */
char *docs_fts_query(const char *text, size_t max_terms);

/* ---- context.c ---- */

/* Whether a page URL or path is release notes: a path segment (a last one
 * without its extension) named whatsnew, changelog, changes, news, history or
 * release-notes. */
bool docs_url_is_changelog(const char *url);
/* Whether the URL's last segment names a generated index page: genindex
 * (and genindex-all, genindex-A...), py-modindex, modindex, search. */
bool docs_url_is_generated_index(const char *url);

/* Greedy packing: walks costs in order, keeps each item that still fits in
 * budget, stops after `max_misses` consecutive items that did not fit.
 * chosen[i] is set for kept items. Returns the total cost kept. */
size_t docs_pack(const size_t *costs, size_t n, size_t budget, size_t max_misses, bool *chosen);

/* ---- store.c (internal) ---- */

typedef enum docs_page_state {
  DOCS_PAGE_OK = 0,       /* indexed */
  DOCS_PAGE_REDIRECT = 1, /* links[0] is the target */
  DOCS_PAGE_SKIPPED = 2,  /* content type or size: remembered so it is not asked for again while fresh */
  DOCS_PAGE_GONE = 3,     /* 4xx */
} docs_page_state;

typedef struct docs_page_info {
  long long id;
  docs_page_state state;
  char *etag, *last_modified;
  double checked_at;      /* wall time of the last request or file check */
  char **links;
  size_t n_links;
} docs_page_info;

/* Token counts (title + body) of every chunk, by rowid, read from FTS5's
 * docsize table: bm25 needs a row's length, and asking FTS5 for it costs a
 * B-tree lookup per row. Reloaded when the index changed. */
typedef struct docs_lengths {
  long long *ids; /* ascending */
  unsigned *len;
  size_t n;
  bool valid;
} docs_lengths;

typedef enum docs_stmt {
  DOCS_STMT_PAGE_GET,
  DOCS_STMT_PAGE_PUT,
  DOCS_STMT_CHUNKS_DEL,
  DOCS_STMT_CHUNK_ADD,
  DOCS_STMT_PAGE_TOUCH,
  DOCS_STMT_PAGE_DEL,
  DOCS_STMT_SAME_TEXT,
  DOCS_STMT_HASH_SET,
  DOCS_STMT_VOCAB_DOC,
  DOCS_STMT_SEARCH,
  DOCS_STMT_COUNT,
  DOCS_STMT_ROWS,
  DOCS_STMT_PAGES_UNDER,
  DOCS_STMT_PAGES_OUTSIDE,
  DOCS_STMT_RANK,
  DOCS_STMT_CHUNK_GET,
  DOCS_STMT_DATA_VERSION,
  DOCS_STMT_LENGTHS,
  DOCS_STMT_N
} docs_stmt;

/* The vectors of one model, in memory (vector.c): a query's flat scan reads
 * them here instead of from SQLite, where each 3 KB vector is a B-tree
 * lookup plus overflow pages. Reloaded when the store changed. */
typedef struct docs_vec_cache {
  char *model;
  int dim;
  long long *ids; /* ascending */
  float *v;       /* n x dim, unit length */
  size_t n;
  unsigned long long gen;
  long long data_version;
  bool valid;
} docs_vec_cache;

struct docs_store {
  sqlite3 *db;
  sqlite3_stmt *stmts[DOCS_STMT_N]; /* prepared on first use, finalized by docs_store_free */
  /* the FTS5 tokenizer of chunks_fts, to turn query words into index terms */
  fts5_tokenizer tok;
  Fts5Tokenizer *tok_inst;
  /* write batching (docs_store_batch_begin) */
  int batch_users;
  bool in_txn;
  int txn_pages;
  unsigned long long txn_started_ms;
  unsigned long long gen; /* bumped by every write of this connection */
  /* caches of what the index holds, valid while gen and data_version stay */
  unsigned long long cache_gen;
  long long cache_data_version;
  docs_lengths lengths;
  char **df_terms; /* document frequencies of query terms looked up */
  long long *df;
  size_t n_df;
  docs_vec_cache vecs;
  /* tests: score every matching row / ask FTS5 for lengths (the ranking must not change) */
  bool no_prune, no_length_cache;
};

/* A cached statement, reset and unbound; NULL (logged) if it cannot be
 * prepared. Owned by the store: never finalize it; reset it when done so it
 * does not hold a read transaction open. */
sqlite3_stmt *docs_store_stmt(docs_store *self, docs_stmt which);

/* Write batching: between begin and end, page writes share one transaction
 * (each in its own savepoint), committed when it holds BATCH_MAX_PAGES writes
 * or is BATCH_MAX_MS old (checked on every write and by docs_store_flush_due)
 * and by the last batch_end. Batches nest (a counter: several syncs may run on
 * one store). Returns of end/flush: 0 or -EIO (the batch is then rolled back:
 * its pages are fetched again by the next sync). */
void docs_store_batch_begin(docs_store *self);
int docs_store_batch_end(docs_store *self);
int docs_store_flush_due(docs_store *self);
int docs_store_flush(docs_store *self);
/* Removes a page and its chunks. */
int docs_store_page_del(docs_store *self, long long id);

/* ---- location tokens (store.c) ---- */

#define DOCS_LOC_TOKEN_SIZE 24
/* The token standing for the location string s[0..n) (a hash). */
void docs_loc_token(const char *s, size_t n, char out[DOCS_LOC_TOKEN_SIZE]);
/* The location tokens of a page URL or path, space-separated, a new string:
 * one per prefix ending in '/' (after any "scheme://") plus the whole URL. A
 * source prefix P then selects its pages with the token of P (and of P
 * without its final '/', for the page at the prefix itself). */
char *docs_loc_tokens(const char *url);

/* ---- rank.c ---- */

#define DOCS_MAX_QUERY_TERMS 48
#define DOCS_BM25_K1 1.2
#define DOCS_BM25_B 0.75

typedef struct docs_hit {
  double score; /* positive, higher is better */
  long long id;
} docs_hit;

/* The state of one ranked query, handed to the SQL function
 * crucible_rank(chunks_fts, ?) as a pointer. It scores BM25 (the formula of
 * FTS5's bm25(): same IDF, k1, b; column weights title/body; loc weighs 0)
 * over phrases 0..n_terms-1 and keeps the best `k` rows in `heap`. A row
 * whose best possible score (length 0) cannot enter the top k nor reach
 * `min_relative` of the best so far is not scored further: the top k are the
 * same as with full scoring. */
typedef struct docs_rank {
  int n_terms;
  double idf[DOCS_MAX_QUERY_TERMS];
  double title_weight;
  double min_relative;
  size_t k;
  bool prune;
  const docs_lengths *lengths; /* NULL: ask FTS5 */
  /* filled while the query runs */
  docs_hit *heap; /* min-heap on score */
  size_t n_heap;
  double best;
  double avgdl;
  bool have_avg;
  size_t pos; /* cursor in lengths (rows come in rowid order) */
  long long rows, scored;
  struct docs_rank_parts *parts; /* non-NULL: only records the parts of row parts->id (--explain) */
} docs_rank;

/* Why a row scored what it did: per query term its weighted frequency
 * (a heading's occurrence counts title_weight) and its share of the bm25
 * score; the row's length in tokens and the length norm. */
typedef struct docs_rank_parts {
  long long id;
  bool found;
  double freq[DOCS_MAX_QUERY_TERMS], score[DOCS_MAX_QUERY_TERMS];
  long long length;
  double norm, total;
} docs_rank_parts;

/* Registers crucible_rank and looks up the tokenizer (once per store). */
int docs_rank_register(docs_store *self);
void docs_rank_unregister(docs_store *self);
/* The index term of a query word (stemmed as the index does), a new string,
 * or NULL when the word yields no single term. */
char *docs_rank_term(docs_store *self, const char *word);
/* Prepares for a query with self->k set (allocates the heap). */
void docs_rank_reset(docs_rank *self);
/* Sorts the kept rows best first (the heap is consumed); returns their count. */
size_t docs_rank_sort(docs_rank *self);
void docs_rank_close(docs_rank *self);
/* Drops the caches below if the index changed since they were filled (a
 * write here, or a commit by another connection). */
void docs_store_check_caches(docs_store *self);
void docs_store_caches_free(docs_store *self);
/* Rows holding the index term `term` in any column (cached), <0 on error. */
long long docs_store_term_rows(docs_store *self, const char *term);
/* The store's chunk lengths, loaded if needed (call docs_store_check_caches
 * first); NULL if they cannot be read (the ranking then asks FTS5 row by
 * row). */
const docs_lengths *docs_lengths_get(docs_store *self);
void docs_lengths_close(docs_lengths *self);

/* Looks up a page by canonical URL or path. Returns 1 and fills *out (release
 * with docs_page_info_close), 0 if unknown, <0 on error. */
int docs_store_page_get(docs_store *self, const char *url, docs_page_info *out);
void docs_page_info_close(docs_page_info *self);
/* The URL (new string) of another indexed page of `source` whose text hash
 * is `hash`, or NULL. */
char *docs_store_same_text(docs_store *self, const char *url, const char *source, long long hash);
/* Records the text hash of the page at url (after docs_store_page_put). */
int docs_store_text_hash_set(docs_store *self, const char *url, long long hash);

/* Records a page visit. For DOCS_PAGE_OK, `chunks` replaces the page's chunks
 * (NULL keeps them: a revalidation). links are stored for later cache hits. */
int docs_store_page_put(docs_store *self, const char *url, const char *source, docs_page_state state,
                        const char *title, const char *etag, const char *last_modified,
                        char *const *links, size_t n_links, const docs_chunks *chunks, size_t bytes);
/* Marks a page checked now (a 304 or an unchanged file). */
int docs_store_page_touch(docs_store *self, long long id);
int docs_store_source_put(docs_store *self, const char *source, const char *kind, const char *prefix);
/* Removes every page stored under `prefix` (a source prefix: the page at
 * the prefix without its final '/' included) for which gone(ud, url) is
 * true, with its chunks. `gone` is asked while the pages are read, the pages
 * are removed after. Returns how many were removed. */
int docs_store_prune(docs_store *self, const char *prefix, bool (*gone)(void *ud, const char *url), void *ud);
double docs_wall_now(void);

/* ---- vector.c ---- */

/* Reciprocal rank fusion's constant: a rank r weighs 1/(DOCS_RRF_K + r). */
#define DOCS_RRF_K 60

typedef struct docs_fused {
  long long id;
  double score;  /* sum of 1/(DOCS_RRF_K + rank) over the rankings holding it */
  int lex_rank, vec_rank; /* 1-based; 0 = not in that ranking */
  float cosine;  /* filled by the caller */
} docs_fused;

/* Fuses two rankings (ids best first; an id may be in one or both) into out
 * (room for n_lex + n_vec), best first; ties keep the lexical order, then
 * the vector order. Returns the count. */
size_t docs_rrf(const long long *lex, size_t n_lex, const long long *vec, size_t n_vec, docs_fused *out);
/* qsort order of docs_hit: best score first, then by id. */
int docs_hit_cmp(const void *a, const void *b);
/* Scales v to unit length (a zero vector stays). */
void docs_vec_normalize(float *v, int dim);
float docs_vec_dot(const float *a, const float *b, int dim);
/* The vectors of model with dim floats, loaded if the store changed since
 * (a write here, or another connection's commit); NULL when none or on an
 * error. Owned by the store, valid until its next write or query. */
const docs_vec_cache *docs_vec_cache_get(docs_store *self, const char *model, int dim);
void docs_vec_cache_close(docs_vec_cache *self);
/* The best k of the cache's rows by cosine with q into out (room for k),
 * best first. allowed (ascending chunk ids, n_allowed of them) restricts the
 * rows; NULL = every row. Returns the rows scored. */
long long docs_vec_topk_mem(const docs_vec_cache *c, const long long *allowed, size_t n_allowed, const float *q,
                            size_t k, docs_hit *out, size_t *n_out);
/* Stores vectors (n x dim, normalised here) of chunks ids[] for model,
 * replacing older ones; a chunk gone meanwhile is skipped. 0 or -EIO. */
int docs_vec_put(docs_store *self, const char *model, const long long *ids, size_t n, const float *vecs, int dim);

/* ---- a sync: sync.c (queue, caps, lifecycle), crawl.c (URLs), walk.c
 * (local files), index.c (pages into chunks) ---- */

/* How a page's bytes become text. */
typedef enum docs_kind { DOCS_KIND_SKIP, DOCS_KIND_HTML, DOCS_KIND_TEXT, DOCS_KIND_RST } docs_kind;

/* A URL or path waiting to be visited. */
typedef struct docs_item {
  struct docs_item *next;
  char *url;  /* canonical URL or real path */
  int depth;
  int src;    /* index into docs_sync.srcs */
} docs_item;

typedef struct docs_queue {
  docs_item *head, *tail;
} docs_queue;

/* One usable source of a sync. */
typedef struct docs_src {
  char *root, *prefix;  /* canonical start URL or real path; what its pages are stored under */
  bool is_url;
  bool public_only;
} docs_src;

/* A set of strings (open addressing), for canonical URLs already queued. */
typedef struct docs_strset {
  char **slots;
  size_t cap, n;
} docs_strset;

typedef struct docs_xfer docs_xfer; /* one transfer of the crawl (crawl.c) */

struct docs_sync {
  docs_store *store;
  uv_loop_t *loop;
  http_client *http;     /* NULL when no source is a URL */
  docs_sync_opts o;
  docs_src *srcs;
  size_t n_srcs;
  docs_queue urls, paths;
  docs_strset seen;
  docs_xfer *active;     /* transfers under way */
  int n_active;
  docs_sync_stats st;
  unsigned long long inflight; /* body bytes of the transfers under way */
  int visits;
  bool cancelled, finished;
  uv_timer_t tick;
  uv_timer_t flush;  /* commits the store's write batch while the sync waits on the network */
  int open_handles;
  docs_progress_fn progress;
  docs_done_fn done;
  void *ud;
  char *error;
  /* the embedding phase (vector.c), after the crawl */
  char *embed_model;     /* NULL: none */
  bool embedding;
  void *embed_req;
  long long embed_cursor;  /* the last chunk id asked for */
  long long embed_ids[DOCS_EMBED_BATCH];
  char *embed_texts[DOCS_EMBED_BATCH];
  size_t embed_n;
  char embed_error[512];
};

/* vector.c: starts embedding the chunks without a vector of the sync's
 * model; true when a request is under way (docs_sync_finish_done follows
 * when the phase ends), false when there is nothing to do or it could not
 * start (then the caller finishes). */
bool docs_sync_embed_start(docs_sync *s);
void docs_sync_embed_cancel(docs_sync *s);
/* sync.c: reports the end of the sync and frees it. */
void docs_sync_finish_done(docs_sync *s);

/* sync.c: queues a canonical URL or real path found at `depth` under source
 * `si` if it is within the source's bounds and new. */
void docs_sync_enqueue(docs_sync *s, const char *url, int depth, int si);
void docs_sync_enqueue_links(docs_sync *s, char *const *links, size_t n, int depth, int si);
/* Reports progress after the page `url` was handled. */
void docs_sync_report(docs_sync *s, const char *url);
/* Runs the sync's next step on the loop's next turn. */
void docs_sync_schedule(docs_sync *s);
/* Whether the page or byte cap is reached: no more visits. */
bool docs_sync_caps_reached(const docs_sync *s);
void docs_item_free(docs_item *it);

/* crawl.c: fetches (or revalidates) a URL, answers it from the cache when
 * fresh, stores the page and queues its links when the transfer ends. Takes
 * `it`. */
void docs_crawl_visit(docs_sync *s, docs_item *it);
/* Cancels every transfer under way; each ends through its done callback. */
void docs_crawl_cancel(docs_sync *s);

/* walk.c: visits a local file (read, indexed unless unchanged) or folder
 * (its entries queued, sorted by name). Borrows `it`. */
void docs_walk_visit(docs_sync *s, docs_item *it);
/* Removes the pages of a folder (or file) source whose files are gone;
 * returns how many. */
int docs_walk_prune(docs_sync *s, const docs_src *sr);

/* index.c: the kind of a page from its file name, or from its Content-Type
 * (and URL, when the type is missing or generic text). */
docs_kind docs_kind_from_name(const char *name);
docs_kind docs_kind_from_type(const char *ctype, const char *url);
/* Turns a page of source `sr` into text and chunks and stores it as
 * DOCS_PAGE_OK. For an HTML page of a URL source, *links_out gets its links
 * that are under the source's prefix (canonical, new strings; release with
 * docs_links_free), else NULL. A page is indexed once: an HTML page of a URL
 * source whose <link rel="canonical"> names another URL under the prefix is
 * stored as a redirect there (*links_out is that URL), and a page with the
 * text of another indexed page of the source is stored as skipped (of two
 * copies the shorter URL stays, whichever came first). Returns
 * 0 indexed, 1 not indexed for either reason or indexed in place of a copy
 * indexed before (either way one more page counts as skipped), or the
 * store's -errno. */
int docs_index_page(docs_store *store, const docs_src *sr, const char *url, docs_kind kind, const char *body,
                    size_t len, const char *etag, const char *last_modified, char ***links_out,
                    size_t *n_links_out);
void docs_links_free(char **links, size_t n);
/* Sphinx publishes the source of each page beside the rendered HTML, as
 * <root>/_sources/<page>.rst.txt (or .txt, .md.txt): the same page again, in
 * markup. For such a copy (a path or URL with a "_sources" segment, ending in
 * ".txt"), returns the rendered page's path or URL, <root>/<page>.html (a new
 * string); else NULL. */
char *docs_sphinx_rendered(const char *url);

#endif
