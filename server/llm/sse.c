/* Server-Sent Events parsing as the WHATWG HTML spec describes it ("Interpreting
 * an event stream"), fed in pieces of any size. */
#include "sse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_EVENT (1u << 20)

void sse_parser_init(sse_parser *self, size_t max_event, sse_event_fn cb, void *ud) {
  memset(self, 0, sizeof *self);
  self->max_event = max_event ? max_event : DEFAULT_MAX_EVENT;
  /* A line holds a field name and ": " besides the value: leave room for them. */
  dbuf_init(&self->line, self->max_event + 64);
  /* +1: each data line adds a "\n" that dispatch strips from the last one. */
  dbuf_init(&self->data, self->max_event + 1);
  dbuf_init(&self->type, self->max_event);
  dbuf_init(&self->id, self->max_event);
  self->retry_ms = -1;
  self->cb = cb;
  self->ud = ud;
}

void sse_parser_close(sse_parser *self) {
  dbuf_close(&self->line);
  dbuf_close(&self->data);
  dbuf_close(&self->type);
  dbuf_close(&self->id);
}

bool sse_parser_pending(const sse_parser *self) {
  return self->line.len > 0 || self->data.len > 0 || self->type.len > 0;
}

static int dispatch(sse_parser *self) {
  if (self->data.len == 0) {
    /* An event with no data is not dispatched; its type is forgotten. */
    dbuf_reset(&self->type);
    return 0;
  }
  self->data.len--; /* the trailing "\n" of the last data line */
  self->data.data[self->data.len] = '\0';
  sse_event ev = {
      .type = self->type.len ? self->type.data : "message",
      .data = self->data.data,
      .data_len = self->data.len,
      .id = self->id.len ? self->id.data : "",
  };
  self->events++;
  int rc = self->cb ? self->cb(self->ud, &ev) : 0;
  dbuf_reset(&self->data);
  dbuf_reset(&self->type);
  return rc;
}

static int process_line(sse_parser *self) {
  const char *line = self->line.data ? self->line.data : "";
  size_t len = self->line.len;
  int rc = 0;
  if (len == 0) rc = dispatch(self);
  else if (line[0] == ':') rc = 0; /* comment, e.g. keep-alive ": ping" */
  else {
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    if (colon && v < line + len && *v == ' ') v++;
    size_t vlen = (size_t)(line + len - v);
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
      if (dbuf_add(&self->data, v, vlen) < 0 || dbuf_add(&self->data, "\n", 1) < 0) rc = -E2BIG;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
      dbuf_reset(&self->type);
      if (dbuf_add(&self->type, v, vlen) < 0) rc = -E2BIG;
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
      if (!memchr(v, '\0', vlen)) {
        dbuf_reset(&self->id);
        if (dbuf_add(&self->id, v, vlen) < 0) rc = -E2BIG;
      }
    } else if (nlen == 5 && memcmp(line, "retry", 5) == 0) {
      bool digits = vlen > 0 && vlen < 10;
      for (size_t i = 0; i < vlen && digits; i++) digits = v[i] >= '0' && v[i] <= '9';
      if (digits) self->retry_ms = strtol(v, NULL, 10);
    }
    /* other field names are ignored, as the spec says */
  }
  dbuf_reset(&self->line);
  return rc;
}

int sse_parser_feed(sse_parser *self, const char *p, size_t n) {
  if (self->failed) return -EINVAL;
  size_t i = 0;
  if (!self->started) {
    /* A UTF-8 byte order mark may open the stream; it can arrive split too. */
    static const char bom[] = "\xEF\xBB\xBF";
    while (i < n && self->line.len < 3 && (unsigned char)p[i] == (unsigned char)bom[self->line.len]) {
      dbuf_add(&self->line, p + i, 1);
      i++;
    }
    if (self->line.len == 3) {
      dbuf_reset(&self->line);
      self->started = true;
    } else if (i < n) {
      self->started = true; /* not a BOM: what we held back is ordinary text */
    } else {
      return 0;
    }
  }
  while (i < n) {
    char ch = p[i];
    if (self->after_cr) {
      self->after_cr = false;
      if (ch == '\n') {
        i++;
        continue;
      }
    }
    if (ch == '\r' || ch == '\n') {
      self->after_cr = ch == '\r';
      i++;
      int rc = process_line(self);
      if (rc) {
        self->failed = true;
        return rc;
      }
      continue;
    }
    /* Copy the run up to the next line end in one step. */
    size_t j = i;
    while (j < n && p[j] != '\r' && p[j] != '\n') j++;
    if (dbuf_add(&self->line, p + i, j - i) < 0) {
      self->failed = true;
      return -E2BIG;
    }
    i = j;
  }
  return 0;
}
