/* JSON-RPC 2.0 message model: parse and validate incoming messages (single or
 * batch), and build outgoing ones. No I/O. */
#ifndef CRUCIBLE_PROTOCOL_JSONRPC_H
#define CRUCIBLE_PROTOCOL_JSONRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* JSON-RPC 2.0 and LSP error codes. */
enum {
  RPC_PARSE_ERROR = -32700,
  RPC_INVALID_REQUEST = -32600,
  RPC_METHOD_NOT_FOUND = -32601,
  RPC_INVALID_PARAMS = -32602,
  RPC_INTERNAL_ERROR = -32603,
  RPC_SERVER_NOT_INITIALIZED = -32002,
  RPC_UNKNOWN_ERROR_CODE = -32001,
  RPC_REQUEST_FAILED = -32803,
  RPC_SERVER_CANCELLED = -32802,
  RPC_CONTENT_MODIFIED = -32801,
  RPC_REQUEST_CANCELLED = -32800,
};

typedef struct rpc_limits {
  int max_depth;         /* nesting of arrays/objects; default 64 */
  size_t max_string;     /* bytes of one JSON string; default 32 MiB */
  size_t max_batch;      /* elements of one batch; default 1024 */
} rpc_limits;

#define RPC_LIMITS_DEFAULT ((rpc_limits){.max_depth = 64, .max_string = (size_t)32 << 20, .max_batch = 1024})

typedef enum rpc_kind {
  RPC_KIND_REQUEST,       /* method + id */
  RPC_KIND_NOTIFICATION,  /* method, no id */
  RPC_KIND_RESPONSE,      /* id + exactly one of result / error */
  RPC_KIND_INVALID,       /* answer with err_code/err_message, id (or null) */
} rpc_kind;

/* One message of a parsed body. All pointers are borrowed from the owning
 * rpc_batch's tree and die with it. */
typedef struct rpc_msg {
  rpc_kind kind;
  const cJSON *id;        /* number or string; NULL when absent or unusable (reply with null) */
  const char *method;     /* requests and notifications */
  const cJSON *params;    /* object or array; NULL when absent */
  const cJSON *result;    /* responses */
  const cJSON *error;     /* responses: the error object */
  int err_code;           /* RPC_KIND_INVALID: the code to answer with */
  const char *err_message;/* RPC_KIND_INVALID: static text */
} rpc_msg;

typedef struct rpc_batch {
  cJSON *root;            /* owned */
  bool is_batch;          /* the body was a JSON array */
  size_t count;
  rpc_msg *msgs;          /* owned, count entries */
  /* Set when the whole body is rejected (rpc_batch_parse returned non-zero):
   * the single error to answer with id null. */
  int err_code;
  char err_message[160];
} rpc_batch;

/* Parses and validates one message body. Returns 0 when the body is a JSON
 * object or a non-empty array (each element then gets its own rpc_msg, valid
 * or RPC_KIND_INVALID), or the error code to answer with id null:
 * RPC_PARSE_ERROR for invalid JSON, invalid UTF-8 (with the byte offset in
 * err_message), nesting deeper than max_depth or a string longer than
 * max_string; RPC_INVALID_REQUEST for `[]`, a batch above max_batch, or a body
 * that is neither an object nor an array; RPC_INTERNAL_ERROR when out of
 * memory. The pre-scan that enforces UTF-8, depth and string size runs before
 * cJSON parses anything. On a non-zero return only err_code and err_message
 * are set (no tree, no messages). Always call rpc_batch_free, whatever the
 * result.
 *
 * lim may be NULL (RPC_LIMITS_DEFAULT); a zero field takes its default.
 * max_depth above cJSON's own CJSON_NESTING_LIMIT (1000) is capped by cJSON.
 * Byte offsets in messages count from 0 at the body's first byte.
 *
 * Decisions beyond the letter of JSON-RPC 2.0, each giving RPC_KIND_INVALID
 * with RPC_INVALID_REQUEST unless said otherwise:
 * - an id must be a string or an integral number within +-2^53 (exact in a
 *   double, printed back unchanged); fractional, larger or non-finite ids are
 *   rejected and answered with id null. 1.0 counts as the integer 1.
 * - `"id": null` with a method is rejected (LSP ids are integer | string; a
 *   null id cannot be told apart from the id of our own error replies).
 * - `"params": null` counts as absent params (several LSP clients send it for
 *   shutdown/exit); any other non-structured params is rejected.
 * - a member named twice among jsonrpc/id/method/params/result/error is
 *   rejected (parsers disagree on which copy wins).
 * - "\u0000" inside a string cannot be represented (cJSON's C strings would
 *   silently cut the string there): a single message holding one is
 *   RPC_KIND_INVALID with RPC_INVALID_REQUEST and its id, if it has a usable
 *   one (the id is read from the cut tree, which is never dispatched); a batch
 *   holding one is a parse error. Raw control characters in strings and
 *   unpaired surrogate escapes are parse errors too.
 * - a response (no method, has result or error) needs an id; a null id is
 *   allowed only with error. error must be an object with an integral number
 *   "code" and a string "message".
 * - a method starting with "rpc." is a valid request here; the dispatcher
 *   answers it with RPC_METHOD_NOT_FOUND.
 * - the batch size is counted by the pre-scan, so a batch above max_batch is
 *   refused before cJSON builds it (even if it is also malformed). */
int rpc_batch_parse(rpc_batch *self, const char *body, size_t len, const rpc_limits *lim);
/* Frees the tree and the messages; self may be parsed into again. */
void rpc_batch_free(rpc_batch *self);

/* Builders. Each returns a new tree the caller owns (cJSON_Delete), or NULL
 * on out-of-memory. `id` is copied (NULL becomes JSON null; an integer id of
 * 16 or more digits becomes a cJSON raw item, so it prints digit for digit);
 * `result`, `params` and `data` are taken over, also when NULL is returned
 * (they may be NULL: result then becomes JSON null, params and data are
 * omitted). A NULL
 * message in rpc_make_error means rpc_error_text(code). */
cJSON *rpc_make_result(const cJSON *id, cJSON *result);
cJSON *rpc_make_error(const cJSON *id, int code, const char *message, cJSON *data);
cJSON *rpc_make_notification(const char *method, cJSON *params);
cJSON *rpc_make_request(const cJSON *id, const char *method, cJSON *params);

/* Prints `msg` as JSON text that is always valid UTF-8, whatever its
 * strings hold (LLM answers, program output, error bodies). The printed text
 * is validated (one pass, eight ASCII bytes at a time: the clean case costs
 * little); only when it is invalid is it repaired, each invalid sequence
 * becoming U+FFFD. That keeps the JSON well-formed: cJSON escapes control
 * characters and copies bytes >= 0x80 as they are, so invalid bytes can only
 * sit inside string literals. `formatted` picks cJSON_Print over
 * cJSON_PrintUnformatted. Returns a new string (free()), or NULL on
 * out-of-memory or a NULL msg. */
char *rpc_print_utf8(const cJSON *msg, bool formatted);

/* The standard message for a code ("Parse error", "Method not found", ...);
 * "Server error" for other codes in -32099..-32000, else "Unknown error". */
const char *rpc_error_text(int code);

#endif
