/* The ask loop's transition rule: pure, so every path is unit-tested. */
#include "machine.h"

#include "common.h"

static agent_step go(agent_state next) {
  return (agent_step){.next = next, .outcome = AGENT_PASSED, .valid = true};
}

static agent_step end(agent_outcome outcome) {
  return (agent_step){.next = AGENT_ST_DONE, .outcome = outcome, .valid = true};
}

/* After a failed attempt: give up at the limit, else reflect or retry. */
static agent_step after_failure(const agent_facts *f) {
  if (f->iteration >= f->max_iterations) return end(AGENT_FAILED);
  return go(f->reflect ? AGENT_ST_REFLECT : AGENT_ST_GENERATE);
}

agent_step agent_transition(agent_state state, agent_event ev, const agent_facts *f) {
  if (state == AGENT_ST_DONE) return (agent_step){.next = AGENT_ST_DONE, .outcome = AGENT_PASSED, .valid = true};
  if (f->cancelled || ev == AGENT_EV_CANCEL) return end(AGENT_CANCELLED);
  if (ev == AGENT_EV_ERROR) return end(AGENT_ERROR);
  if (ev == AGENT_EV_OK) {
    switch (state) {
    case AGENT_ST_START: return go(AGENT_ST_RETRIEVE);
    case AGENT_ST_RETRIEVE: return go(AGENT_ST_INDEX);
    case AGENT_ST_INDEX: return go(AGENT_ST_GENERATE);
    case AGENT_ST_GENERATE: return go(AGENT_ST_INSTALL);
    case AGENT_ST_INSTALL: return go(AGENT_ST_CHECK);
    case AGENT_ST_CHECK:
      return go(f->checked && f->import_check != AGENT_IMPORTS_STATIC && f->has_imports ? AGENT_ST_IMPORT_RUN
                                                                                         : AGENT_ST_RUN);
    case AGENT_ST_IMPORT_RUN: return go(AGENT_ST_RUN);
    case AGENT_ST_RUN: return end(AGENT_PASSED);
    case AGENT_ST_FAILED: return after_failure(f);
    case AGENT_ST_REFLECT: return go(AGENT_ST_GENERATE);
    case AGENT_ST_TOOLS: return go(AGENT_ST_GENERATE);
    default: break;
    }
  } else if (ev == AGENT_EV_TOOLS) {
    if (state == AGENT_ST_GENERATE) return go(f->tools_closed ? AGENT_ST_FAILED : AGENT_ST_TOOLS);
  } else if (ev == AGENT_EV_FAILED) {
    switch (state) {
    case AGENT_ST_GENERATE:
    case AGENT_ST_INSTALL:
    case AGENT_ST_CHECK:
    case AGENT_ST_IMPORT_RUN:
    case AGENT_ST_RUN: return go(AGENT_ST_FAILED);
    default: break;
    }
  }
  agent_step bad = end(AGENT_ERROR);
  bad.valid = false;
  return bad;
}

const char *agent_state_name(agent_state state) {
  static const char *const names[] = {"start", "retrieve", "index",  "generate", "install", "check",
                                      "import-run", "run", "failed", "reflect", "tools", "done"};
  return (unsigned)state < ARRAY_LEN(names) ? names[state] : "?";
}

const char *agent_event_name(agent_event event) {
  static const char *const names[] = {"ok", "failed", "cancel", "error", "tools"};
  return (unsigned)event < ARRAY_LEN(names) ? names[event] : "?";
}
