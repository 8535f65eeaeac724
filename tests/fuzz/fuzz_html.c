/* libFuzzer target: arbitrary bytes through HTML to text extraction, link
 * resolution against a base URL, and chunking of the extracted text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  docs_html h;
  if (docs_html_extract((const char *)data, size, &h) != 0) abort();
  if (!h.text || strlen(h.text) != h.text_len) abort();
  for (size_t i = 0; i < h.n_links && i < 16; i++) {
    char *u = docs_url_canon("http://example.com/docs/guide/page.html", h.links[i]);
    if (u && !docs_url_in_prefix(u, "http://") && strncmp(u, "https://", 8) != 0) abort();
    free(u);
  }
  docs_chunks c = {0};
  docs_chunk_split(h.text, h.text_len, h.title ? h.title : "", 200, &c);
  for (size_t i = 0; i < c.n; i++)
    if (c.v[i].len > 200 || strlen(c.v[i].text) != c.v[i].len) abort();
  docs_chunks_close(&c);
  /* the raw bytes as plain text too (markdown and reStructuredText pages) */
  char *clean = docs_utf8_clean((const char *)data, size);
  size_t md_len;
  char *md = docs_rst_to_md(clean, size, &md_len);
  docs_chunks c2 = {0};
  docs_chunk_split(md, md_len, "t", 128, &c2);
  docs_chunks_close(&c2);
  char *q = docs_fts_query(clean, 48);
  free(q);
  free(md);
  free(clean);
  docs_html_close(&h);
  return 0;
}
