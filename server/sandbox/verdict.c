/* How a run ended, decided from what was observed. */
#include "verdict.h"

#include <signal.h>

void sbx_verdict(const sbx_facts *f, sbx_result *r) {
  r->cpu_ms = f->in_cgroup && f->cpu_ns >= 0 ? f->cpu_ns / 1000000 : -1;
  r->max_rss_kb = f->in_cgroup && f->peak_bytes >= 0 ? f->peak_bytes / 1024 : -1;
  unsigned hit = 0;
  if (f->disk_error_text) hit |= SBX_LIMIT_DISK;
  if (f->in_cgroup && f->pids_max > 0) hit |= SBX_LIMIT_PIDS;
  if (f->in_cgroup && f->oom_kills > 0) hit |= SBX_LIMIT_MEMORY;
  hit |= f->killed_for;

  /* bwrap reports a program killed by signal N as exit 128+N: a program
   * exiting 130 on its own cannot be told apart. */
  int code = (int)f->exit_status, sig = f->term_signal;
  if (!sig && code > 128 && code <= 128 + 64) sig = code - 128, code = -1;
  if (f->term_signal) code = -1;
  r->exit_code = code;
  r->signal = sig;
  if (sig == SIGXCPU) hit |= SBX_LIMIT_CPU;
  /* RLIMIT_CPU's hard limit is a SIGKILL: told from others by the time used. */
  if (sig == SIGKILL && !f->killed_for && !f->cancelled && !(hit & SBX_LIMIT_MEMORY) && r->cpu_ms >= 0 &&
      r->cpu_ms >= f->cpu_limit_s * 1000 - 50)
    hit |= SBX_LIMIT_CPU;
  if (sig == SIGXFSZ) hit |= SBX_LIMIT_DISK;
  /* Without a cgroup, running out of memory shows only in what the program said. */
  if (!f->in_cgroup && code != 0 && f->memory_error_text) hit |= SBX_LIMIT_MEMORY;
  r->limits_hit = hit;
  r->limit = SBX_LIMIT_NONE;

  if (f->cancelled) {
    r->outcome = SBX_CANCELLED;
  } else if (f->failed) {
    r->outcome = SBX_ERROR;
  } else if (hit & SBX_LIMIT_MEMORY && code != 0) {
    r->outcome = SBX_OOM, r->limit = SBX_LIMIT_MEMORY;
  } else if (f->killed_for == SBX_LIMIT_WALL) {
    r->outcome = SBX_TIMEOUT, r->limit = SBX_LIMIT_WALL;
  } else if (hit & SBX_LIMIT_CPU && code != 0) {
    r->outcome = SBX_TIMEOUT, r->limit = SBX_LIMIT_CPU;
  } else if (f->killed_for == SBX_LIMIT_OUTPUT) {
    r->outcome = SBX_ERROR, r->limit = SBX_LIMIT_OUTPUT;
  } else if (code == 0 && !sig) {
    r->outcome = SBX_OK;
  } else {
    r->outcome = SBX_ERROR;
    if (hit & SBX_LIMIT_DISK) r->limit = SBX_LIMIT_DISK;
    else if (hit & SBX_LIMIT_PIDS) r->limit = SBX_LIMIT_PIDS;
  }
}
