/* What an ask produces, typed: each attempt and the task's result, with
 * enums for outcomes, stages and phases. A task owns them until it hands
 * them to its sink; the edges (the LSP handler, the CLI, the transcript
 * store) serialise them with agent_attempt_json and agent_result_json, the
 * only code that knows their JSON form. */
#ifndef CRUCIBLE_AGENT_RESULT_H
#define CRUCIBLE_AGENT_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "client.h"
#include "prompt.h"
#include "sandbox.h"
#include "solution.h"

/* How a task ended (AskResult.outcome). */
typedef enum agent_outcome {
  AGENT_PASSED = 0, /* "passed": an attempt's program ran and exited 0 */
  AGENT_FAILED,     /* "failed": the last allowed attempt failed too */
  AGENT_CANCELLED,  /* "cancelled" */
  AGENT_ERROR,      /* "error": the task could not go on (LLM endpoint, sandbox) */
} agent_outcome;
const char *agent_outcome_name(agent_outcome outcome);

/* Where an attempt failed (Attempt.failedStage, AskResult.failedStage). */
typedef enum agent_stage {
  AGENT_STAGE_NONE = 0, /* it did not fail (or it was cancelled) */
  AGENT_STAGE_ANSWER,   /* "answer": the model's answer could not be used (or repeated a failed one) */
  AGENT_STAGE_SYNTAX,   /* "syntax": the checks found a syntax error; it never ran */
  AGENT_STAGE_IMPORTS,  /* "imports": an import is missing (checks), or the imports alone failed (import test) */
  AGENT_STAGE_RUN,      /* "run": the program failed in the sandbox, or printed nothing when asked for output */
  AGENT_STAGE_TEST,     /* "test": the program ran, the answer's own test failed */
  AGENT_STAGE_INSTALL,  /* "install": its declared dependencies could not be installed; it never ran */
} agent_stage;
/* The stage's name (the one serialiser); NULL for AGENT_STAGE_NONE. */
const char *agent_stage_name(agent_stage stage);

/* What a task is doing (crucible/phase). */
typedef enum agent_phase {
  AGENT_PHASE_RETRIEVING = 0,
  AGENT_PHASE_GENERATING,
  AGENT_PHASE_CHECKING,
  AGENT_PHASE_RUNNING,
  AGENT_PHASE_REFLECTING,
  AGENT_PHASE_FINISHED,
  AGENT_PHASE_INSTALLING,  /* the answer's dependencies are being installed */
} agent_phase;
const char *agent_phase_name(agent_phase phase);

/* A documentation tool the model called during an attempt (docs_search,
 * docs_read): what it asked, how many tokens (chars/4) the result it got
 * holds, and why it was refused (a bound, a page not found), if it was. */
typedef struct agent_tool_use {
  char *name;
  char *argument;  /* the query, or the URL (with "#section" when one was named) */
  long tokens;
  char *error;     /* NULL when it was answered */
} agent_tool_use;

/* One attempt: an answer, what the checks said, what running it did. */
typedef struct agent_attempt {
  int iteration;              /* 1-based */
  bool passed;
  agent_stage failed_stage;   /* AGENT_STAGE_NONE unless it failed */
  bool has_solution;
  llm_solution solution;      /* the parsed answer, when has_solution */
  /* The check module's report ({diagnostics, imports}, chk_report_json), or
   * NULL when the checks did not run. Kept in that form because its
   * positions need the parsed document, which is not kept. */
  cJSON *check;
  /* The last run of this attempt (the import test, then the program), a
   * rejected one (sbx_result_rejected) when the checks refused it, or NULL
   * when nothing ran. Owned: from sbx_result_dup. */
  sbx_result *run;
  char *error;                /* why it failed, as the model was told; NULL */
  /* The environment built for its declared dependencies ({id, kind,
   * requirements, ...}: RunResult.environment), or NULL: the task's. Owned. */
  cJSON *environment;
  char *summary;              /* why it failed, one line: what, where, the error (agent_attempt_summarize); NULL */
  char *key;                  /* the program, normalised (agent_program_key): an identical answer is not run again */
  unsigned long long started_ms;
  long long duration_ms;      /* set when the attempt ends */
  /* For the transcript only: */
  agent_conv prompt;          /* the messages sent for this generation */
  char *answer;               /* the model's raw answer; NULL before it came */
  char *reflection;           /* the model's reflection on this failure; NULL */
  agent_tool_use *tools;      /* documentation tool calls before its answer, in order; owned */
  size_t n_tools;
} agent_attempt;

