/* The docker backend behind the runner: one container per run on a Docker
 * Engine API (Docker, or Podman's compatible service) over a unix socket
 * or HTTPS with a client certificate, driven asynchronously through
 * net/http.c on the runner's loop.
 *
 * A run: create (docker_api.c's body: no network, read-only root, no
 * capabilities, non-root, the limits) → attach (stdout, stderr; the
 * engine answers the headers at once) → start → wait → inspect (exit
 * code, OOMKilled) → exited; the attach stream ending is the end of the
 * output. cleanup removes the container (force); containers of servers
 * that died are swept at init by their labels.
 *
 * A warm run (prepared ahead, runner->warm) is a container created and
 * started ahead with the same promises and the default limits, sleeping;
 * on bind its program is exec'd into it (exec create → exec start, whose
 * response is the output stream → exec inspect), and the container is
 * removed at cleanup like any other: one container per run, never reused.
 * A wait on it stays in flight while it is warm: an engine that dies
 * takes the warm container with it, and the runner makes another.
 *
 * Runs are placed on the engines of sandbox.docker.hosts (engines.c); an
 * engine whose connection breaks during a run fails that run with an
 * error naming it, and is left out until it answers again.
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
#include "engines.h"
#include "http.h"
#include "internal.h"
#include "log.h"

#define CREATE_TIMEOUT_MS 60000
#define CALL_TIMEOUT_MS 15000
/* An exec whose output ended before the engine recorded its exit. */
#define INSPECT_RETRY_MS 20
#define INSPECT_RETRIES 50

