/* The docker backend's pure parts: the attach stream's frames, the engine
 * address, and the container a run asks for (no engine needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common.h"
#include "dbuf.h"
#include "docker_api.h"
#include "engines.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

typedef struct got {
  dbuf out, err;
  int calls;
} got;

static void collect(void *ud, int stream, const char *p, size_t n) {
  got *g = ud;
  dbuf_add(stream == 1 ? &g->out : &g->err, p, n);
  g->calls++;
}

static size_t frame(char *dst, int stream, const char *payload) {
  size_t n = strlen(payload);
  unsigned char h[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                        (unsigned char)(n >> 8), (unsigned char)n};
  memcpy(dst, h, 8);
  memcpy(dst + 8, payload, n);
  return 8 + n;
}

/* Frames split at every possible place give the same streams. */
static void demux_any_split(void **state) {
  (void)state;
  char wire[256];
  size_t n = 0;
  n += frame(wire + n, 1, "hello ");
  n += frame(wire + n, 2, "oops\n");
  n += frame(wire + n, 0, "stdin is dropped");
  n += frame(wire + n, 1, "");
  n += frame(wire + n, 1, "world\n");
  for (size_t cut = 0; cut <= n; cut++) {
    got g = {0};
    dbuf_init(&g.out, 0);
    dbuf_init(&g.err, 0);
    sbx_dk_demux d = {0};
    sbx_dk_demux_feed(&d, wire, cut, collect, &g);
    for (size_t i = cut; i < n; i++) sbx_dk_demux_feed(&d, wire + i, 1, collect, &g); /* byte by byte */
    assert_int_equal(g.out.len, 12);
    assert_memory_equal(g.out.data, "hello world\n", 12);
    assert_int_equal(g.err.len, 5);
    assert_memory_equal(g.err.data, "oops\n", 5);
    dbuf_close(&g.out);
    dbuf_close(&g.err);
  }
}

static void locate(void **state) {
  (void)state;
  char *why = NULL;
  char *s = sbx_dk_locate("unix:///run/x.sock", &why);
  assert_string_equal(s, "/run/x.sock");
  free(s);
  s = sbx_dk_locate("/run/y.sock", &why);
  assert_string_equal(s, "/run/y.sock");
  free(s);
  s = sbx_dk_locate("tcp://10.0.0.1:2376", &why);
  assert_null(s);
  assert_non_null(strstr(why, "tcp://"));
  free(why);
}

static const char *str_at(const cJSON *o, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItem(o, a);
  return cJSON_GetStringValue(b ? cJSON_GetObjectItem(x, b) : x);
}

/* The promises of the bwrap backend, as container settings. */
static void create_body(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  lim.memory_mb = 128, lim.pids = 32, lim.disk_mb = 8, lim.cpu_seconds = 5;
  char *err = NULL;
  cJSON *b = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img:1", "print(1)", 8, NULL, 0, 65534, 65534, false, &err);
  assert_non_null(b);
  assert_string_equal(str_at(b, "Image", NULL), "img:1");
  assert_string_equal(str_at(b, "User", NULL), "65534:65534");
  assert_string_equal(str_at(b, "WorkingDir", NULL), "/sandbox");
  const cJSON *hc = cJSON_GetObjectItem(b, "HostConfig");
  assert_string_equal(str_at(hc, "NetworkMode", NULL), "none");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(hc, "ReadonlyRootfs")));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(hc, "CapDrop"), 0)), "ALL");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(hc, "SecurityOpt"), 0)),
                      "no-new-privileges");
  assert_true(cJSON_GetObjectItem(hc, "Memory")->valuedouble == 128.0 * 1048576);
  assert_true(cJSON_GetObjectItem(hc, "MemorySwap")->valuedouble == 128.0 * 1048576);
  assert_true(cJSON_GetObjectItem(hc, "PidsLimit")->valuedouble == 32);
  assert_non_null(strstr(str_at(hc, "Tmpfs", "/sandbox"), "size=8m"));
  assert_non_null(strstr(str_at(hc, "Tmpfs", "/tmp"), "size=8m"));
  assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "Labels"), SBX_DK_LABEL_OWNER));
  /* the program travels in the environment, never as a bind mount */
  assert_null(cJSON_GetObjectItem(hc, "Binds"));
  assert_null(cJSON_GetObjectItem(hc, "Mounts"));
  bool found = false;
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "Env")) found |= !strcmp(e->valuestring, "CRUCIBLE_CODE_0=print(1)");
  assert_true(found);
  cJSON_Delete(b);

  /* NUL bytes cannot be delivered: a clear error, no body */
  b = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img", "a\0b", 3, NULL, 0, 1, 1, false, &err);
  assert_null(b);
  assert_non_null(strstr(err, "NUL"));
  free(err);
}

