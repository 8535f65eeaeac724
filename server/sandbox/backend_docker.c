/* The docker backend behind the runner: one container per run on a Docker
 * Engine API (Docker, or Podman's compatible service) over its unix
 * socket, driven asynchronously through net/http.c on the runner's loop.
 *
 * A run: create (docker_api.c's body: no network, read-only root, no
 * capabilities, non-root, the limits) → attach (stdout, stderr; the
 * engine answers the headers at once) → start → wait → inspect (exit
 * code, OOMKilled) → exited; the attach stream ending is the end of the
 * output. cleanup removes the container (force); containers of servers
 * that died are swept at init by their labels.
 *
 * HTTP requests are never started from inside curl's callbacks (on_data,
 * on_headers, and the runner's kill when output overflows from there):
 * such work is flagged and done by the run's kick timer on the next turn.
 * That timer is also the run's own handle: it closes (and the run can be
 * freed) once cleanup was called and no request of the run is in flight. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "docker_api.h"
#include "http.h"
#include "internal.h"
#include "log.h"

#define CREATE_TIMEOUT_MS 60000
#define CALL_TIMEOUT_MS 15000

typedef struct dk_backend {
  sbx_runner *runner;
  sbx_dk_engine eng;
  char *image;
  http_client *http;
  int removals;        /* DELETEs in flight; close waits for them */
  bool closing;
  uv_timer_t close_h;  /* closed last: its close callback reports the backend closed */
} dk_backend;

typedef struct dk_run {
  sbx_run run;
  uv_timer_t kick;     /* deferred work; the run's handle */
  bool kick_open;
  char *id;
  int inflight;
  http_request *op;     /* the step in flight: create, start, wait or inspect */
  http_request *attach;
  bool want_start, want_kill, want_term, kill_sent;
  bool started, attach_ok, io_sent, exit_sent, cleaned, oom;
  const char *image;   /* what it runs in: its environment's image, else the backend's (borrowed) */
  time_t created_at;   /* when create was asked (seconds): where its memory events begin */
  long long code;      /* the exit code, while its memory events are read */
  sbx_dk_demux demux;
} dk_run;

static dk_run *dk_run_of(sbx_run *run) {
  return container_of(run, dk_run, run);
}
static dk_backend *dk_be(const sbx_runner *r) {
  return r->be;
}

/* ---- requests ---- */

typedef void (*dk_done_fn)(dk_run *d, const http_result *res);

typedef struct dk_call {
  dk_run *d;
  dk_done_fn fn;
} dk_call;

static void release(dk_run *d);

static void call_done(http_request *req, const http_result *res, void *ud) {
  dk_call *c = ud;
  dk_run *d = c->d;
  (void)req;
  d->inflight--;
  if (c->fn) c->fn(d, res);
  free(c);
  release(d);
}

/* Starts a request of run d on the engine; fn gets its result (NULL: none
 * wanted). Returns 0, or a negative errno (nothing is called). */
static int call(dk_run *d, const char *method, const char *path, const char *body, long timeout_ms,
                dk_done_fn fn, http_data_fn on_data, http_headers_fn on_headers, http_request **out) {
  dk_backend *be = dk_be(d->run.runner);
  char *url = xasprintf("http://docker/v%s%s", be->eng.api, path);
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  dk_call *c = xcalloc(1, sizeof *c);
  c->d = d;
  c->fn = fn;
  http_request_opts o = {
      .method = method, .url = url, .unix_socket = be->eng.socket, .headers = hdrs, .body = body,
      .body_len = body ? strlen(body) : 0, .connect_timeout_ms = 5000, .total_timeout_ms = timeout_ms,
      .max_body = 1u << 20, .on_data = on_data, .on_headers = on_headers, .on_done = call_done, .ud = c,
  };
  int rc = http_request_start(be->http, &o, out);
  free(url);
  if (rc) {
    free(c);
    return rc;
  }
  d->inflight++;
  return 0;
}

/* The engine's own message in an error body ({"message": ...}), or the
 * transfer's failure. Returns a new string. */
