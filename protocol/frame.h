/* LSP base-protocol framing: an incremental reader and a header writer. No I/O. */
#ifndef CRUCIBLE_PROTOCOL_FRAME_H
#define CRUCIBLE_PROTOCOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RPC_FRAME_DEFAULT_MAX_BODY ((size_t)64 << 20) /* 64 MiB */
#define RPC_FRAME_MAX_HEADER 8192                      /* all header lines of one message */

/* Called once per complete message body. `body` is borrowed: it is valid only
 * during the call and is not NUL-terminated. Return 0 to go on, non-zero to
 * stop feeding (rpc_reader_feed then returns RPC_FRAME_STOPPED). */
typedef int (*rpc_frame_cb)(void *ud, const char *body, size_t len);

enum {
  RPC_FRAME_STOPPED = 1,   /* the callback asked to stop */
  RPC_FRAME_EHEADER = -1,  /* malformed header line, missing Content-Length, header too long */
  RPC_FRAME_ETOOBIG = -2,  /* Content-Length above max_body */
  RPC_FRAME_ENOMEM = -3,
};

typedef struct rpc_reader {
  size_t max_body;
  /* private */
  int state;
  char hdr[RPC_FRAME_MAX_HEADER];
  size_t hdr_len;
  int64_t content_length; /* -1 until seen */
  char *body;
  size_t body_cap, body_len;
  char error[160];
} rpc_reader;

/* Prepares a reader. max_body of 0 means RPC_FRAME_DEFAULT_MAX_BODY. */
void rpc_reader_init(rpc_reader *self, size_t max_body);
/* Frees the reader's buffers; the struct may be init'ed again. */
void rpc_reader_close(rpc_reader *self);

/* Feeds bytes in any chunking. Calls cb for every complete body, in order.
 * Returns 0 when all bytes were consumed, RPC_FRAME_STOPPED if cb asked to
 * stop, or a negative RPC_FRAME_E* code: the stream is then unusable (the
 * connection must be closed) and rpc_reader_error() says why in words. The
 * size limit is checked before the body buffer is allocated. Header names are
 * case-insensitive; Content-Type is accepted and ignored when it names utf-8
 * (or utf8); other headers are ignored. */
int rpc_reader_feed(rpc_reader *self, const char *data, size_t len, rpc_frame_cb cb, void *ud);

/* The reason of the last framing error ("" if none). Borrowed from self. */
const char *rpc_reader_error(const rpc_reader *self);

/* Writes "Content-Length: N\r\n\r\n" into buf (at least 32 bytes) and returns
 * its length. The body is sent after it unchanged. */
size_t rpc_frame_header(char *buf, size_t cap, size_t body_len);

#endif
