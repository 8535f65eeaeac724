/* The LLM client's internals, shared by its files: client.c (the client, its
 * structured-output memory), config.c, chat.c and ping.c. */
#ifndef CRUCIBLE_LLM_INTERNAL_H
#define CRUCIBLE_LLM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "client.h"
#include "http.h"

typedef struct llm__mode_entry {
  char *base_url;
  char *model;
  llm_mode mode;
} llm__mode_entry;

struct llm_client {
  uv_loop_t *loop;
  http_client *http;  /* every chat's and ping's transfers: connections are pooled per endpoint */
  llm_chat *chats;
  llm__mode_entry *modes; /* structured-output memory, by base URL + model */
  size_t n_modes;
  unsigned rng;
  int refs;           /* the owner's, plus one per live chat and ping */
  bool closing;
};

/* Where and how one chat or ping asks: its own copy of the caller's settings
 * with every default filled in (base_url without a trailing '/', the
 * timeouts derived from timeout_ms), and the Authorization header. */
typedef struct llm__endpoint {
  llm_config cfg;
  char *auth_header;  /* "Authorization: Bearer ..." or NULL when there is no key */
} llm__endpoint;

/* config.c: fills self from cfg (copied; NULL strings get the defaults).
 * Close it with llm__endpoint_close, which wipes the key. */
void llm__endpoint_init(llm__endpoint *self, const llm_config *cfg);
void llm__endpoint_close(llm__endpoint *self);

/* client.c: drops a reference; the last one frees the client's memory. */
void llm__client_unref(llm_client *c);
/* Replaces every occurrence of api_key in s (a heap string, taken) by
 * "[redacted]": endpoints may echo what they were sent, and errors end up
 * in logs and UIs. Returns the result. */
char *llm__redact(const char *api_key, char *s);
/* A pseudo-random number for backoff jitter. */
unsigned llm__rng_next(llm_client *c);

/* chat.c: ends every chat that has no transfer under way (waiting for a
 * retry, or not started yet) with LLM_CANCELLED. */
void llm__chats_cancel_idle(llm_client *c);

#endif
