/* Unit tests: bwrap argv, seccomp filter, cgroup path logic, limits, result JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "sandbox.h"
#include "seccomp_filter.h"

static int argv_find(char **argv, const char *a, int from) {
  for (int i = from; argv[i]; i++)
    if (!strcmp(argv[i], a)) return i;
  return -1;
}

static void bwrap_argv_shape(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  lim.disk_mb = 8;
  sbx_root_entry roots[] = {{"/bin", "usr/bin"}, {"/lib64", NULL}};
  sbx_etc_entry etc[] = {{"/etc/ld.so.cache", SBX_ETC_BIND, NULL, -1}};
  sbx_mask masks[] = {{"/proc/keys", SBX_MASK_EMPTY}, {"/proc/acpi", SBX_MASK_DIR}, {NULL, 0}};
  sbx_bwrap_spec spec = {.bwrap = "/usr/bin/bwrap", .interp = "/usr/bin/python3", .lang = SBX_LANG_PYTHON,
                         .limits = &lim, .masks = masks, .roots = roots, .nroots = 2,
                         .etc_entries = etc, .netc = 1, .fd_code = 4, .fd_seccomp = 3, .fd_status = 5, .fd_block = 6,
                         .fd_passwd = 7, .fd_group = 8, .fd_hosts = 9, .fd_empty = 10};
  char **argv = sbx_bwrap_argv(&spec);
  assert_string_equal(argv[0], "/usr/bin/bwrap");
  static const char *const must[] = {"--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                                     "--unshare-uts", "--die-with-parent", "--new-session", "--clearenv"};
  for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) assert_true(argv_find(argv, must[i], 1) > 0);
  int i = argv_find(argv, "--cap-drop", 1);
  assert_string_equal(argv[i + 1], "ALL");
  i = argv_find(argv, "--seccomp", 1);
  assert_string_equal(argv[i + 1], "3");
  i = argv_find(argv, "--block-fd", 1);
  assert_string_equal(argv[i + 1], "6");
  /* a fixed host name: nothing of the host or of the server shows */
  i = argv_find(argv, "--hostname", 1);
  assert_string_equal(argv[i + 1], SBX_HOSTNAME);
  /* secrets emptied after /proc is mounted, then all of /proc read-only */
  int proc = argv_find(argv, "--proc", 1);
  assert_true(proc > 0);
  int proc_ro = -1;
  for (i = argv_find(argv, "--remount-ro", proc); i > 0; i = argv_find(argv, "--remount-ro", i + 1))
    if (!strcmp(argv[i + 1], "/proc")) proc_ro = i;
  assert_true(proc_ro > proc);
  assert_true(argv_find(argv, "--ro-bind", proc) < 0 || argv_find(argv, "--ro-bind", proc) > proc_ro);
  i = argv_find(argv, "--ro-bind-data", proc);
  assert_true(i < proc_ro);
  assert_true(i > proc);
  assert_string_equal(argv[i + 1], "10");
  assert_string_equal(argv[i + 2], "/proc/keys");
  i = argv_find(argv, "--tmpfs", proc);
  assert_string_equal(argv[i + 1], "/proc/acpi");
  assert_string_equal(argv[i + 2], "--remount-ro");
  assert_string_equal(argv[i + 3], "/proc/acpi");
  /* the program and the /etc data files are copied in with --file ... */
  int code_at = -1, last_file = -1;
  for (i = argv_find(argv, "--file", 1); i > 0; i = argv_find(argv, "--file", i + 1)) {
    last_file = i;
    if (!strcmp(argv[i + 2], SBX_SCRATCH "/main.py")) {
      assert_string_equal(argv[i + 1], "4");
      code_at = i;
    } else if (!strcmp(argv[i + 2], "/etc/passwd")) {
      assert_string_equal(argv[i + 1], "7");
    } else if (!strcmp(argv[i + 2], "/etc/group")) {
      assert_string_equal(argv[i + 1], "8");
    } else {
      assert_string_equal(argv[i + 2], "/etc/hosts");
      assert_string_equal(argv[i + 1], "9");
    }
  }
  assert_true(code_at > 0);
  /* ... into the root tmpfs, which is made read-only after the last of them */
  int root_ro = -1;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--remount-ro") && !strcmp(argv[k + 1], "/")) root_ro = k;
  assert_true(root_ro > last_file);
  i = argv_find(argv, "--symlink", 1);
  assert_string_equal(argv[i + 1], "usr/bin");
  assert_string_equal(argv[i + 2], "/bin");
  /* every writable tmpfs is size-capped: --size right before --tmpfs */
  int n = 0;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--tmpfs")) {
      n++;
      int s = k - 2;
      if (!strcmp(argv[s], "--perms")) s -= 2;
      assert_string_equal(argv[s], "--size");
      /* the writable ones at the disk cap; a masked /proc directory tiny and read-only */
      if (!strncmp(argv[k + 1], "/proc/", 6)) {
        assert_string_equal(argv[s + 1], "4096");
        assert_string_equal(argv[k + 2], "--remount-ro");
      } else {
        assert_string_equal(argv[s + 1], "8388608");
      }
    }
  assert_int_equal(n, 4);
  /* the root is made read-only after all mounts, and nothing of the host is bound writable */
  int ro = argv_find(argv, "--remount-ro", argv_find(argv, "--tmpfs", 1) + 1);
  assert_true(ro > 0);
  assert_int_equal(argv_find(argv, "--bind", 1), -1);
  assert_int_equal(argv_find(argv, "--share-net", 1), -1);
  for (int k = 1; argv[k]; k++) {
    assert_null(strstr(argv[k], "shadow"));
    assert_null(strstr(argv[k], "/home"));
    assert_null(strstr(argv[k], "/root"));
  }
  /* env: no variable but the fixed ones */
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--setenv")) {
      bool known = false;
      for (int e = 0; sbx_bwrap_env[e]; e += 2) known |= !strcmp(sbx_bwrap_env[e], argv[k + 1]);
      assert_true(known);
    }
  /* the program comes last */
  i = argv_find(argv, "--", 1);
  assert_string_equal(argv[i + 1], "/usr/bin/python3");
  assert_string_equal(argv[i + 2], "main.py");
  assert_null(argv[i + 3]);
  sbx_argv_free(argv);
}

