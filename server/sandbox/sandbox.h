/* The sandbox backend: runs untrusted programs under bubblewrap + seccomp +
 * a per-run cgroup (or rlimits), asynchronously on a libuv loop. */
#ifndef CRUCIBLE_SANDBOX_H
#define CRUCIBLE_SANDBOX_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "defaults.h"
#include "lang.h"

/* ---- limits ------------------------------------------------------------ */

/* Every field is a positive number; 0 in a request means "the runner's
 * default". */
typedef struct sbx_limits {
  long timeout_ms;   /* wall time: SIGTERM, then SIGKILL after a grace */
  long memory_mb;    /* cgroup memory limit (RLIMIT_DATA without cgroup) */
  long cpu_seconds;  /* RLIMIT_CPU per process: SIGXCPU, SIGKILL one second later */
  long pids;         /* cgroup pids.max (RLIMIT_NPROC without cgroup) */
  long output_bytes; /* per stream: the head is kept, the rest dropped; 4x in total kills */
  long disk_mb;      /* size of each writable tmpfs (scratch, /tmp, /dev/shm) and RLIMIT_FSIZE */
} sbx_limits;

/* Fills the settings' defaults (config/defaults.h: 10 s, 512 MiB, 10 s CPU,
 * 64 pids, 1 MiB, 64 MiB). */
void sbx_limits_default(sbx_limits *self);
/* The built-in ceilings a request may never exceed. */
void sbx_limits_max(sbx_limits *self);
/* Replaces zero fields of self with base's. */
void sbx_limits_fill(sbx_limits *self, const sbx_limits *base);
/* Reads {timeoutMs, memoryMb, cpuSeconds, pids, outputBytes, diskMb} from obj
 * (NULL or missing keys leave fields unchanged). Returns 0, or -EINVAL with
 * *err (caller frees) naming the bad key when a value is not a positive
 * integer or exceeds max (NULL: no ceiling). */
int sbx_limits_from_json(sbx_limits *self, const cJSON *obj, const sbx_limits *max, char **err);
cJSON *sbx_limits_to_json(const sbx_limits *self);

/* ---- languages --------------------------------------------------------- */

/* The sandbox's languages are the registry's (util/lang.h): sbx_lang is
 * lang_id under another name, SBX_LANG_* are its values. */
typedef lang_id sbx_lang;
#define SBX_LANG_PYTHON LANG_PYTHON
#define SBX_LANG_JAVASCRIPT LANG_JAVASCRIPT
#define SBX_LANG_BASH LANG_BASH
#define SBX_LANG_COUNT LANG_COUNT

/* lang_parse (a canonical name or an alias): returns 0 or -EINVAL. */
int sbx_lang_parse(const char *name, sbx_lang *out);
/* The canonical name ("python", "javascript", "bash"); "unknown" otherwise. */
const char *sbx_lang_name(sbx_lang lang);
/* lang_from_path (.py .js .mjs .cjs .sh .bash): returns 0 or -ENOENT. */
int sbx_lang_from_path(const char *path, sbx_lang *out);
/* The script's file name inside the sandbox's scratch dir ("main.py", ...). */
const char *sbx_lang_script(sbx_lang lang);

/* ---- results ----------------------------------------------------------- */

typedef enum sbx_outcome {
  SBX_OK,        /* exit status 0 */
  SBX_ERROR,     /* non-zero exit, a signal, the output cap, or the sandbox failed to start */
  SBX_TIMEOUT,   /* wall time or CPU time */
  SBX_OOM,       /* memory limit */
  SBX_CANCELLED, /* sbx_run_cancel or the runner closing */
  SBX_REJECTED,  /* never ran: the checks rejected the program (sbx_result_rejected) */
} sbx_outcome;

/* Which limit ended the run (or was hit); bit flags for limits_hit. */
typedef enum sbx_limit_kind {
  SBX_LIMIT_NONE = 0,
  SBX_LIMIT_WALL = 1 << 0,
  SBX_LIMIT_CPU = 1 << 1,
  SBX_LIMIT_MEMORY = 1 << 2,
  SBX_LIMIT_PIDS = 1 << 3,
  SBX_LIMIT_OUTPUT = 1 << 4,
  SBX_LIMIT_DISK = 1 << 5,
} sbx_limit_kind;