static char *engine_error(const http_result *res) {
  if (res->outcome != HTTP_DONE)
    return xasprintf("the container engine did not answer: %s%s%s", http_outcome_str(res->outcome),
                     res->error && *res->error ? ": " : "", res->error ? res->error : "");
  cJSON *j = res->body ? cJSON_Parse(res->body) : NULL;
  const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
  char *s = xasprintf("HTTP %ld: %s", res->status, m ? m : (res->body ? res->body : ""));
  cJSON_Delete(j);
  return s;
}

/* ---- reporting ---- */

static bool live(const dk_run *d) {
  return d->run.state == SBX__RUNNING && !d->cleaned;
}

static void report_io_done(dk_run *d) {
  if (d->io_sent) return;
  d->io_sent = true;
  if (live(d)) sbx__run_io_done(&d->run);
}

static void report_exit(dk_run *d, long long status, int sig) {
  if (d->exit_sent) return;
  d->exit_sent = true;
  if (live(d)) sbx__run_exited(&d->run, status, sig);
}

/* The container never ran, or the engine failed us: the output ends (the
 * attach stream is dropped) and the run exits. */
static void end_now(dk_run *d, int sig) {
  if (d->attach) http_request_cancel(d->attach);
  else report_io_done(d);
  report_exit(d, sig ? 128 + sig : -1, sig);
}

static void fail(dk_run *d, char *error) {
  if (live(d)) sbx__run_fail(&d->run, error);
  else free(error);
  end_now(d, 0);
}

static void kick_cb(uv_timer_t *t);

static void kick(dk_run *d) {
  if (d->kick_open && !d->cleaned) uv_timer_start(&d->kick, kick_cb, 0, 0);
}

/* ---- a run's steps ---- */

static void on_events(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  int n = res->outcome == HTTP_DONE && res->status == 200 && res->body
              ? sbx_dk_count_oom_events(res->body, res->body_len)
              : 0;
  d->oom = sbx_dk_oom_verdict(false, d->code, d->kill_sent, n);
  report_exit(d, d->code, 0);
}

/* Podman reports OOMKilled false: a SIGKILL nobody of ours sent is looked
 * up in the container's "oom" events (from its creation to now). */
static int ask_oom_events(dk_run *d) {
  /* filters={"container":[id],"event":["oom"]}, URL-encoded. */
  char *path = xasprintf("/events?since=%lld&until=%lld&filters=%%7B%%22container%%22%%3A%%5B%%22%s%%22%%5D%%2C"
                         "%%22event%%22%%3A%%5B%%22oom%%22%%5D%%7D",
                         (long long)d->created_at - 1, (long long)time(NULL) + 1, d->id);
  int rc = call(d, "GET", path, NULL, CALL_TIMEOUT_MS, on_events, NULL, NULL, &d->op);
  free(path);
  return rc;
}

static void on_inspected(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  long long code = -1;
  bool oom_killed = false;
  if (res->outcome == HTTP_DONE && res->status == 200) {
    cJSON *j = cJSON_Parse(res->body), *st = cJSON_GetObjectItem(j, "State");
    oom_killed = cJSON_IsTrue(cJSON_GetObjectItem(st, "OOMKilled"));
    cJSON *ec = cJSON_GetObjectItem(st, "ExitCode");
    if (cJSON_IsNumber(ec)) code = (long long)ec->valuedouble;
    cJSON_Delete(j);
  }
  if (code < 0) {
    fail(d, xstrdup("the container engine lost the container's exit status"));
    return;
  }
  d->code = code;
  if (sbx_dk_oom_needs_events(oom_killed, code, d->kill_sent) && ask_oom_events(d) == 0) return;
  d->oom = sbx_dk_oom_verdict(oom_killed, code, d->kill_sent, 0);
  report_exit(d, code, 0);
}

