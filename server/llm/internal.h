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
  http_client *http;
  llm_config cfg;
  char *auth_header;  /* "Authorization: Bearer ..." or NULL */
  char *chat_url;
  llm_chat *chats;
  llm__mode_entry *modes;
  size_t n_modes;
  unsigned rng;
  int refs;           /* the owner's, plus one per live chat and ping */
  bool closing;
};

/* config.c: a copy of src with every default filled in (base_url without a
 * trailing '/', the timeouts derived from timeout_ms). Close it with
 * llm_config_close. */
void llm__config_copy(llm_config *dst, const llm_config *src);

/* client.c: drops a reference; the last one frees the client's memory. */
void llm__client_unref(llm_client *c);
/* Replaces every occurrence of the API key in s (a heap string, taken) by
 * "[redacted]"; returns the result. */
char *llm__redact(const llm_client *c, char *s);
/* A pseudo-random number for backoff jitter. */
unsigned llm__rng_next(llm_client *c);

/* chat.c: ends every chat that has no transfer under way (waiting for a
 * retry, or not started yet) with LLM_CANCELLED. */
void llm__chats_cancel_idle(llm_client *c);

#endif
