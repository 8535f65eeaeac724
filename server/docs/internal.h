/* The pure parts of the docs module (URLs, HTML to text, chunking, FTS
 * queries, budget packing) and the store's internal interface, shared by the
 * module's files and its unit tests. */
#ifndef CRUCIBLE_DOCS_INTERNAL_H
#define CRUCIBLE_DOCS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>

#include "docs.h"

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
} docs_chunks;

/* Splits markdown-like text along its headings (# lines outside ``` fences)
 * into chunks of at most max_chars bytes (longer sections are split at blank
 * lines, then at line ends, then hard; never inside a UTF-8 sequence). Empty
 * sections are dropped. Appends to *out; release with docs_chunks_close. */
void docs_chunk_split(const char *text, size_t len, const char *page_title, size_t max_chars, docs_chunks *out);
void docs_chunks_close(docs_chunks *self);
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

/* Turns free text (a question, an error message) into a safe FTS5 query:
 * words (letters, digits; split at everything else, as FTS5's unicode61
 * tokenizer does) lowercased, stopwords and one-letter words dropped,
 * duplicates dropped, at most max_terms, each double-quoted and joined with
 * OR. Returns a new string, or NULL when no term is left. */
char *docs_fts_query(const char *text, size_t max_terms);

/* ---- context.c ---- */

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

struct docs_store {
  sqlite3 *db;
};

/* Looks up a page by canonical URL or path. Returns 1 and fills *out (release
 * with docs_page_info_close), 0 if unknown, <0 on error. */
int docs_store_page_get(docs_store *self, const char *url, docs_page_info *out);
void docs_page_info_close(docs_page_info *self);
/* Records a page visit. For DOCS_PAGE_OK, `chunks` replaces the page's chunks
 * (NULL keeps them: a revalidation). links are stored for later cache hits. */
int docs_store_page_put(docs_store *self, const char *url, const char *source, docs_page_state state,
                        const char *title, const char *etag, const char *last_modified,
                        char *const *links, size_t n_links, const docs_chunks *chunks, size_t bytes);
/* Marks a page checked now (a 304 or an unchanged file). */
int docs_store_page_touch(docs_store *self, long long id);
int docs_store_source_put(docs_store *self, const char *source, const char *kind, const char *prefix);
double docs_wall_now(void);

#endif