static void on_waited(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  if (res->outcome != HTTP_DONE || res->status != 200) {
    char *e = engine_error(res);
    fail(d, xasprintf("waiting for the container failed: %s", e));
    free(e);
    return;
  }
  char *path = xasprintf("/containers/%s/json", d->id);
  if (call(d, "GET", path, NULL, CALL_TIMEOUT_MS, on_inspected, NULL, NULL, &d->op))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
}

static void on_killed(dk_run *d, const http_result *res) {
  /* 409: not running any more (its exit is on its way); 404: gone. */
  if (res->outcome != HTTP_DONE && !d->exit_sent)
    fail(d, xasprintf("the container engine did not kill the container: %s",
                      http_outcome_str(res->outcome)));
}

static void send_kill(dk_run *d, const char *sig) {
  char *path = xasprintf("/containers/%s/kill?signal=%s", d->id, sig);
  if (call(d, "POST", path, NULL, CALL_TIMEOUT_MS, on_killed, NULL, NULL, NULL))
    fail(d, xstrdup("cannot ask the container engine to kill the container"));
  free(path);
}

static void on_started(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  if (res->outcome != HTTP_DONE || (res->status != 204 && res->status != 304)) {
    char *e = engine_error(res);
    fail(d, xasprintf("the container engine could not start the container: %s", e));
    free(e);
    return;
  }
  d->started = true;
  d->run.program_ran = true;
  sbx__run_program_started(&d->run);
  char *path = xasprintf("/containers/%s/wait", d->id);
  if (call(d, "POST", path, NULL, 0, on_waited, NULL, NULL, &d->op))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
  if (d->want_kill || d->want_term) kick(d);
}

static void kick_cb(uv_timer_t *t) {
  dk_run *d = container_of(t, dk_run, kick);
  if (d->cleaned || d->exit_sent) return;
  if (d->want_kill && !d->started) {
    if (d->op) return; /* create or start in flight: decided when it answers */
    end_now(d, SIGKILL);
    return;
  }
  if (d->want_kill && d->started && !d->kill_sent) {
    d->kill_sent = true;
    send_kill(d, "KILL");
  } else if (d->want_term && d->started) {
    d->want_term = false;
    send_kill(d, "TERM");
  }
  if (d->want_start && !d->started && !d->op && !d->want_kill) {
    d->want_start = false;
    char *path = xasprintf("/containers/%s/start", d->id);
    if (call(d, "POST", path, NULL, CREATE_TIMEOUT_MS, on_started, NULL, NULL, &d->op))
      fail(d, xstrdup("cannot ask the container engine"));
    free(path);
  }
}

static void emit(void *ud, int stream, const char *p, size_t n) {
  dk_run *d = ud;
  if (live(d)) sbx__run_output(&d->run, stream, p, n);
}

static int on_attach_data(http_request *req, const char *p, size_t n, void *ud) {
  dk_run *d = ((dk_call *)ud)->d;
  (void)req;
  if (!d->cleaned) sbx_dk_demux_feed(&d->demux, p, n, emit, d);
  return 0;
}

static int on_attach_headers(http_request *req, long status, void *ud) {
  dk_run *d = ((dk_call *)ud)->d;
  (void)req;
  if (status != 200 && status != 101) return 1;
  d->attach_ok = true;
  d->want_start = true;
  kick(d);
  return 0;
}

static void on_attach_done(dk_run *d, const http_result *res) {
  d->attach = NULL;
  if (d->cleaned) return;
  if (!d->attach_ok && !d->exit_sent) {
    char *e = engine_error(res);
    fail(d, xasprintf("cannot attach to the container: %s", e));
    free(e);
    return;
  }
  report_io_done(d);
}

static void on_created(dk_run *d, const http_result *res) {
  d->op = NULL;
  cJSON *j = res->outcome == HTTP_DONE && res->status == 201 ? cJSON_Parse(res->body) : NULL;
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Id"));
  if (id) d->id = xstrdup(id);
  cJSON_Delete(j);
  if (d->cleaned) return; /* cleanup already ran: release removes it */
  if (!d->id) {
    char *e = engine_error(res);
    if (res->status == 404)
      fail(d, xasprintf("the image '%s' is not on the container engine (%s): pull or build it "
                        "(docker pull %s), or set sandbox.image",
                        d->image, e, d->image));
    else fail(d, xasprintf("the container engine could not create the container: %s", e));
    free(e);
    return;
  }
  if (d->want_kill) {
    end_now(d, SIGKILL);
    return;
  }
  char *path = xasprintf("/containers/%s/attach?stream=1&stdout=1&stderr=1", d->id);
  if (call(d, "POST", path, NULL, 0, on_attach_done, on_attach_data, on_attach_headers, &d->attach))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
}