/* How the resource limits are enforced for a run. */
typedef enum sbx_isolation {
  SBX_ISO_NONE,      /* nothing ran */
  SBX_ISO_CGROUP_V2, /* memory + pids in a cgroup v2 child, rlimits for CPU/files */
  SBX_ISO_CGROUP_V1, /* memory + pids v1 hierarchies, rlimits for CPU/files */
  SBX_ISO_RLIMIT,    /* rlimits only: RLIMIT_DATA for memory, RLIMIT_NPROC for processes */
  SBX_ISO_CONTAINER, /* a container of a Docker-API engine: its cgroup, namespaces and ulimits */
} sbx_isolation;

/* A runtime error mapped onto the user's code. */
typedef struct sbx_diag {
  int line;      /* 0-based, line offset applied */
  int column;    /* 0-based, -1 when unknown */
  char *message; /* owned */
} sbx_diag;

typedef struct sbx_result {
  sbx_outcome outcome;
  int exit_code;          /* the program's exit status; -1 when it died of a signal or never ran */
  int signal;             /* the signal that ended it, 0 if none */
  const char *out;        /* stdout head, NUL-terminated, out_len bytes (may hold NULs) */
  size_t out_len;
  const char *err;        /* stderr head */
  size_t err_len;
  bool truncated;         /* some output was dropped */
  long long duration_ms;  /* spawn to exit */
  long long cpu_ms;       /* user+system of the whole sandbox; -1 unknown */
  long long max_rss_kb;   /* peak memory of the sandbox's cgroup; -1 unknown (rlimit mode) */
  unsigned limit;         /* the sbx_limit_kind that ended the run, or SBX_LIMIT_NONE */
  unsigned limits_hit;    /* every limit seen reached, bit flags */
  sbx_isolation isolation;
  sbx_lang lang;
  sbx_limits limits;      /* the limits applied */
  long host_uid, host_gid; /* the host ids the program ran as; -1 when nothing ran */
  const char *unenforced; /* limits that hold only partly in this mode, and why (NULL: none) */
  const char *error;      /* set when the sandbox itself could not run: what to install/change */
  const sbx_diag *diags;  /* parsed from stderr (see traceback.h) */
  int ndiags;
} sbx_result;

const char *sbx_outcome_name(sbx_outcome o);
const char *sbx_isolation_name(sbx_isolation iso);
/* The name of one limit bit ("wall", "cpu", "memory", "pids", "output", "disk"), NULL for none. */
const char *sbx_limit_name(unsigned kind);

/* The brief's RunResult object: outcome, exitCode, signal, stdout, stderr,
 * truncated, durationMs, cpuMs, maxRssKb, diagnostics, plus limit,
 * limitsHit, limits, isolation, hostUid, hostGid, unenforced, warning when
 * a limit is not enforced, language, and error. Every RunResult, run or
 * rejected, goes through it. Caller owns the returned tree. */
cJSON *sbx_result_to_json(const sbx_result *self);

/* Fills self as the result of a program that never ran because the checks
 * rejected it: outcome SBX_REJECTED, no exit code or signal, no output,
 * nothing measured (0 ms, 0 CPU ms, 0 KiB), no limit hit, isolation
 * SBX_ISO_NONE, no host ids, and the language and limits it would have
 * run with. It points to nothing. */
void sbx_result_rejected(sbx_result *self, sbx_lang lang, const sbx_limits *limits);

/* A heap copy of a result that owns everything it points to (output,
 * diagnostics, notes), for keeping a result past on_done. NULL is copied
 * as NULL. Free it with sbx_result_free (NULL is a no-op); a result from
 * anywhere else must never be given to sbx_result_free. */
sbx_result *sbx_result_dup(const sbx_result *self);
void sbx_result_free(sbx_result *self);

/* ---- runner ------------------------------------------------------------ */

/* Which backend makes the sandboxes. */
typedef enum sbx_backend_kind {
  SBX_BACKEND_BWRAP = 0, /* bubblewrap + seccomp + a cgroup per run, on this host */
  SBX_BACKEND_DOCKER,    /* a container per run on a Docker Engine API (Docker, Podman) */
} sbx_backend_kind;

