/* The ask loop's states and the pure rule that moves a task between them:
 * (state, event, facts) -> next state, and the outcome when it is the end.
 * No I/O: loop.c does the work of each state and reports what happened. */
#ifndef CRUCIBLE_AGENT_MACHINE_H
#define CRUCIBLE_AGENT_MACHINE_H

#include <stdbool.h>

#include "loop.h"
#include "result.h"

typedef enum agent_state {
  AGENT_ST_START = 0,  /* made, not started */
  AGENT_ST_RETRIEVE,   /* documentation: crawl (or revalidate) the sources, attach the best pages */
  AGENT_ST_INDEX,      /* wait for the sandbox's module index (static import checks) */
  AGENT_ST_GENERATE,   /* a new attempt: the model's structured answer */
  AGENT_ST_INSTALL,    /* the answer's declared dependencies: the environment built or found (or nothing to do) */
  AGENT_ST_CHECK,      /* syntax and imports of the answer */
  AGENT_ST_IMPORT_RUN, /* the imports alone in the sandbox (importCheck run/both) */
  AGENT_ST_RUN,        /* the program in the sandbox */
  AGENT_ST_FAILED,     /* the attempt failed: it is reported, then the task goes on or gives up */
  AGENT_ST_REFLECT,    /* the model is told why and reflects on it before the next attempt */
  AGENT_ST_TOOLS,      /* the model called documentation tools: they run, and the same attempt asks again */
  AGENT_ST_DONE,       /* the outcome is known: the result is handed over; nothing follows */
  AGENT_ST_COUNT
} agent_state;

/* What a state's work reports. */
typedef enum agent_event {
  AGENT_EV_OK = 0, /* the work went well (START: the task starts; FAILED: the failure is reported) */
  AGENT_EV_FAILED, /* the attempt failed here: an unusable answer, rejected by the checks, a failing run */
  AGENT_EV_CANCEL, /* the task was cancelled */
  AGENT_EV_ERROR,  /* the task cannot go on: the LLM endpoint failed, the sandbox could not start */
  AGENT_EV_TOOLS,  /* GENERATE: the answer is a call of documentation tools, not a solution */
  AGENT_EV_COUNT
} agent_event;

/* What the rule needs to know besides the state and the event. */
typedef struct agent_facts {
  bool cancelled;                  /* cancel was asked: whatever happened, the task ends cancelled */
  int iteration;                   /* attempts started so far */
  int max_iterations;
  bool reflect;                    /* reflect on a failure before the next attempt */
  agent_import_check import_check;
  bool checked;                    /* the checks ran (the language has a grammar) */
  bool has_imports;                /* the answer has import lines */
  bool tools_closed;               /* the attempt's tools are spent: the model was told to answer now */
} agent_facts;

typedef struct agent_step {
  agent_state next;
  agent_outcome outcome; /* when next is AGENT_ST_DONE */
  bool valid;            /* false: the event cannot happen in that state (a bug); next is DONE, outcome error */
} agent_step;

/* The transition rule. From DONE every event leads back to DONE (valid:
 * nothing follows the end). Otherwise: cancelled or CANCEL ends the task
 * cancelled, ERROR ends it in error; START, RETRIEVE and INDEX lead on to
 * GENERATE, then INSTALL, then CHECK; a passed check leads to IMPORT_RUN when imports are
 * run (import_check run or both, the answer has imports, the checks ran),
 * else to RUN; a passed RUN ends the task passed. A FAILED event in
 * GENERATE, INSTALL, CHECK, IMPORT_RUN or RUN leads to FAILED; from FAILED, OK ends
 * the task failed when iteration >= max_iterations, else leads to REFLECT
 * when reflect is on, else to GENERATE; from REFLECT, OK leads to
 * GENERATE. TOOLS in GENERATE leads to TOOLS (whose OK leads back to
 * GENERATE, the same attempt), or, when tools_closed (the model was told
 * its tools are spent and called them again), to FAILED: an attempt's tool
 * rounds end. */
agent_step agent_transition(agent_state state, agent_event event, const agent_facts *facts);

/* "retrieve", "generate", ...; "?" when out of range. */
const char *agent_state_name(agent_state state);
const char *agent_event_name(agent_event event);

#endif