/* ---- removal ---- */

static void finish_close(dk_backend *be);

static void on_removed(http_request *req, const http_result *res, void *ud) {
  dk_backend *be = ud;
  (void)req;
  if (res->outcome != HTTP_DONE || (res->status != 204 && res->status != 404))
    log_warn("sandbox: could not remove a container (%s, HTTP %ld); the next start sweeps it",
             http_outcome_str(res->outcome), res->status);
  if (--be->removals == 0 && be->closing) finish_close(be);
}

static void remove_container(dk_backend *be, const char *id) {
  char *url = xasprintf("http://docker/v%s/containers/%s?force=1&v=1", be->eng.api, id);
  http_request_opts o = {.method = "DELETE", .url = url, .unix_socket = be->eng.socket,
                         .connect_timeout_ms = 5000, .total_timeout_ms = 60000, .on_done = on_removed,
                         .ud = be};
  if (http_request_start(be->http, &o, NULL) == 0) be->removals++;
  free(url);
}

/* The run's handle closes once cleanup ran and nothing of it is in flight. */
static void release(dk_run *d) {
  if (!d->cleaned || d->inflight) return;
  if (d->id) {
    remove_container(dk_be(d->run.runner), d->id);
    free(d->id);
    d->id = NULL;
  }
  sbx__close_handle(&d->run, (uv_handle_t *)&d->kick, &d->kick_open);
}

/* ---- images ---- */

#define PULL_IDLE_MS 120000
#define PULL_TOTAL_MS (30 * 60000)
#define INSPECT_MS 5000

/* A pull of one image for one waiter. */
typedef struct dk_pull {
  sbx_image_wait wait;
  dk_backend *be;
  char *image;
  sbx_image_cbs cbs;
  void *ud;
  http_request *req;
  bool cancelled;
  sbx_dk_pull_progress prog;
  char line[8192];
  size_t len;
  bool overlong;        /* the line being read passed the buffer: skipped */
} dk_pull;

static void pull_free(dk_pull *p) {
  sbx_dk_pull_progress_close(&p->prog);
  free(p->image);
  free(p);
}

static void pull_line(dk_pull *p) {
  char text[300];
  if (!sbx_dk_pull_progress_line(&p->prog, p->line, p->len, text, sizeof text) || p->cancelled) return;
  if (p->cbs.progress) {
    char *msg = xasprintf("pulling %s: %s", p->image, text);
    p->cbs.progress(p->ud, msg, p->prog.percent);
    free(msg);
  }
}

static int pull_data(http_request *req, const char *b, size_t n, void *ud) {
  dk_pull *p = ud;
  (void)req;
  for (size_t i = 0; i < n; i++) {
    if (b[i] == '\n') {
      if (!p->overlong && p->len) pull_line(p);
      p->len = 0;
      p->overlong = false;
    } else if (p->len + 1 < sizeof p->line) {
      p->line[p->len++] = b[i];
    } else {
      p->overlong = true;
    }
  }
  return 0;
}

