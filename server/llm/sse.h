/* An incremental parser for Server-Sent Events (the text/event-stream format). */
#ifndef CRUCIBLE_LLM_SSE_H
#define CRUCIBLE_LLM_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "dbuf.h"

typedef struct sse_event {
  const char *type; /* the `event:` field, "message" when absent */
  const char *data; /* `data:` lines joined with "\n"; NUL-terminated */
  size_t data_len;
  const char *id;   /* the last `id:` seen on the stream, "" when none */
} sse_event;

/* Called for each complete event; the event's strings are valid only during
 * the call. Return 0 to go on; a nonzero value stops parsing and is returned
 * by sse_parser_feed. */
typedef int (*sse_event_fn)(void *ud, const sse_event *ev);

typedef struct sse_parser {
  dbuf line;     /* the line being read */
  dbuf data;     /* data of the event being read */
  dbuf type;
  dbuf id;
  long retry_ms; /* the last `retry:` value, -1 when none */
  size_t max_event;
  unsigned long long events; /* events dispatched so far */
  bool after_cr; /* the last byte was CR: a following LF belongs to it */
  bool started;  /* past the optional byte order mark */
  bool failed;
  sse_event_fn cb;
  void *ud;
} sse_parser;

/* max_event caps one line and one event's data (0 = 1 MiB). */
void sse_parser_init(sse_parser *self, size_t max_event, sse_event_fn cb, void *ud);
void sse_parser_close(sse_parser *self);
/* Feeds n bytes; they may split lines and events anywhere. Returns 0, -E2BIG
 * when a line or an event passes max_event, or the callback's nonzero value.
 * After a nonzero return the parser refuses further input (-EINVAL). */
int sse_parser_feed(sse_parser *self, const char *p, size_t n);
/* True when bytes of an unfinished event are pending (the stream was cut
 * mid-event). The spec drops such an event at end of stream; so do we. */
bool sse_parser_pending(const sse_parser *self);

#endif
