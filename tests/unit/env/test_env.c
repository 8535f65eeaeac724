/* Unit tests of server/env: SHA-256, EnvSpec parsing, requirement checks and
 * normal forms, the cache key, the installer script, progress lines,
 * resolution of venvs and node_modules laid out by the test, and the
 * cache's listing, lookup, removal and LRU eviction (nothing is built). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"
#include "env.h"
#include "internal.h"

static char *tmp_root;

static void sha(const char *s, char out[65]) {
  env__sha256 h;
  env__sha256_init(&h);
  env__sha256_add(&h, s, strlen(s));
  env__sha256_hex(&h, out);
}

static void sha256_vectors(void **state) {
  (void)state;
  char out[65];
  sha("", out);
  assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sha("abc", out);
  assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", out);
  assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* fed in pieces across block boundaries */
  env__sha256 h;
  env__sha256_init(&h);
  char a[1000];
  memset(a, 'a', sizeof a);
  for (int i = 0; i < 1000; i++) env__sha256_add(&h, a, sizeof a);
  env__sha256_hex(&h, out);
  assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void spec_parse(void **state) {
  (void)state;
  env_spec s;
  char *err = NULL;
  assert_int_equal(env_spec_parse(&s, NULL, &err), 0);
  assert_int_equal(s.kind, ENV_SYSTEM);
  env_spec_close(&s);
  cJSON *j = cJSON_Parse("\"workspace\"");
  assert_int_equal(env_spec_parse(&s, j, &err), 0);
  assert_int_equal(s.kind, ENV_WORKSPACE);
  env_spec_close(&s);
  cJSON_Delete(j);
  j = cJSON_Parse("{\"kind\":\"venv\",\"path\":\"/x/.venv\"}");
  assert_int_equal(env_spec_parse(&s, j, &err), 0);
  assert_int_equal(s.kind, ENV_VENV);
  assert_string_equal(s.path, "/x/.venv");
  cJSON *back = env_spec_to_json(&s);
  assert_true(cJSON_Compare(back, j, 1));
  cJSON_Delete(back);
  env_spec_close(&s);
  cJSON_Delete(j);
  j = cJSON_Parse("{\"kind\":\"packages\",\"language\":\"js\",\"requirements\":[\"left-pad\",\"@a/b@^1\"]}");
  assert_int_equal(env_spec_parse(&s, j, &err), 0);
  assert_int_equal(s.kind, ENV_PACKAGES);
  assert_true(s.has_language);
  assert_int_equal(s.language, SBX_LANG_JAVASCRIPT);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.requirements[1], "@a/b@^1");
  env_spec_close(&s);
  cJSON_Delete(j);
  static const char *const bad[] = {
      "\"conda\"", "42", "{\"kind\":\"venv\"}", "{\"kind\":\"venv\",\"path\":\"relative\"}",
      "{\"kind\":\"packages\",\"requirements\":[]}", "{\"kind\":\"packages\",\"requirements\":[1]}",
      "{\"kind\":\"packages\",\"language\":\"bash\",\"requirements\":[\"x\"]}", "{\"kind\":\"nix\"}",
      "{\"kind\":\"image\"}",
  };
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    j = cJSON_Parse(bad[i]);
    assert_int_equal(env_spec_parse(&s, j, &err), -EINVAL);
    assert_non_null(err);
    assert_int_equal(s.kind, ENV_SYSTEM);
    assert_null(s.requirements);
    free(err);
    err = NULL;
    cJSON_Delete(j);
  }
  assert_int_equal(env_spec_parse_arg(&s, "venv:/a/b", &err), 0);
  assert_int_equal(s.kind, ENV_VENV);
  assert_string_equal(s.path, "/a/b");
  env_spec_close(&s);
  assert_int_equal(env_spec_parse_arg(&s, "image:debian", &err), 0);
  assert_int_equal(s.kind, ENV_IMAGE);
  env_spec_close(&s);
  assert_int_equal(env_spec_parse_arg(&s, "venv:", &err), -EINVAL);
  free(err);
}

