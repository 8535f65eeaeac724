/* Unit tests: the seccomp cache file (seccomp_cache.h): its format, every
 * way a file can fail validation, the key, and the store/load round trip
 * through a real file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seccomp_cache.h"
#include "seccomp_filter.h"

static const char KEY[] = "rules=1 build=abc libseccomp=2.5.4 api=6 kernel=6.1 machine=x86_64";

/* A fake program of n instructions. */
static char *prog_of(size_t n) {
  char *p = malloc(n * 8);
  for (size_t i = 0; i < n * 8; i++) p[i] = (char)(i * 7 + 1);
  return p;
}

static void round_trip(void **state) {
  (void)state;
  char *prog = prog_of(20), *file = NULL;
  size_t n = 0;
  assert_int_equal(sbx_seccomp_cache_encode(KEY, prog, 160, &file, &n), 0);
  const char *got = NULL;
  size_t len = 0;
  assert_int_equal(sbx_seccomp_cache_decode(file, n, KEY, &got, &len), 0);
  assert_int_equal(len, 160);
  assert_memory_equal(got, prog, 160);
  assert_true(got > file && got + len == file + n);
  free(file);
  free(prog);
}

static void encode_refuses_bad_input(void **state) {
  (void)state;
  char *prog = prog_of(4), *file = NULL;
  size_t n = 0;
  assert_int_equal(sbx_seccomp_cache_encode(KEY, prog, 0, &file, &n), -EINVAL);
  assert_int_equal(sbx_seccomp_cache_encode(KEY, prog, 12, &file, &n), -EINVAL);
  assert_int_equal(sbx_seccomp_cache_encode("", prog, 32, &file, &n), -EINVAL);
  assert_int_equal(sbx_seccomp_cache_encode("a\nb", prog, 32, &file, &n), -EINVAL);
  char *huge = calloc(1, SBX_SECCOMP_CACHE_MAX_PROG + 8);
  assert_int_equal(sbx_seccomp_cache_encode(KEY, huge, SBX_SECCOMP_CACHE_MAX_PROG + 8, &file, &n), -EINVAL);
  assert_int_equal(sbx_seccomp_cache_encode(KEY, huge, SBX_SECCOMP_CACHE_MAX_PROG, &file, &n), 0);
  free(file);
  free(huge);
  free(prog);
}

/* Every damaged variant of a good file is refused; none is accepted with
 * another program. */
static void decode_refuses_damage(void **state) {
  (void)state;
  char *prog = prog_of(10), *file = NULL;
  size_t n = 0;
  assert_int_equal(sbx_seccomp_cache_encode(KEY, prog, 80, &file, &n), 0);
  const char *got;
  size_t len;
  /* truncated anywhere, including inside the header and by one byte */
  for (size_t cut = 0; cut < n; cut++)
    assert_int_equal(sbx_seccomp_cache_decode(file, cut, KEY, &got, &len), -EINVAL);
  /* one flipped bit anywhere: -EINVAL, or -ESTALE when it only changed
   * the key's text (the checksum covers the key as written, so not even
   * that passes) */
  char *copy = malloc(n);
  for (size_t i = 0; i < n; i++) {
    memcpy(copy, file, n);
    copy[i] ^= 0x10;
    int e = sbx_seccomp_cache_decode(copy, n, KEY, &got, &len);
    assert_true(e == -EINVAL || e == -ESTALE);
  }
  /* something appended */
  char *longer = malloc(n + 8);
  memcpy(longer, file, n);
  memset(longer + n, 0, 8);
  assert_int_equal(sbx_seccomp_cache_decode(longer, n + 8, KEY, &got, &len), -EINVAL);
  /* garbage */
  char junk[300];
  memset(junk, 'x', sizeof junk);
  assert_int_equal(sbx_seccomp_cache_decode(junk, sizeof junk, KEY, &got, &len), -EINVAL);
  /* another key (an intact file of another build, kernel, libseccomp) */
  assert_int_equal(sbx_seccomp_cache_decode(file, n, "rules=1 build=abd", &got, &len), -ESTALE);
  char prefix[sizeof KEY];
  memcpy(prefix, KEY, sizeof KEY - 2);
  prefix[sizeof KEY - 2] = '\0';
  assert_int_equal(sbx_seccomp_cache_decode(file, n, prefix, &got, &len), -ESTALE);
  free(longer);
  free(copy);
  free(file);
  free(prog);
}

