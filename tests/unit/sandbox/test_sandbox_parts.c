/* Unit tests: bwrap argv, seccomp filter, cgroup path logic, limits, result JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "etcview.h"
#include "sandbox.h"
#include "seccomp_filter.h"
#include "xdg.h"

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
  sbx_mask masks[] = {{"/proc/keys", SBX_MASK_EMPTY}, {"/proc/acpi", SBX_MASK_DIR}, {NULL, 0}};
  sbx_bwrap_spec spec = {.bwrap = "/usr/bin/bwrap", .interp = "/usr/bin/python3", .lang = SBX_LANG_PYTHON,
                         .limits = &lim, .masks = masks, .roots = roots, .nroots = 2,
                         .fd_etc = 7, .fd_code = 4, .fd_seccomp = 3, .fd_status = 5, .fd_block = 6,
                         .fd_empty = 10};
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
  /* /etc: the view, one read-only bind by descriptor; nothing else of /etc */
  i = argv_find(argv, "--ro-bind-fd", 1);
  assert_string_equal(argv[i + 1], "7");
  i++;
  assert_string_equal(argv[i + 1], "/etc");
  for (int k = 1; argv[k]; k++)
    if (k != i + 1) assert_int_not_equal(strncmp(argv[k], "/etc", 4), 0);
  /* the program is copied in with --file, the only one ... */
  int code_at = argv_find(argv, "--file", 1);
  assert_true(code_at > 0);
  assert_string_equal(argv[code_at + 1], "4");
  assert_string_equal(argv[code_at + 2], SBX_SCRATCH "/main.py");
  assert_int_equal(argv_find(argv, "--file", code_at + 1), -1);
  /* ... into the root tmpfs, which is made read-only after it */
  int root_ro = -1;
  for (int k = 1; argv[k]; k++)
    if (!strcmp(argv[k], "--remount-ro") && !strcmp(argv[k + 1], "/")) root_ro = k;
  assert_true(root_ro > code_at);
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
                         .fd_block = 6, .fd_empty = 10};
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
  /* its resolv.conf is in its view of /etc (sbx_etc_view with network) */
  assert_int_equal(argv_find(argv, "/etc/resolv.conf", 1), -1);
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

/* The sandbox's /etc, made from a folder standing in for the host's root:
 * files copied (mode 0444, same bytes), folders copied, symlinks kept, a
 * top-level symlink into /usr kept as its resolved target, passwd, group and
 * hosts written; found again by name while nothing changes; a new view as
 * soon as a file, a folder or a symlink in it changes; resolv.conf only with
 * the network. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* The target of the symlink path, or "" when it is not one. */
