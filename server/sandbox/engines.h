/* The container engines a docker runner shares its runs between
 * (sandbox.docker.hosts): each with its own capacity, marked down when it
 * fails a run and probed again (asynchronously) a few seconds later. */
#ifndef CRUCIBLE_SANDBOX_ENGINES_H
#define CRUCIBLE_SANDBOX_ENGINES_H

#include <stdbool.h>

#include "docker_api.h"
#include "http.h"

/* How long an engine that failed stays out before it is probed again. */
#define SBX_DK_RETRY_MS 3000

/* One engine of the set. */
typedef struct sbx_dk_slot {
  sbx_dk_engine eng; /* located (and probed once it answered) */
  int cap;           /* runs at once ("?max=N" after the host; default: the runner's) */
  int nlive;         /* runs placed on it and not cleaned up */
  bool up;
  bool probing;      /* a GET /version is in flight */
  bool ever_up;      /* its API version is known */
  unsigned long long down_at; /* ms (uv_now) */
  char *why;         /* why it is down */
  struct sbx_dk_engines *set;
} sbx_dk_slot;

typedef struct sbx_dk_engines {
  sbx_dk_slot *v;
  int n;
  uv_loop_t *loop;
  http_client *http; /* borrowed: the backend's */
} sbx_dk_engines;

/* Opens every engine of hosts (NULL-terminated; NULL or empty: the one
 * sbx_dk_locate finds), blocking: probes each, sweeps the containers of
 * dead servers from those that answer. cert_path: the TLS folder of tcp://
 * engines (NULL: $DOCKER_CERT_PATH as the docker CLI reads it). Returns 0 when at least one answers,
 * else -ENOENT with *why (caller frees) naming each engine's problem. The
 * set is usable (and must be closed) either way. */
int sbx_dk_engines_open(sbx_dk_engines *self, uv_loop_t *loop, const char *const *hosts, int default_cap,
                        const char *cert_path, char **why);
void sbx_dk_engines_close(sbx_dk_engines *self);

/* The engine a new run goes to: the up one with the most free capacity
 * (the first listed among equals); when every up one is full, the least
 * loaded for its capacity. Starts probes of down engines whose retry time
 * came. Returns its index, or -1 when none is up (*why, caller frees,
 * says why). */
int sbx_dk_engines_pick(sbx_dk_engines *self, char **why);

/* The engine i failed a transfer (it died, or its connection broke): it
 * takes no new runs until a probe finds it answering again. */
void sbx_dk_engines_down(sbx_dk_engines *self, int i, const char *why);

/* Fills the transport fields of o (unix socket, TLS files) for engine e. */
void sbx_dk_http_opts(const sbx_dk_engine *e, http_request_opts *o);

#endif
