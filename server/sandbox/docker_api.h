/* The Docker Engine API as the docker backend speaks it: where the engine
 * is, a blocking call for setup and sweeping (never on a run's path), the
 * version negotiation, the container a run gets, and the attach stream's
 * frames. The run's own calls are asynchronous (backend_docker.c, over
 * net/http.c). Docker and Podman's compatible API alike. */
#ifndef CRUCIBLE_SANDBOX_DOCKER_API_H
#define CRUCIBLE_SANDBOX_DOCKER_API_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

/* The newest API version spoken, and the oldest accepted (Tmpfs, NanoCpus,
 * PidsLimit, OOMKilled are all there by 1.25). */
#define SBX_DK_API_MAX "1.41"
#define SBX_DK_API_MIN "1.25"
/* The label every container of ours carries: the owning server's pid. */
#define SBX_DK_LABEL_OWNER "crucible.owner"
/* ...and the host it runs on (an engine may serve several hosts). */
#define SBX_DK_LABEL_HOST "crucible.host"

/* An engine, located and probed. */
typedef struct sbx_dk_engine {
  char *host;          /* as named: "unix:///var/run/docker.sock", "tcp://10.0.0.2:2376" */
  char *socket;        /* unix socket path; NULL for a tcp:// engine */
  char *base;          /* "http://docker" (unix) or "https://HOST:PORT" (tcp, TLS) */
  char *ca, *cert, *key; /* tcp: $DOCKER_CERT_PATH/{ca,cert,key}.pem (default ~/.docker) */
  char api[16];        /* negotiated, "1.41" */
  char *version;       /* the engine's own version */
  char *name;          /* "Docker Engine" / "Podman Engine" / ... */
  bool podman;         /* Podman's service: its dialect of a container's body (create_body) */
} sbx_dk_engine;

/* The unix socket of the engine named by host ("unix:///path" or "/path"),
 * or when host is NULL or empty: $DOCKER_HOST, then /var/run/docker.sock,
 * $XDG_RUNTIME_DIR/podman/podman.sock, /run/podman/podman.sock (the first
 * that exists). Returns a new string, or NULL with *why (caller frees),
 * also for a tcp:// host (sbx_dk_engine_locate handles those). */
char *sbx_dk_locate(const char *host, char **why);

/* Fills self's host, socket, base and TLS files from host (as
 * sbx_dk_locate; "tcp://HOST:PORT" needs DOCKER_TLS_VERIFY set and the
 * three PEM files in $DOCKER_CERT_PATH, default ~/.docker: an engine on the
 * network is never spoken to without TLS and a client certificate).
 * Returns 0, or -errno with *why (caller frees) and self zeroed. */
int sbx_dk_engine_locate(sbx_dk_engine *self, const char *host, char **why);
/* The same with the TLS folder given (sandbox.docker.certPath: TLS on and
 * verified whatever DOCKER_TLS_VERIFY says); NULL: as above. */
int sbx_dk_engine_locate_with(sbx_dk_engine *self, const char *host, const char *cert_path, char **why);

/* A blocking request to the engine (setup, doctor and the sweep only), at
 * most timeout_ms. path starts with "/" and carries no version. Returns the
 * HTTP status, or a negative errno with *body NULL; *body (may be NULL) gets
 * the response body (caller frees). */
long sbx_dk_call_sync(const char *socket, const char *api, const char *method, const char *path,
                      const char *body, char **out, long timeout_ms);
/* The same on a located engine (unix or tcp with TLS), with its API version
 * (none before it is negotiated). *err (may be NULL) gets curl's words on a
 * transport failure (caller frees). */
long sbx_dk_engine_call(const sbx_dk_engine *e, const char *method, const char *path, const char *body,
                        char **out, long timeout_ms, char **err);
/* The URL of path on e, with its API version (caller frees). */
char *sbx_dk_url(const sbx_dk_engine *e, const char *path);

/* Locates and probes an engine (GET /version, the API version negotiated:
 * the lower of the engine's and ours). Returns 0, or -errno with *why;
 * self->host is kept either way (sbx_dk_engine_close frees it). */
int sbx_dk_engine_open(sbx_dk_engine *self, const char *host, char **why);
/* The same with a TLS folder (sbx_dk_engine_locate_with). */
int sbx_dk_engine_open_with(sbx_dk_engine *self, const char *host, const char *cert_path, char **why);
/* Reads a GET /version answer into self (version, name, API negotiated).
 * Returns 0, or -EPROTO with *why. */
int sbx_dk_engine_parse_version(sbx_dk_engine *self, const char *body, char **why);
void sbx_dk_engine_close(sbx_dk_engine *self);

/* Removes (force) every container labelled by a crucible server of this
 * host whose process is gone. Returns how many. */
int sbx_dk_sweep(const sbx_dk_engine *e);

/* Removes (force) every container labelled by this very process on this
 * host: an engine that came back after it died holds the runs it lost.
 * Returns how many. */
int sbx_dk_sweep_own(const sbx_dk_engine *e);

/* Whether image is present on the engine (GET /images/{name}/json). */
bool sbx_dk_image_present(const sbx_dk_engine *e, const char *image);

