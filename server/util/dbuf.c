/* A growable byte buffer with a hard cap checked before it grows. */
#include "dbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void dbuf_init(dbuf *self, size_t max) {
  self->data = NULL;
  self->len = 0;
  self->cap = 0;
  self->max = max;
}

void dbuf_close(dbuf *self) {
  free(self->data);
  self->data = NULL;
  self->len = self->cap = 0;
}

void dbuf_reset(dbuf *self) {
  self->len = 0;
  if (self->data) self->data[0] = '\0';
}

static void grow(dbuf *self, size_t need) {
  if (need + 1 <= self->cap) return;
  size_t cap = self->cap ? self->cap : 64;
  while (cap < need + 1) cap *= 2;
  self->data = xrealloc(self->data, cap);
  self->cap = cap;
}

int dbuf_add(dbuf *self, const void *p, size_t n) {
  if (self->max && (n > self->max || self->len > self->max - n)) return -E2BIG;
  grow(self, self->len + n);
  if (n) memcpy(self->data + self->len, p, n);
  self->len += n;
  self->data[self->len] = '\0';
  return 0;
}

int dbuf_adds(dbuf *self, const char *s) {
  return dbuf_add(self, s, strlen(s));
}

int dbuf_addf(dbuf *self, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) return -ENOMEM;
  int err = dbuf_add(self, s, (size_t)n);
  free(s);
  return err;
}

size_t dbuf_add_head(dbuf *self, const void *p, size_t n) {
  size_t room = self->max ? (self->len < self->max ? self->max - self->len : 0) : n;
  if (n > room) n = room;
  if (n) dbuf_add(self, p, n);
  else if (!self->data) grow(self, 0), self->data[0] = '\0';
  return n;
}

char *dbuf_take(dbuf *self) {
  char *out = self->data;
  if (!out) out = xstrdup("");
  self->data = NULL;
  self->len = self->cap = 0;
  return out;
}
