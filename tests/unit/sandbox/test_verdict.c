/* The verdict: how a run ended, from observed facts alone (no processes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>

#include "verdict.h"

/* Facts of a run that exited 0 in its cgroup, nothing hit. */
static sbx_facts clean(void) {
  sbx_facts f = {.in_cgroup = true, .oom_kills = 0, .peak_bytes = 4 << 20, .cpu_ns = 30000000,
                 .pids_max = 0, .cpu_limit_s = 10};
  return f;
}

static sbx_result judge(const sbx_facts *f) {
  sbx_result r = {0};
  sbx_verdict(f, &r);
  return r;
}

static void ok_and_stats(void **state) {
  (void)state;
  sbx_facts f = clean();
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_OK);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(r.signal, 0);
  assert_int_equal(r.cpu_ms, 30);
  assert_int_equal(r.max_rss_kb, 4096);
  assert_int_equal(r.limits_hit, 0);
  assert_int_equal(r.limit, SBX_LIMIT_NONE);
  /* without a cgroup nothing is measured: unknown, never another run's */
  f.in_cgroup = false;
  r = judge(&f);
  assert_int_equal(r.cpu_ms, -1);
  assert_int_equal(r.max_rss_kb, -1);
}

static void exit_codes_and_signals(void **state) {
  (void)state;
  sbx_facts f = clean();
  f.exit_status = 3;
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
  assert_int_equal(r.exit_code, 3);
  /* bwrap's 128+N is signal N */
  f.exit_status = 128 + SIGSEGV;
  r = judge(&f);
  assert_int_equal(r.exit_code, -1);
  assert_int_equal(r.signal, SIGSEGV);
  assert_int_equal(r.outcome, SBX_ERROR);
  f.exit_status = 128 + SIGXCPU;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_TIMEOUT);
  assert_int_equal(r.limit, SBX_LIMIT_CPU);
  f.exit_status = 128 + SIGXFSZ;
  r = judge(&f);
  assert_int_equal(r.limit, SBX_LIMIT_DISK);
}

static void memory(void **state) {
  (void)state;
  sbx_facts f = clean();
  f.oom_kills = 1;
  f.exit_status = 128 + SIGKILL;
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_OOM);
  assert_int_equal(r.limit, SBX_LIMIT_MEMORY);
  /* an OOM kill the program survived (exit 0) is hit, not the outcome */
  f.exit_status = 0;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_OK);
  assert_true(r.limits_hit & SBX_LIMIT_MEMORY);
  /* rlimit mode: only the program's own words tell */
  f = clean();
  f.in_cgroup = false;
  f.exit_status = 1;
  f.memory_error_text = true;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_OOM);
  f.in_cgroup = true; /* with a cgroup, text alone is not an OOM */
  f.oom_kills = 0;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
}

static void cpu_hard_limit_sigkill(void **state) {
  (void)state;
  sbx_facts f = clean();
  f.exit_status = 128 + SIGKILL;
  f.cpu_ns = 10990LL * 1000000; /* about the 10 s limit */
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_TIMEOUT);
  assert_int_equal(r.limit, SBX_LIMIT_CPU);
  /* a SIGKILL early in its CPU budget is not the CPU limit */
  f.cpu_ns = 100LL * 1000000;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
  assert_int_equal(r.limit, SBX_LIMIT_NONE);
  /* nor when the CPU time is unknown */
  f.in_cgroup = false;
  r = judge(&f);
  assert_false(r.limits_hit & SBX_LIMIT_CPU);
}

static void killed_by_the_runner(void **state) {
  (void)state;
  sbx_facts f = clean();
  f.exit_status = 128 + SIGKILL;
  f.killed_for = SBX_LIMIT_WALL;
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_TIMEOUT);
  assert_int_equal(r.limit, SBX_LIMIT_WALL);
  f.killed_for = SBX_LIMIT_OUTPUT;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
  assert_int_equal(r.limit, SBX_LIMIT_OUTPUT);
  /* cancelled wins over everything */
  f.cancelled = true;
  f.oom_kills = 2;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_CANCELLED);
  /* a sandbox that failed itself is an error, whatever its status */
  f = clean();
  f.failed = true;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
}

static void pids_and_disk(void **state) {
  (void)state;
  sbx_facts f = clean();
  f.exit_status = 1;
  f.pids_max = 3;
  sbx_result r = judge(&f);
  assert_int_equal(r.outcome, SBX_ERROR);
  assert_int_equal(r.limit, SBX_LIMIT_PIDS);
  f.disk_error_text = true; /* the disk cap is named first */
  r = judge(&f);
  assert_int_equal(r.limit, SBX_LIMIT_DISK);
  assert_true(r.limits_hit & SBX_LIMIT_PIDS);
  /* a program that hit the pids cap and still succeeded: hit, outcome ok */
  f.exit_status = 0;
  r = judge(&f);
  assert_int_equal(r.outcome, SBX_OK);
  assert_int_equal(r.limit, SBX_LIMIT_NONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ok_and_stats),     cmocka_unit_test(exit_codes_and_signals),
      cmocka_unit_test(memory),           cmocka_unit_test(cpu_hard_limit_sigkill),
      cmocka_unit_test(killed_by_the_runner), cmocka_unit_test(pids_and_disk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
