/* Turning a fetched or read page into text, chunks and links, and storing it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "internal.h"
#include "log.h"

docs_kind docs_kind_from_name(const char *name) {
  const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
  if (!dot || (slash && dot < slash)) return DOCS_KIND_SKIP;
  if (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm") || !strcasecmp(dot, ".xhtml")) return DOCS_KIND_HTML;
  if (!strcasecmp(dot, ".md") || !strcasecmp(dot, ".markdown") || !strcasecmp(dot, ".txt")) return DOCS_KIND_TEXT;
  if (!strcasecmp(dot, ".rst")) return DOCS_KIND_RST;
  return DOCS_KIND_SKIP;
}

docs_kind docs_kind_from_type(const char *ctype, const char *url) {
  if (!ctype || !*ctype) {
    /* no Content-Type: trust a known extension, else assume a web page */
    docs_kind k = docs_kind_from_name(url);
    return k == DOCS_KIND_SKIP ? DOCS_KIND_HTML : k;
  }
  size_t n = strcspn(ctype, "; \t");
  if (!strncasecmp(ctype, "text/html", n) && n == 9) return DOCS_KIND_HTML;
  if (!strncasecmp(ctype, "application/xhtml+xml", n) && n == 21) return DOCS_KIND_HTML;
  if (!strncasecmp(ctype, "text/x-rst", n) && n == 10) return DOCS_KIND_RST;
  if ((!strncasecmp(ctype, "text/plain", n) && n == 10) || (!strncasecmp(ctype, "text/markdown", n) && n == 13) ||
      (!strncasecmp(ctype, "text/x-markdown", n) && n == 15))
    return docs_kind_from_name(url) == DOCS_KIND_RST ? DOCS_KIND_RST : DOCS_KIND_TEXT;
  return DOCS_KIND_SKIP;
}

static char *last_segment(const char *url) {
  size_t n = strcspn(url, "?#");
  while (n > 0 && url[n - 1] == '/') n--;
  size_t a = n;
  while (a > 0 && url[a - 1] != '/') a--;
  return n > a ? xstrndup(url + a, n - a) : xstrdup(url);
}

static long long text_hash(const char *s, size_t n) {
  unsigned long long h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return (long long)(h >> 1);
}

