/* What the runner's files share and no other folder sees: a run's state,
 * the runner's internal calls, the contract a sandbox backend implements,
 * and the bwrap backend's own state (second naming tier: sbx__). */
#ifndef CRUCIBLE_SANDBOX_INTERNAL_H
#define CRUCIBLE_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "cgroup.h"
#include "common.h"
#include "dbuf.h"
#include "sandbox.h"
#include "verdict.h"

/* ---- a run (runner.c, runio.c, warm.c) ---------------------------------- */

/* QUEUED: in runner->queue_head, or never started and finishing from the
 * loop (SBX__T_DEFER). RUNNING: in runner->live, its sandbox prepared.
 * FINISHED: on_done called, its handles closing. WARM: prepared ahead with
 * the default limits, waiting for a request; only in runner->warm (the
 * pool, linked by next). */
typedef enum sbx__run_state { SBX__QUEUED, SBX__RUNNING, SBX__FINISHED, SBX__WARM } sbx__run_state;

/* What the run's timer does when it fires: finish a run that never started,
 * end the wall time (SIGTERM), end the grace (kill), end the drain. */
typedef enum sbx__timer_phase { SBX__T_NONE, SBX__T_DEFER, SBX__T_WALL, SBX__T_GRACE, SBX__T_DRAIN } sbx__timer_phase;

/* The part of a run every backend shares. A backend allocates it inside its
 * own run struct (sbx__backend.run_new) and recovers that with
 * container_of. */
struct sbx_run {
  sbx_runner *runner;
  sbx_run *next, *prev;     /* in runner->queue_head/tail or runner->live */
  sbx_callbacks cb;
  void *ud;
  sbx__run_state state;
  sbx_lang lang;
  sbx_limits limits;
  int line_offset;
  const void *owner;
  char *code, *stdin_data;  /* the request's, copied (code NUL-terminated) */
  sbx_env *env;             /* the request's environment (a copy), NULL: the system only */
  size_t code_len, stdin_len;
  char *name;               /* crucible-<pid>-<seq>: names its cgroup */

  bool bound;               /* a request is attached: limits applied, wall timer running */
  uv_timer_t timer;         /* one timer, its job in phase */
  sbx__timer_phase phase;
  int open_handles;         /* the timer's and the backend's; the run is freed at 0 */
  sbx_isolation iso;        /* how its limits are enforced (set by the backend's start) */

  dbuf obuf, ebuf;          /* the kept heads of stdout and stderr */
  unsigned long long total_out;
  bool truncated;
  bool program_ran;         /* the backend saw the program itself run (not only the sandbox) */
  bool exited;              /* the sandbox is gone (sbx__run_exited) */
  bool io_done;             /* its output streams have all ended (sbx__run_io_done) */
  long long exit_status;
  int term_signal;
  unsigned killed_for;      /* SBX_LIMIT_WALL / _OUTPUT / _MEMORY when the runner killed it */
  bool cancelled;
  unsigned long long t0, t1; /* bound, exited (ms) */
  char *error;              /* the sandbox itself failed: why, and what to do */
};

/* runner.c */

/* sbx_runner_init with a given backend (the unit tests pass a fake one). */
int sbx__runner_init_with(sbx_runner *self, uv_loop_t *loop, const sbx_config *config,
                          const struct sbx__backend *backend);
/* A process-wide sequence number for names (crucible-<pid>-<seq>): two
 * runners in one process (the server's and the doctor's) never collide. */
unsigned long long sbx__next_seq(void);
/* A new QUEUED run of lang with limits lim: its buffers, its timer, its
 * name; no request yet. Counted in runner->pending_handles until freed. */
sbx_run *sbx__run_alloc(sbx_runner *self, sbx_lang lang, const sbx_limits *lim);
/* runner->live: add a run (it becomes RUNNING), remove one. */
void sbx__live_add(sbx_runner *self, sbx_run *run);
void sbx__live_del(sbx_runner *self, sbx_run *run);
/* Starts queued runs while there are free slots, the fairest first. */
void sbx__pump(sbx_runner *self);
/* Finishes closing once nothing is left (no run allocated), from the loop. */
void sbx__runner_maybe_closed(sbx_runner *self);
/* A backend finished its close (sbx__backend.close). */
void sbx__runner_backend_closed(sbx_runner *self);

/* runio.c: a run's life once started, the same for every backend. */

/* Attaches a request to a prepared run: the backend's start, then the wall
 * timer. The run is RUNNING and in runner->live. */