static const char *link_of(const char *path) {
  static char target[PATH_MAX];
  ssize_t k = readlink(path, target, sizeof target - 1);
  target[k > 0 ? k : 0] = '\0';
  return target;
}

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* The view of root now, which must be a new one (not prev's). */
static char *next_view(const char *base, const char *root, bool network, const char *prev) {
  char *err = NULL;
  char *v = sbx_etc_view(base, root, network, &err);
  assert_non_null(v);
  assert_null(err);
  assert_string_not_equal(v, prev);
  return v;
}

static void etc_view_copies_and_names(void **state) {
  (void)state;
  char dir[] = "/tmp/crucible-etcview-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char root[128], base[128], p[PATH_MAX], q[PATH_MAX];
  snprintf(root, sizeof root, "%s/root", dir);
  snprintf(base, sizeof base, "%s/views", dir);
  snprintf(p, sizeof p, "%s/etc/python3", root);
  assert_int_equal(xdg_mkdir_p(p, 0755), 0);
  snprintf(p, sizeof p, "%s/etc/ssl/certs", root);
  assert_int_equal(xdg_mkdir_p(p, 0755), 0);
  snprintf(p, sizeof p, "%s/usr/share/zoneinfo/Etc", root);
  assert_int_equal(xdg_mkdir_p(p, 0755), 0);
  snprintf(p, sizeof p, "%s/usr/share/zoneinfo/Etc/UTC", root);
  put(p, "TZif");
  snprintf(q, sizeof q, "%s/etc/localtime", root);
  assert_int_equal(symlink(p, q), 0);
  snprintf(p, sizeof p, "%s/etc/python3/debian_config", root);
  put(p, "[DEFAULT]\n");
  snprintf(p, sizeof p, "%s/etc/ssl/certs/bundle.crt", root);
  put(p, "CERTS\n");
  snprintf(p, sizeof p, "%s/etc/ssl/certs/abcd.0", root);
  assert_int_equal(symlink("bundle.crt", p), 0);
  snprintf(p, sizeof p, "%s/etc/nsswitch.conf", root);
  put(p, "hosts: files\n");
  snprintf(p, sizeof p, "%s/etc/resolv.conf", root);
  put(p, "nameserver 10.0.0.1\n");
  snprintf(p, sizeof p, "%s/etc/shadow", root);
  put(p, "root:secret\n");

  char *err = NULL;
  char *v1 = sbx_etc_view(base, root, false, &err);
  assert_non_null(v1);
  assert_null(err);
  snprintf(p, sizeof p, "%s/python3/debian_config", v1);
  assert_string_equal(slurp(p), "[DEFAULT]\n");
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0444);
  snprintf(p, sizeof p, "%s/ssl/certs/bundle.crt", v1);
  assert_string_equal(slurp(p), "CERTS\n");
  snprintf(p, sizeof p, "%s/ssl/certs/abcd.0", v1);
  assert_string_equal(link_of(p), "bundle.crt");
  snprintf(p, sizeof p, "%s/localtime", v1);
  assert_string_equal(link_of(p), "/usr/share/zoneinfo/Etc/UTC");
  snprintf(p, sizeof p, "%s/passwd", v1);
  assert_string_equal(slurp(p), SBX_PASSWD);
  snprintf(p, sizeof p, "%s/hosts", v1);
  assert_string_equal(slurp(p), SBX_HOSTS);
  snprintf(p, sizeof p, "%s/group", v1);
  assert_string_equal(slurp(p), SBX_GROUP);
  /* nothing that is not on the list */
  snprintf(p, sizeof p, "%s/shadow", v1);
  assert_int_equal(access(p, F_OK), -1);
  snprintf(p, sizeof p, "%s/resolv.conf", v1);
  assert_int_equal(access(p, F_OK), -1);

  /* nothing changed: the same view */
  char *v2 = sbx_etc_view(base, root, false, &err);
  assert_non_null(v2);
  assert_string_equal(v1, v2);
  free(v2);

  /* a file rewritten in place (its folder's times unchanged by that) */
  snprintf(p, sizeof p, "%s/etc/ssl/certs/bundle.crt", root);
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  put(p, "MORE CERTS\n");
  char *v3 = next_view(base, root, false, v1);
  snprintf(p, sizeof p, "%s/ssl/certs/bundle.crt", v3);
  assert_string_equal(slurp(p), "MORE CERTS\n");
  /* the old view stays (a sandbox may still have it bound) */
  assert_int_equal(access(v1, F_OK), 0);

  /* a symlink replaced by another with a new target */
  nanosleep(&pause, NULL);
  snprintf(p, sizeof p, "%s/etc/ssl/certs/abcd.0", root);
  snprintf(q, sizeof q, "%s/etc/ssl/certs/abcd.0.new", root);
  assert_int_equal(symlink("other.crt", q), 0);
  assert_int_equal(rename(q, p), 0);
  char *v4 = next_view(base, root, false, v3);
  snprintf(p, sizeof p, "%s/ssl/certs/abcd.0", v4);
  assert_string_equal(link_of(p), "other.crt");

  /* the next view made removes views not looked up for 30 days and what a
   * killed crucible left over an hour ago; a recent view stays */
  time_t long_ago = time(NULL) - SBX_ETC_VIEW_KEEP_S - 60;
  struct timespec old_times[2] = {{long_ago, 0}, {long_ago, 0}};
  static const char *const stale[] = {"etc-0000000000000001", "tmp-abcdef", "manifest.4242"};
  for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", base, stale[i]);
    if (i < 2) assert_int_equal(mkdir(p, 0755), 0);
    else put(p, "x");
    assert_int_equal(utimensat(AT_FDCWD, p, old_times, AT_SYMLINK_NOFOLLOW), 0);
  }
  snprintf(p, sizeof p, "%s/etc-0000000000000002", base);
  assert_int_equal(mkdir(p, 0755), 0);

  /* an entry of the list that appears (it was absent) */
  snprintf(p, sizeof p, "%s/etc/mime.types", root);
  put(p, "text/plain txt\n");
  char *v5 = next_view(base, root, false, v4);
  snprintf(p, sizeof p, "%s/mime.types", v5);
  assert_string_equal(slurp(p), "text/plain txt\n");
  free(v5);
  for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", base, stale[i]);
    assert_int_equal(access(p, F_OK), -1);
  }
  snprintf(p, sizeof p, "%s/etc-0000000000000002", base);
  assert_int_equal(access(p, F_OK), 0);
  assert_int_equal(access(v1, F_OK), 0);

  /* with the network: the host's resolv.conf too, in a view of its own */
  char *vn = next_view(base, root, true, v4);
  snprintf(p, sizeof p, "%s/resolv.conf", vn);
  assert_string_equal(slurp(p), "nameserver 10.0.0.1\n");

  /* a base that cannot be made: an error naming it, no view */
  snprintf(p, sizeof p, "%s/etc/nsswitch.conf/views", root);
  char *bad = sbx_etc_view(p, root, false, &err);
  assert_null(bad);
  assert_non_null(err);
  assert_non_null(strstr(err, p));
  free(err);

  free(v1);
  free(v3);
  free(v4);
  free(vn);
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* /proc files only root may read are left unmasked when bwrap is not root
 * (the sandbox cannot open them), masked when it is. */
static void proc_masks_by_uid(void **state) {
  (void)state;
  struct stat st;
  sbx_mask *as_user = sbx_proc_masks_probe(65534), *as_root = sbx_proc_masks_probe(0);
  for (const sbx_mask *m = sbx_proc_masks; m->path; m++) {
    if (stat(m->path, &st) != 0) continue;
    bool in_user = false, in_root = false;
    for (const sbx_mask *u = as_user; u->path; u++) in_user |= !strcmp(u->path, m->path);
    for (const sbx_mask *r = as_root; r->path; r++) in_root |= !strcmp(r->path, m->path);
    assert_true(in_root);
    bool root_only = m->kind == SBX_MASK_EMPTY && st.st_uid == 0 && !(st.st_mode & 044);
    assert_true(in_user == !root_only);
  }
  free(as_user);
  free(as_root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bwrap_argv_shape), cmocka_unit_test(bwrap_argv_env),
      cmocka_unit_test(etc_view_copies_and_names), cmocka_unit_test(proc_masks_by_uid),
      cmocka_unit_test(seccomp_builds_and_exports),
      cmocka_unit_test(cgroup_self_path), cmocka_unit_test(cgroup_mounts),
      cmocka_unit_test(cgroup_names), cmocka_unit_test(limits_json), cmocka_unit_test(langs),
      cmocka_unit_test(result_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