static void pull_done(http_request *req, const http_result *res, void *ud) {
  dk_pull *p = ud;
  (void)req;
  if (!p->overlong && p->len) pull_line(p);
  if (p->cancelled) {
    pull_free(p);
    return;
  }
  char *id = NULL, *why = NULL, *error = NULL;
  if (res->outcome != HTTP_DONE || res->status != 200 || p->prog.error) {
    char *e = p->prog.error ? xstrdup(p->prog.error) : engine_error(res);
    error = xasprintf("the image '%s' is not on the container engine and pulling it failed: %s; build or load it "
                      "there (docker build / docker load / docker import), or name another image "
                      "(sandbox.image, environment {kind: \"image\"})",
                      p->image, e);
    free(e);
  } else if (sbx_dk_image_id(&p->be->eng, p->image, INSPECT_MS, &id, &why) != 1) {
    error = xasprintf("the image '%s' was pulled but the container engine does not show it%s%s", p->image,
                      why ? ": " : "", why ? why : "");
  }
  p->cbs.done(p->ud, id, error);
  free(id);
  free(why);
  free(error);
  pull_free(p);
}

static void pull_cancel(sbx_image_wait *w) {
  dk_pull *p = container_of(w, dk_pull, wait);
  p->cancelled = true;
  http_request_cancel(p->req);
}

/* Asks the engine to pull image; its JSON lines become progress. */
static int pull_start(dk_backend *be, const char *image, const sbx_image_cbs *cbs, void *ud, sbx_image_wait **wait,
                      char **err) {
  char *q = sbx_dk_pull_query(image);
  if (!q) {
    *err = xasprintf("'%.80s' is not an image name", image);
    return -EINVAL;
  }
  dk_pull *p = xcalloc(1, sizeof *p);
  p->wait.cancel = pull_cancel;
  p->be = be;
  p->image = xstrdup(image);
  p->cbs = *cbs;
  p->ud = ud;
  sbx_dk_pull_progress_init(&p->prog);
  char *url = xasprintf("http://docker/v%s/images/create?%s", be->eng.api, q);
  free(q);
  http_request_opts o = {.method = "POST", .url = url, .unix_socket = be->eng.socket, .body = "", .body_len = 0,
                         .connect_timeout_ms = 5000, .idle_timeout_ms = PULL_IDLE_MS,
                         .total_timeout_ms = PULL_TOTAL_MS, .on_data = pull_data, .on_done = pull_done, .ud = p};
  int rc = http_request_start(be->http, &o, &p->req);
  free(url);
  if (rc) {
    *err = xasprintf("cannot ask the container engine to pull '%s': %s", image, strerror(-rc));
    pull_free(p);
    return rc;
  }
  if (wait) *wait = &p->wait;
  return 0;
}

static int dk_image(sbx_runner *self, const char *image, const sbx_image_cbs *cbs, void *ud, char **id,
                    sbx_image_wait **wait, char **err) {
  dk_backend *be = dk_be(self);
  if (!image || !*image) image = be->image;
  if (!be->eng.socket || !be->http) {
    *err = xstrdup(self->setup_error ? self->setup_error : "no container engine");
    return -ENOENT;
  }
  int rc = sbx_dk_image_id(&be->eng, image, INSPECT_MS, id, err);
  if (rc != 0) return rc;
  if (!cbs) {
    *err = xasprintf("the image '%s' is not on the container engine", image);
    return -ENOENT;
  }
  return pull_start(be, image, cbs, ud, wait, err);
}

static const char *dk_default_image(const sbx_runner *self) {
  return dk_be(self)->image;
}

/* ---- the doctor ---- */

