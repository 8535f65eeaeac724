/* The OpenAI chat-completions wire format: request bodies, stream chunks, error
 * bodies, and the retry policy. Pure functions, no I/O. */
#ifndef CRUCIBLE_LLM_OPENAI_H
#define CRUCIBLE_LLM_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dbuf.h"

/* How the model is asked for the {prefix, imports, code} answer. */
typedef enum llm_mode {
  LLM_MODE_AUTO = 0,    /* json_schema, falling back to json_object, then text */
  LLM_MODE_JSON_SCHEMA, /* response_format json_schema, strict */
  LLM_MODE_JSON_OBJECT, /* response_format json_object + the schema in the system prompt */
  LLM_MODE_TEXT,        /* prose + one fenced code block */
} llm_mode;

/* "auto", "json_schema", "json_object", "text". */
const char *llm_mode_name(llm_mode mode);
/* Parses a mode name; returns 0 or -EINVAL (and *out is untouched). */
int llm_mode_parse(const char *s, llm_mode *out);

typedef struct llm_message {
  const char *role;    /* "system", "user", "assistant", "tool" */
  const char *content; /* NULL: none (an assistant message that only called tools) */
  /* An assistant message that called tools: the calls as OpenAI's wire has
   * them, a JSON array text [{id, type:"function", function:{name,
   * arguments}}] (llm_tool_calls_json); NULL when none. */
  const char *tool_calls;
  const char *tool_call_id; /* role "tool": the id of the call this message answers */
} llm_message;

/* Builds a chat-completions request body (a new string the caller frees).
 * `structured`: ask for the code_solution answer in `mode` (not AUTO); when
 * false, `mode` is ignored and the messages go as they are. temperature < 0
 * leaves it out. */
char *llm_body_build(const char *model, double temperature, const llm_message *msgs, size_t n,
                     bool structured, llm_mode mode, bool stream);
/* llm_body_build with tools the model may call: `tools` is OpenAI's "tools"
 * array as JSON text (NULL or unparsable = none) and tool_choice "auto",
 * "none" or "required" (NULL = left out). */
char *llm_body_build_tools(const char *model, double temperature, const llm_message *msgs, size_t n,
                           bool structured, llm_mode mode, bool stream, const char *tools, const char *tool_choice);

/* The most tool calls one answer keeps; further ones are ignored. */
#define LLM_MAX_TOOL_CALLS 8

/* One tool call of an answer, as it accumulates (streams send the id and
 * name first, then the arguments in fragments, keyed by "index"). */
typedef struct llm_tool_call {
  int index;   /* the stream's index of the call */
  char *id;    /* NULL when the endpoint sent none */
  char *name;
  dbuf args;
} llm_tool_call;

/* The answer as it accumulates from stream chunks or from one JSON body. */
typedef struct llm_answer {
  dbuf content;      /* assistant text */
  dbuf tool_args;    /* arguments of the first tool call (the code_solution call when it answers) */
  char *tool_name;   /* the first tool call's name */
  llm_tool_call calls[LLM_MAX_TOOL_CALLS]; /* every tool call, in the order they came */
  size_t n_calls;
  char *finish_reason;
  long prompt_tokens;     /* -1 until usage arrives */
  long completion_tokens;
  bool done;              /* [DONE] seen, or a whole non-streamed body parsed */
  unsigned long chunks;   /* stream chunks applied */
} llm_answer;

/* max caps content and tool arguments each. */
void llm_answer_init(llm_answer *self, size_t max);
void llm_answer_close(llm_answer *self);
/* Applies the data of one SSE event. Returns 0 (with *delta and *delta_len set to
 * the new text, possibly empty; it points into the answer and is valid until
 * the next call), 1 for "[DONE]", or a negative errno with *err set to a new
 * string: -EPROTO unreadable chunk, -EREMOTEIO the endpoint sent an error
 * object, -E2BIG the answer passed its cap. */
int llm_answer_add_chunk(llm_answer *self, const char *data, size_t len, const char **delta,
                         size_t *delta_len, char **err);
/* Applies a whole non-streamed response body. Same returns as above (0 on success). */
int llm_answer_set_body(llm_answer *self, const char *body, size_t len, char **err);
/* The answer text: tool-call arguments when the model called code_solution, else the content. */
const char *llm_answer_text(const llm_answer *self);
/* The answer's tool calls as the "tool_calls" of an assistant message sent
 * back (llm_message.tool_calls): a new JSON array text; a call without an id
 * gets "call_<n>" (the same one every time). NULL when there is none. */
char *llm_answer_calls_json(const llm_answer *self);

/* From an error response body: the endpoint's message (new string, never
 * NULL: the start of the body when it is not the OpenAI error shape) and, when
 * present, error.type and error.code (new strings or NULL). */
char *llm_error_parse(const char *body, size_t len, char **type, char **code);

/* Milliseconds to wait from `retry-after-ms` (preferred) or `retry-after`
 * (seconds or an HTTP date, compared with `now`); -1 when neither is usable. */
long llm_retry_after_ms(const char *retry_after, const char *retry_after_ms, time_t now);
/* Exponential backoff with jitter for retry number `attempt` (1 = first
 * retry): a value in [d/2, d] where d = min(base_ms * 2^(attempt-1), max_ms);
 * `rnd` is any random number. */
long llm_backoff_ms(int attempt, long base_ms, long max_ms, unsigned rnd);

typedef enum llm_verdict {
  LLM_FATAL = 0,        /* do not retry */
  LLM_RETRY,            /* transient: retry with backoff */
  LLM_FORMAT_REJECTED,  /* the endpoint refused the response_format: try the next mode */
} llm_verdict;
/* Classifies an HTTP error answer. */
llm_verdict llm_status_verdict(long status, const char *message, const char *type, const char *code);

#endif