void sbx__run_bind(sbx_run *run);
/* n bytes of stream (1 stdout, 2 stderr) arrived: the head is kept and
 * streamed to on_output; beyond HARD_OUTPUT_FACTOR x outputBytes the run is
 * killed (SBX_LIMIT_OUTPUT). */
void sbx__run_output(sbx_run *run, int stream, const char *data, size_t n);
/* The sandbox is gone: status is its exit status, sig the signal that
 * ended it (0 if none). A WARM run is discarded (a failure, unless the
 * runner is closing); a running one finishes once its output has ended
 * (sbx__run_io_done), or after a drain delay. */
void sbx__run_exited(sbx_run *run, long long status, int sig);
/* Every output stream of the run has ended. */
void sbx__run_io_done(sbx_run *run);
/* The backend's sandbox took its time to come up (a container engine's
 * create and start) and the program begins only now: its wall time and
 * duration count from here. The wait before is bounded by the wall time
 * already running. No-op once the wall time is up or the run exited. */
void sbx__run_program_started(sbx_run *run);
/* The runner stops a running run at one of its limits (SBX_LIMIT_WALL, or
 * SBX_LIMIT_MEMORY from the memory watch): killed_for is set, the backend's
 * term asks the program to stop (Python: SIGABRT, so faulthandler says
 * where it was), and GRACE_MS later it is killed. No-op once it exited, was
 * cancelled or already stopped. */
void sbx__run_stop_for(sbx_run *run, unsigned limit);
/* Kills a running run (no-op otherwise, and once it exited). */
void sbx__run_kill(sbx_run *run);
/* Records why the sandbox failed (takes error, replacing any earlier one)
 * and kills the run. */
void sbx__run_fail(sbx_run *run, char *error);
/* Reports the result (on_done), closes the run and starts queued runs. A
 * no-op for a finished run. Never call from inside sbx_run_start or
 * sbx_run_cancel: use sbx__run_defer_finish there. */
void sbx__run_finish(sbx_run *run);
/* Finishes a run that never started, from the loop. */
void sbx__run_defer_finish(sbx_run *run);
/* uv_close(h) when *open, clearing it; the run is freed (its common part,
 * then sbx__backend.run_free) when its last handle has closed. h->data
 * must be run. */
void sbx__close_handle(sbx_run *run, uv_handle_t *h, bool *open);

/* warm.c: the warm pool, sandboxes prepared ahead (sbx_config.warm). */

/* Brings the pool to its wanted size a moment later, from the loop (when
 * configured). */
void sbx__warm_schedule(sbx_runner *self);
/* A request for lang in the system environment arrived at now (ms). */
void sbx__warm_note(sbx_runner *self, sbx_lang lang, unsigned long long now);
/* How many warm sandboxes of lang the pool wants at now: one python
 * sandbox always, one of another language asked for in the last minute,
 * and up to WARM_POOL_MAX as many as were asked for in the busiest second
 * of the last 30 s. Pure: reads runner->demand only. */
int sbx__warm_want(const sbx_runner *self, sbx_lang lang, unsigned long long now);
/* A warm sandbox that can serve a request for lang with limits lim right
 * now (nothing queued, a free slot), taken out of the pool (a refill is
 * scheduled); NULL otherwise: the request takes the cold path. */
sbx_run *sbx__warm_take(sbx_runner *self, sbx_lang lang, const sbx_limits *lim);
/* Closes a warm sandbox that was never used (its sandbox dead, or killed
 * and reaped by the backend's cleanup), taking it out of the pool, and
 * refills a second later, unless the runner is closing or too many died. */
void sbx__warm_discard(sbx_run *run);
/* Runner closing: stops making warm sandboxes and discards those made. */
void sbx__warm_close(sbx_runner *self);

/* prelude.c: launchers of pre-started interpreters. */

/* Whether lang's interpreter can be started ahead of its program. */
bool sbx__prelude_has(sbx_lang lang);
/* Whether lang's launcher takes the program's text from a memfd of its
 * own (text_fd below), filled before fd is closed, rather than from fd. */
bool sbx__prelude_text_fd(sbx_lang lang);
/* NAME, VALUE pairs (NULL-terminated) the started interpreter's
 * environment needs for its launcher to run, or NULL. */
const char *const *sbx__prelude_env(sbx_lang lang);
/* Whether a pre-started interpreter of lang runs code exactly as a cold
 * one would (false: take the cold path). */
