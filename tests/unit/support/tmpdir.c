#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

void tu_tmpdir_make(char *buf, size_t size, const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  char tmpl[PATH_MAX];
  assert_true((size_t)snprintf(tmpl, sizeof tmpl, "%s/crucible-%s-XXXXXX", base, tag) < sizeof tmpl);
  assert_non_null(mkdtemp(tmpl));
  char real[PATH_MAX];
  assert_non_null(realpath(tmpl, real));
  assert_true(strlen(real) < size);
  memcpy(buf, real, strlen(real) + 1);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void tu_tmpdir_remove(const char *dir) {
  assert_int_equal(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

void tu_write_file(const char *dir, const char *rel, const char *text) {
  char path[PATH_MAX];
  assert_true((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) < sizeof path);
  for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_true(fputs(text, f) >= 0);
  assert_int_equal(fclose(f), 0);
}