/* Pieces never split a UTF-8 sequence and join to the program. */
static void chunks_keep_utf8(void **state) {
  (void)state;
  size_t n = 300001;
  char *code = xmalloc(n + 1);
  code[0] = 'x';
  for (size_t i = 1; i < n; i += 2) code[i] = (char)0xc3, code[i + 1] = (char)0xa9; /* é */
  code[n] = '\0';
  sbx_limits lim;
  sbx_limits_default(&lim);
  char *err = NULL;
  cJSON *b = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img", code, n, NULL, 0, 1, 1, false, &err);
  assert_non_null(b);
  dbuf all;
  dbuf_init(&all, 0);
  const cJSON *e;
  int pieces = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "Env")) {
    if (strncmp(e->valuestring, "CRUCIBLE_CODE_", 14)) continue;
    const char *v = strchr(e->valuestring, '=') + 1;
    assert_true(((unsigned char)v[0] & 0xc0) != 0x80);
    assert_true(strlen(e->valuestring) < 128 * 1024);
    dbuf_add(&all, v, strlen(v));
    pieces++;
  }
  assert_true(pieces >= 3);
  assert_int_equal(all.len, n);
  assert_memory_equal(all.data, code, n);
  dbuf_close(&all);
  cJSON_Delete(b);
  free(code);
}

static void tls_locate(void **state) {
  (void)state;
  char dir[] = "/tmp/crucible-dk-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sbx_dk_engine e;
  char *why = NULL;
  unsetenv("DOCKER_TLS_VERIFY");
  /* Never spoken to without TLS. */
  assert_int_equal(sbx_dk_engine_locate(&e, "tcp://10.0.0.1:2376", &why), -EPERM);
  assert_non_null(strstr(why, "DOCKER_TLS_VERIFY"));
  free(why);
  setenv("DOCKER_TLS_VERIFY", "1", 1);
  setenv("DOCKER_CERT_PATH", dir, 1);
  assert_int_equal(sbx_dk_engine_locate(&e, "tcp://10.0.0.1:2376", &why), -ENOENT);
  assert_non_null(strstr(why, "ca.pem"));
  free(why);
  const char *names[] = {"ca.pem", "cert.pem", "key.pem"};
  for (int i = 0; i < 3; i++) {
    char *p = xasprintf("%s/%s", dir, names[i]);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    free(p);
  }
  assert_int_equal(sbx_dk_engine_locate(&e, "tcp://10.0.0.1:2376/", &why), 0);
  assert_string_equal(e.base, "https://10.0.0.1:2376");
  assert_null(e.socket);
  assert_non_null(strstr(e.cert, "/cert.pem"));
  char *u = sbx_dk_url(&e, "/version");
  assert_string_equal(u, "https://10.0.0.1:2376/version");
  free(u);
  snprintf(e.api, sizeof e.api, "1.41");
  u = sbx_dk_url(&e, "/info");
  assert_string_equal(u, "https://10.0.0.1:2376/v1.41/info");
  free(u);
  sbx_dk_engine_close(&e);
  /* A unix socket needs none of it. */
  assert_int_equal(sbx_dk_engine_locate(&e, "unix:///run/d.sock", &why), 0);
  assert_string_equal(e.base, "http://docker");
  assert_string_equal(e.socket, "/run/d.sock");
  assert_null(e.cert);
  sbx_dk_engine_close(&e);
  for (int i = 0; i < 3; i++) {
    char *p = xasprintf("%s/%s", dir, names[i]);
    unlink(p);
    free(p);
  }
  rmdir(dir);
  unsetenv("DOCKER_TLS_VERIFY");
  unsetenv("DOCKER_CERT_PATH");
}

/* Placement: the up engine with the most free slots, the first among
 * equals; all full: the smallest share of its capacity; none up: -1. */