/* Records a tool call (strings copied; error may be NULL). */
void agent_attempt_add_tool(agent_attempt *self, const char *name, const char *argument, long tokens,
                            const char *error);

/* One line saying why a failed attempt failed — the exact error and its
 * line where there is one (the first error diagnostic of the checks, the
 * run's traceback, the limit that stopped it) — from its stage, check, run
 * and error. New string; NULL when the attempt did not fail. Pure. */
char *agent_attempt_summarize(const agent_attempt *self);

/* A new, empty attempt started at started_ms. */
agent_attempt *agent_attempt_new(int iteration, unsigned long long started_ms);
void agent_attempt_free(agent_attempt *self);

typedef enum agent_json_form {
  AGENT_JSON_WIRE = 0,   /* the protocol's Attempt (crucible/attempt, AskResult.attempts) */
  AGENT_JSON_TRANSCRIPT, /* plus reflection, prompt and raw answer (the transcript store) */
} agent_json_form;

/* The attempt as JSON: {task, iteration, solution|null, check|null,
 * run|null, passed, failedStage?, error?, durationMs, toolCalls?:[{name,
 * argument, tokens, error?}] (when the model called documentation tools)} (solution.dependencies
 * when it declared any; run.environment when it installed them) and, in the
 * transcript form, reflection?, prompt, answer. run is the RunResult
 * (sbx_result_to_json); a rejected run's diagnostics are the check's.
 * task is the label notifications carry. Caller owns the tree. */
cJSON *agent_attempt_json(const agent_attempt *self, const char *task, agent_json_form form);

/* A documentation page put in a prompt. */
typedef struct agent_source {
  char *title;
  char *url;
} agent_source;

/* The result of a task (AskResult). */
typedef struct agent_result {
  char *task;                  /* the label notifications carry */
  char *uid;                   /* the transcript's id */
  agent_outcome outcome;
  int iterations;              /* attempts started */
  agent_attempt **attempts;    /* every finished attempt, in order; owned */
  size_t n_attempts, cap_attempts;
  agent_source *sources;       /* distinct by URL, in the order first used; owned */
  size_t n_sources, cap_sources;
  long long prompt_tokens, completion_tokens;
  long long duration_ms;
  char *error;                 /* why the task could not go on (outcome error); NULL */
  /* The environment of the last attempt that installed its dependencies
   * (AskResult.environment), or NULL: the task's. Owned. */
  cJSON *environment;
  llm_error_kind error_kind;   /* LLM_ERR_NONE unless an LLM request ended the task */
  const char *ranking;         /* AskResult.ranking: "hybrid" or "lexical" once documentation was searched
                                  (the last search's), NULL when none was; a static string */
} agent_result;

/* A new result for a task (strings copied), outcome passed, nothing else. */
agent_result *agent_result_new(const char *task, const char *uid);
void agent_result_free(agent_result *self);
/* Appends a finished attempt, taking it. */
void agent_result_add_attempt(agent_result *self, agent_attempt *attempt);
/* The last finished attempt, or NULL. Borrowed. */
agent_attempt *agent_result_last(const agent_result *self);
/* Records a page used in a prompt (copied), unless its URL is already there. */
void agent_result_add_source(agent_result *self, const char *title, const char *url);
/* The last finished attempt that had a solution / that ran (or was
 * rejected), or NULL: what AskResult.solution and AskResult.run show. */
const agent_attempt *agent_result_solution_attempt(const agent_result *self);
const agent_attempt *agent_result_run_attempt(const agent_result *self);

/* The AskResult: {task, uid, outcome, iterations, solution|null, run|null,
 * attempts, sources, usage:{promptTokens, completionTokens}, durationMs,
 * error?, errorKind?, failedStage?, environment?}. A failed result's error
 * and failedStage are its last attempt's summary and stage. Caller owns the
 * tree. */
cJSON *agent_result_json(const agent_result *self);

#endif
