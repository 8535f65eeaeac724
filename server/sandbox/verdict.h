/* How a run ended, decided from what was observed: a pure function, the
 * same for every backend, unit-tested without processes. */
#ifndef CRUCIBLE_SANDBOX_VERDICT_H
#define CRUCIBLE_SANDBOX_VERDICT_H

#include <stdbool.h>

#include "sandbox.h"

/* What a backend saw of one run that was started. */
typedef struct sbx_facts {
  long long exit_status;  /* as reported (bwrap: 128+N for a program killed by signal N) */
  int term_signal;        /* the signal that ended the backend's process, 0 if none */
  unsigned killed_for;    /* SBX_LIMIT_WALL / _OUTPUT / _MEMORY when the runner killed it */
  bool cancelled;
  bool failed;            /* the sandbox itself failed (an error text was recorded) */
  bool in_cgroup;         /* the stats below come from the run's own cgroup */
  long long oom_kills, peak_bytes, cpu_ns, pids_max; /* cgroup stats, -1 unknown */
  bool disk_error_text;   /* ENOSPC/EFBIG text in the output */
  bool memory_error_text; /* MemoryError / heap out of memory / ENOMEM text on stderr */
  long cpu_limit_s;       /* the run's cpuSeconds */
} sbx_facts;

/* Fills outcome, exit_code, signal, limit, limits_hit, cpu_ms and
 * max_rss_kb of r from f; leaves every other field alone. */
void sbx_verdict(const sbx_facts *f, sbx_result *r);

#endif
