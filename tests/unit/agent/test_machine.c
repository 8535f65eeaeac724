/* Unit tests of the ask loop's transition rule (machine.c): the happy path,
 * failures that reflect, retry or give up at the limit, reflection off,
 * the import test, cancel and error in every state, and events that cannot
 * happen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "machine.h"

static agent_facts facts(void) {
  return (agent_facts){.iteration = 1, .max_iterations = 3, .reflect = true, .import_check = AGENT_IMPORTS_STATIC,
                       .checked = true, .has_imports = true};
}

static void expect_go(agent_state from, agent_event ev, const agent_facts *f, agent_state to) {
  agent_step s = agent_transition(from, ev, f);
  assert_true(s.valid);
  assert_int_equal(s.next, to);
}

static void expect_end(agent_state from, agent_event ev, const agent_facts *f, agent_outcome outcome) {
  agent_step s = agent_transition(from, ev, f);
  assert_true(s.valid);
  assert_int_equal(s.next, AGENT_ST_DONE);
  assert_int_equal(s.outcome, outcome);
}

static void happy_path(void **state) {
  agent_facts f = facts();
  expect_go(AGENT_ST_START, AGENT_EV_OK, &f, AGENT_ST_RETRIEVE);
  expect_go(AGENT_ST_RETRIEVE, AGENT_EV_OK, &f, AGENT_ST_INDEX);
  expect_go(AGENT_ST_INDEX, AGENT_EV_OK, &f, AGENT_ST_GENERATE);
  expect_go(AGENT_ST_GENERATE, AGENT_EV_OK, &f, AGENT_ST_INSTALL);
  expect_go(AGENT_ST_INSTALL, AGENT_EV_OK, &f, AGENT_ST_CHECK);
  expect_go(AGENT_ST_CHECK, AGENT_EV_OK, &f, AGENT_ST_RUN); /* static import check: no import test */
  expect_end(AGENT_ST_RUN, AGENT_EV_OK, &f, AGENT_PASSED);
}

static void import_test_when_asked_for_and_possible(void **state) {
  agent_facts f = facts();
  f.import_check = AGENT_IMPORTS_RUN;
  expect_go(AGENT_ST_CHECK, AGENT_EV_OK, &f, AGENT_ST_IMPORT_RUN);
  f.import_check = AGENT_IMPORTS_BOTH;
  expect_go(AGENT_ST_CHECK, AGENT_EV_OK, &f, AGENT_ST_IMPORT_RUN);
  expect_go(AGENT_ST_IMPORT_RUN, AGENT_EV_OK, &f, AGENT_ST_RUN);
  expect_go(AGENT_ST_IMPORT_RUN, AGENT_EV_FAILED, &f, AGENT_ST_FAILED);
  /* nothing to import, or a language without checks: straight to the run */
  f.has_imports = false;
  expect_go(AGENT_ST_CHECK, AGENT_EV_OK, &f, AGENT_ST_RUN);
  f.has_imports = true;
  f.checked = false;
  expect_go(AGENT_ST_CHECK, AGENT_EV_OK, &f, AGENT_ST_RUN);
}

/* A failure in any stage of an attempt leads to FAILED, where the attempt is
 * reported; from there the task reflects, retries or gives up. */
static void failures_reflect_then_retry(void **state) {
  agent_facts f = facts();
  expect_go(AGENT_ST_GENERATE, AGENT_EV_FAILED, &f, AGENT_ST_FAILED); /* unusable answer */
  expect_go(AGENT_ST_INSTALL, AGENT_EV_FAILED, &f, AGENT_ST_FAILED);  /* its dependencies failed to install */
  expect_go(AGENT_ST_CHECK, AGENT_EV_FAILED, &f, AGENT_ST_FAILED);    /* rejected by the checks */
  expect_go(AGENT_ST_RUN, AGENT_EV_FAILED, &f, AGENT_ST_FAILED);
  expect_go(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_ST_REFLECT);
  expect_go(AGENT_ST_REFLECT, AGENT_EV_OK, &f, AGENT_ST_GENERATE);
  f.iteration = 2;
  expect_go(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_ST_REFLECT);
}

static void rejected_check_at_the_limit_fails_the_task(void **state) {
  agent_facts f = facts();
  f.iteration = 3;
  expect_go(AGENT_ST_CHECK, AGENT_EV_FAILED, &f, AGENT_ST_FAILED);
  expect_end(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_FAILED);
  /* one attempt allowed: the first failure ends it, reflection or not */
  f.iteration = 1;
  f.max_iterations = 1;
  expect_end(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_FAILED);
  f.reflect = false;
  expect_end(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_FAILED);
}

static void reflection_off_retries_at_once(void **state) {
  agent_facts f = facts();
  f.reflect = false;
  expect_go(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_ST_GENERATE);
  f.iteration = 2;
  expect_go(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_ST_GENERATE);
  f.iteration = 3;
  expect_end(AGENT_ST_FAILED, AGENT_EV_OK, &f, AGENT_FAILED);
}

/* Cancel ends the task cancelled from every state, whether it comes as the
 * event or is found set when the state's work reports something else. */
static void cancel_in_each_state(void **state) {
  for (agent_state s = AGENT_ST_START; s < AGENT_ST_DONE; s++) {
    agent_facts f = facts();
    expect_end(s, AGENT_EV_CANCEL, &f, AGENT_CANCELLED);
    f.cancelled = true;
    expect_end(s, AGENT_EV_OK, &f, AGENT_CANCELLED);
    expect_end(s, AGENT_EV_FAILED, &f, AGENT_CANCELLED);
    expect_end(s, AGENT_EV_ERROR, &f, AGENT_CANCELLED); /* cancel wins over an error */
    f.iteration = f.max_iterations;
    expect_end(s, AGENT_EV_OK, &f, AGENT_CANCELLED);    /* and over giving up */
  }
}