/* The create body of one run: the image, /bin/sh writing the program and
 * its stdin from the environment into the scratch tmpfs and exec'ing the
 * interpreter (no bind mount, no copy into a read-only root), no network,
 * read-only root, the engine's init as pid 1, every capability dropped,
 * no-new-privileges, uid:gid,
 * memory = memory+swap, pids, one CPU, size-capped tmpfs scratch and /tmp,
 * CPU/file-size/open-file ulimits, no logs, our labels. Returns the tree,
 * or NULL with *err (caller frees) when the program cannot be delivered
 * (a NUL byte, or larger than one environment string).
 *
 * For Podman (podman true) the same promises in its dialect: the scratch
 * tmpfs is given to the program's uid with Podman's "U" option (Podman
 * refuses the uid=/gid= mount options dockerd passes to the kernel), and
 * an RLIMIT_NPROC of its own (the server's hard limit, at most 32768):
 * rootful Podman otherwise raises it to a value a host that withholds
 * CAP_SYS_RESOURCE refuses, and no container starts. */
cJSON *sbx_dk_create_body(sbx_lang lang, const sbx_limits *lim, const char *image, const char *code,
                          size_t code_len, const char *stdin_data, size_t stdin_len, long uid, long gid,
                          bool podman, char **err);

/* How long a warm container (made ahead, sleeping) lives at most. */
#define SBX_DK_WARM_LIFETIME_S 86400

/* A warm container: create_body's promises and limits, its command a
 * bounded sleep, waiting for the program to be exec'd into it. */
cJSON *sbx_dk_warm_body(const sbx_limits *lim, const char *image, long uid, long gid, bool podman);
/* The exec of one program into a warm container: the same delivery as
 * create_body's, as uid:gid; once the interpreter ended, whatever it left
 * running is killed (kill -1) before the exec ends. NULL with *err as
 * create_body. */
cJSON *sbx_dk_exec_body(sbx_lang lang, const char *code, size_t code_len, const char *stdin_data,
                        size_t stdin_len, long uid, long gid, char **err);
/* ---- images ---- */

/* The image's ID (GET /images/{name}/json, blocking, at most timeout_ms):
 * 1 with *id (caller frees) when it is there, 0 when the engine has no such
 * image, or -errno with *why (caller frees) when the engine failed us. */
int sbx_dk_image_id(const sbx_dk_engine *e, const char *image, long timeout_ms, char **id, char **why);
/* The API path that describes image (new string). */
char *sbx_dk_image_path(const char *image);
/* What an answer to that path says, as sbx_dk_image_id returns it: status
 * and body (NULL: none) of a response that came. */
int sbx_dk_image_id_of(const sbx_dk_engine *e, const char *image, long status, const char *body, char **id,
                       char **why);

/* The query of the pull of image (POST /images/create?...): fromImage and
 * tag, URL-encoded, the tag "latest" when image names none (an empty tag
 * would pull every tag), none after a digest (@sha256:...). New string, or
 * NULL for a name no engine takes (empty, blanks, control characters). */
char *sbx_dk_pull_query(const char *image);

/* Reading a pull's progress: one JSON object per line, {status, id,
 * progressDetail: {current, total}} or {error} (or {message}: the engine
 * refused the pull, the whole body). Layers are counted by id;
 * percent is the bytes downloaded over the bytes announced, over every
 * layer whose size is known, and never goes down. */
#define SBX_DK_PULL_LAYERS 64
typedef struct sbx_dk_pull_progress {
  char ids[SBX_DK_PULL_LAYERS][16];
  double current[SBX_DK_PULL_LAYERS], total[SBX_DK_PULL_LAYERS];
  bool done[SBX_DK_PULL_LAYERS];
  int nlayers;
  int percent;   /* -1 until a size is known */
  char *error;   /* the first {error} line (owned) */
} sbx_dk_pull_progress;
void sbx_dk_pull_progress_init(sbx_dk_pull_progress *self);
void sbx_dk_pull_progress_close(sbx_dk_pull_progress *self);
/* Reads one line. Returns true and a short text in line (cap bytes) worth
 * showing (a new status, or a new percentage); false for a line that says
 * nothing new (or is not JSON). An error line sets self->error. */
bool sbx_dk_pull_progress_line(sbx_dk_pull_progress *self, const char *json, size_t len, char *line, size_t cap);

/* ---- the verdict on memory ---- */

/* How many "oom" events of a container a GET /events answer holds (JSON
 * objects one after another, {Type: "container", Action|status: "oom"}). */
int sbx_dk_count_oom_events(const char *body, size_t len);
/* Whether a container that exited with code was killed for memory: the
 * engine says so (OOMKilled, as Docker does), or, as Podman reports
 * OOMKilled false, it died of SIGKILL (137) that nobody of ours sent and
 * the kernel's OOM killer acted in it (oom_events from its memory events:
 * the engine's "oom" events, or its cgroup's memory.events oom_kill). */
bool sbx_dk_oom_verdict(bool oom_killed, long long code, bool we_killed, int oom_events);
/* Whether the verdict needs the container's memory events to decide. */
bool sbx_dk_oom_needs_events(bool oom_killed, long long code, bool we_killed);

/* The attach stream's framing (no TTY): an 8-byte header {stream, 0, 0, 0,
 * size as big-endian u32}, then size bytes. Fed in pieces of any size;
 * emit gets each payload piece with its stream (1 stdout, 2 stderr; stdin
 * frames are dropped). */
typedef struct sbx_dk_demux {
  unsigned char hdr[8];
  size_t hlen;
  unsigned long left;
  int stream;
} sbx_dk_demux;
typedef void (*sbx_dk_emit_fn)(void *ud, int stream, const char *p, size_t n);
void sbx_dk_demux_feed(sbx_dk_demux *self, const char *p, size_t n, sbx_dk_emit_fn emit, void *ud);

#endif