static void seccomp_builds_and_exports(void **state) {
  (void)state;
  scmp_filter_ctx ctx;
  assert_int_equal(sbx_seccomp_build(&ctx), 0);
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(sbx_seccomp_export(ctx, &buf, &len), 0);
  assert_true(len > 0 && len % 8 == 0);
  /* the denied syscalls resolve on this arch, and the rules target them */
  int n = 0;
  for (const char *const *s = sbx_seccomp_denied; *s; s++)
    if (seccomp_syscall_resolve_name(*s) >= 0) n++;
  assert_true(n > 30);
  assert_int_not_equal(seccomp_syscall_resolve_name("ptrace"), __NR_SCMP_ERROR);
  free(buf);
  seccomp_release(ctx);
}

static void cgroup_self_path(void **state) {
  (void)state;
  const char *t = "9:name=systemd:/\n8:pids:/a/b\n4:memory:/process_api/x\n2:cpu,cpuacct:/c\n0::/user.slice/s.scope\n";
  char *p = sbx_cg_self_path(t, "memory");
  assert_string_equal(p, "/process_api/x");
  free(p);
  p = sbx_cg_self_path(t, "cpuacct");
  assert_string_equal(p, "/c");
  free(p);
  p = sbx_cg_self_path(t, NULL);
  assert_string_equal(p, "/user.slice/s.scope");
  free(p);
  assert_null(sbx_cg_self_path(t, "blkio"));
  assert_null(sbx_cg_self_path("8:pids:/a\n", NULL));
}

static void cgroup_mounts(void **state) {
  (void)state;
  const char *mi =
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "38 30 0:35 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n";
  char *mnt, *root;
  assert_int_equal(sbx_cg_find_mount(mi, "memory", &mnt, &root), 0);
  assert_string_equal(mnt, "/sys/fs/cgroup/memory");
  assert_string_equal(root, "/");
  char *j = sbx_cg_join(mnt, root, "/process_api/x");
  assert_string_equal(j, "/sys/fs/cgroup/memory/process_api/x");
  free(j), free(mnt), free(root);
  assert_int_equal(sbx_cg_find_mount(mi, "pids", &mnt, &root), 0);
  j = sbx_cg_join(mnt, root, "/docker/abc/run");
  assert_string_equal(j, "/sys/fs/cgroup/pids/run");
  free(j);
  assert_null(sbx_cg_join(mnt, root, "/other"));
  assert_null(sbx_cg_join(mnt, root, "/docker/abcd"));
  free(mnt), free(root);
  assert_int_equal(sbx_cg_find_mount(mi, NULL, &mnt, &root), 0);
  assert_string_equal(mnt, "/sys/fs/cgroup/unified");
  j = sbx_cg_join(mnt, root, "/");
  assert_string_equal(j, "/sys/fs/cgroup/unified");
  free(j), free(mnt), free(root);
  assert_int_equal(sbx_cg_find_mount(mi, "blkio", &mnt, &root), -ENOENT);
}