bool sbx__prelude_accepts(sbx_lang lang, const char *code, size_t len);
/* The launcher that runs as lang's script (sbx_lang_script), reads the
 * program from descriptor fd to end of file (or, when
 * sbx__prelude_text_fd, waits for fd's end of file and reads the program
 * from text_fd) and then runs it exactly as the interpreter runs a script.
 * Caller frees; NULL when !sbx__prelude_has. */
char *sbx__prelude_script(sbx_lang lang, int fd, int text_fd);

/* ---- the backend contract ----------------------------------------------- *
 *
 * A backend makes and drives sandboxes; the runner above it owns the
 * queue, fairness, limits and their ceilings, the wall/grace/drain timers,
 * the output caps, the verdict and the RunResult, and does not know which
 * backend it drives. Every op runs on the loop's thread. One run goes
 *
 *   run_new → prepare → (WARM: waits for a request) → start
 *     → the backend reports sbx__run_output, sbx__run_exited, sbx__run_io_done
 *   → observe (if it ran) → cleanup → run_free (after its last handle closed)
 *
 * with term and kill between start and its exit, and cleanup alone for a
 * run that never prepared. Preparing may finish after prepare returned
 * (bwrap: the child's pid arrives later on its status fd; a container
 * engine answers over HTTP): start then lets the program run as soon as
 * both are done. A failure after prepare returned 0 goes through
 * sbx__run_fail, and the sandbox's end, however it came, through
 * sbx__run_exited (a WARM one that dies is then discarded). Output, the
 * end of output and the exit are reported from the backend's own
 * callbacks on the loop, never from inside an op the runner called (kill
 * does not report the exit: the run would finish inside sbx_run_cancel).
 * A backend never changes the runner's lists; it may read runner->live
 * and runner->warm. */
typedef struct sbx__backend {
  const char *name; /* "bwrap" */
  /* Sets up the backend on a runner being initialised (self->cfg, host
   * ids and loop are set; config is the caller's, may be NULL). Allocates
   * self->be. Never fails: when no run can start, sets self->setup_error
   * (what to install or change); when runs get less enforcement than they
   * could, sets self->note; both runner-owned strings. Sets self->iso. */
  void (*init)(sbx_runner *self, const sbx_config *config);
  /* Whether runs of lang can be prepared at all (no warm sandbox otherwise). */
  bool (*has_lang)(const sbx_runner *self, sbx_lang lang);
  /* Whether a sandbox prepared with limits made serves a request for want:
   * whatever prepare fixed is the same for both. */
  bool (*fits)(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want);
  /* A zeroed run inside the backend's own run struct. Aborts on OOM. */
  sbx_run *(*run_new)(sbx_runner *self);
  /* Makes run's sandbox (lang, limits and name are set) up to the point
   * where it needs the program: may happen before any request (WARM), so
   * uses nothing of the request; a WARM run's handles must not keep the
   * loop alive before start. Returns 0, or a negative errno with
   * run->error set and nothing left running (its handles closing). */
  int (*prepare)(sbx_run *run);
  /* Gives the bound request (stdin, program, limits) to the prepared
   * sandbox, sets run->iso, and lets the program run. */
  void (*start)(sbx_run *run);
  /* Asks every process of the sandbox to stop (the wall time is up). */
  void (*term)(sbx_run *run);
  /* Kills the sandbox now, or as soon as it can be killed without
   * stranding anything; its exit follows through sbx__run_exited. Only
   * called for a RUNNING run that has not exited. */
  void (*kill)(sbx_run *run);
  /* For a run that ran, when it finishes: fills what only the backend
   * observed into f (in_cgroup, oom_kills, peak_bytes, cpu_ns, pids_max;
   * they come in as "unknown") and, when the sandbox failed before the
   * program ran and nothing else explains it, sets run->error to why. */
  void (*observe)(sbx_run *run, sbx_facts *f);
  /* Closes whatever the backend holds for run (through sbx__close_handle
   * for its handles). A sandbox still alive (an unused warm one) is killed
   * and reaped first. Safe on a run that never prepared, once. */
  void (*cleanup)(sbx_run *run);
  /* Frees run (what run_new returned) after its last handle closed and its
   * common part was freed. */
  void (*run_free)(sbx_run *run);
  /* The runner is closing and no run is left: drops what was made ahead,
   * closes the backend's handles, frees self->be, then calls
   * sbx__runner_backend_closed(self) from a close callback. */
  void (*close)(sbx_runner *self);
  /* The doctor's facts of a backend that runs programs elsewhere (its
   * engines, image, ids, how limits hold), written into rep with hints; may
   * block briefly (the doctor is no run's path). NULL: the host's own
   * sandbox, which doctor.c describes itself (bwrap). */
  void (*doctor)(const sbx_runner *self, cJSON *rep, cJSON *hints);
  /* Optional (NULL: the backend runs no images, and refuses a request's
   * sbx_env.image): sbx_image_ensure and the default image. */
  int (*image)(sbx_runner *self, const char *image, const sbx_image_cbs *cbs, void *ud, char **id,
               sbx_image_wait **wait, char **err);
  const char *(*default_image)(const sbx_runner *self);
} sbx__backend;