static void pick(void **state) {
  (void)state;
  sbx_dk_slot v[3];
  memset(v, 0, sizeof v);
  sbx_dk_engines set = {.v = v, .n = 3};
  for (int i = 0; i < 3; i++) v[i].up = true, v[i].cap = 2, v[i].set = &set, v[i].eng.host = (char *)"h";
  char *why = NULL;
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 0);
  v[0].nlive = 1;
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 1);
  v[1].nlive = 2, v[2].nlive = 1;
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 0);
  v[0].nlive = 2, v[2].nlive = 2, v[2].cap = 4;
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 2);
  v[2].nlive = 5; /* all full: 2/2, 2/2, 5/4 */
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 0);
  v[0].up = false, v[0].why = (char *)"zero died";
  assert_int_equal(sbx_dk_engines_pick(&set, &why), 1);
  v[1].up = v[2].up = false;
  assert_int_equal(sbx_dk_engines_pick(&set, &why), -1);
  assert_non_null(strstr(why, "zero died"));
  free(why);
}

/* The dialect follows what GET /version names. */
static void engine_dialect_from_version(void **state) {
  (void)state;
  sbx_dk_engine e = {.host = "unix:///x"};
  char *why = NULL;
  assert_int_equal(sbx_dk_engine_parse_version(&e,
                                               "{\"Version\":\"4.3.1\",\"ApiVersion\":\"1.41\",\"Components\":"
                                               "[{\"Name\":\"Podman Engine\",\"Version\":\"4.3.1\"}]}",
                                               &why),
                   0);
  assert_true(e.podman);
  assert_int_equal(sbx_dk_engine_parse_version(&e,
                                               "{\"Version\":\"28.2.2\",\"ApiVersion\":\"1.50\",\"Components\":"
                                               "[{\"Name\":\"Engine\",\"Version\":\"28.2.2\"}]}",
                                               &why),
                   0);
  assert_false(e.podman);
  free(e.version);
  free(e.name);
}

/* Podman's dialect: the same settings but for the scratch tmpfs's owner
 * ("U", not the uid=/gid= options Podman refuses) and an RLIMIT_NPROC of
 * its own (the server's hard limit, at most 32768), in the create and warm
 * bodies. */
static void podman_bodies(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  char *err = NULL;
  cJSON *d = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img", "print(1)", 8, NULL, 0, 65534, 65534, false, &err);
  cJSON *p = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img", "print(1)", 8, NULL, 0, 65534, 65534, true, &err);
  cJSON *w = sbx_dk_warm_body(&lim, "img", 65534, 65534, true);
  const cJSON *dhc = cJSON_GetObjectItem(d, "HostConfig"), *phc = cJSON_GetObjectItem(p, "HostConfig");
  assert_non_null(strstr(str_at(dhc, "Tmpfs", "/sandbox"), ",uid=65534,gid=65534,"));
  const char *scratch = str_at(phc, "Tmpfs", "/sandbox");
  assert_non_null(strstr(scratch, ",U,"));
  assert_null(strstr(scratch, "uid="));
  assert_null(strstr(scratch, "gid="));
  assert_string_equal(str_at(phc, "Tmpfs", "/tmp"), str_at(dhc, "Tmpfs", "/tmp"));
  struct rlimit nproc;
  assert_int_equal(getrlimit(RLIMIT_NPROC, &nproc), 0);
  double want = nproc.rlim_max == RLIM_INFINITY || nproc.rlim_max > 32768 ? 32768 : (double)nproc.rlim_max;
  const cJSON *u, *found = NULL;
  cJSON_ArrayForEach(u, cJSON_GetObjectItem(phc, "Ulimits")) if (!strcmp(str_at(u, "Name", NULL), "nproc")) found = u;
  assert_non_null(found);
  assert_true(cJSON_GetObjectItem(found, "Soft")->valuedouble == want);
  assert_true(cJSON_GetObjectItem(found, "Hard")->valuedouble == want);
  cJSON_ArrayForEach(u, cJSON_GetObjectItem(dhc, "Ulimits")) assert_string_not_equal(str_at(u, "Name", NULL), "nproc");
  /* everything else is the same promise */
  cJSON *pc = cJSON_Duplicate(phc, true), *dc = cJSON_Duplicate(dhc, true);
  cJSON_DeleteItemFromObject(pc, "Tmpfs");
  cJSON_DeleteItemFromObject(dc, "Tmpfs");
  cJSON_DeleteItemFromObject(pc, "Ulimits");
  cJSON_DeleteItemFromObject(dc, "Ulimits");
  assert_true(cJSON_Compare(pc, dc, true));
  assert_true(cJSON_Compare(phc, cJSON_GetObjectItem(w, "HostConfig"), true));
  cJSON_Delete(pc);
  cJSON_Delete(dc);
  cJSON_Delete(d);
  cJSON_Delete(p);
  cJSON_Delete(w);
}