static void cgroup_names(void **state) {
  (void)state;
  char *n = sbx_cg_run_name(1234, 7);
  assert_string_equal(n, "crucible-1234-7");
  pid_t owner = 0;
  assert_int_equal(sbx_cg_name_owner(n, &owner), 0);
  assert_int_equal(owner, 1234);
  free(n);
  assert_int_equal(sbx_cg_name_owner("crucible-55-srv", &owner), 0);
  assert_int_equal(owner, 55);
  assert_int_equal(sbx_cg_name_owner("crucible-55-probe", &owner), -EINVAL);
  assert_int_equal(sbx_cg_name_owner("crucible--1-2", &owner), -EINVAL);
  assert_int_equal(sbx_cg_name_owner("other-1-2", &owner), -EINVAL);
  assert_int_equal(sbx_cg_name_owner("crucible-12", &owner), -EINVAL);
  assert_int_equal(sbx_cg_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), 3);
  assert_int_equal(sbx_cg_keyed("max 0\n", "oom_kill"), -1);
}

static void limits_json(void **state) {
  (void)state;
  sbx_limits l = {0}, max;
  sbx_limits_max(&max);
  char *err = NULL;
  cJSON *o = cJSON_Parse("{\"timeoutMs\": 2500, \"memoryMb\": 64, \"pids\": 10}");
  assert_int_equal(sbx_limits_from_json(&l, o, &max, &err), 0);
  assert_int_equal(l.timeout_ms, 2500);
  assert_int_equal(l.memory_mb, 64);
  assert_int_equal(l.pids, 10);
  assert_int_equal(l.cpu_seconds, 0);
  sbx_limits def;
  sbx_limits_default(&def);
  sbx_limits_fill(&l, &def);
  assert_int_equal(l.cpu_seconds, def.cpu_seconds);
  assert_int_equal(l.timeout_ms, 2500);
  cJSON_Delete(o);
  static const char *const bad[] = {"{\"timeoutMs\": -1}", "{\"pids\": 1.5}", "{\"memoryMb\": \"x\"}",
                                    "{\"diskMb\": 1e12}", "[1]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o = cJSON_Parse(bad[i]);
    sbx_limits before = l;
    assert_int_equal(sbx_limits_from_json(&l, o, &max, &err), -EINVAL);
    assert_non_null(err);
    assert_memory_equal(&before, &l, sizeof l);
    free(err);
    cJSON_Delete(o);
  }
  o = cJSON_Parse("{\"timeoutMs\": 99999999}");
  assert_int_equal(sbx_limits_from_json(&l, o, &max, &err), -EINVAL);
  assert_non_null(strstr(err, "maximum"));
  free(err);
  cJSON_Delete(o);
  assert_int_equal(sbx_limits_from_json(&l, NULL, &max, &err), 0);
}

static void langs(void **state) {
  (void)state;
  sbx_lang l;
  assert_int_equal(sbx_lang_parse("js", &l), 0);
  assert_int_equal(l, SBX_LANG_JAVASCRIPT);
  assert_int_equal(sbx_lang_parse("ruby", &l), -EINVAL);
  assert_int_equal(sbx_lang_from_path("/x/a.sh", &l), 0);
  assert_int_equal(l, SBX_LANG_BASH);
  assert_int_equal(sbx_lang_from_path("/x.d/a", &l), -ENOENT);
  assert_string_equal(sbx_lang_script(SBX_LANG_PYTHON), "main.py");
}