static void norm_ok(sbx_lang lang, const char *in, const char *want) {
  char *err = NULL;
  char *got = env_requirement_normalize(lang, in, &err);
  if (!got) fail_msg("'%s' refused: %s", in, err);
  assert_string_equal(got, want);
  free(got);
}

static void norm_bad(sbx_lang lang, const char *in) {
  char *err = NULL;
  char *got = env_requirement_normalize(lang, in, &err);
  if (got) fail_msg("'%s' accepted as '%s'", in, got);
  assert_non_null(err);
  free(err);
}

static void requirements(void **state) {
  (void)state;
  char *n = env_pep503_name("Tiny__Pkg.Extra", 15);
  assert_string_equal(n, "tiny-pkg-extra");
  free(n);
  norm_ok(SBX_LANG_PYTHON, "Tiny_Pkg", "tiny-pkg");
  norm_ok(SBX_LANG_PYTHON, "  numpy >= 1.20 , < 2 ", "numpy>=1.20,<2");
  norm_ok(SBX_LANG_PYTHON, "requests[Socks, security] >= 2.0 ; python_version >= '3.8'",
          "requests[security,socks]>=2.0; python_version >= '3.8'");
  norm_ok(SBX_LANG_PYTHON, "foo (==1.*)", "foo==1.*");
  norm_ok(SBX_LANG_PYTHON, "pkg[B, a,A ,b]", "pkg[a,b]");
  norm_ok(SBX_LANG_PYTHON, "x; os_name == \"posix\"  and  extra == \"a\"", "x; os_name == \"posix\" and extra == \"a\"");
  norm_bad(SBX_LANG_PYTHON, "-e .");
  norm_bad(SBX_LANG_PYTHON, "--index-url=http://evil/simple");
  norm_bad(SBX_LANG_PYTHON, "foo @ https://evil/foo.whl");
  norm_bad(SBX_LANG_PYTHON, "./local");
  norm_bad(SBX_LANG_PYTHON, "/abs/path.whl");
  norm_bad(SBX_LANG_PYTHON, "foo$(touch x)");
  norm_bad(SBX_LANG_PYTHON, "foo; rm -rf /");
  norm_bad(SBX_LANG_PYTHON, "foo\nbar");
  norm_bad(SBX_LANG_PYTHON, "");
  norm_bad(SBX_LANG_PYTHON, "foo bar");
  norm_bad(SBX_LANG_PYTHON, "foo-");
  norm_bad(SBX_LANG_PYTHON, "foo;");
  norm_bad(SBX_LANG_PYTHON, "git+https://x/y");
  norm_ok(SBX_LANG_JAVASCRIPT, "left-pad", "left-pad");
  norm_ok(SBX_LANG_JAVASCRIPT, "@scope/pkg@^1.2.0", "@scope/pkg@^1.2.0");
  norm_ok(SBX_LANG_JAVASCRIPT, "lodash@ >=4.0.0  <5 ", "lodash@>=4.0.0 <5");
  norm_bad(SBX_LANG_JAVASCRIPT, "git+https://github.com/a/b");
  norm_bad(SBX_LANG_JAVASCRIPT, "file:../x");
  norm_bad(SBX_LANG_JAVASCRIPT, "foo@npm:bar");
  norm_bad(SBX_LANG_JAVASCRIPT, "a/b");
  norm_bad(SBX_LANG_JAVASCRIPT, "--registry=http://evil");
  norm_bad(SBX_LANG_JAVASCRIPT, "./dir");
  norm_bad(SBX_LANG_JAVASCRIPT, "foo bar");
  norm_bad(SBX_LANG_BASH, "jq");
  char long_req[ENV_MAX_REQUIREMENT_LEN + 2];
  memset(long_req, 'a', sizeof long_req - 1);
  long_req[sizeof long_req - 1] = '\0';
  norm_bad(SBX_LANG_PYTHON, long_req);

  /* a list: sorted, duplicates (after normalisation) dropped */
  const char *in[] = {"Zed", "alpha", "ALPHA", "zed"};
  char **out, *err;
  int k = env_requirements_normalize(SBX_LANG_PYTHON, in, 4, &out, &err);
  assert_int_equal(k, 2);
  assert_string_equal(out[0], "alpha");
  assert_string_equal(out[1], "zed");
  env_strv_free(out, (size_t)k);
  const char *bad[] = {"ok", "-r evil.txt"};
  assert_int_equal(env_requirements_normalize(SBX_LANG_PYTHON, bad, 2, &out, &err), -EINVAL);
  assert_non_null(strstr(err, "pip option"));
  free(err);
}