/* The backend of each sbx_backend_kind: a new backend is one more entry
 * (and its file). */
extern const sbx__backend *const sbx__backends[];

/* The common part of a pull's wait; the backend's own wait holds it. */
struct sbx_image_wait {
  void (*cancel)(sbx_image_wait *self);
};

/* ---- the bwrap backend (backend_bwrap.c, spawn.c, cgpool.c) -------------- */

extern const sbx__backend sbx__bwrap_backend;
/* The docker backend (backend_docker.c, docker_api.c). */
extern const sbx__backend sbx__docker_backend;

/* A cgroup made ahead (in the pool) or waiting for its last task to go (a
 * grave). */
typedef struct sbx__cg_entry {
  sbx_cg cg;
  unsigned long long since;
  struct sbx__cg_entry *next;
} sbx__cg_entry;

/* runner->be for bwrap. */
typedef struct sbx__bwrap {
  sbx_runner *runner;
  char *bwrap;                  /* NULL: not found */
  char *interp[SBX_LANG_COUNT]; /* under /usr; NULL: not found */
  struct sbx_cgroups *cg;       /* NULL when cgroups are unusable */
  char *slab;                   /* SBX_SLAB_SIZE bytes: every pipe read of this runner */
  sbx__cg_entry *pool;          /* made ahead with the default limits, taken by runs */
  int npool;
  sbx__cg_entry *graves;        /* cgroups waiting for their last task to go */
  uv_timer_t reaper;            /* removes graves and refills the pool, off the critical path */
  uv_signal_t sigchld;          /* reaps bwrap processes (spawned without libuv: see spawn.c) */
  int nprocs;                   /* bound bwrap processes not reaped yet (keep sigchld referenced) */
  struct sbx_root_entry *roots; /* /bin, /lib, ... of the host, probed once */
  int nroots;
  struct sbx_mask *masks;       /* /proc entries covered in every sandbox, probed once */
  char *etc_base;               /* where the views of /etc are kept (etcview.h); NULL: not chosen yet */
  bool sweep_pending;           /* the sweeps of dead crucibles' cgroups and sandboxes not run yet */
  int closing;                  /* 1: close asked, waiting for graves; 2: handles closing */
  int closing_handles;
  int *orphans;                 /* pidfds of namespace inits whose bwrap was reaped: ours to reap
                                   when we are their reaper (pid 1 of a container, a one-shot's
                                   subreaper), else zombies for good (backend_bwrap.c) */
  int norphans;
} sbx__bwrap;

/* A run of the bwrap backend. */
typedef struct sbx__bwrap_run {
  sbx_run run;
  uv_pipe_t out, err, status;
  uv_pipe_t code_pipe;   /* the program's text goes to bwrap's --file (or the launcher) through this pipe */
  uv_write_t code_req;
  bool out_open, err_open, status_open, code_open;
  int stdin_fd;          /* memfd behind the program's stdin, filled on start */
  int text_fd;           /* prestart with sbx__prelude_text_fd: memfd the program's text goes
                            into on start, before code_pipe closes */
  int block_wfd;         /* bwrap's child waits on --block-fd until this is written */
  pid_t pid, child;      /* bwrap, and its child (the pid namespace's init) once reported */
  int init_fd;           /* a pidfd of the init, kept until bwrap is reaped (then an orphan) */
  bool proc_alive;       /* bwrap not reaped yet */
  bool kill_pending;     /* killed before the child's pid was known */
  bool prestart;         /* warm with its interpreter started: it runs the launcher (prelude.c)
                            as its script, released at once into its cgroup and rlimits, and
                            code_pipe carries the program (or, with text_fd, its end) to
                            the launcher, not to --file */
  sbx_cg cg;
  bool in_cgroup;
  bool joined;           /* bwrap moved itself into cg before its exec (v1; spawn.c) */
  sbx_limits cg_limits;  /* the limits cg was given at the spawn */
  uv_timer_t memwatch;   /* Python in a cgroup: polls the memory it holds (backend_bwrap.c) */
  bool memwatch_open;
  long long mem_held;    /* the watch's last reading, in bytes, and when (ms) */
  unsigned long long mem_at;
  uv_timer_t leave;      /* one-shot: the init leaves the run's cgroup once the program is
                            in it (backend_bwrap.c, "the init leaves the cgroup") */
  bool leave_open;
  unsigned leave_ms;     /* the next try's delay */
  /* The end of a run without waiting for bwrap (backend_bwrap.c, "the
   * early end"): bwrap's exit-code line carries the code bwrap will exit
   * with; once it is in and no process but the init is left in the run's
   * cgroup, or the init's pidfd turned readable (the init and, with it,
   * every process of the pid namespace has exited), what is left in the
   * pipes is all the output there will be, and the run finishes; bwrap is
   * reaped afterwards through its own pidfd. */
  uv_poll_t init_poll;   /* the init's pidfd; not open without one (no pidfd_open: the run
                            ends when bwrap is reaped) */
  bool init_poll_open, init_gone;
  bool code_known;       /* bwrap's exit-code line was read: code is set */
  int code;
  uv_poll_t reap_poll;   /* bwrap's pidfd after an early end, until bwrap is reaped */
  bool reap_open;
  char status_buf[1024]; /* the --json-status-fd line being read */
  size_t status_len;
} sbx__bwrap_run;

