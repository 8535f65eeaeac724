/* An OpenAI-compatible chat-completions client: streaming, structured output
 * with fallbacks, retries, timeouts and cancellation. One client serves many
 * chats and pings at once, each with its own settings. */
#ifndef CRUCIBLE_LLM_CLIENT_H
#define CRUCIBLE_LLM_CLIENT_H

#include <stdbool.h>

#include <uv.h>

#include "openai.h"
#include "defaults.h"
#include "solution.h"

/* The settings' defaults (config/defaults.h). */
#define LLM_DEFAULT_BASE_URL CFG_DEFAULT_LLM_BASE_URL
#define LLM_DEFAULT_MODEL CFG_DEFAULT_LLM_MODEL

typedef struct llm_config {
  char *base_url;          /* owned; e.g. "http://localhost:11434/v1" (no trailing /chat/completions) */
  char *model;             /* owned */
  char *api_key;           /* owned; "" sends no Authorization header. Never logged. */
  char *user_agent;        /* owned; NULL = "crucible/VERSION" */
  double temperature;      /* < 0 = leave to the endpoint */
  long timeout_ms;         /* the whole chat's budget: every attempt (retries and structured-output
                              fallbacks included), the waits between them, and the streaming of the
                              answer (default 120000); also the default of the timeouts below */
  long total_timeout_ms;   /* 0 = timeout_ms */
  long connect_timeout_ms; /* 0 = min(10000, timeout_ms) */
  long first_byte_timeout_ms; /* 0 = timeout_ms */
  long idle_timeout_ms;    /* 0 = timeout_ms */
  int max_retries;         /* retries of transient failures (default 2) */
  long backoff_base_ms;    /* first backoff step (default 500) */
  long backoff_max_ms;     /* longest backoff, and longest retry-after honoured (default 30000) */
  llm_mode structured_output; /* default AUTO */
  size_t max_answer_bytes; /* cap on one answer (default 4 MiB) */
} llm_config;

/* Defaults, with NULL strings. */
void llm_config_init(llm_config *self);
/* Fills the strings: each argument that is non-NULL and non-empty wins; else
 * the environment (OPENAI_BASE_URL, CRUCIBLE_MODEL, and the key from the
 * variable named `api_key_env`, default OPENAI_API_KEY); else the defaults
 * above (no key). Replaces strings already set. Returns 0. */
int llm_config_resolve(llm_config *self, const char *base_url, const char *model, const char *api_key_env);
void llm_config_close(llm_config *self);

typedef struct llm_client llm_client;
typedef struct llm_chat llm_chat;

typedef enum llm_status { LLM_OK = 0, LLM_ERROR, LLM_CANCELLED } llm_status;

/* What kind of failure an LLM_ERROR is. */
typedef enum llm_error_kind {
  LLM_ERR_NONE = 0,
  LLM_ERR_TIMEOUT,  /* a timeout: connect, first byte, idle stream, or the chat's whole budget */
  LLM_ERR_CONNECT,  /* the endpoint could not be reached */
  LLM_ERR_STATUS,   /* the endpoint answered an HTTP error status */
  LLM_ERR_ANSWER,   /* the answer was unusable: not a stream, cut short, too big, an error event */
} llm_error_kind;

/* "timeout", "connect", "status", "answer"; NULL for LLM_ERR_NONE. */
const char *llm_error_kind_name(llm_error_kind kind);

typedef struct llm_result {
  llm_status status;
  const char *error;      /* NULL when OK; valid UTF-8; never contains the API key */
  llm_error_kind error_kind; /* LLM_ERR_NONE unless status is LLM_ERROR */
  long http_status;       /* last HTTP status, 0 when none */
  const char *text;       /* the whole answer ("" when none): tool-call arguments or content */
  llm_mode mode;          /* the mode the answer was asked in (AUTO for unstructured chats) */
  bool tool_call;         /* the answer came as a code_solution tool call */
  const char *finish_reason; /* NULL when the endpoint gave none */
  long prompt_tokens;     /* -1 when the endpoint reported no usage */
  long completion_tokens;
  int attempts;           /* HTTP requests made, fallbacks and retries included */
  /* The answer's tool calls (borrowed for the callback), in the order they
   * came; 0 when it called none. When it called a tool it was offered
   * (llm_chat_opts.tools), `text` is that call's arguments, not an answer. */
  const llm_tool_call *tool_calls;
  size_t n_tool_calls;
  /* The calls as an assistant message sends them back (llm_message.tool_calls);
   * NULL when none. Borrowed for the callback. */
  const char *tool_calls_json;
  const char *content;    /* the answer's text content ("" when none), even when it also called tools */
  bool tools_refused;     /* the endpoint refused the tools: the answer was asked for without them */
} llm_result;

