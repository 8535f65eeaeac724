/* Plain-text helpers for indexed pages: splitting along headings into
 * size-capped chunks, reStructuredText titles, UTF-8 repair. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "utf8.h"

/* Chunk text grows by at most this much when a cut inside a code fence is
 * closed ("\n```") and reopened ("```\n"). */
#define FENCE_EXTRA 8

static size_t line_end(const char *s, size_t len, size_t pos) {
  const char *nl = memchr(s + pos, '\n', len - pos);
  return nl ? (size_t)(nl - s) : len;
}

static bool is_fence(const char *line, size_t n) {
  size_t i = 0;
  while (i < n && i < 3 && line[i] == ' ') i++;
  return n - i >= 3 && line[i] == '`' && line[i + 1] == '`' && line[i + 2] == '`';
}

/* Heading level of a "# title" line (1..6), else 0. */
static int heading_of(const char *line, size_t n) {
  int h = 0;
  while ((size_t)h < n && line[h] == '#') h++;
  if (h == 0 || h > 6) return 0;
  if ((size_t)h < n && line[h] != ' ' && line[h] != '\t') return 0;
  return h;
}

static char *heading_text(const char *line, size_t n, int level) {
  const char *s = line + level, *e = line + n;
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '#')) e--;
  return e > s ? xstrndup(s, (size_t)(e - s)) : NULL;
}

static void push(docs_chunks *out, const char *title, dbuf *text) {
  /* trim blank lines and spaces at both ends */
  size_t a = 0, b = text->len;
  while (a < b && (text->data[a] == '\n' || text->data[a] == ' ' || text->data[a] == '\r')) a++;
  while (b > a && (text->data[b - 1] == '\n' || text->data[b - 1] == ' ' || text->data[b - 1] == '\r')) b--;
  if (b == a) {
    dbuf_reset(text);
    return;
  }
  if (out->n == out->cap) {
    out->cap = out->cap ? out->cap * 2 : 16;
    out->v = xrealloc(out->v, out->cap * sizeof *out->v);
  }
  docs_chunk *c = &out->v[out->n++];
  c->title = xstrdup(title ? title : "");
  c->text = xstrndup(text->data + a, b - a);
  c->len = b - a;
  dbuf_reset(text);
}

/* Whether position `at` (inside s[from..]) is inside a ``` fence, given the
 * state at `from`. */
static bool fence_state(const char *s, size_t from, size_t at, bool open) {
  size_t p = from;
  while (p < at) {
    size_t e = line_end(s, at, p);
    if (is_fence(s + p, e - p)) open = !open;
    p = e + 1;
  }
  return open;
}

/* Emits one section's body, split into pieces of at most max bytes. */
static void flush_section(docs_chunks *out, const char *title, const char *s, size_t a, size_t b, size_t max) {
  dbuf t;
  dbuf_init(&t, 0);
  size_t room = max > FENCE_EXTRA * 2 ? max - FENCE_EXTRA : max;
  bool open = false; /* inside a fence at `a` */
  while (a < b) {
    size_t end = b;
    if (b - a > room) {
      size_t lim = a + room, cut = 0;
      for (size_t i = lim; i > a + room / 2; i--)
        if (s[i - 1] == '\n' && i >= 2 && s[i - 2] == '\n') {
          cut = i;
          break;
        }
      if (!cut)
        for (size_t i = lim; i > a; i--)
          if (s[i - 1] == '\n') {
            cut = i;
            break;
          }
      if (!cut) {
        cut = a + utf8_char_start(s + a, b - a, lim - a);
        if (cut == a) cut = a + 1;
      }
      end = cut;
    }
    bool open_end = fence_state(s, a, end, open);
    if (open) dbuf_add(&t, "```\n", 4);
    dbuf_add(&t, s + a, end - a);
    if (open_end && end < b) dbuf_add(&t, "\n```", 4);
    push(out, title, &t);
    open = open_end;
    a = end;
  }
  dbuf_close(&t);
}

void docs_chunk_split(const char *s, size_t len, const char *page_title, size_t max, docs_chunks *out) {
  if (max < 64) max = 64;
  char *title = NULL;
  size_t body = 0, p = 0;
  bool fence = false;
  while (p < len) {
    size_t e = line_end(s, len, p);
    if (is_fence(s + p, e - p)) {
      fence = !fence;
    } else if (!fence) {
      int h = heading_of(s + p, e - p);
      if (h) {
        flush_section(out, title ? title : page_title, s, body, p, max);
        free(title);
        title = heading_text(s + p, e - p, h);
        body = e < len ? e + 1 : len;
      }
    }
    p = e + 1;
  }
  flush_section(out, title ? title : page_title, s, body, len, max);
  free(title);
}

