/* The documentation tools a model may call while it answers: a search that
 * names the best sections, and a read of one page, both limited to the
 * request's sources. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"

/* The search's own budget: the context of this many tokens holds enough
 * ranked sections for a short list (it is never sent as it is). */
#define SEARCH_BUDGET_TOKENS 6000

char *docs_tool_search(docs_store *store, const char *query, const char *const *sources, size_t n_sources,
                       int max_hits) {
  /* docs_context_build's entries, best first, each "### <title>\nSource:
   * <url>\n<text>\n\n" (its contract): the titles and URLs are read back
   * from their first two lines. One per distinct title and URL (a long
   * section is several chunks). */
  char *ctx = docs_context_build(store, query ? query : "", sources, n_sources, "search", SEARCH_BUDGET_TOKENS,
                                 NULL, NULL);
  dbuf out;
  dbuf_init(&out, 0);
  char **seen = NULL;
  int k = 0;
  for (const char *p = ctx ? ctx : ""; *p && k < max_hits;) {
    const char *eol = strchr(p, '\n');
    if (!eol) break;
    const char *src = eol + 1;
    if (strncmp(p, "### ", 4) == 0 && strncmp(src, "Source: ", 8) == 0) {
      const char *uend = strchr(src, '\n');
      if (!uend) uend = src + strlen(src);
      char *entry = xasprintf("%.*s\n   %.*s\n", (int)(eol - p - 4), p + 4, (int)(uend - src - 8), src + 8);
      bool dup = false;
      for (int i = 0; i < k && !dup; i++) dup = strcmp(seen[i], entry) == 0;
      if (dup) {
        free(entry);
      } else {
        seen = xrealloc(seen, (size_t)(k + 1) * sizeof *seen);
        seen[k++] = entry;
        dbuf_addf(&out, "%d. %s", k, entry);
      }
      p = *uend ? uend + 1 : uend;
      continue;
    }
    p = eol + 1;
  }
  for (int i = 0; i < k; i++) free(seen[i]);
  free(seen);
  free(ctx);
  char *s = out.data ? out.data : xstrdup("");
  out.data = NULL;
  dbuf_close(&out);
  return s;
}

/* The section part of a stored chunk title ("page › section"). */
static const char *section_of(const char *page_title, const char *chunk_title) {
  size_t pl = strlen(page_title), sl = strlen(" \u203a ");
  if (pl && strncmp(chunk_title, page_title, pl) == 0 && strncmp(chunk_title + pl, " \u203a ", sl) == 0)
    return chunk_title + pl + sl;
  return chunk_title;
}

/* Whether url is under one of the sources (none: every page). */
static bool visible(const char *url, const char *const *sources, size_t n_sources) {
  if (!n_sources) return true;
  for (size_t i = 0; i < n_sources; i++) {
    char *prefix = docs_source_prefix(sources[i], NULL);
    bool in = prefix && docs_url_in_prefix(url, prefix);
    free(prefix);
    if (in) return true;
  }
  return false;
}

typedef struct page_chunk {
  char *section, *body;
} page_chunk;

int docs_tool_read(docs_store *store, const char *url, const char *section, const char *const *sources,
                   size_t n_sources, size_t max_bytes, char **out) {
  *out = NULL;
  if (!url || !*url) return -EINVAL;
  char *canon = docs_is_url(url) ? docs_url_canon(NULL, url) : xstrdup(url);
  if (!canon) return -EINVAL;
  if (!visible(canon, sources, n_sources)) {
    free(canon);
    return -EACCES;
  }
  sqlite3_stmt *st = NULL;
  int err = 0;
  page_chunk *chunks = NULL;
  size_t n = 0;
  char *page_title = NULL;
  if (sqlite3_prepare_v2(store->db,
                         "SELECT p.title, c.title, c.body FROM pages p JOIN chunks c ON c.page_id = p.id "
                         "WHERE p.url = ?1 AND p.state = ?2 ORDER BY c.seq",
                         -1, &st, NULL) != SQLITE_OK) {
    err = -EIO;
    goto out;
  }
  sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, DOCS_PAGE_OK);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *pt = (const char *)sqlite3_column_text(st, 0);
    const char *ct = (const char *)sqlite3_column_text(st, 1);
    const char *body = (const char *)sqlite3_column_text(st, 2);
    if (!page_title) page_title = xstrdup(pt ? pt : "");
    chunks = xrealloc(chunks, (n + 1) * sizeof *chunks);
    chunks[n].section = xstrdup(section_of(page_title, ct ? ct : ""));
    chunks[n].body = xstrdup(body ? body : "");
    n++;
  }
  if (rc != SQLITE_DONE) err = -EIO;
  else if (!n) err = -ENOENT;
  if (err) goto out;

  /* From the first section whose title holds `section` (any case). */
  size_t from = 0;
  bool found = !section || !*section;
  for (size_t i = 0; !found && i < n; i++)
    if (strcasestr(chunks[i].section, section)) from = i, found = true;
  dbuf d;
  dbuf_init(&d, 0);
  dbuf_addf(&d, "# %s\nSource: %s\n", *page_title ? page_title : canon, canon);
  if (!found) dbuf_addf(&d, "(no section titled \"%s\": the page from its start)\n", section);
  dbuf_adds(&d, "\n");
  size_t i = from;
  for (; i < n; i++) {
    size_t len = strlen(chunks[i].body);
    if (d.len + len + 2 > max_bytes) {
      /* cut inside this chunk, at a line end when one is near, never
       * inside a UTF-8 sequence */
      size_t room = max_bytes > d.len + 2 ? max_bytes - d.len - 2 : 0;
      size_t cut = room;
      while (cut > 0 && ((unsigned char)chunks[i].body[cut] & 0xC0) == 0x80) cut--;
      const char *nl = cut ? memrchr(chunks[i].body, '\n', cut) : NULL;
      if (nl && (size_t)(nl - chunks[i].body) > cut / 2) cut = (size_t)(nl - chunks[i].body);
      dbuf_add(&d, chunks[i].body, cut);
      break;
    }
    dbuf_add(&d, chunks[i].body, len);
    dbuf_adds(&d, "\n\n");
  }
  if (i < n) {
    size_t left = 0;
    for (size_t j = i; j < n; j++) left += strlen(chunks[j].body);
    dbuf_addf(&d, "\n\n[cut: about %zu more tokens. Sections from here:", docs_tokens(left));
    size_t listed = 0;
    for (size_t j = i; j < n && listed < 12; j++) {
      if (j > i && strcmp(chunks[j].section, chunks[j - 1].section) == 0) continue;
      dbuf_addf(&d, "%s \"%s\"", listed ? "," : "", chunks[j].section);
      listed++;
    }
    dbuf_adds(&d, ". docs_read with one as `section` reads from there.]\n");
  }
  *out = d.data ? d.data : xstrdup("");
out:
  sqlite3_finalize(st);
  for (size_t j = 0; j < n; j++) free(chunks[j].section), free(chunks[j].body);
  free(chunks);
  free(page_title);
  free(canon);
  return err;
}