static void keys(void **state) {
  (void)state;
  const char *a[] = {"tinypkg"}, *b[] = {"tinypkg", "other"};
  char k1[65], k2[65], k3[65], k4[65], k5[65];
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", "python3.11", "http://i/simple", a, 1, k1);
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", "python3.11", "http://i/simple", a, 1, k2);
  assert_string_equal(k1, k2);
  assert_int_equal(strlen(k1), 64);
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", "python3.11", "http://other/simple", a, 1, k3);
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", "python3.12", "http://i/simple", a, 1, k4);
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", "python3.11", "http://i/simple", b, 2, k5);
  assert_string_not_equal(k1, k3);
  assert_string_not_equal(k1, k4);
  assert_string_not_equal(k1, k5);
  env_key(SBX_LANG_JAVASCRIPT, "/usr/bin/python3", "python3.11", "http://i/simple", a, 1, k2);
  assert_string_not_equal(k1, k2);
}

static void installer_script(void **state) {
  (void)state;
  char *q = env__shell_quote("it's");
  assert_string_equal(q, "'it'\\''s'");
  free(q);
  const char *reqs[] = {"x; python_version >= '3.8'", "tinypkg"};
  char *s = env__installer_script(SBX_LANG_PYTHON, "/usr/bin/python3", "http://127.0.0.1:1/simple",
                                  "/c/envs/k", reqs, 2);
  assert_non_null(strstr(s, "--only-binary :all:"));
  assert_non_null(strstr(s, "--index-url 'http://127.0.0.1:1/simple'"));
  assert_non_null(strstr(s, "--no-input"));
  assert_non_null(strstr(s, "--disable-pip-version-check"));
  assert_non_null(strstr(s, "-- 'x; python_version >= '\\''3.8'\\''' 'tinypkg'\n"));
  assert_non_null(strstr(s, "d='/c/envs/k'"));
  /* the names are looked up before pip runs */
  char *pre = strstr(s, "'/usr/bin/python3' -I - python 'http://127.0.0.1:1/simple' 'x; python_version");
  assert_non_null(pre);
  assert_true(pre < strstr(s, "-m pip"));
  assert_non_null(strstr(s, "\nCRUCIBLE_PRECHECK\nfi\n"));
  assert_non_null(strstr(s, "if [ -x '/usr/bin/python3' ]; then\n"));
  free(s);
  const char *js[] = {"tinyjs"};
  s = env__installer_script(SBX_LANG_JAVASCRIPT, "/usr/bin/python3", "http://127.0.0.1:2/", "/c/envs/k", js, 1);
  assert_non_null(strstr(s, "npm install --ignore-scripts --registry 'http://127.0.0.1:2/' --no-audit --no-fund"));
  assert_non_null(strstr(s, "-- 'tinyjs'\n"));
  free(s);
}