/* Whether s[0..n) holds word (lowercase ASCII) case-insensitively. */
static bool has_ci(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  for (size_t i = 0; i + w <= n; i++)
    if (!strncasecmp(s + i, word, w)) return true;
  return false;
}

bool docs_text_deprecated(const char *text, size_t len) {
  static const char *const labels[] = {"note", "warning", "important", "attention", "caution"};
  const char *p = text, *end = text + len;
  bool fence = false;
  while (p < end) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    const char *line = p;
    size_t n = (size_t)(e - p);
    p = e < end ? e + 1 : end;
    if (n >= 3 && !strncmp(line, "```", 3)) {
      fence = !fence;
      continue;
    }
    /* markdown emphasis and quoting around a notice */
    while (n && (*line == '>' || *line == '*' || *line == '_' || *line == ' ' || *line == '!')) line++, n--;
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\r' || line[n - 1] == '*' || line[n - 1] == ':')) n--;
    if (fence || !n || line[0] == '#' || (n >= 12 && !strncasecmp(line, "Source code:", 12))) continue;
    bool label = false;
    for (size_t i = 0; i < ARRAY_LEN(labels) && !label; i++)
      label = n == strlen(labels[i]) && !strncasecmp(line, labels[i], n);
    if (label) continue;
    /* the first paragraph of prose */
    if (n >= 10 && !strncasecmp(line, "deprecated", 10)) return true;
    return has_ci(line, n > 400 ? 400 : n, "is deprecated") || has_ci(line, n > 400 ? 400 : n, "are deprecated");
  }
  return false;
}

void docs_chunks_close(docs_chunks *self) {
  if (!self) return;
  for (size_t i = 0; i < self->n; i++) {
    free(self->v[i].title);
    free(self->v[i].text);
  }
  free(self->v);
  memset(self, 0, sizeof *self);
}

static bool is_adornment(const char *line, size_t n, char *ch) {
  static const char marks[] = "=-~^\"'`#*+";
  while (n && (line[n - 1] == ' ' || line[n - 1] == '\r')) n--;
  if (n < 3 || !strchr(marks, line[0]) || line[0] == '\0') return false;
  for (size_t i = 1; i < n; i++)
    if (line[i] != line[0]) return false;
  *ch = line[0];
  return true;
}

static size_t trimmed_len(const char *line, size_t n) {
  while (n && (line[n - 1] == ' ' || line[n - 1] == '\r')) n--;
  return n;
}

char *docs_rst_to_md(const char *s, size_t len, size_t *out_len) {
  dbuf b;
  dbuf_init(&b, 0);
  size_t p = 0;
  while (p < len) {
    size_t e = line_end(s, len, p);
    size_t n = trimmed_len(s + p, e - p);
    size_t p2 = e < len ? e + 1 : len;
    size_t e2 = p2 < len ? line_end(s, len, p2) : len;
    char ch, ch2;
    /* overline, title, underline */
    if (is_adornment(s + p, e - p, &ch) && p2 < len) {
      size_t p3 = e2 < len ? e2 + 1 : len;
      size_t e3 = p3 < len ? line_end(s, len, p3) : len;
      size_t tn = trimmed_len(s + p2, e2 - p2);
      const char *t = s + p2;
      while (tn && *t == ' ') t++, tn--;
      if (p3 < len && tn && is_adornment(s + p3, e3 - p3, &ch2) && ch2 == ch) {
        dbuf_adds(&b, "# ");
        dbuf_add(&b, t, tn);
        dbuf_adds(&b, "\n");
        p = e3 < len ? e3 + 1 : len;
        continue;
      }
    }
    /* title, underline at least as long */
    if (n && s[p] != ' ' && p2 < len && is_adornment(s + p2, e2 - p2, &ch) &&
        trimmed_len(s + p2, e2 - p2) >= n && !is_adornment(s + p, e - p, &ch2)) {
      dbuf_adds(&b, "## ");
      dbuf_add(&b, s + p, n);
      dbuf_adds(&b, "\n");
      p = e2 < len ? e2 + 1 : len;
      continue;
    }
    dbuf_add(&b, s + p, e - p);
    if (e < len) dbuf_adds(&b, "\n");
    p = p2;
  }
  *out_len = b.len;
  return dbuf_take(&b);
}

char *docs_utf8_clean(const char *s, size_t len) {
  char *o = utf8_repair_with(s, len, "?", 1, NULL);
  if (!o) abort(); /* out of memory */
  return o;
}

char *docs_first_heading(const char *s, size_t len) {
  size_t p = 0;
  bool fence = false;
  while (p < len) {
    size_t e = line_end(s, len, p);
    if (is_fence(s + p, e - p)) fence = !fence;
    else if (!fence) {
      int h = heading_of(s + p, e - p);
      if (h) {
        char *t = heading_text(s + p, e - p, h);
        if (t) return t;
      }
    }
    p = e + 1;
  }
  return NULL;
}