typedef struct sbx_config {
  sbx_backend_kind backend;
  const char *image;       /* docker: the image programs run in (NULL: SBX_DOCKER_IMAGE_DEFAULT) */
  const char *docker_host; /* docker: "unix:///path" or a socket path; NULL: $DOCKER_HOST, then
                              /var/run/docker.sock, $XDG_RUNTIME_DIR/podman/podman.sock,
                              /run/podman/podman.sock */
  const char *const *docker_hosts; /* docker: several engines (NULL-terminated; each as docker_host, or
                              "tcp://HOST:PORT" with TLS, optionally "?max=N" runs at once); runs go
                              to the one with free capacity. NULL or empty: docker_host alone */
  const char *docker_cert_path; /* docker: the folder of ca.pem, cert.pem, key.pem for tcp:// engines
                              (TLS verified); NULL: $DOCKER_CERT_PATH (with DOCKER_TLS_VERIFY set),
                              then ~/.docker */
  int max_concurrent;   /* runs at once; the rest queue (default 4) */
  int max_queued;       /* queued runs beyond which sbx_run_start returns -EAGAIN (default 1024) */
  int max_queued_per_owner; /* the same for one owner (sbx_request.owner; default 64) */
  sbx_limits defaults;  /* zero fields: built-in defaults */
  sbx_limits max;       /* ceilings; zero fields: built-in ceilings */
  const char *bwrap;    /* path of bwrap; NULL: searched in PATH */
  const char *interpreters[SBX_LANG_COUNT]; /* absolute paths under /usr; NULL: searched */
  bool no_cgroup;       /* force rlimit-only mode (tests, or a host whose cgroups misbehave) */
  bool warm;            /* keep a pool of sandboxes made ahead (long-lived runners: the server) */
  bool no_prestart;     /* warm sandboxes without a started interpreter (benchmarks: the old way) */
  bool seccomp_cache;   /* keep the built seccomp program in $XDG_CACHE_HOME/crucible/seccomp.bpf
                           and load it from there while its key matches (seccomp_cache.h);
                           false: built on every start */
  bool one_shot;        /* one run, then the process ends (`crucible run`): no cgroup pool made
                           ahead (the run makes its own); the sweep of what dead crucible
                           processes left still runs (a stranded sandbox is killed by the
                           next crucible, whichever it is) */
  /* The host uid/gid programs run as when the server runs as root (never
   * 0: a sandboxed uid 0 is host root to every check made on kuids, such as
   * /proc/sys). 0: SBX_HOST_ID_DEFAULT. An unprivileged server's programs
   * run as its own uid, whatever these say. */
  long host_uid, host_gid;
} sbx_config;

#define SBX_DOCKER_IMAGE_DEFAULT CFG_DEFAULT_SANDBOX_IMAGE
/* nobody/nogroup on Debian: owns no files, holds no privileges. */
#define SBX_HOST_ID_DEFAULT CFG_DEFAULT_SANDBOX_HOST_ID
/* How many past starts the queue's fairness remembers. */
#define SBX_SERVED_RING 32
/* Buffer size for reading a sandbox's pipes. */
#define SBX_SLAB_SIZE 65536

typedef struct sbx_run sbx_run;
typedef struct sbx_runner sbx_runner;

typedef struct sbx_callbacks {
  /* Output as it arrives (only the kept head: at most output_bytes per
   * stream). stream is 1 (stdout) or 2 (stderr). May be NULL. */
  void (*on_output)(void *ud, int stream, const char *bytes, size_t len);
  /* Called exactly once per started run, never from inside sbx_run_start or
   * sbx_run_cancel. The result and everything it points to are valid only
   * during the call; the run handle is invalid after it returns. */
  void (*on_done)(void *ud, const sbx_result *result);
} sbx_callbacks;

/* ---- environments ------------------------------------------------------ */

#define SBX_ENV_MAX_BINDS 8
#define SBX_ENV_MAX_VARS 8

/* What an environment (docs/environments.md) adds to a sandbox. Paths are
 * absolute and canonical; a bind's source must be reachable by the host uid
 * programs run as. Borrowed in a request: sbx_run_start copies it. */