static void error_in_each_state(void **state) {
  agent_facts f = facts();
  for (agent_state s = AGENT_ST_START; s < AGENT_ST_DONE; s++) expect_end(s, AGENT_EV_ERROR, &f, AGENT_ERROR);
}

/* Nothing follows the end: late events keep the task done. */
static void done_is_final(void **state) {
  agent_facts f = facts();
  for (agent_event ev = AGENT_EV_OK; ev < AGENT_EV_COUNT; ev++) {
    agent_step s = agent_transition(AGENT_ST_DONE, ev, &f);
    assert_true(s.valid);
    assert_int_equal(s.next, AGENT_ST_DONE);
  }
  f.cancelled = true;
  assert_int_equal(agent_transition(AGENT_ST_DONE, AGENT_EV_OK, &f).next, AGENT_ST_DONE);
}

/* A failure where no attempt is under way is a bug: the rule says so and
 * ends the task in error rather than hanging. */
static void impossible_events_are_flagged(void **state) {
  agent_facts f = facts();
  static const agent_state no_attempt[] = {AGENT_ST_START, AGENT_ST_RETRIEVE, AGENT_ST_INDEX, AGENT_ST_FAILED,
                                           AGENT_ST_REFLECT};
  for (size_t i = 0; i < sizeof no_attempt / sizeof no_attempt[0]; i++) {
    agent_step s = agent_transition(no_attempt[i], AGENT_EV_FAILED, &f);
    assert_false(s.valid);
    assert_int_equal(s.next, AGENT_ST_DONE);
    assert_int_equal(s.outcome, AGENT_ERROR);
  }
}

/* Every attempt ends the task or comes back to GENERATE, so a task cannot
 * run for ever: walk the worst case (every attempt fails) to its end. */
static void every_path_ends(void **state) {
  for (int reflect = 0; reflect < 2; reflect++) {
    agent_facts f = facts();
    f.reflect = reflect;
    f.iteration = 0;
    agent_state s = AGENT_ST_START;
    int steps = 0, generations = 0;
    while (s != AGENT_ST_DONE && steps++ < 100) {
      agent_event ev = AGENT_EV_OK;
      if (s == AGENT_ST_GENERATE) f.iteration = ++generations;
      if (s == AGENT_ST_RUN) ev = AGENT_EV_FAILED;
      agent_step st = agent_transition(s, ev, &f);
      assert_true(st.valid);
      if (st.next == AGENT_ST_DONE) assert_int_equal(st.outcome, AGENT_FAILED);
      s = st.next;
    }
    assert_int_equal(s, AGENT_ST_DONE);
    assert_int_equal(generations, 3);
  }
}

/* A tool round comes back to the same attempt; once the model was told its
 * tools are spent, calling them again fails the attempt, so a model that
 * never stops calling tools still comes to an end. TOOLS elsewhere is a bug. */
static void tool_rounds(void **state) {
  agent_facts f = facts();
  agent_step s = agent_transition(AGENT_ST_GENERATE, AGENT_EV_TOOLS, &f);
  assert_true(s.valid);
  assert_int_equal(s.next, AGENT_ST_TOOLS);
  s = agent_transition(AGENT_ST_TOOLS, AGENT_EV_OK, &f);
  assert_int_equal(s.next, AGENT_ST_GENERATE);
  f.tools_closed = true;
  s = agent_transition(AGENT_ST_GENERATE, AGENT_EV_TOOLS, &f);
  assert_true(s.valid);
  assert_int_equal(s.next, AGENT_ST_FAILED);
  assert_int_equal(agent_transition(AGENT_ST_TOOLS, AGENT_EV_CANCEL, &f).outcome, AGENT_CANCELLED);
  assert_false(agent_transition(AGENT_ST_RUN, AGENT_EV_TOOLS, &f).valid);
  assert_false(agent_transition(AGENT_ST_TOOLS, AGENT_EV_FAILED, &f).valid);
  assert_string_equal(agent_state_name(AGENT_ST_TOOLS), "tools");
  assert_string_equal(agent_event_name(AGENT_EV_TOOLS), "tools");
}

static void names(void **state) {
  assert_string_equal(agent_state_name(AGENT_ST_IMPORT_RUN), "import-run");
  assert_string_equal(agent_state_name(AGENT_ST_DONE), "done");
  assert_string_equal(agent_state_name(AGENT_ST_COUNT), "?");
  assert_string_equal(agent_event_name(AGENT_EV_CANCEL), "cancel");
  assert_string_equal(agent_event_name(AGENT_EV_COUNT), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(happy_path),
      cmocka_unit_test(import_test_when_asked_for_and_possible),
      cmocka_unit_test(failures_reflect_then_retry),
      cmocka_unit_test(rejected_check_at_the_limit_fails_the_task),
      cmocka_unit_test(reflection_off_retries_at_once),
      cmocka_unit_test(cancel_in_each_state),
      cmocka_unit_test(error_in_each_state),
      cmocka_unit_test(done_is_final),
      cmocka_unit_test(impossible_events_are_flagged),
      cmocka_unit_test(every_path_ends),
      cmocka_unit_test(tool_rounds),
      cmocka_unit_test(names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
