/* Small macros shared by the whole server. */
#ifndef CRUCIBLE_UTIL_COMMON_H
#define CRUCIBLE_UTIL_COMMON_H

#include <stddef.h>

/* Recovers the struct that embeds `ptr` as its member `member`. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that cannot fail: aborts on out-of-memory (the only case where
 * the server gives up). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes all n bytes of p to the blocking descriptor fd, retrying short
 * writes and EINTR. Returns 0 or -errno (-EIO when write makes no
 * progress). */
int write_all(int fd, const void *p, size_t n);

/* Whether d is a finite number with no fractional part. Without libm
 * (floor), which a one-shot run never loads (math_lazy.c). */
int is_integral(double d);

/* Monotonic clock in milliseconds / nanoseconds. */
unsigned long long now_ms(void);
unsigned long long now_ns(void);

#endif