typedef struct sbx_env {
  const char *id;    /* names the environment for the layers above (module index); the sandbox ignores it */
  const char *stamp; /* changes when the environment's content changes; the sandbox ignores it */
  const char *binds[SBX_ENV_MAX_BINDS + 1];  /* host folders shown read-only at their own paths; NULL ends */
  const char *interp; /* run this interpreter (a venv's bin/python) instead of the runner's; NULL: the runner's */
  const char *vars[2 * SBX_ENV_MAX_VARS + 1]; /* NAME, VALUE pairs set after the defaults; NULL ends */
  const char *image; /* a container image (name or ID) to run in instead of the runner's default
                        (sandbox.image); only a backend that runs images takes it (sbx_image_ensure),
                        and then with no binds, interp or vars; NULL: the default */
  /* For an environment's installer only, never for a program: */
  bool network;           /* keep the host's network namespace (to reach a package index) */
  const char *write_src;  /* a host folder bound writable ... */
  const char *write_dest; /* ... at this path (NULL: write_src) */
} sbx_env;

/* A deep copy on the heap (NULL for NULL); free with sbx_env_free. */
sbx_env *sbx_env_dup(const sbx_env *self);
void sbx_env_free(sbx_env *self);

typedef struct sbx_request {
  const char *language;   /* "python" | "javascript" | "bash" (NULL: LANG_DEFAULT, python) */
  const char *code;       /* the program text (borrowed; copied at start) */
  size_t code_len;
  const char *stdin_data; /* optional bytes fed to the program's stdin */
  size_t stdin_len;
  sbx_limits limits;      /* zero fields: the runner's defaults */
  int line_offset;        /* added to diagnostic lines (code was a selection starting there) */
  const void *owner;      /* who asked (a session): queued runs are shared fairly between owners */
  const sbx_env *env;     /* what the program can import beyond the system (NULL: the system only) */
  /* Crucible's own program (the module probe), not a client's: the user's
   * limits are not its ceiling, and its limits are at least the built-in
   * defaults, so a short sandbox.timeoutMs cannot leave imports unchecked. */
  bool own;
} sbx_request;

struct sbx_runner {
  /* All private (server/sandbox/internal.h). */
  uv_loop_t *loop;
  sbx_config cfg;
  const struct sbx__backend *backend; /* makes and drives the sandboxes (bwrap) */
  void *be;               /* the backend's own state */
  char *setup_error;      /* why no run can start (bwrap missing, ...) */
  char *note;             /* why runs get less enforcement (no cgroup, ...), for results and doctor */
  sbx_isolation iso;      /* how runs' limits are enforced */
  uid_t host_uid;         /* what sandboxed programs run as on the host */
  gid_t host_gid;
  bool set_ids;           /* root server: the sandbox is started as host_uid/host_gid */
  sbx_run *live;          /* running (spawned) runs */
  sbx_run *queue_head, *queue_tail;
  const void *served[SBX_SERVED_RING]; /* owners of the last runs started from the queue */
  unsigned nserved;
  int nlive, nqueued;
  sbx_run *warm;          /* the warm pool: sandboxes prepared ahead (python's and node's with
                             their interpreter started), waiting for a program; linked by next */
  int nwarm[SBX_LANG_COUNT];
  struct sbx_warm_demand {
    unsigned long long bucket_t, peak_t, last_t; /* ms: this second's start, the peak's, the last request's */
    int bucket_n, peak;    /* requests in this second; the most in one second lately */
  } demand[SBX_LANG_COUNT]; /* recent requests per language: sizes the pool (warm.c) */
  uv_timer_t warm_timer;  /* refills and trims the pool, off the critical path */
  int warm_failures;
  int closing_parts;      /* the warm timer and the backend, while closing */
  int closing;
  void (*close_cb)(sbx_runner *);
  int pending_handles;    /* runs allocated and not yet freed */
};

/* Binds a runner to loop, probes bwrap, interpreters and cgroups, and sweeps
 * stale cgroups and sandboxes left by crucible processes that died. config
 * may be NULL. Returns 0, or a negative errno when the runner cannot even be
 * set up; a missing bwrap is NOT an error here: runs then finish with
 * outcome "error" and result->error saying what to install. */
int sbx_runner_init(sbx_runner *self, uv_loop_t *loop, const sbx_config *config);
/* Kills every live run (their on_done reports "cancelled"), drops the queue
 * (same), removes every cgroup, closes the runner's handles, then calls cb
 * (may be NULL) from the loop. Keep running the loop until cb. */