static void result_json(void **state) {
  (void)state;
  sbx_diag d = {3, -1, "NameError: x"};
  sbx_result r = {.outcome = SBX_TIMEOUT, .exit_code = -1, .signal = 9, .out = "a", .out_len = 1,
                  .err = "", .truncated = true, .duration_ms = 5, .cpu_ms = -1, .max_rss_kb = 100,
                  .limit = SBX_LIMIT_WALL, .limits_hit = SBX_LIMIT_WALL | SBX_LIMIT_PIDS,
                  .isolation = SBX_ISO_CGROUP_V1, .diags = &d, .ndiags = 1};
  sbx_limits_default(&r.limits);
  cJSON *o = sbx_result_to_json(&r);
  char *s = cJSON_PrintUnformatted(o);
  assert_non_null(strstr(s, "\"outcome\":\"timeout\""));
  assert_non_null(strstr(s, "\"exitCode\":null"));
  assert_non_null(strstr(s, "\"signal\":\"SIGKILL\""));
  assert_non_null(strstr(s, "\"cpuMs\":null"));
  assert_non_null(strstr(s, "\"limit\":\"wall\""));
  assert_non_null(strstr(s, "\"limitsHit\":[\"wall\",\"pids\"]"));
  assert_non_null(strstr(s, "\"isolation\":\"cgroup-v1\""));
  assert_non_null(strstr(s, "\"line\":3"));
  free(s);
  cJSON_Delete(o);
}

/* An environment: read-only binds after every tmpfs (shorter paths first),
 * its variables after the fixed ones, its interpreter; no network and
 * nothing writable. An installer: the host's network and exactly one
 * writable bind, at its destination. */
static void bwrap_argv_env(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  sbx_env env = {.id = "venv-1", .binds = {"/tmp/ws/.venv/lib", "/tmp/ws/.venv"},
                 .interp = "/tmp/ws/.venv/bin/python",
                 .vars = {"PATH", "/tmp/ws/.venv/bin:/usr/bin", "VIRTUAL_ENV", "/tmp/ws/.venv"}};
  sbx_bwrap_spec spec = {.bwrap = "/usr/bin/bwrap", .interp = "/usr/bin/python3", .lang = SBX_LANG_PYTHON,
                         .limits = &lim, .env = &env, .fd_code = 4, .fd_seccomp = 3, .fd_status = 5,
                         .fd_block = 6, .fd_passwd = 7, .fd_group = 8, .fd_hosts = 9, .fd_empty = 10};
  char **argv = sbx_bwrap_argv(&spec);
  assert_true(argv_find(argv, "--unshare-net", 1) > 0);
  assert_int_equal(argv_find(argv, "--bind", 1), -1);
  int last_tmpfs = -1;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--tmpfs")) last_tmpfs = k;
  assert_true(last_tmpfs > 0);
  int b1 = argv_find(argv, "/tmp/ws/.venv", last_tmpfs), b2 = argv_find(argv, "/tmp/ws/.venv/lib", last_tmpfs);
  assert_true(b1 > last_tmpfs && b2 > b1);
  assert_string_equal(argv[b1 - 1], "--ro-bind");
  assert_string_equal(argv[b1 + 1], "/tmp/ws/.venv");
  assert_string_equal(argv[b2 - 1], "--ro-bind");
  /* the last PATH set is the environment's */
  int path_at = -1;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--setenv") && !strcmp(argv[k + 1], "PATH")) path_at = k;
  assert_string_equal(argv[path_at + 2], "/tmp/ws/.venv/bin:/usr/bin");
  assert_true(argv_find(argv, "VIRTUAL_ENV", 1) > 0);
  int i = argv_find(argv, "--", 1);
  assert_string_equal(argv[i + 1], "/tmp/ws/.venv/bin/python");
  assert_int_equal(argv_find(argv, "/etc/resolv.conf", 1), -1);
  sbx_argv_free(argv);

  /* extra variables (a pre-started interpreter's) come after all others,
   * still before the command */
  static const char *const extra[] = {"BASH_ENV", "main.sh", NULL, NULL};
  spec.setenv = extra;
  argv = sbx_bwrap_argv(&spec);
  int be = argv_find(argv, "BASH_ENV", 1), ve = argv_find(argv, "VIRTUAL_ENV", 1);
  assert_true(be > 0 && ve > 0 && be > ve && be < argv_find(argv, "--", 1));
  assert_string_equal(argv[be - 1], "--setenv");
  assert_string_equal(argv[be + 1], "main.sh");
  sbx_argv_free(argv);
  spec.setenv = NULL;

  /* the installer */
  sbx_env inst = {.network = true, .write_src = "/c/envs/k.build-1-1", .write_dest = "/c/envs/k"};
  spec.env = &inst;
  spec.lang = SBX_LANG_BASH;
  spec.interp = "/usr/bin/bash";
  argv = sbx_bwrap_argv(&spec);
  assert_int_equal(argv_find(argv, "--unshare-net", 1), -1);
  assert_true(argv_find(argv, "--unshare-user", 1) > 0 && argv_find(argv, "--unshare-pid", 1) > 0);
  assert_true(argv_find(argv, "--clearenv", 1) > 0);
  i = argv_find(argv, "--bind", 1);
  assert_true(i > 0);
  assert_string_equal(argv[i + 1], "/c/envs/k.build-1-1");
  assert_string_equal(argv[i + 2], "/c/envs/k");
  assert_int_equal(argv_find(argv, "--bind", i + 1), -1);
  assert_true(argv_find(argv, "/etc/resolv.conf", 1) > 0);
  i = argv_find(argv, "--", 1);
  assert_string_equal(argv[i + 1], "/usr/bin/bash");
  sbx_argv_free(argv);

  /* a copy owns everything it points to */
  sbx_env *c = sbx_env_dup(&env);
  assert_ptr_not_equal(c->binds[0], env.binds[0]);
  assert_string_equal(c->binds[1], "/tmp/ws/.venv");
  assert_null(c->binds[2]);
  assert_string_equal(c->vars[3], "/tmp/ws/.venv");
  assert_null(c->vars[4]);
  assert_null(c->write_src);
  sbx_env_free(c);
  assert_null(sbx_env_dup(NULL));
  sbx_env_free(NULL);
}