void sbx__dk_doctor_facts(const sbx_runner *self, cJSON *rep, cJSON *hints) {
  const dk_backend *be = dk_be(self);
  cJSON_AddStringToObject(rep, "backend", "docker");
  cJSON *eng = cJSON_AddObjectToObject(rep, "engine");
  bool up = be->eng.socket != NULL;
  cJSON_AddBoolToObject(eng, "reachable", up);
  if (up) {
    cJSON_AddStringToObject(eng, "socket", be->eng.socket);
    cJSON_AddStringToObject(eng, "name", be->eng.name);
    cJSON_AddStringToObject(eng, "version", be->eng.version);
    cJSON_AddStringToObject(eng, "apiVersion", be->eng.api);
  } else {
    if (self->setup_error) cJSON_AddStringToObject(eng, "error", self->setup_error);
    cJSON_AddItemToArray(hints, cJSON_CreateString(
        "start a container engine: dockerd (apt install docker.io) or podman's API service "
        "(podman system service), or point sandbox.docker.hosts / DOCKER_HOST at one"));
  }
  cJSON *img = cJSON_AddObjectToObject(rep, "image");
  cJSON_AddStringToObject(img, "name", be->image);
  bool present = up && sbx_dk_image_present(&be->eng, be->image);
  cJSON_AddBoolToObject(img, "present", present);
  if (up && !present) {
    char *h = xasprintf("pull or build the image '%s' (docker pull %s), or set sandbox.image", be->image,
                        be->image);
    cJSON_AddItemToArray(hints, cJSON_CreateString(h));
    free(h);
  }
  cJSON *ids = cJSON_AddObjectToObject(rep, "runsAs");
  cJSON_AddNumberToObject(ids, "hostUid", (double)self->host_uid);
  cJSON_AddNumberToObject(ids, "hostGid", (double)self->host_gid);
  cJSON_AddStringToObject(ids, "how", "the container's User (sandbox.uid/sandbox.gid; never 0)");
  cJSON_AddStringToObject(rep, "isolation", sbx_isolation_name(SBX_ISO_CONTAINER));
  cJSON *lim = cJSON_AddObjectToObject(rep, "limits");
  cJSON_AddStringToObject(lim, "wall", "timer: SIGTERM to the container, SIGKILL 300 ms later");
  cJSON_AddStringToObject(lim, "memory", "the container's Memory = MemorySwap (OOMKilled reported as oom)");
  cJSON_AddStringToObject(lim, "pids", "the container's PidsLimit");
  cJSON_AddStringToObject(lim, "cpu", "ulimit cpu per process, one CPU (NanoCpus)");
  cJSON_AddStringToObject(lim, "disk", "size-capped tmpfs for the scratch dir and /tmp, ShmSize, ulimit fsize");
  cJSON_AddStringToObject(lim, "output", "head kept per stream up to outputBytes; killed beyond 4x in total");
  cJSON_AddStringToObject(lim, "network", "NetworkMode none: loopback only");
  cJSON_AddArrayToObject(rep, "unenforced");
}

/* ---- the contract ---- */

static void dk_init(sbx_runner *self, const sbx_config *config) {
  dk_backend *be = xcalloc(1, sizeof *be);
  be->runner = self;
  self->be = be;
  self->iso = SBX_ISO_CONTAINER;
  be->image = xstrdup(config && config->image && *config->image ? config->image : SBX_DOCKER_IMAGE_DEFAULT);
  /* Containers run as the configured ids (never root), whoever the server is. */
  self->host_uid = (uid_t)(config && config->host_uid > 0 ? config->host_uid : SBX_HOST_ID_DEFAULT);
  self->host_gid = (gid_t)(config && config->host_gid > 0 ? config->host_gid : SBX_HOST_ID_DEFAULT);
  self->set_ids = false;
  uv_timer_init(self->loop, &be->close_h);
  char *why = NULL;
  if (sbx_dk_engine_open(&be->eng, config ? config->docker_host : NULL, &why)) {
    self->setup_error = why;
    return;
  }
  int n = sbx_dk_sweep(&be->eng);
  if (n) log_info("sandbox: removed %d container(s) of dead crucible processes", n);
  if (!sbx_dk_image_present(&be->eng, be->image))
    self->note = xasprintf("the image '%s' is not on the container engine: runs fail until it is "
                           "pulled (a request's environment pulls it) or built",
                           be->image);
  int rc = http_client_new(self->loop, &be->http);
  if (rc) self->setup_error = xasprintf("cannot set up the HTTP client: %s", strerror(-rc));
}

static bool dk_has_lang(const sbx_runner *self, sbx_lang lang) {
  (void)self, (void)lang;
  return true; /* whatever the image holds: a missing interpreter fails the run */
}

static bool dk_fits(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want) {
  (void)self, (void)made, (void)want;
  return true; /* prepare fixes nothing: the container is made at start */
}