void sbx_runner_close(sbx_runner *self, void (*cb)(sbx_runner *));
/* A human-readable note when runs cannot start or run with reduced
 * enforcement; NULL when everything is available. Borrowed. */
const char *sbx_runner_problem(const sbx_runner *self);
/* The isolation mode runs get. */
sbx_isolation sbx_runner_isolation(const sbx_runner *self);
/* The host uid and gid sandboxed programs run as. */
void sbx_runner_host_ids(const sbx_runner *self, long *uid, long *gid);
/* Which limits hold only partly in rlimit mode, and why; NULL with a
 * cgroup. Static string. */
const char *sbx_isolation_unenforced(sbx_isolation iso);

/* Starts (or queues) a run. On 0, *out (may be NULL) receives the handle
 * and cb->on_done will be called exactly once. Returns -EINVAL (bad
 * language or limits above the ceilings: nothing is called), -EAGAIN (the
 * queue, or this owner's share of it, is full), -ESHUTDOWN (runner
 * closing). When a slot frees, the queued run of the owner with the fewest
 * live runs starts (the oldest among equals): one owner's backlog never
 * starves another's. */
int sbx_run_start(sbx_runner *runner, const sbx_request *req, const sbx_callbacks *cb, void *ud,
                  sbx_run **out);
/* Kills the sandbox at once (or drops the queued run); on_done follows with
 * outcome "cancelled". No-op once on_done has been called... which also
 * invalidates the handle, so callers drop it in on_done. */
void sbx_run_cancel(sbx_run *run);

/* ---- images (a container-engine backend) ------------------------------- */

typedef struct sbx_image_wait sbx_image_wait;

typedef struct sbx_image_cbs {
  /* One line of the engine's pull progress ("python:3.12-slim: Downloading
   * 3f1a…") and the share of bytes fetched so far (0-100, -1: not known).
   * May be NULL. */
  void (*progress)(void *ud, const char *line, int percent);
  /* The pull ended: id (the image's ID, borrowed for the call) or NULL with
   * error. Exactly once per wait unless cancelled; never from inside
   * sbx_image_ensure. */
  void (*done)(void *ud, const char *id, const char *error);
} sbx_image_cbs;

/* The image the runner's programs run in when a request names none
 * (sandbox.image); NULL when its sandboxes are not containers (bwrap). */
const char *sbx_runner_image(const sbx_runner *self);
/* Makes sure image (NULL: the default) is on the engine. With cbs: returns
 * 0 and works on the loop (the engine is asked whether it has the image,
 * which it pulls when it has none, with progress); done follows with the
 * image's ID or the error; *wait may cancel it. Without cbs (only asking:
 * live diagnostics): asks the engine at once, blocking (milliseconds on a
 * live engine, at most a few seconds on a stuck one), and returns 1 with
 * *id (caller frees) when it is there, -ENOENT with *err when not, never
 * pulling. -ENOTSUP when the backend runs no images; another -errno with
 * *err (caller frees) when the engine cannot be asked. A pull that cannot
 * happen (no registry reachable, an unknown name) ends in done's error,
 * which says how to get the image instead. */
int sbx_image_ensure(sbx_runner *self, const char *image, const sbx_image_cbs *cbs, void *ud, char **id,
                     sbx_image_wait **wait, char **err);
/* Drops a pull's wait: its cbs are not called any more, the pull stops.
 * Only before done was called. */
void sbx_image_wait_cancel(sbx_image_wait *wait);

/* ---- doctor ------------------------------------------------------------ */

/* The report (taken by the callee). */
typedef void (*sbx_doctor_fn)(void *ud, cJSON *report);
/* What works on this machine for `runner`, the one programs really use:
 * bwrap path and version, seccomp, cgroup version and controllers and how,
 * which limits are enforced and how, the host uid/gid programs run as, and
 * hints, written at once; then one trivial program per language goes
 * through the runner's queue (proving user namespaces, mounts, seccomp,
 * and giving the interpreters' versions). cb runs once, from the loop,
 * when the last probe has ended (closing the runner ends them). Returns 0,
 * or a negative error with nothing called. */
int sbx_doctor_start(sbx_runner *runner, sbx_doctor_fn cb, void *ud);

#endif
