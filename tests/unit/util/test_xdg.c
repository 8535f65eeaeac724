/* Unit tests of the XDG base directories (server/util/xdg.c): each variable
 * set, unset, empty and relative; the home and runtime fallbacks; mkdir -p. */
#include <errno.h>
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
#include "xdg.h"

static const char *const vars[] = {"XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"};
static const char *const in_home[] = {"/home/t/.config", "/home/t/.cache", "/home/t/.local/state", NULL};

static int setup(void **state) {
  (void)state;
  for (size_t i = 0; i < 4; i++) unsetenv(vars[i]);
  setenv("HOME", "/home/t", 1);
  unsetenv("TMPDIR");
  return 0;
}

static void expect_base(xdg_kind k, const char *want) {
  char buf[256] = "untouched";
  if (!want) {
    assert_int_equal(xdg_base_dir(k, buf, sizeof buf), -ENOENT);
    return;
  }
  assert_int_equal(xdg_base_dir(k, buf, sizeof buf), 0);
  assert_string_equal(buf, want);
}

static void variable_set_wins(void **state) {
  (void)state;
  for (int k = 0; k < 4; k++) {
    setenv(vars[k], "/srv/x y", 1);
    expect_base((xdg_kind)k, "/srv/x y");
  }
}

static void unset_empty_and_relative_fall_back(void **state) {
  (void)state;
  static const char *const values[] = {NULL, "", "relative/dir", "./x", "~/cfg"};
  for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
    for (int k = 0; k < 4; k++) {
      if (values[v]) setenv(vars[k], values[v], 1);
      else unsetenv(vars[k]);
      /* the runtime dir has no default under the home */
      expect_base((xdg_kind)k, in_home[k]);
    }
  }
}

static void home_must_be_absolute(void **state) {
  (void)state;
  /* A relative HOME is not used: the passwd entry's home (absolute) is,
   * or nothing when there is none. */
  setenv("HOME", "not/absolute", 1);
  char buf[4096];
  int rc = xdg_base_dir(XDG_CACHE, buf, sizeof buf);
  if (rc == 0) {
    assert_true(buf[0] == '/');
    assert_null(strstr(buf, "not/absolute"));
    size_t n = strlen(buf);
    assert_true(n > 7 && !strcmp(buf + n - 7, "/.cache"));
  } else {
    assert_int_equal(rc, -ENOENT);
  }
}

static void app_dirs_and_paths(void **state) {
  (void)state;
  char buf[256];
  assert_int_equal(xdg_app_dir(XDG_STATE, buf, sizeof buf), 0);
  assert_string_equal(buf, "/home/t/.local/state/crucible");
  assert_int_equal(xdg_app_path(XDG_CONFIG, "config.json", buf, sizeof buf), 0);
  assert_string_equal(buf, "/home/t/.config/crucible/config.json");
  setenv("XDG_CACHE_HOME", "/c", 1);
  assert_int_equal(xdg_app_path(XDG_CACHE, "modules", buf, sizeof buf), 0);
  assert_string_equal(buf, "/c/crucible/modules");
  /* runtime: the variable, else a per-user directory under TMPDIR or /tmp */
  setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
  assert_int_equal(xdg_app_path(XDG_RUNTIME, "token", buf, sizeof buf), 0);
  assert_string_equal(buf, "/run/user/7/crucible/token");
  char want[256];
  setenv("XDG_RUNTIME_DIR", "", 1);
  assert_int_equal(xdg_app_dir(XDG_RUNTIME, buf, sizeof buf), 0);
  snprintf(want, sizeof want, "/tmp/crucible-%u", (unsigned)geteuid());
  assert_string_equal(buf, want);
  setenv("TMPDIR", "/var/tmp", 1);
  assert_int_equal(xdg_app_dir(XDG_RUNTIME, buf, sizeof buf), 0);
  snprintf(want, sizeof want, "/var/tmp/crucible-%u", (unsigned)geteuid());
  assert_string_equal(buf, want);
  setenv("TMPDIR", "rel", 1); /* relative: ignored too */
  setenv("XDG_RUNTIME_DIR", "run/rel", 1);
  assert_int_equal(xdg_app_dir(XDG_RUNTIME, buf, sizeof buf), 0);
  snprintf(want, sizeof want, "/tmp/crucible-%u", (unsigned)geteuid());
  assert_string_equal(buf, want);
}