static sbx_run *dk_run_new(sbx_runner *self) {
  (void)self;
  dk_run *d = xcalloc(1, sizeof *d);
  return &d->run;
}

static void dk_run_free(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  free(d->id);
  free(d);
}

static int dk_prepare(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  uv_timer_init(run->runner->loop, &d->kick);
  d->kick.data = run;
  d->kick_open = true;
  run->open_handles++;
  return 0;
}

static void dk_start(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  dk_backend *be = dk_be(run->runner);
  run->iso = SBX_ISO_CONTAINER;
  char *err = NULL;
  /* An environment's folders are host binds (sbx_env): not mounted into a
   * container. Refused, never run without them; an image is taken. */
  bool folders = run->env && (run->env->binds[0] || run->env->interp || run->env->vars[0] ||
                              run->env->write_src || run->env->network);
  d->image = run->env && run->env->image ? run->env->image : be->image;
  d->created_at = time(NULL);
  cJSON *body = folders ? NULL
                        : sbx_dk_create_body(run->lang, &run->limits, d->image, run->code, run->code_len,
                                             run->stdin_data, run->stdin_len, (long)run->runner->host_uid,
                                             (long)run->runner->host_gid, &err);
  if (folders)
    err = xstrdup("environments (a venv, node_modules, packages) run on the bwrap backend only; the docker "
                  "backend runs programs in an image (sandbox.image, or an environment {kind: \"image\"}): "
                  "install the packages there, or set sandbox.backend bwrap");
  if (!body) {
    d->want_kill = true; /* nothing to run: the kick reports the failure from the loop */
    free(run->error);
    run->error = err;
    kick(d);
    return;
  }
  char *text = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  char *path = xasprintf("/containers/create?name=%s", run->name);
  if (call(d, "POST", path, text, CREATE_TIMEOUT_MS, on_created, NULL, NULL, &d->op)) {
    d->want_kill = true;
    run->error = xstrdup("cannot ask the container engine");
    kick(d);
  }
  free(path);
  free(text);
}

static void dk_term(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  d->want_term = true;
  kick(d);
}

static void dk_kill(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  d->want_kill = true;
  kick(d);
}

static void dk_observe(sbx_run *run, sbx_facts *f) {
  dk_run *d = dk_run_of(run);
  /* The container's own cgroup held the memory and pids limits; its
   * counters are not read (the engine's stats call is too slow to wait
   * for), only whether the kernel OOM-killed it. */
  f->in_cgroup = true;
  f->oom_kills = d->oom ? 1 : 0;
  if (!run->cancelled && !run->program_ran && !run->killed_for && !run->error)
    run->error = xstrdup("the container did not start");
}

static void dk_cleanup(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  if (d->cleaned) return;
  d->cleaned = true;
  if (d->kick_open) uv_timer_stop(&d->kick);
  if (d->attach) http_request_cancel(d->attach);
  if (d->op) http_request_cancel(d->op);
  release(d);
}

static void close_h_closed(uv_handle_t *h) {
  dk_backend *be = container_of((uv_timer_t *)h, dk_backend, close_h);
  sbx_runner *self = be->runner;
  sbx_dk_engine_close(&be->eng);
  free(be->image);
  free(be);
  self->be = NULL;
  sbx__runner_backend_closed(self);
}

static void finish_close(dk_backend *be) {
  http_client_free(be->http);
  be->http = NULL;
  uv_close((uv_handle_t *)&be->close_h, close_h_closed);
}

static void dk_close(sbx_runner *self) {
  dk_backend *be = dk_be(self);
  be->closing = true;
  if (be->removals == 0) finish_close(be);
}

const sbx__backend sbx__docker_backend = {
    .name = "docker", .init = dk_init, .has_lang = dk_has_lang, .fits = dk_fits, .run_new = dk_run_new,
    .prepare = dk_prepare, .start = dk_start, .term = dk_term, .kill = dk_kill, .observe = dk_observe,
    .cleanup = dk_cleanup, .run_free = dk_run_free, .close = dk_close, .image = dk_image,
    .default_image = dk_default_image,
};