/* A header written by hand with a length that is no multiple of 8, or past
 * the kernel's limit, is refused even with a right checksum. */
static void decode_refuses_bad_lengths(void **state) {
  (void)state;
  char *prog = prog_of(4), *file = NULL;
  size_t n = 0;
  assert_int_equal(sbx_seccomp_cache_encode(KEY, prog, 32, &file, &n), 0);
  char *p = strstr(file, "len 32\n");
  assert_non_null(p);
  const char *got;
  size_t len;
  /* "len 31" with one byte less of program */
  p[5] = '1';
  assert_int_equal(sbx_seccomp_cache_decode(file, n - 1, KEY, &got, &len), -EINVAL);
  /* "len 00" (zero) */
  p[4] = '0', p[5] = '0';
  assert_int_equal(sbx_seccomp_cache_decode(file, n - 32, KEY, &got, &len), -EINVAL);
  free(file);
  free(prog);
}

static void key_names_what_the_program_depends_on(void **state) {
  (void)state;
  char key[512];
  assert_int_equal(sbx_seccomp_cache_key(key, sizeof key), 0);
  assert_non_null(strstr(key, "rules="));
  assert_non_null(strstr(key, " build="));
  assert_non_null(strstr(key, " libseccomp="));
  assert_non_null(strstr(key, " api="));
  assert_non_null(strstr(key, " kernel="));
  assert_non_null(strstr(key, " machine="));
  assert_null(strchr(key, '\n'));
  char again[512];
  assert_int_equal(sbx_seccomp_cache_key(again, sizeof again), 0);
  assert_string_equal(key, again);
  assert_int_equal(sbx_seccomp_cache_key(key, 8), -ENAMETOOLONG);
  assert_int_equal(sbx_seccomp_spec_hash(), sbx_seccomp_spec_hash());
}

static mode_t cur_umask(void) {
  mode_t m = umask(022);
  umask(m);
  return m;
}

static void store_and_load(void **state) {
  (void)state;
  char dir[] = "/tmp/crucible-seccomp-cache-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/sub/seccomp.bpf", dir);
  char *prog = prog_of(6), *got = NULL;
  size_t len = 0;
  assert_int_equal(sbx_seccomp_cache_load(path, KEY, &got, &len), -ENOENT);
  assert_int_equal(sbx_seccomp_cache_store(path, KEY, prog, 48), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char sub[256];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0755 & ~cur_umask());
  assert_int_equal(sbx_seccomp_cache_load(path, KEY, &got, &len), 0);
  assert_int_equal(len, 48);
  assert_memory_equal(got, prog, 48);
  free(got);
  assert_int_equal(sbx_seccomp_cache_load(path, "another", &got, &len), -ESTALE);
  /* truncated on disk */
  assert_int_equal(truncate(path, st.st_size - 1), 0);
  assert_int_equal(sbx_seccomp_cache_load(path, KEY, &got, &len), -EINVAL);
  /* a symlink is not followed; a folder is no file */
  assert_int_equal(unlink(path), 0);
  assert_int_equal(symlink("/etc/hostname", path), 0);
  assert_true(sbx_seccomp_cache_load(path, KEY, &got, &len) < 0);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_true(sbx_seccomp_cache_load(path, KEY, &got, &len) < 0);
  assert_int_equal(rmdir(path), 0);
  /* a store replaces whatever file was there, and leaves no temporary */
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "junk", 4), 4);
  close(fd);
  assert_int_equal(sbx_seccomp_cache_store(path, KEY, prog, 48), 0);
  assert_int_equal(sbx_seccomp_cache_load(path, KEY, &got, &len), 0);
  free(got);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "test $(ls -A %s/sub | wc -l) -eq 1 && rm -r %s", dir, dir);
  assert_int_equal(system(cmd), 0);
  free(prog);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(encode_refuses_bad_input),
      cmocka_unit_test(decode_refuses_damage),
      cmocka_unit_test(decode_refuses_bad_lengths),
      cmocka_unit_test(key_names_what_the_program_depends_on),
      cmocka_unit_test(store_and_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