static inline sbx__bwrap_run *sbx__bw_run(sbx_run *run) {
  return container_of(run, sbx__bwrap_run, run);
}
static inline sbx__bwrap *sbx__bw(const sbx_runner *runner) {
  return runner->be;
}

/* spawn.c */

/* Builds the seccomp program once per process, or with use_cache loads it
 * from the cache file when that matches (seccomp_cache.h) and writes the
 * file after a build; returns 0 or a negative errno. */
int sbx__bw_seccomp_init(bool use_cache);
int sbx__bw_prepare(sbx_run *run);
void sbx__bw_start(sbx_run *run);
bool sbx__bw_fits(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want);
/* Lets bwrap's child continue past --block-fd once the run is started and
 * the child's pid is known (whichever comes last calls it). */
void sbx__bw_release_child(sbx__bwrap_run *b);

/* backend_bwrap.c: the reading side of a live sandbox, used by spawn.c. */
/* Starts watching a started Python run's memory (a no-op for other
 * languages, without a cgroup or after an error). */
void sbx__bw_memwatch_start(sbx__bwrap_run *b);
/* Reaps the namespace inits of reaped bwraps that are this process's
 * children (backend_bwrap.c, "orphaned inits"). */
void sbx__bw_reap_orphans(sbx__bwrap *bw);
/* After the child's release, in a one-shot run: the init leaves the run's
 * cgroup as soon as the program's first process is in it (backend_bwrap.c). */
void sbx__bw_leave_start(sbx__bwrap_run *b);
void sbx__bw_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void sbx__bw_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
void sbx__bw_status_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
/* Removes the cgroups and kills the sandboxes that dead crucible processes
 * left, once per runner (no-op after the first call): at setup, or for a
 * one-shot runner at its close, after its result went out, so that the
 * sweep is not on the one run's path (run while the sandbox started, it
 * competed with it for the CPU). */
void sbx__bw_sweep(sbx__bwrap *bw);
/* Continues a close waiting for graves (cgpool.c's reaper). */
void sbx__bw_maybe_closed(sbx__bwrap *bw);

/* cgpool.c */

/* Makes cgroups ahead until the pool is full (not while closing). */
void sbx__cgpool_fill(sbx__bwrap *bw);
/* Pools cg, made without limits (the probe's, sbx_cgroups_probe_as), with
 * the default limits; buries it when they cannot be set. cg is emptied. */
void sbx__cgpool_adopt(sbx__bwrap *bw, sbx_cg *cg);
/* Takes a pooled cgroup for a run with limits lim. Returns 0, or -ENOENT
 * when the pool is empty or the limits could not be set (the caller then
 * creates one). */
int sbx__cgpool_take(sbx__bwrap *bw, const sbx_limits *lim, sbx_cg *out);
/* Kills what is left in a finished run's cgroup and hands it to the
 * reaper (cg is emptied); no-op for an empty cg. */
void sbx__cg_bury(sbx__bwrap *bw, sbx_cg *cg);
/* Buries every pooled cgroup (closing). */
void sbx__cgpool_drain(sbx__bwrap *bw);

#endif
