/* A growable byte buffer with a hard cap checked before it grows. */
#ifndef CRUCIBLE_UTIL_DBUF_H
#define CRUCIBLE_UTIL_DBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dbuf {
  char *data;      /* NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
  size_t max;      /* the cap on len; 0 = unlimited */
} dbuf;

void dbuf_init(dbuf *self, size_t max);
void dbuf_close(dbuf *self);
/* Appends n bytes. Returns 0, or -E2BIG (nothing appended) when len would
 * pass max. */
int dbuf_add(dbuf *self, const void *p, size_t n);
int dbuf_adds(dbuf *self, const char *s);
int dbuf_addf(dbuf *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends as much of p as fits under max; returns the number of bytes kept. */
size_t dbuf_add_head(dbuf *self, const void *p, size_t n);
/* Hands the data over to the caller (never NULL) and resets the buffer. */
char *dbuf_take(dbuf *self);
void dbuf_reset(dbuf *self);

#endif
