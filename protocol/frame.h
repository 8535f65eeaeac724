/* LSP base-protocol framing: an incremental reader and a header writer. No I/O. */
#ifndef CRUCIBLE_PROTOCOL_FRAME_H
#define CRUCIBLE_PROTOCOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RPC_FRAME_DEFAULT_MAX_BODY ((size_t)64 << 20) /* 64 MiB */
#define RPC_FRAME_MAX_HEADER 8192                      /* all header lines of one message */
#define RPC_FRAME_HEADER_MAX 48 /* room for rpc_frame_header with any size_t, NUL included */

/* Called once per complete message body. `body` is borrowed: it is valid only
 * during the call and is not NUL-terminated. Return 0 to go on, non-zero to
 * stop feeding (rpc_reader_feed then returns RPC_FRAME_STOPPED). The callback
 * must not feed the same reader. */
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
  size_t line_start;      /* offset in hdr of the header line being read */
  int64_t content_length; /* -1 until seen */
  char *body;
  size_t body_cap, body_len;
  size_t consumed;        /* bytes of the last feed that were used */
  int err;                /* sticky framing error, 0 if none */
  char error[160];
} rpc_reader;

/* Prepares a reader. max_body of 0 means RPC_FRAME_DEFAULT_MAX_BODY; it is
 * capped at INT64_MAX / 10. */
void rpc_reader_init(rpc_reader *self, size_t max_body);
/* Frees the reader's buffers; the struct may be init'ed again. */
void rpc_reader_close(rpc_reader *self);

/* Feeds bytes in any chunking. Calls cb for every complete body, in order.
 * Returns 0 when all bytes were consumed, RPC_FRAME_STOPPED if cb asked to
 * stop, or a negative RPC_FRAME_E* code: the stream is then unusable (the
 * connection must be closed), every later feed returns the same code, and
 * rpc_reader_error() says why in words. The size limit is checked when the
 * Content-Length line is read, before any body byte is buffered; the body
 * buffer then grows with the bytes actually received, never past the
 * announced length. Header names are case-insensitive; Content-Type is
 * accepted and ignored when it names utf-8 (or utf8) or no charset, and a
 * framing error for any other charset; other headers are ignored. Lines end
 * with "\r\n"; a bare "\n" is accepted too, a "\r" anywhere else is an error.
 * Empty lines before the first header line of a message are skipped.
 * After RPC_FRAME_STOPPED the reader sits right after the message the
 * callback stopped on: rpc_reader_consumed() says how many bytes of `data`
 * were used, and the rest may be fed again later. */
int rpc_reader_feed(rpc_reader *self, const char *data, size_t len, rpc_frame_cb cb, void *ud);

/* How many bytes of the last rpc_reader_feed call were consumed (== len
 * unless it returned RPC_FRAME_STOPPED or an error). */
size_t rpc_reader_consumed(const rpc_reader *self);

/* The reason of the last framing error ("" if none). Borrowed from self. */
const char *rpc_reader_error(const rpc_reader *self);

/* Writes "Content-Length: N\r\n\r\n" and a NUL into buf and returns the
 * header's length (without the NUL), or 0 if cap is too small (nothing useful
 * is written then). RPC_FRAME_HEADER_MAX bytes always suffice; 32 suffice
 * for bodies below 1 GB. The body is sent after it unchanged. */
size_t rpc_frame_header(char *buf, size_t cap, size_t body_len);

#endif