/* A warm container keeps the create body's promises; the exec carries the
 * program and reaps what it leaves. */
static void warm_and_exec_bodies(void **state) {
  (void)state;
  sbx_limits lim;
  sbx_limits_default(&lim);
  char *err = NULL;
  cJSON *c = sbx_dk_create_body(SBX_LANG_PYTHON, &lim, "img", "print(1)", 8, NULL, 0, 65534, 65534, false, &err);
  cJSON *w = sbx_dk_warm_body(&lim, "img", 65534, 65534, false);
  assert_true(cJSON_Compare(cJSON_GetObjectItem(c, "HostConfig"), cJSON_GetObjectItem(w, "HostConfig"), true));
  assert_string_equal(str_at(w, "User", NULL), "65534:65534");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(w, "NetworkDisabled")));
  assert_non_null(strstr(cJSON_GetArrayItem(cJSON_GetObjectItem(w, "Cmd"), 2)->valuestring, "exec sleep "));
  cJSON *x = sbx_dk_exec_body(SBX_LANG_PYTHON, "print(1)", 8, "in", 2, 65534, 65534, &err);
  assert_non_null(x);
  assert_string_equal(str_at(x, "User", NULL), "65534:65534");
  const char *boot = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "Cmd"), 2)->valuestring;
  assert_non_null(strstr(boot, "kill -9 -1"));
  assert_null(strstr(boot, "exec \"$0\""));
  int found = 0;
  cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(x, "Env")) found += !strcmp(it->valuestring, "CRUCIBLE_CODE_0=print(1)");
  assert_int_equal(found, 1);
  assert_null(sbx_dk_exec_body(SBX_LANG_PYTHON, "a\0b", 3, NULL, 0, 1, 1, &err));
  assert_non_null(err);
  free(err);
  cJSON_Delete(c);
  cJSON_Delete(w);
  cJSON_Delete(x);
}

/* Docker reports OOMKilled; Podman says false: a SIGKILL nobody of ours
 * sent counts as oom only when the container's memory events saw the OOM
 * killer act. */
static void oom_verdict(void **state) {
  (void)state;
  assert_true(sbx_dk_oom_verdict(true, 137, false, 0));  /* Docker */
  assert_true(sbx_dk_oom_verdict(true, 1, false, 0));    /* Docker, the program caught MemoryError */
  assert_true(sbx_dk_oom_verdict(false, 137, false, 1)); /* Podman: 137 + an oom event */
  assert_false(sbx_dk_oom_verdict(false, 137, false, 0)); /* kill -9 from inside, no oom */
  assert_false(sbx_dk_oom_verdict(false, 137, true, 1));  /* we killed it (wall time, output) */
  assert_false(sbx_dk_oom_verdict(false, 1, false, 1));   /* not killed: its own exit */
  assert_false(sbx_dk_oom_verdict(false, 0, false, 0));
  assert_true(sbx_dk_oom_needs_events(false, 137, false));
  assert_false(sbx_dk_oom_needs_events(true, 137, false));
  assert_false(sbx_dk_oom_needs_events(false, 137, true));
  assert_false(sbx_dk_oom_needs_events(false, 143, false));
}

static void oom_events(void **state) {
  (void)state;
  /* Docker's events (Action) and Podman's (status), one object after another. */
  const char *docker = "{\"status\":\"oom\",\"id\":\"ab\",\"Type\":\"container\",\"Action\":\"oom\"}\n"
                       "{\"Type\":\"container\",\"Action\":\"die\"}\n";
  assert_int_equal(sbx_dk_count_oom_events(docker, strlen(docker)), 1);
  const char *podman = "{\"status\":\"oom\",\"id\":\"ab\"}{\"status\":\"oom\",\"id\":\"ab\"}";
  assert_int_equal(sbx_dk_count_oom_events(podman, strlen(podman)), 2);
  const char *other = "{\"Type\":\"image\",\"Action\":\"oom\"}\n{\"Type\":\"container\",\"Action\":\"start\"}";
  assert_int_equal(sbx_dk_count_oom_events(other, strlen(other)), 0);
  assert_int_equal(sbx_dk_count_oom_events("", 0), 0);
  assert_int_equal(sbx_dk_count_oom_events("not json", 8), 0);
}