/* /etc entries as probed: files copied in read-only before the root is
 * made read-only, symlinks into /usr re-created, folders bound read-only. */
static void bwrap_argv_etc_entries(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  sbx_etc_entry etc[] = {{"/etc/ld.so.cache", SBX_ETC_FILE, NULL, 11},
                         {"/etc/localtime", SBX_ETC_SYMLINK, "/usr/share/zoneinfo/Etc/UTC", -1},
                         {"/etc/python3", SBX_ETC_BIND, NULL, -1}};
  sbx_bwrap_spec spec = {.bwrap = "/usr/bin/bwrap", .interp = "/usr/bin/python3", .lang = SBX_LANG_PYTHON,
                         .limits = &lim, .etc_entries = etc, .netc = 3, .fd_code = 4, .fd_seccomp = 3,
                         .fd_status = 5, .fd_block = 6, .fd_passwd = 7, .fd_group = 8, .fd_hosts = 9,
                         .fd_empty = 10};
  char **argv = sbx_bwrap_argv(&spec);
  int i = argv_find(argv, "/etc/ld.so.cache", 1);
  assert_true(i > 3);
  assert_string_equal(argv[i - 2], "--file");
  assert_string_equal(argv[i - 1], "11");
  assert_string_equal(argv[i - 4], "--perms");
  assert_string_equal(argv[i - 3], "0444");
  int root_ro = -1;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--remount-ro") && !strcmp(argv[k + 1], "/")) root_ro = k;
  assert_true(root_ro > i);
  i = argv_find(argv, "/etc/localtime", 1);
  assert_string_equal(argv[i - 2], "--symlink");
  assert_string_equal(argv[i - 1], "/usr/share/zoneinfo/Etc/UTC");
  i = argv_find(argv, "/etc/python3", 1);
  assert_string_equal(argv[i - 1], "--ro-bind-try");
  assert_string_equal(argv[i + 1], "/etc/python3");
  /* nothing of the default list is bound besides what the entries say */
  assert_int_equal(argv_find(argv, "/etc/nsswitch.conf", 1), -1);
  assert_int_equal(argv_find(argv, "--bind", 1), -1);
  sbx_argv_free(argv);

  /* the probe on this host: files opened, symlinks resolved under /usr */
  sbx_etc_entry got[32];
  int fds[32];
  char targets[32][SBX_ETC_TARGET_MAX];
  int n = sbx_etc_probe(got, fds, targets);
  assert_true(n >= 0 && n < 32);
  for (int k = 0; k < n; k++) {
    assert_int_equal(strncmp(got[k].path, "/etc/", 5), 0);
    if (got[k].kind == SBX_ETC_FILE) assert_true(fds[k] >= 0);
    else assert_int_equal(fds[k], -1);
    if (got[k].kind == SBX_ETC_SYMLINK) assert_int_equal(strncmp(got[k].target, "/usr/", 5), 0);
    if (fds[k] >= 0) close(fds[k]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bwrap_argv_shape), cmocka_unit_test(bwrap_argv_env), cmocka_unit_test(bwrap_argv_etc_entries), cmocka_unit_test(seccomp_builds_and_exports),
      cmocka_unit_test(cgroup_self_path), cmocka_unit_test(cgroup_mounts),
      cmocka_unit_test(cgroup_names), cmocka_unit_test(limits_json), cmocka_unit_test(langs),
      cmocka_unit_test(result_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