typedef struct dk_backend {
  sbx_runner *runner;
  sbx_dk_engines engs;
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
  int eng;              /* its engine in be->engs; -1: not placed */
  char *id;
  int inflight;
  http_request *op;     /* the step in flight: create, start, wait or inspect */
  http_request *attach; /* cold: the attach stream; warm: the exec's output stream */
  bool want_start, want_kill, want_term, kill_sent;
  bool started, attach_ok, io_sent, exit_sent, cleaned, oom;
  /* A warm run: made ahead and running (ready), its program exec'd on bind. */
  bool warm, ready, warm_dead, want_inspect;
  int inspects;         /* exec inspects that found the exit not recorded yet */
  http_request *wait;   /* warm: the container's wait, in flight until it ends */
  char *exec_body;      /* bound: the exec to create once ready */
  char *exec_id;
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

static sbx_dk_engine *engine_of(dk_run *d) {
  return &dk_be(d->run.runner)->engs.v[d->eng].eng;
}

/* The transfer broke (the engine died or its connection did): not an
 * answer, a timeout we asked for, or our own cancel. */
static bool broken(const http_result *res) {
  return res->outcome == HTTP_FAILED || res->outcome == HTTP_TIMEOUT_CONNECT;
}

static void call_done(http_request *req, const http_result *res, void *ud) {
  dk_call *c = ud;
  dk_run *d = c->d;
  (void)req;
  d->inflight--;
  if (broken(res) && d->eng >= 0)
    sbx_dk_engines_down(&dk_be(d->run.runner)->engs, d->eng, res->error && *res->error ? res->error
                                                                                         : http_outcome_str(res->outcome));
  if (c->fn) c->fn(d, res);
  free(c);
  release(d);
}

/* Starts a request of run d on its engine; fn gets its result (NULL: none
 * wanted). Returns 0, or a negative errno (nothing is called). */
static int call(dk_run *d, const char *method, const char *path, const char *body, long timeout_ms,
                dk_done_fn fn, http_data_fn on_data, http_headers_fn on_headers, http_request **out) {
  dk_backend *be = dk_be(d->run.runner);
  const sbx_dk_engine *e = engine_of(d);
  char *url = sbx_dk_url(e, path);
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  dk_call *c = xcalloc(1, sizeof *c);
  c->d = d;
  c->fn = fn;
  http_request_opts o = {
      .method = method, .url = url, .headers = hdrs, .body = body,
      .body_len = body ? strlen(body) : 0, .connect_timeout_ms = 5000, .total_timeout_ms = timeout_ms,
      .max_body = 1u << 20, .on_data = on_data, .on_headers = on_headers, .on_done = call_done, .ud = c,
  };
  sbx_dk_http_opts(e, &o);
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
 * transfer's failure (an engine that died mid-run named as such). Returns
 * a new string. */
static char *engine_error_on(const sbx_dk_engine *e, const http_result *res) {
  if (res->outcome != HTTP_DONE)
    return xasprintf("the container engine %s did not answer%s: %s%s%s", e->host,
                     broken(res) ? " (it died, or its connection broke, during the run)" : "",
                     http_outcome_str(res->outcome), res->error && *res->error ? ": " : "",
                     res->error ? res->error : "");
  cJSON *j = res->body ? cJSON_Parse(res->body) : NULL;
  const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
  char *s = xasprintf("HTTP %ld: %s", res->status, m ? m : (res->body ? res->body : ""));
  cJSON_Delete(j);
  return s;
}

static char *engine_error(dk_run *d, const http_result *res) {
  return engine_error_on(engine_of(d), res);
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

static void kick_cb(uv_timer_t *t);

static void kick(dk_run *d) {
  if (d->kick_open && !d->cleaned) uv_timer_start(&d->kick, kick_cb, 0, 0);
}

static void fail(dk_run *d, char *error) {
  if (d->run.state == SBX__WARM) {
    /* Nobody's run yet: the runner discards it (from the loop) and makes
     * another. */
    log_debug("sandbox: warm container failed: %s", error);
    free(error);
    d->warm_dead = true;
    kick(d);
    return;
  }
  if (live(d)) sbx__run_fail(&d->run, error);
  else free(error);
  end_now(d, 0);
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
    char *e = engine_error(d, res);
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
  if (res->outcome != HTTP_DONE && !d->exit_sent) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the container engine did not kill the container: %s", e));
    free(e);
  }
}

static void send_kill(dk_run *d, const char *sig) {
  char *path = xasprintf("/containers/%s/kill?signal=%s", d->id, sig);
  if (call(d, "POST", path, NULL, CALL_TIMEOUT_MS, on_killed, NULL, NULL, NULL))
    fail(d, xstrdup("cannot ask the container engine to kill the container"));
  free(path);
}

/* The answer to a start (cold or warm): true when the container runs; else
 * the run has failed, saying why. */
static bool started_ok(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return false;
  if (res->outcome != HTTP_DONE || (res->status != 204 && res->status != 304)) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the container engine could not start the container: %s", e));
    free(e);
    return false;
  }
  return true;
}

static void on_started(dk_run *d, const http_result *res) {
  if (!started_ok(d, res)) return;
  d->started = true;
  d->run.program_ran = true;
  sbx__run_program_started(&d->run);
  char *path = xasprintf("/containers/%s/wait", d->id);
  if (call(d, "POST", path, NULL, 0, on_waited, NULL, NULL, &d->op))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
  if (d->want_kill || d->want_term) kick(d);
}

/* ---- a warm run's steps ---- */


static void on_warm_waited(dk_run *d, const http_result *res) {
  d->wait = NULL;
  if (d->cleaned || res->outcome == HTTP_CANCELLED) return;
  /* The sleeping container ended, or its engine went away. Still warm: the
   * runner makes another; bound: the exec's stream and inspect tell. */
  if (d->run.state == SBX__WARM) {
    d->warm_dead = true;
    kick(d);
  } else if (broken(res) && !d->exit_sent) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the container was lost: %s", e));
    free(e);
  }
}

static void on_warm_started(dk_run *d, const http_result *res) {
  if (!started_ok(d, res)) return;
  d->ready = true;
  char *path = xasprintf("/containers/%s/wait", d->id);
  if (call(d, "POST", path, NULL, 0, on_warm_waited, NULL, NULL, &d->wait))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
  if (d->exec_body || d->want_kill) kick(d);
}

static void collect(void *ud, int stream, const char *p, size_t n) {
  (void)stream;
  dbuf_add_head(ud, p, n);
}

/* An OOM kill of an exec'd program leaves the container running and its
 * OOMKilled false: the container's own memory cgroup counts it. */
static void on_oom_probed(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  if (res->outcome == HTTP_DONE && res->status == 200 && res->body) {
    dbuf out;
    dbuf_init(&out, 1u << 16);
    sbx_dk_demux dm = {0};
    sbx_dk_demux_feed(&dm, res->body, res->body_len, collect, &out);
    const char *k = out.data ? strstr(out.data, "oom_kill ") : NULL;
    if (k && strtol(k + 9, NULL, 10) > 0) d->oom = true;
    dbuf_close(&out);
  }
  report_exit(d, 137, 0);
}