static void pep723(void **state) {
  (void)state;
  char **v = NULL, *err = NULL;
  const char *code = "#!/usr/bin/env python3\n"
                     "# /// script\n"
                     "# requires-python = \">=3.9\"\n"
                     "# dependencies = [\n"
                     "#   \"zorblax-flux>=1.0\",  # the library\n"
                     "#   'rich',\n"
                     "# ]\n"
                     "# ///\n"
                     "import zorblax_flux\n";
  assert_int_equal(env_pep723_dependencies(code, &v, &err), 2);
  assert_string_equal(v[0], "zorblax-flux>=1.0");
  assert_string_equal(v[1], "rich");
  env_strv_free(v, 2);
  assert_int_equal(env_pep723_dependencies("# /// script\n# dependencies = [\"a\"]\n# ///", &v, &err), 1);
  assert_string_equal(v[0], "a");
  env_strv_free(v, 1);
  /* none: no block, a block without dependencies, an empty list */
  assert_int_equal(env_pep723_dependencies("import os\n# dependencies = [\"a\"]\n", &v, &err), 0);
  assert_int_equal(env_pep723_dependencies("# /// script\n# requires-python = \">=3\"\n# ///\n", &v, &err), 0);
  assert_int_equal(env_pep723_dependencies("# /// script\n# dependencies = []\n# ///\n", &v, &err), 0);
  assert_null(v);
  /* another block type is not read */
  assert_int_equal(env_pep723_dependencies("# /// pyproject\n# dependencies = [\"a\"]\n# ///\n", &v, &err), 0);
  /* malformed: not closed, not an array, an open string */
  assert_int_equal(env_pep723_dependencies("# /// script\n# dependencies = [\"a\"]\nimport a\n", &v, &err), -EINVAL);
  assert_non_null(strstr(err, "no closing"));
  free(err);
  assert_int_equal(env_pep723_dependencies("# /// script\n# dependencies = \"a\"\n# ///\n", &v, &err), -EINVAL);
  assert_non_null(strstr(err, "array"));
  free(err);
  assert_int_equal(env_pep723_dependencies("# /// script\n# dependencies = [\"a\n# ///\n", &v, &err), -EINVAL);
  free(err);
}

static void progress(void **state) {
  (void)state;
  env__progress p = {.nreqs = 2};
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "crucible: creating the virtualenv"), 5);
  int a = env__progress_line(&p, SBX_LANG_PYTHON, "Collecting tinypkg");
  int b = env__progress_line(&p, SBX_LANG_PYTHON, "Collecting other");
  assert_true(a > 5 && b > a && b <= 60);
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "  Downloading http://x/tinypkg.whl (1 kB)"), b);
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "Installing collected packages: tinypkg"), 75);
  /* never backwards */
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "Collecting late-dependency"), 75);
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "Successfully installed tinypkg-1.0"), 95);
  assert_int_equal(env__progress_line(&p, SBX_LANG_PYTHON, "   "), -1);
  env__progress q = {0};
  int f = env__progress_line(&q, SBX_LANG_JAVASCRIPT, "npm http fetch GET 200 http://r/tinyjs 5ms");
  assert_true(f > 10 && f < 95);
  assert_int_equal(env__progress_line(&q, SBX_LANG_JAVASCRIPT, "added 1 package in 1s"), 95);
}

/* ---- resolution over folders laid out here ---- */

static char *mk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *mk(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *rel = NULL;
  assert_true(vasprintf(&rel, fmt, ap) >= 0);
  va_end(ap);
  char *p = xasprintf("%s/%s", tmp_root, rel);
  free(rel);
  char *cmd = xasprintf("mkdir -p '%s'", p);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  return p;
}