/* Text as it streams (content deltas, or tool-call argument fragments). */
typedef void (*llm_token_fn)(void *ud, const char *text, size_t len);
/* A transient failure; the next attempt starts after delay_ms. Called before
 * any token was emitted: no partial answer is ever retried. */
typedef void (*llm_retry_fn)(void *ud, int retry, long delay_ms, long http_status, const char *reason);
/* The endpoint refused structured-output `from`; the request goes again as `to`. */
typedef void (*llm_fallback_fn)(void *ud, llm_mode from, llm_mode to, const char *reason);
/* Exactly once per chat, from the loop. `res` and the chat are freed when it returns. */
typedef void (*llm_done_fn)(void *ud, const llm_result *res);

typedef struct llm_chat_opts {
  const llm_config *config;    /* required: endpoint, model, key, timeouts, structured output; copied at start */
  const llm_message *messages; /* copied into the request body at start */
  size_t n_messages;
  bool structured;             /* ask for the code_solution answer; false = free text (reflections) */
  /* Tools the model may call: OpenAI's "tools" array as JSON text (copied;
   * NULL = none), and tool_choice ("auto", "none"; NULL = left out). The
   * arguments of a call to one of them are not streamed to on_token. An
   * endpoint that refuses tools (400 naming them) is asked again without. */
  const char *tools;
  const char *tool_choice;
  llm_token_fn on_token;
  llm_retry_fn on_retry;
  llm_fallback_fn on_fallback;
  llm_done_fn on_done;         /* required */
  void *ud;
} llm_chat_opts;

/* A client on `loop`, meant to live as long as the program: every chat and
 * ping goes through its one HTTP client, so connections to an endpoint are
 * reused, and what it learns of each endpoint (the structured-output mode
 * that works) serves every later chat. Settings come with each chat and
 * ping. Returns 0 or a negative errno. */
int llm_client_new(uv_loop_t *loop, llm_client **out);
/* Cancels every chat and ping (their callbacks run before this returns, with
 * LLM_CANCELLED) and frees the client; its handles, pooled connections
 * included, close on the loop. NULL is a no-op. */
void llm_client_free(llm_client *self);

/* The structured-output mode known to work for base_url + model (base_url
 * without a trailing '/'), or AUTO when unknown. Every successful structured
 * chat in AUTO records the mode it ended in; the next chat to the same
 * endpoint and model starts there. set() records one (AUTO forgets it); the
 * lead may persist these. */
llm_mode llm_client_mode_get(const llm_client *self, const char *base_url, const char *model);
void llm_client_mode_set(llm_client *self, const char *base_url, const char *model, llm_mode mode);

/* Starts a streamed chat completion. Returns 0 and *out (may be NULL; valid
 * until on_done returns), or a negative errno and nothing is called back:
 * -EINVAL without on_done or config, -ECANCELED when self is NULL or being
 * freed. */
int llm_chat_start(llm_client *self, const llm_chat_opts *opts, llm_chat **out);
/* Aborts the chat now (the HTTP transfer is dropped); on_done follows from
 * the loop with LLM_CANCELLED. Must not be called after on_done. */
void llm_chat_cancel(llm_chat *chat);

typedef struct llm_ping_result {
  bool ok;               /* GET {base}/models answered 200 with a model list */
  long http_status;
  const char *error;     /* NULL when ok */
  int models;            /* models listed, -1 when unknown */
  bool model_listed;     /* the configured model is among them */
  double ms;
} llm_ping_result;
typedef void (*llm_ping_fn)(void *ud, const llm_ping_result *res);
/* Asks GET {base_url}/models of `cfg` (copied), for `crucible doctor`. The
 * callback runs once, from the loop. Returns 0 or a negative errno (no
 * callback; -ECANCELED when self is NULL or being freed). */
int llm_ping(llm_client *self, const llm_config *cfg, llm_ping_fn cb, void *ud);

#endif