static void on_oom_exec_created(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  cJSON *j = res->outcome == HTTP_DONE && res->status == 201 ? cJSON_Parse(res->body) : NULL;
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Id"));
  char *path = id ? xasprintf("/exec/%s/start", id) : NULL;
  cJSON_Delete(j);
  if (!path || call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}", CALL_TIMEOUT_MS, on_oom_probed, NULL,
                    NULL, &d->op))
    report_exit(d, 137, 0);
  free(path);
}

static void on_exec_inspected(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  long long code = -1;
  bool pending = false;
  if (res->outcome == HTTP_DONE && res->status == 200) {
    cJSON *j = cJSON_Parse(res->body), *ec = cJSON_GetObjectItem(j, "ExitCode");
    if (cJSON_IsNumber(ec) && !cJSON_IsTrue(cJSON_GetObjectItem(j, "Running"))) code = (long long)ec->valuedouble;
    else pending = true;
    cJSON_Delete(j);
  }
  /* The output ended a moment before the engine recorded the exit: ask
   * again shortly (bounded; the wall time bounds it too). */
  if (pending && !d->kill_sent && d->inspects++ < INSPECT_RETRIES) {
    d->want_inspect = true;
    if (d->kick_open) uv_timer_start(&d->kick, kick_cb, INSPECT_RETRY_MS, 0);
    return;
  }
  if (code < 0 && d->kill_sent) code = 128 + SIGKILL; /* the container went with the kill */
  if (code < 0) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the container engine lost the program's exit status: %s", e));
    free(e);
    return;
  }
  if (code == 128 + SIGKILL && !d->kill_sent) {
    /* Killed, not by us: the memory limit's OOM killer, or the CPU limit. */
    char *path = xasprintf("/containers/%s/exec", d->id);
    const char *probe = "{\"AttachStdout\":true,\"AttachStderr\":true,\"Cmd\":[\"/bin/sh\",\"-c\","
                        "\"cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null\"]}";
    if (call(d, "POST", path, probe, CALL_TIMEOUT_MS, on_oom_exec_created, NULL, NULL, &d->op))
      report_exit(d, code, 0);
    free(path);
    return;
  }
  report_exit(d, code, 0);
}

static int on_exec_headers(http_request *req, long status, void *ud) {
  dk_run *d = ((dk_call *)ud)->d;
  (void)req;
  if (status != 200 && status != 101) return 1;
  d->attach_ok = true;
  return 0;
}

static int on_attach_data(http_request *req, const char *p, size_t n, void *ud);

static void on_exec_done(dk_run *d, const http_result *res) {
  d->attach = NULL;
  if (d->cleaned) return;
  if (!d->attach_ok || (res->outcome != HTTP_DONE && res->outcome != HTTP_CANCELLED)) {
    if (!d->exit_sent) {
      char *e = engine_error(d, res);
      fail(d, xasprintf("the program's exec failed: %s", e));
      free(e);
    }
    return;
  }
  report_io_done(d);
  if (d->exit_sent) return;
  d->want_inspect = true;
  kick(d);
}

static void on_exec_created(dk_run *d, const http_result *res) {
  d->op = NULL;
  if (d->cleaned) return;
  cJSON *j = res->outcome == HTTP_DONE && res->status == 201 ? cJSON_Parse(res->body) : NULL;
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Id"));
  if (id) d->exec_id = xstrdup(id);
  cJSON_Delete(j);
  if (!d->exec_id) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the container engine could not run the program in its container: %s", e));
    free(e);
    return;
  }
  if (d->want_kill) {
    end_now(d, SIGKILL);
    return;
  }
  d->started = true;
  d->run.program_ran = true;
  sbx__run_program_started(&d->run);
  char *path = xasprintf("/exec/%s/start", d->exec_id);
  if (call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}", 0, on_exec_done, on_attach_data, on_exec_headers,
           &d->attach))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
  if (d->want_term) kick(d);
}

/* Bound and ready: the program goes into the warm container. */
static void warm_exec(dk_run *d) {
  char *body = d->exec_body;
  d->exec_body = NULL;
  char *path = xasprintf("/containers/%s/exec", d->id);
  if (call(d, "POST", path, body, CREATE_TIMEOUT_MS, on_exec_created, NULL, NULL, &d->op))
    fail(d, xstrdup("cannot ask the container engine"));
  free(path);
  free(body);
}