static void touch(const char *dir, const char *name) {
  char *p = xasprintf("%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("home = /usr/bin\n", f);
  fclose(f);
  free(p);
}

static void link_to(const char *target, const char *dir, const char *name) {
  char *p = xasprintf("%s/%s", dir, name);
  unlink(p);
  assert_int_equal(symlink(target, p), 0);
  free(p);
}

/* A venv as python3 -m venv lays it out (without running it). */
static char *fake_venv(const char *rel, const char *python) {
  char *v = mk("%s", rel);
  char *bin = mk("%s/bin", rel), *sp = mk("%s/lib/python3.11/site-packages", rel);
  touch(v, "pyvenv.cfg");
  link_to(python, bin, "python3");
  link_to("python3", bin, "python");
  free(bin);
  free(sp);
  return v;
}

static void resolve_venvs(void **state) {
  (void)state;
  if (access("/usr/bin/python3", X_OK) != 0) skip();
  char *ws = mk("ws"), *v = fake_venv("ws/.venv", "/usr/bin/python3");
  const char *roots[] = {ws, NULL};
  env_local_opts o = {.lang = SBX_LANG_PYTHON, .roots = roots, .reach_uid = -1, .reach_gid = -1};
  env_spec spec = {.kind = ENV_WORKSPACE};
  env_resolved *r = NULL;
  char *err = NULL;
  assert_int_equal(env_resolve_local(&spec, &o, &r, &err), 0);
  const sbx_env *e = env_resolved_sbx(r);
  assert_non_null(e);
  assert_string_equal(e->binds[0], v);
  assert_null(e->binds[1]);
  char *interp = xasprintf("%s/bin/python3", v);
  assert_string_equal(e->interp, interp);
  free(interp);
  assert_false(e->network);
  assert_null(e->write_src);
  assert_int_equal(strncmp(env_resolved_id(r), "venv-", 5), 0);
  char *id = xstrdup(env_resolved_id(r)), *stamp = xstrdup(e->stamp);
  cJSON *j = env_resolved_json(r);
  assert_string_equal(cJSON_GetObjectItem(j, "kind")->valuestring, "workspace");
  assert_string_equal(cJSON_GetObjectItem(j, "path")->valuestring, v);
  cJSON_Delete(j);
  env_resolved_free(r);

  /* a package installed: same id, another stamp */
  usleep(20000);
  char *pkg = mk("ws/.venv/lib/python3.11/site-packages/newpkg");
  free(pkg);
  assert_int_equal(env_resolve_local(&spec, &o, &r, &err), 0);
  assert_string_equal(env_resolved_id(r), id);
  assert_string_not_equal(env_resolved_sbx(r)->stamp, stamp);
  /* the workspace folder too (sandbox.workspaceAccess "read") */
  assert_int_equal(env_resolved_add_workspace(r, roots, &err), 0);
  e = env_resolved_sbx(r);
  assert_string_equal(e->binds[1], ws);
  bool pp = false;
  for (int i = 0; e->vars[i]; i += 2) pp |= !strcmp(e->vars[i], "PYTHONPATH") && !strcmp(e->vars[i + 1], ws);
  assert_true(pp);
  assert_string_not_equal(env_resolved_id(r), id);
  env_resolved_free(r);
  free(id);
  free(stamp);

  /* a venv named by path: inside the roots, or anywhere when allowed */
  char *other = fake_venv("elsewhere/env", "/usr/bin/python3");
  env_spec named = {.kind = ENV_VENV, .path = other};
  assert_int_equal(env_resolve_local(&named, &o, &r, &err), -EACCES);
  assert_non_null(strstr(err, "outside the workspace"));
  free(err);
  o.any_path = true;
  assert_int_equal(env_resolve_local(&named, &o, &r, &err), 0);
  assert_int_equal(env_resolved_kind(r), ENV_VENV);
  env_resolved_free(r);

  /* an interpreter that leads outside /usr and the venv is refused */
  char *outside = mk("opt-python/bin");
  char *fakepy = xasprintf("%s/python3", outside);
  FILE *f = fopen(fakepy, "w");
  fclose(f);
  chmod(fakepy, 0755);
  char *bad = fake_venv("bad/venv", fakepy);
  named.path = bad;
  assert_int_equal(env_resolve_local(&named, &o, &r, &err), -EINVAL);
  assert_non_null(strstr(err, "outside the venv and /usr"));
  free(err);
  /* not a venv at all */
  named.path = outside;
  assert_int_equal(env_resolve_local(&named, &o, &r, &err), -ENOENT);
  free(err);

  /* JavaScript: the workspace's node_modules */
  char *nm = mk("ws/node_modules/tinyjs");
  free(nm);
  o.lang = SBX_LANG_JAVASCRIPT;
  assert_int_equal(env_resolve_local(&spec, &o, &r, &err), 0);
  e = env_resolved_sbx(r);
  char *want = xasprintf("%s/node_modules", ws);
  assert_string_equal(e->binds[0], want);
  assert_null(e->interp);
  bool np = false;
  for (int i = 0; e->vars[i]; i += 2) np |= !strcmp(e->vars[i], "NODE_PATH") && !strcmp(e->vars[i + 1], want);
  assert_true(np);
  free(want);
  env_resolved_free(r);
  /* a workspace's node_modules (or .venv) that is a link out of it is refused */
  char *evil_ws = mk("evil-ws"), *home = mk("home-of-someone");
  link_to(home, evil_ws, "node_modules");
  const char *evil_roots[] = {evil_ws, NULL};
  env_local_opts eo2 = {.lang = SBX_LANG_JAVASCRIPT, .roots = evil_roots, .reach_uid = -1, .reach_gid = -1};
  assert_int_equal(env_resolve_local(&spec, &eo2, &r, &err), -EACCES);
  assert_non_null(strstr(err, "outside the workspace"));
  free(err);
  link_to(v, evil_ws, ".venv");
  eo2.lang = SBX_LANG_PYTHON;
  assert_int_equal(env_resolve_local(&spec, &eo2, &r, &err), -EACCES);
  free(err);
  /* the same through a named path */
  env_spec via = {.kind = ENV_VENV, .path = evil_ws};
  eo2.lang = SBX_LANG_JAVASCRIPT;
  assert_int_equal(env_resolve_local(&via, &eo2, &r, &err), -EACCES);
  free(err);
  free(evil_ws);
  free(home);
  /* bash always gets the system */
  o.lang = SBX_LANG_BASH;
  assert_int_equal(env_resolve_local(&spec, &o, &r, &err), 0);
  assert_null(env_resolved_sbx(r));
  assert_string_equal(env_resolved_id(r), "system");
  env_resolved_free(r);
  /* no venv in the workspace */
  char *empty = mk("empty-ws");
  const char *eroots[] = {empty, NULL};
  env_local_opts eo = {.lang = SBX_LANG_PYTHON, .roots = eroots, .reach_uid = -1};
  assert_int_equal(env_resolve_local(&spec, &eo, &r, &err), -ENOENT);
  assert_non_null(strstr(err, "no virtualenv"));
  free(err);
  /* ... then $VIRTUAL_ENV */
  eo.virtual_env = v;
  assert_int_equal(env_resolve_local(&spec, &eo, &r, &err), 0);
  assert_string_equal(env_resolved_path(r), v);
  env_resolved_free(r);
  /* a folder closed to the sandbox's uid is refused up front */
  char *closed = mk("closed");
  chmod(closed, 0700);
  char *cv = fake_venv("closed/venv", "/usr/bin/python3");
  named.path = cv;
  o.lang = SBX_LANG_PYTHON;
  o.reach_uid = 65534;
  o.reach_gid = 65534;
  assert_int_equal(env_resolve_local(&named, &o, &r, &err), -EACCES);
  assert_non_null(strstr(err, "cannot reach"));
  free(err);
  free(closed);
  free(cv);
  free(empty);
  free(outside);
  free(fakepy);
  free(bad);
  free(other);
  free(ws);
  free(v);
}

/* ---- the cache, without building ---- */

static void fake_built(const char *dir, const char *key, const char *req, long long size, time_t used) {
  char *d = xasprintf("%s/%s", dir, key);
  assert_int_equal(mkdir(d, 0755), 0);
  char *m = xasprintf("%s/%s.json", dir, key);
  FILE *f = fopen(m, "w");
  fprintf(f, "{\"id\":\"%s\",\"kind\":\"packages\",\"language\":\"python\",\"requirements\":[\"%s\"],"
             "\"sizeBytes\":%lld}", key, req, size);
  fclose(f);
  struct timeval tv[2] = {{used, 0}, {used, 0}};
  utimes(m, tv);
  free(d);
  free(m);
}

static void cache_offline(void **state) {
  (void)state;
  char *dir = xasprintf("%s/cache/envs", tmp_root);
  env_cache_config cfg = {.dir = dir, .cache_mb = 3};
  env_cache *c = NULL;
  char *err = NULL;
  char k1[65], k2[65], k3[65];
  memset(k1, 'a', 64), memset(k2, 'b', 64), memset(k3, 'c', 64);
  k1[64] = k2[64] = k3[64] = '\0';
  assert_int_equal(env_cache_new(NULL, &cfg, &c, &err), 0);
  time_t now = time(NULL);
  fake_built(dir, k1, "oldest", 2 << 20, now - 300);
  fake_built(dir, k2, "middle", 2 << 20, now - 200);
  fake_built(dir, k3, "newest", 2 << 20, now - 100);
  /* a crashed build's folder of a dead process, and a folder without metadata */
  char *stale = xasprintf("%s/%s.build-999999-1", dir, k1);
  assert_int_equal(mkdir(stale, 0755), 0);
  cJSON *l = env_cache_list(c);
  assert_int_equal(cJSON_GetArraySize(l), 3);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "id")->valuestring, k3);
  assert_int_equal((long long)cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "sizeBytes")->valuedouble, 2 << 20);
  cJSON_Delete(l);
  assert_int_equal(env_cache_size(c), 6LL << 20);

  /* a lookup by a prefix holds a use: that environment is never evicted */
  env_resolved *r = NULL;
  assert_int_equal(env_cache_lookup(c, "a", &r, &err), 0);
  assert_string_equal(env_resolved_id(r), k1);
  /* a lookup is not a use: the oldest stays the oldest */
  l = env_cache_list(c);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 2), "id")->valuestring, k1);
  cJSON_Delete(l);
  assert_int_equal(env_resolved_kind(r), ENV_PACKAGES);
  const sbx_env *e = env_resolved_sbx(r);
  char *want = xasprintf("%s/%s", dir, k1);
  assert_string_equal(e->binds[0], want);
  free(want);
  env_resolved *none = NULL;
  assert_int_equal(env_cache_lookup(c, "zz", &none, &err), -ENOENT);
  assert_null(none);
  free(err);
  char *id = NULL;
  assert_int_equal(env_cache_remove(c, "aaaa", &id, &err), -EBUSY);
  free(err);
  /* prune: over the 3 MiB cap, least recently used first, the one in use kept */
  assert_int_equal(env_cache_prune(c, false), 2);
  assert_int_equal(access(stale, F_OK), -1);
  l = env_cache_list(c);
  assert_int_equal(cJSON_GetArraySize(l), 1);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "id")->valuestring, k1);
  cJSON_Delete(l);
  env_resolved_free(r);
  assert_int_equal(env_cache_remove(c, "aaaa", &id, &err), 0);
  assert_string_equal(id, k1);
  free(id);
  assert_int_equal(env_cache_size(c), 0);
  /* nothing is built without a loop */
  const char *reqs[] = {"tinypkg"};
  env_waiter *w = NULL;
  env_build_cbs cbs = {0};
  assert_int_equal(env_cache_acquire(c, SBX_LANG_PYTHON, reqs, 1, &cbs, NULL, &r, &w, &err), -ENOTSUP);
  free(err);
  assert_int_equal(env_cache_acquire(c, SBX_LANG_PYTHON, (const char *[]){"-e ."}, 1, &cbs, NULL, &r, &w, &err),
                   -EINVAL);
  free(err);
  env_cache_close(c, NULL, NULL);
  free(stale);
  free(dir);
}

static int setup(void **state) {
  (void)state;
  char t[] = "/tmp/crucible-env-test-XXXXXX";
  assert_non_null(mkdtemp(t));
  chmod(t, 0755);
  tmp_root = xstrdup(t);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  env__rm_rf(tmp_root);
  free(tmp_root);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sha256_vectors), cmocka_unit_test(spec_parse), cmocka_unit_test(requirements),
      cmocka_unit_test(keys), cmocka_unit_test(installer_script), cmocka_unit_test(pep723), cmocka_unit_test(progress),
      cmocka_unit_test(resolve_venvs), cmocka_unit_test(cache_offline),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