static void too_long_is_an_error(void **state) {
  (void)state;
  char small[16];
  assert_int_equal(xdg_app_path(XDG_CONFIG, "config.json", small, sizeof small), -ENAMETOOLONG);
  assert_int_equal(xdg_base_dir(XDG_CONFIG, small, 8), -ENAMETOOLONG);
}

static void mkdir_p_makes_every_level_with_mode(void **state) {
  (void)state;
  char root[128];
  tu_tmpdir_make(root, sizeof root, "xdg-test");
  mode_t old = umask(0);
  char dir[256], file[256];
  snprintf(dir, sizeof dir, "%s/a/b/c", root);
  assert_int_equal(xdg_mkdir_p(dir, 0750), 0);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0750);
  snprintf(file, sizeof file, "%s/a", root);
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0750);
  /* existing levels are fine and keep their mode */
  assert_int_equal(xdg_mkdir_p(dir, 0700), 0);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0750);
  /* parents of a file path: the file itself is not made */
  snprintf(file, sizeof file, "%s/p/q/file.db", root);
  assert_int_equal(xdg_mkdir_parents(file, 0700), 0);
  snprintf(dir, sizeof dir, "%s/p/q", root);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(file, &st), -1);
  assert_int_equal(xdg_mkdir_parents("file.db", 0700), 0); /* no directory part */
  /* a file in the way is an error, not a success */
  snprintf(file, sizeof file, "%s/plain", root);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(dir, sizeof dir, "%s/plain/sub", root);
  assert_int_equal(xdg_mkdir_p(dir, 0700), -ENOTDIR);
  assert_int_equal(xdg_mkdir_p(file, 0700), -ENOTDIR); /* the last level too */
  assert_int_equal(xdg_mkdir_p("", 0700), -ENOENT);
  umask(old);
  tu_tmpdir_remove(root);
}

static void file_prepare_makes_the_folders(void **state) {
  (void)state;
  char root[128];
  tu_tmpdir_make(root, sizeof root, "xdg-test");
  char buf[256], err[300] = "", want[256];
  struct stat st;
  /* the default place: <base>/crucible/<name>, its folders made 0700 */
  setenv("XDG_STATE_HOME", root, 1);
  assert_int_equal(xdg_file_prepare(XDG_STATE, "t.db", NULL, buf, sizeof buf, err, sizeof err), 0);
  snprintf(want, sizeof want, "%s/crucible/t.db", root);
  assert_string_equal(buf, want);
  snprintf(want, sizeof want, "%s/crucible", root);
  assert_int_equal(stat(want, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 077, 0);
  /* an explicit path wins, and gets its folders too */
  char given[256];
  snprintf(given, sizeof given, "%s/x/y/z.db", root);
  assert_int_equal(xdg_file_prepare(XDG_STATE, "t.db", given, buf, sizeof buf, err, sizeof err), 0);
  assert_string_equal(buf, given);
  snprintf(want, sizeof want, "%s/x/y", root);
  assert_int_equal(stat(want, &st), 0);
  /* too long for buf: an error, nothing made */
  char small[8];
  assert_int_equal(xdg_file_prepare(XDG_STATE, "t.db", NULL, small, sizeof small, err, sizeof err), -ENAMETOOLONG);
  assert_non_null(strstr(err, "set XDG_STATE_HOME"));
  /* a file in the way: mkdir's error and the variable to change */
  snprintf(given, sizeof given, "%s/crucible/t.db/inner.db", root);
  snprintf(want, sizeof want, "%s/crucible/t.db", root);
  FILE *f = fopen(want, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(xdg_file_prepare(XDG_STATE, "t.db", given, buf, sizeof buf, err, sizeof err), -ENOTDIR);
  assert_non_null(strstr(err, "set XDG_STATE_HOME to a writable folder"));
  tu_tmpdir_remove(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(variable_set_wins, setup),
      cmocka_unit_test_setup(unset_empty_and_relative_fall_back, setup),
      cmocka_unit_test_setup(home_must_be_absolute, setup),
      cmocka_unit_test_setup(app_dirs_and_paths, setup),
      cmocka_unit_test_setup(too_long_is_an_error, setup),
      cmocka_unit_test_setup(mkdir_p_makes_every_level_with_mode, setup),
      cmocka_unit_test_setup(file_prepare_makes_the_folders, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