static void kick_cb(uv_timer_t *t) {
  dk_run *d = container_of(t, dk_run, kick);
  if (d->cleaned || d->exit_sent) return;
  if (d->run.state == SBX__WARM) {
    /* Its container ended (or never came) before a request needed it. */
    if (d->warm_dead) {
      d->exit_sent = true;
      sbx__run_exited(&d->run, -1, 0);
    }
    return;
  }
  if (d->warm && d->warm_dead && !d->started && !d->want_kill) {
    fail(d, xasprintf("the warm container on %s ended before its program ran", engine_of(d)->host));
    return;
  }
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
  if (d->warm && d->ready && d->exec_body && !d->op && !d->want_kill) warm_exec(d);
  if (d->want_inspect && !d->op) {
    d->want_inspect = false;
    char *path = xasprintf("/exec/%s/json", d->exec_id);
    if (call(d, "GET", path, NULL, CALL_TIMEOUT_MS, on_exec_inspected, NULL, NULL, &d->op))
      fail(d, xstrdup("cannot ask the container engine"));
    free(path);
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
    char *e = engine_error(d, res);
    fail(d, xasprintf("cannot attach to the container: %s", e));
    free(e);
    return;
  }
  if (broken(res) && !d->exit_sent) {
    char *e = engine_error(d, res);
    fail(d, xasprintf("the run's output stream broke: %s", e));
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
    char *e = engine_error(d, res);
    if (res->status == 404)
      fail(d, xasprintf("the image '%s' is not on the container engine %s (%s): pull or build it "
                        "(docker pull %s), or set sandbox.image",
                        d->image, engine_of(d)->host, e, d->image));
    else fail(d, xasprintf("the container engine could not create the container: %s", e));
    free(e);
    return;
  }
  if (d->warm) {
    if (d->want_kill) {
      end_now(d, SIGKILL);
      return;
    }
    char *path = xasprintf("/containers/%s/start", d->id);
    if (call(d, "POST", path, NULL, CREATE_TIMEOUT_MS, on_warm_started, NULL, NULL, &d->op))
      fail(d, xstrdup("cannot ask the container engine"));
    free(path);
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

static void remove_container(dk_backend *be, const sbx_dk_engine *e, const char *id) {
  char *path = xasprintf("/containers/%s?force=1&v=1", id);
  char *url = sbx_dk_url(e, path);
  http_request_opts o = {.method = "DELETE", .url = url, .connect_timeout_ms = 5000, .total_timeout_ms = 60000,
                         .on_done = on_removed, .ud = be};
  sbx_dk_http_opts(e, &o);
  if (http_request_start(be->http, &o, NULL) == 0) be->removals++;
  free(url);
  free(path);
}

/* The run's handle closes once cleanup ran and nothing of it is in flight. */
static void release(dk_run *d) {
  if (!d->cleaned || d->inflight) return;
  if (d->id) {
    remove_container(dk_be(d->run.runner), engine_of(d), d->id);
    free(d->id);
    d->id = NULL;
  }
  sbx__close_handle(&d->run, (uv_handle_t *)&d->kick, &d->kick_open);
}

/* ---- images ---- */

#define PULL_IDLE_MS 120000
#define PULL_TOTAL_MS (30 * 60000)
#define INSPECT_MS 5000

/* Making sure of one image for one waiter, on the loop: look it up (GET
 * /images/{name}/json), pull it when the engine has none, look it up again
 * for its ID. */

typedef struct dk_pull {
  sbx_image_wait wait;
  dk_backend *be;
  const sbx_dk_engine *eng; /* where it pulls */
  char *image;
  sbx_image_cbs cbs;
  void *ud;
  http_request *req;        /* the step in flight */
  bool pulled;              /* the lookup in flight is the one after the pull */
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

/* The waiter hears the end (id or error), and the pull is over. */
static void pull_end(dk_pull *p, const char *id, const char *error) {
  p->cbs.done(p->ud, id, error);
  pull_free(p);
}

static void lookup_done(http_request *req, const http_result *res, void *ud);
static int fetch_start(dk_pull *p, char **err);

static int lookup_start(dk_pull *p) {
  char *path = sbx_dk_image_path(p->image);
  char *url = sbx_dk_url(p->eng, path);
  free(path);
  http_request_opts o = {.method = "GET", .url = url, .connect_timeout_ms = INSPECT_MS,
                         .total_timeout_ms = INSPECT_MS, .max_body = 1 << 20, .on_done = lookup_done, .ud = p};
  sbx_dk_http_opts(p->eng, &o);
  int rc = http_request_start(p->be->http, &o, &p->req);
  free(url);
  return rc;
}

static void lookup_done(http_request *req, const http_result *res, void *ud) {
  dk_pull *p = ud;
  (void)req;
  p->req = NULL;
  if (p->cancelled) {
    pull_free(p);
    return;
  }
  char *id = NULL, *why = NULL, *error = NULL;
  int rc;
  if (res->outcome != HTTP_DONE) {
    char *e = engine_error_on(p->eng, res);
    why = xasprintf("the container engine could not describe the image '%s': %s", p->image, e);
    free(e);
    rc = -EIO;
  } else {
    rc = sbx_dk_image_id_of(p->eng, p->image, res->status, res->body, &id, &why);
  }
  if (rc == 0 && !p->pulled) {
    if (fetch_start(p, &error) == 0) return;
  } else if (rc <= 0 && p->pulled) {
    error = xasprintf("the image '%s' was pulled but the container engine does not show it%s%s", p->image,
                      why ? ": " : "", why ? why : "");
  } else if (rc < 0) {
    error = why;
    why = NULL;
  }
  pull_end(p, id, error);
  free(id);
  free(why);
  free(error);
}

static void pull_done(http_request *req, const http_result *res, void *ud) {
  dk_pull *p = ud;
  (void)req;
  p->req = NULL;
  if (!p->overlong && p->len) pull_line(p);
  if (p->cancelled) {
    pull_free(p);
    return;
  }
  if (res->outcome != HTTP_DONE || res->status != 200 || p->prog.error) {
    char *e = p->prog.error ? xstrdup(p->prog.error) : engine_error_on(p->eng, res);
    char *error = xasprintf("the image '%s' is not on the container engine and pulling it failed: %s; build or load "
                            "it there (docker build / docker load / docker import), or name another image "
                            "(sandbox.image, environment {kind: \"image\"})",
                            p->image, e);
    free(e);
    pull_end(p, NULL, error);
    free(error);
    return;
  }
  p->pulled = true;
  int rc = lookup_start(p);
  if (rc) {
    char *error = xasprintf("the image '%s' was pulled but the container engine could not be asked for it: %s",
                            p->image, strerror(-rc));
    pull_end(p, NULL, error);
    free(error);
  }
}

static void pull_cancel(sbx_image_wait *w) {
  dk_pull *p = container_of(w, dk_pull, wait);
  p->cancelled = true;
  http_request_cancel(p->req);
}

/* The engine images are looked up and pulled on: the first that answers
 * (the others must hold the image already). */
static const sbx_dk_engine *image_engine(dk_backend *be) {
  for (int i = 0; i < be->engs.n; i++)
    if (be->engs.v[i].up) return &be->engs.v[i].eng;
  return NULL;
}

/* Asks the engine to pull p's image; its JSON lines become progress. */
static int fetch_start(dk_pull *p, char **err) {
  char *q = sbx_dk_pull_query(p->image);
  if (!q) {
    *err = xasprintf("'%.80s' is not an image name", p->image);
    return -EINVAL;
  }
  char *path = xasprintf("/images/create?%s", q);
  char *url = sbx_dk_url(p->eng, path);
  free(path);
  free(q);
  http_request_opts o = {.method = "POST", .url = url, .body = "", .body_len = 0,
                         .connect_timeout_ms = 5000, .idle_timeout_ms = PULL_IDLE_MS,
                         .total_timeout_ms = PULL_TOTAL_MS, .on_data = pull_data, .on_done = pull_done, .ud = p};
  sbx_dk_http_opts(p->eng, &o);
  int rc = http_request_start(p->be->http, &o, &p->req);
  free(url);
  if (rc) *err = xasprintf("cannot ask the container engine to pull '%s': %s", p->image, strerror(-rc));
  return rc;
}

static int dk_image(sbx_runner *self, const char *image, const sbx_image_cbs *cbs, void *ud, char **id,
                    sbx_image_wait **wait, char **err) {
  dk_backend *be = dk_be(self);
  if (!image || !*image) image = be->image;
  const sbx_dk_engine *e = be->http ? image_engine(be) : NULL;
  if (!e) {
    *err = xstrdup(self->setup_error ? self->setup_error : "no container engine is up");
    return -ENOENT;
  }
  if (!cbs) {
    /* only asking (live diagnostics): a blocking lookup, never a pull */
    int rc = sbx_dk_image_id(e, image, INSPECT_MS, id, err);
    if (rc == 0) *err = xasprintf("the image '%s' is not on the container engine", image);
    return rc == 0 ? -ENOENT : rc;
  }
  dk_pull *p = xcalloc(1, sizeof *p);
  p->wait.cancel = pull_cancel;
  p->be = be;
  p->eng = e;
  p->image = xstrdup(image);
  p->cbs = *cbs;
  p->ud = ud;
  sbx_dk_pull_progress_init(&p->prog);
  int rc = lookup_start(p);
  if (rc) {
    *err = xasprintf("cannot ask the container engine for the image '%s': %s", image, strerror(-rc));
    pull_free(p);
    return rc;
  }
  if (wait) *wait = &p->wait;
  return 0;
}

static const char *dk_default_image(const sbx_runner *self) {
  return dk_be(self)->image;
}

/* ---- the doctor ---- */

/* One engine as the doctor shows it: reachable, version, API version, and
 * from GET /info its runtime, cgroup driver and version, OS; the images it
 * holds (their tags), and whether the configured one is there. */
static cJSON *engine_facts(const dk_backend *be, const sbx_dk_slot *s, cJSON *hints) {
  cJSON *eng = cJSON_CreateObject();
  const sbx_dk_engine *e = &s->eng;
  cJSON_AddStringToObject(eng, "host", e->host ? e->host : "?");
  if (e->socket) cJSON_AddStringToObject(eng, "socket", e->socket);
  cJSON_AddBoolToObject(eng, "tls", e->cert != NULL);
  cJSON_AddNumberToObject(eng, "capacity", s->cap);
  cJSON_AddNumberToObject(eng, "live", s->nlive);
  char *info = NULL, *err = NULL;
  long st = s->eng.base ? sbx_dk_engine_call(e, "GET", "/info", NULL, &info, 5000, &err) : -ENOENT;
  bool up = s->ever_up && st == 200;
  cJSON_AddBoolToObject(eng, "reachable", up);
  if (!up) {
    char *why = st < 0 || !s->ever_up ? xstrdup(s->why ? s->why : err ? err : "does not answer")
                                     : xasprintf("GET /info answered HTTP %ld", st);
    cJSON_AddStringToObject(eng, "error", why);
    char *h = xasprintf("the container engine %s: %s", e->host ? e->host : "?", why);
    cJSON_AddItemToArray(hints, cJSON_CreateString(h));
    free(h);
    free(why);
    free(info);
    free(err);
    return eng;
  }
  cJSON_AddStringToObject(eng, "name", e->name);
  cJSON_AddStringToObject(eng, "version", e->version);
  cJSON_AddStringToObject(eng, "apiVersion", e->api);
  cJSON *j = cJSON_Parse(info);
  static const char *const keys[][2] = {
      {"DefaultRuntime", "runtime"}, {"CgroupDriver", "cgroupDriver"}, {"CgroupVersion", "cgroupVersion"},
      {"OperatingSystem", "os"},     {"KernelVersion", "kernel"},
  };
  for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(j, keys[i][0]));
    if (v) cJSON_AddStringToObject(eng, keys[i][1], v);
  }
  cJSON_Delete(j);
  free(info);
  free(err);
  char *list = NULL;
  cJSON *imgs = cJSON_AddArrayToObject(eng, "images");
  if (sbx_dk_engine_call(e, "GET", "/images/json", NULL, &list, 10000, NULL) == 200) {
    cJSON *l = cJSON_Parse(list), *im;
    cJSON_ArrayForEach(im, l) {
      cJSON *t;
      cJSON_ArrayForEach(t, cJSON_GetObjectItem(im, "RepoTags")) {
        if (cJSON_IsString(t) && strcmp(t->valuestring, "<none>:<none>"))
          cJSON_AddItemToArray(imgs, cJSON_CreateString(t->valuestring));
      }
    }
    cJSON_Delete(l);
  }
  free(list);
  bool present = sbx_dk_image_present(e, be->image);
  cJSON_AddBoolToObject(eng, "imagePresent", present);
  if (!present) {
    char *h = xasprintf("pull or build the image '%s' on %s (docker pull %s), or set sandbox.image", be->image,
                        e->host, be->image);
    cJSON_AddItemToArray(hints, cJSON_CreateString(h));
    free(h);
  }
  return eng;
}

static void dk_doctor(const sbx_runner *self, cJSON *rep, cJSON *hints) {
  const dk_backend *be = dk_be(self);
  cJSON_AddStringToObject(rep, "backend", "docker");
  cJSON *engines = cJSON_AddArrayToObject(rep, "engines");
  int first_up = -1;
  for (int i = 0; i < be->engs.n; i++) {
    cJSON *e = engine_facts(be, &be->engs.v[i], hints);
    if (first_up < 0 && cJSON_IsTrue(cJSON_GetObjectItem(e, "reachable"))) first_up = i;
    cJSON_AddItemToArray(engines, e);
  }
  /* "engine": the first that answers (or the first), as before several. */
  cJSON *first = cJSON_GetArrayItem(engines, first_up >= 0 ? first_up : 0);
  cJSON *eng = first ? cJSON_Duplicate(first, true) : cJSON_CreateObject();
  if (first_up < 0) {
    cJSON_ReplaceItemInObject(eng, "reachable", cJSON_CreateFalse());
    if (self->setup_error && !cJSON_GetObjectItem(eng, "error"))
      cJSON_AddStringToObject(eng, "error", self->setup_error);
    cJSON_AddItemToArray(hints, cJSON_CreateString(
        "start a container engine: dockerd (apt install docker.io) or podman's API service "
        "(podman system service), or point sandbox.docker.hosts / DOCKER_HOST at one"));
  }
  cJSON_AddItemToObject(rep, "engine", eng);
  cJSON *img = cJSON_AddObjectToObject(rep, "image");
  cJSON_AddStringToObject(img, "name", be->image);
  cJSON_AddBoolToObject(img, "present", first_up >= 0 && cJSON_IsTrue(cJSON_GetObjectItem(eng, "imagePresent")));
  cJSON_AddBoolToObject(rep, "warm", self->cfg.warm);
  cJSON *ids = cJSON_AddObjectToObject(rep, "runsAs");
  cJSON_AddNumberToObject(ids, "hostUid", (double)self->host_uid);
  cJSON_AddNumberToObject(ids, "hostGid", (double)self->host_gid);
  cJSON_AddStringToObject(ids, "how", "the container's User (sandbox.uid/sandbox.gid; never 0)");
  cJSON_AddStringToObject(rep, "isolation", sbx_isolation_name(SBX_ISO_CONTAINER));
  cJSON *lim = cJSON_AddObjectToObject(rep, "limits");
  cJSON_AddStringToObject(lim, "wall", "timer: SIGTERM to the container, SIGKILL 300 ms later");
  cJSON_AddStringToObject(lim, "memory", "the container's Memory = MemorySwap (OOMKilled, or the container's "
                                         "memory cgroup's oom_kill count for a warm container, reported as oom)");
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
  int rc = http_client_new(self->loop, &be->http);
  if (rc) {
    self->setup_error = xasprintf("cannot set up the HTTP client: %s", strerror(-rc));
    return;
  }
  const char *one[] = {config ? config->docker_host : NULL, NULL};
  const char *const *hosts = config && config->docker_hosts && config->docker_hosts[0] ? config->docker_hosts
                                                                                      : one[0] ? one : NULL;
  char *why = NULL;
  int up = sbx_dk_engines_open(&be->engs, self->loop, hosts, self->cfg.max_concurrent,
                               config ? config->docker_cert_path : NULL, &why);
  be->engs.http = be->http;
  if (up) {
    self->setup_error = why;
    return;
  }
  for (int i = 0; i < be->engs.n; i++) {
    const sbx_dk_slot *s = &be->engs.v[i];
    if (s->up && !sbx_dk_image_present(&s->eng, be->image)) {
      self->note = xasprintf("the image '%s' is not on the container engine %s: runs there fail until it is "
                             "pulled (a request's environment pulls it) or built",
                             be->image, s->eng.host);
      break;
    }
  }
}

static bool dk_has_lang(const sbx_runner *self, sbx_lang lang) {
  (void)self, (void)lang;
  return true; /* whatever the image holds: a missing interpreter fails the run */
}

static bool dk_fits(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want) {
  (void)self;
  /* A warm container fixed its memory, pids, CPU and disk limits at
   * create; the wall time and the output cap are the runner's. */
  return made->memory_mb == want->memory_mb && made->pids == want->pids &&
         made->cpu_seconds == want->cpu_seconds && made->disk_mb == want->disk_mb;
}

static sbx_run *dk_run_new(sbx_runner *self) {
  (void)self;
  dk_run *d = xcalloc(1, sizeof *d);
  d->eng = -1;
  return &d->run;
}

static void dk_run_free(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  free(d->id);
  free(d->exec_id);
  free(d->exec_body);
  free(d);
}

/* Puts d on an engine. Returns 0, or -EAGAIN with run->error set. */
static int place(dk_run *d) {
  dk_backend *be = dk_be(d->run.runner);
  char *why = NULL;
  int i = sbx_dk_engines_pick(&be->engs, &why);
  if (i < 0) {
    free(d->run.error);
    d->run.error = why;
    return -EAGAIN;
  }
  d->eng = i;
  be->engs.v[i].nlive++;
  return 0;
}

static int dk_prepare(sbx_run *run) {
  dk_run *d = dk_run_of(run);
  uv_timer_init(run->runner->loop, &d->kick);
  d->kick.data = run;
  d->kick_open = true;
  run->open_handles++;
  if (run->state != SBX__WARM) return 0;
  /* Ahead of any request: a sleeping container with the default limits. */
  dk_backend *be = dk_be(run->runner);
  int rc = place(d);
  if (rc) {
    sbx__close_handle(run, (uv_handle_t *)&d->kick, &d->kick_open);
    d->cleaned = true;
    return rc;
  }
  d->warm = true;
  cJSON *body = sbx_dk_warm_body(&run->limits, be->image, (long)run->runner->host_uid, (long)run->runner->host_gid,
                                 engine_of(d)->podman);
  char *text = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  char *path = xasprintf("/containers/create?name=%s", run->name);
  rc = call(d, "POST", path, text, CREATE_TIMEOUT_MS, on_created, NULL, NULL, &d->op);
  free(path);
  free(text);
  if (rc) {
    run->error = xstrdup("cannot ask the container engine");
    be->engs.v[d->eng].nlive--;
    d->eng = -1;
    d->cleaned = true;
    sbx__close_handle(run, (uv_handle_t *)&d->kick, &d->kick_open);
    return -EIO;
  }
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
  cJSON *body = NULL;
  if (folders)
    err = xstrdup("environments (a venv, node_modules, packages) run on the bwrap backend only; the docker "
                  "backend runs programs in an image (sandbox.image, or an environment {kind: \"image\"}): "
                  "install the packages there, or set sandbox.backend bwrap");
  else if (d->warm)
    body = sbx_dk_exec_body(run->lang, run->code, run->code_len, run->stdin_data, run->stdin_len,
                            (long)run->runner->host_uid, (long)run->runner->host_gid, &err);
  else if (d->eng >= 0 || place(d) == 0)
    body = sbx_dk_create_body(run->lang, &run->limits, d->image, run->code, run->code_len, run->stdin_data,
                              run->stdin_len, (long)run->runner->host_uid, (long)run->runner->host_gid,
                              engine_of(d)->podman, &err);
  else
    err = xstrdup(run->error);
  if (!body) {
    d->want_kill = true; /* nothing to run: the kick reports the failure from the loop */
    free(run->error);
    run->error = err;
    kick(d);
    return;
  }
  char *text = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  if (d->warm) {
    /* Exec'd as soon as the container is up (it may still be starting). */
    d->exec_body = text;
    kick(d); /* from the loop, also when the container already ended */
    return;
  }
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
  if (d->eng >= 0) dk_be(run->runner)->engs.v[d->eng].nlive--;
  if (d->kick_open) uv_timer_stop(&d->kick);
  if (d->attach) http_request_cancel(d->attach);
  if (d->op) http_request_cancel(d->op);
  if (d->wait) http_request_cancel(d->wait);
  release(d);
}

static void close_h_closed(uv_handle_t *h) {
  dk_backend *be = container_of((uv_timer_t *)h, dk_backend, close_h);
  sbx_runner *self = be->runner;
  sbx_dk_engines_close(&be->engs);
  free(be->image);
  free(be);
  self->be = NULL;
  sbx__runner_backend_closed(self);
}

static void finish_close(dk_backend *be) {
  http_client_free(be->http);
  be->http = NULL;
  be->engs.http = NULL;
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
    .cleanup = dk_cleanup, .run_free = dk_run_free, .close = dk_close, .doctor = dk_doctor, .image = dk_image,
    .default_image = dk_default_image,
};