int docs_index_page(docs_store *store, const docs_src *sr, const char *url, docs_kind kind, const char *body,
                    size_t len, const char *etag, const char *last_modified, char ***links_out,
                    size_t *n_links_out) {
  char *title = NULL, *text = NULL;
  size_t text_len = 0;
  char **links = NULL;
  size_t n_links = 0;
  int err;
  if (kind == DOCS_KIND_HTML) {
    docs_html h;
    docs_html_extract(body, len, &h);
    char *canon = sr->is_url && h.canonical ? docs_url_canon(url, h.canonical) : NULL;
    if (canon && strcmp(canon, url) != 0 && docs_url_in_prefix(canon, sr->prefix)) {
      /* a variant of another page (index, print, mirror): that page is
       * indexed instead, as if this one redirected there */
      docs_html_close(&h);
      err = docs_store_page_put(store, url, sr->root, DOCS_PAGE_REDIRECT, NULL, etag, last_modified, &canon, 1,
                                NULL, len);
      *links_out = xcalloc(1, sizeof **links_out);
      (*links_out)[0] = canon;
      *n_links_out = 1;
      return err < 0 ? err : 1;
    }
    free(canon);
    title = h.title, h.title = NULL;
    text = h.text, h.text = NULL;
    text_len = h.text_len;
    if (sr->is_url) {
      links = xcalloc(h.n_links + 1, sizeof *links);
      for (size_t i = 0; i < h.n_links; i++) {
        char *c = docs_url_canon(url, h.links[i]);
        char *rendered = c ? docs_sphinx_rendered(c) : NULL;
        /* a Sphinx source copy: the page that links it is its rendering */
        if (c && !rendered && docs_url_in_prefix(c, sr->prefix)) links[n_links++] = c;
        else free(c);
        free(rendered);
      }
    }
    docs_html_close(&h);
  } else {
    text = docs_utf8_clean(body, len);
    text_len = len;
    if (kind == DOCS_KIND_RST) {
      char *md = docs_rst_to_md(text, text_len, &text_len);
      free(text);
      text = md;
    }
    title = docs_first_heading(text, text_len);
  }
  if (!title) title = last_segment(url);
  long long hash = text_hash(text ? text : "", text_len);
  char *same = docs_store_same_text(store, url, sr->root, hash);
  bool displaced = false; /* an indexed copy (counted then) is skipped now */
  /* which copy stays must not depend on the order pages come in: the
   * shorter URL (then the first in byte order) */
  if (same && (strlen(url) < strlen(same) || (strlen(url) == strlen(same) && strcmp(url, same) < 0))) {
    log_info("docs: %s has the text of %s: indexed once, as %s", same, url, url);
    /* skipped, its chunks gone; its validators and links are kept: a page
     * reached only through the copy is still reached by later syncs that
     * answer the copy from the cache */
    docs_page_info was;
    if (docs_store_page_get(store, same, &was) < 0) memset(&was, 0, sizeof was);
    docs_store_page_put(store, same, sr->root, DOCS_PAGE_SKIPPED, NULL, was.etag, was.last_modified,
                        was.links, was.n_links, NULL, 0);
    docs_page_info_close(&was);
    free(same);
    same = NULL;
    displaced = true;
  }
  if (same) {
    log_info("docs: %s has the text of %s: indexed once, as %s", url, same, same);
    free(same);
    err = docs_store_page_put(store, url, sr->root, DOCS_PAGE_SKIPPED, title, etag, last_modified, links, n_links,
                              NULL, len);
    free(title);
    free(text);
    *links_out = links;
    *n_links_out = n_links;
    return err < 0 ? err : 1;
  }
  docs_chunks chunks = {0};
  docs_chunk_split(text, text_len, title, DOCS_CHUNK_CHARS, &chunks);
  chunks.legacy = text && docs_text_deprecated(text, text_len);
  /* A bare heading ("ZipFile Objects", "Examples") does not say which page
   * it is on: the title column gets "page › section", so the page's words
   * weigh as a heading in every chunk of it. */
  for (size_t i = 0; i < chunks.n; i++) {
    docs_chunk *c = &chunks.v[i];
    if (!c->title || !strcmp(c->title, title)) continue;
    char *t = xasprintf("%s \u203a %s", title, c->title);
    free(c->title);
    c->title = t;
  }
  err = docs_store_page_put(store, url, sr->root, DOCS_PAGE_OK, title, etag, last_modified, links, n_links,
                            &chunks, len);
  if (!err) err = docs_store_text_hash_set(store, url, hash);
  docs_chunks_close(&chunks);
  free(title);
  free(text);
  *links_out = links;
  *n_links_out = n_links;
  /* indexed in place of a copy counted as indexed before: the counts then
   * move that copy to the skipped ones, whichever order the two came in */
  return err ? err : displaced ? 1 : 0;
}

void docs_links_free(char **links, size_t n) {
  for (size_t i = 0; i < n; i++) free(links[i]);
  free(links);
}

char *docs_sphinx_rendered(const char *url) {
  size_t n = strcspn(url, "?#");
  const char *seg = NULL;
  for (const char *p = url; (p = strstr(p, "/_sources/")) && p < url + n; p++) seg = p;
  if (!seg || n < 4 || strncmp(url + n - 4, ".txt", 4) != 0) return NULL;
  const char *rel = seg + strlen("/_sources/");
  size_t rel_n = (size_t)(url + n - 4 - rel);
  /* the source suffix Sphinx kept before ".txt" */
  static const char *const exts[] = {".rst", ".md", ".rest", ".markdown"};
  for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
    size_t e = strlen(exts[i]);
    if (rel_n > e && strncasecmp(rel + rel_n - e, exts[i], e) == 0) {
      rel_n -= e;
      break;
    }
  }
  if (!rel_n || rel[rel_n - 1] == '/') return NULL;
  return xasprintf("%.*s/%.*s.html", (int)(seg - url), url, (int)rel_n, rel);
}