static void pull_query(void **state) {
  (void)state;
  struct {
    const char *image, *want;
  } cases[] = {
      {"python", "fromImage=python&tag=latest"},
      {"python:3.12-slim", "fromImage=python&tag=3.12-slim"},
      {"localhost:5000/team/img", "fromImage=localhost%3A5000%2Fteam%2Fimg&tag=latest"},
      {"localhost:5000/img:v1", "fromImage=localhost%3A5000%2Fimg&tag=v1"},
      {"img@sha256:0123", "fromImage=img%40sha256%3A0123"},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    char *q = sbx_dk_pull_query(cases[i].image);
    assert_non_null(q);
    assert_string_equal(q, cases[i].want);
    free(q);
  }
  assert_null(sbx_dk_pull_query(""));
  assert_null(sbx_dk_pull_query("a b"));
  assert_null(sbx_dk_pull_query("img:"));
  assert_null(sbx_dk_pull_query("img\n"));
}

static bool feed(sbx_dk_pull_progress *p, const char *json, char *line) {
  return sbx_dk_pull_progress_line(p, json, strlen(json), line, 200);
}

static void pull_progress(void **state) {
  (void)state;
  sbx_dk_pull_progress p;
  sbx_dk_pull_progress_init(&p);
  char line[200];
  assert_true(feed(&p, "{\"status\":\"Pulling from library/python\",\"id\":\"3.12\"}", line));
  assert_int_equal(p.percent, -1);
  assert_true(feed(&p, "{\"status\":\"Pulling fs layer\",\"id\":\"aaa\"}", line));
  assert_true(feed(&p, "{\"status\":\"Pulling fs layer\",\"id\":\"bbb\"}", line));
  assert_true(feed(&p, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":100,\"total\":1000},\"id\":\"aaa\"}",
                   line));
  assert_int_equal(p.percent, 10);
  assert_string_equal(line, "Downloading aaa");
  /* the same percentage again: nothing new to show */
  assert_false(feed(&p, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":100,\"total\":1000},\"id\":\"aaa\"}",
                    line));
  /* a second layer's size joins the total: the share never goes down */
  assert_false(feed(&p, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":0,\"total\":3000},\"id\":\"bbb\"}",
                    line));
  assert_int_equal(p.percent, 10);
  assert_true(feed(&p, "{\"status\":\"Download complete\",\"id\":\"aaa\"}", line));
  assert_int_equal(p.percent, 25);
  assert_true(feed(&p, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":3000,\"total\":3000},\"id\":\"bbb\"}",
                   line));
  assert_int_equal(p.percent, 100);
  assert_false(feed(&p, "garbage", line));
  assert_null(p.error);
  assert_true(feed(&p, "{\"errorDetail\":{\"message\":\"no space\"},\"error\":\"no space\"}", line));
  assert_string_equal(p.error, "no space");
  sbx_dk_pull_progress_close(&p);
  /* an engine refusing the pull answers one {message} */
  sbx_dk_pull_progress_init(&p);
  assert_true(feed(&p, "{\"message\":\"dial tcp: lookup registry: no such host\"}", line));
  assert_string_equal(p.error, "dial tcp: lookup registry: no such host");
  sbx_dk_pull_progress_close(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(demux_any_split),
      cmocka_unit_test(locate),
      cmocka_unit_test(create_body),
      cmocka_unit_test(chunks_keep_utf8),
      cmocka_unit_test(tls_locate),
      cmocka_unit_test(pick),
      cmocka_unit_test(warm_and_exec_bodies),
      cmocka_unit_test(podman_bodies),
      cmocka_unit_test(engine_dialect_from_version),
      cmocka_unit_test(oom_verdict),
      cmocka_unit_test(oom_events),
      cmocka_unit_test(pull_query),
      cmocka_unit_test(pull_progress),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
