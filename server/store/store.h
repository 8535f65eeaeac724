/* Transcripts of tasks and their attempts in an SQLite database under
 * $XDG_STATE_HOME/crucible/ (default ~/.local/state/crucible/). */
#ifndef CRUCIBLE_STORE_H
#define CRUCIBLE_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct store store;

/* Opens (creating if needed) the database at path, or at the default
 * location when path is NULL. Returns NULL with a message in err on failure. */
store *store_open(const char *path, char *err, size_t errlen);
void store_free(store *self);
/* The default database path into buf; returns buf. */
const char *store_default_path(char *buf, size_t cap);

/* Records a new task. `uid` must be unique (see store_make_uid); `task` is
 * the client's label (its task name or request id). Returns 0 or -1. */
int store_task_begin(store *self, const char *uid, const char *task, const char *kind,
                     const char *question, const char *language);
/* Records one finished attempt (the crucible/attempt payload plus prompts,
 * raw answer, reflection and timings). The object is borrowed. */
int store_attempt_put(store *self, const char *uid, int iteration, const cJSON *attempt);
/* Records the task's end: the AskResult/RunResult object (borrowed). */
int store_task_finish(store *self, const char *uid, const char *outcome, int iterations,
                      long long prompt_tokens, long long completion_tokens, long long duration_ms,
                      const cJSON *result);

/* Newest tasks first: [{uid, task, kind, question, language, outcome,
 * iterations, createdAt, durationMs, usage}]. Caller owns the result. */
cJSON *store_history(store *self, int limit);
/* How many tasks a history shows when the client names no limit. */
#define STORE_HISTORY_DEFAULT_LIMIT 20
/* One task with its attempts, by uid or by client label (newest match), or
 * NULL when unknown. Caller owns the result. */
cJSON *store_transcript(store *self, const char *task);

/* A new unique task id ("t-<time>-<random>") into buf (at least 40 bytes). */
void store_make_uid(char *buf, size_t cap);

#endif
