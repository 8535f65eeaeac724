/* One client's byte transport: reads LSP frames from a uv stream (or a file),
 * writes frames back, and reports the bodies it reads. Knows nothing of JSON. */
#ifndef CRUCIBLE_RPC_CONN_H
#define CRUCIBLE_RPC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "frame.h"

typedef struct rpc_conn rpc_conn;

/* A complete message body; borrowed for the duration of the call. */
typedef void (*rpc_conn_message_cb)(rpc_conn *conn, const char *body, size_t len);
/* The input ended (EOF, read error or framing error; reason is NULL on plain
 * EOF). Called once; the owner then calls rpc_conn_close. */
typedef void (*rpc_conn_eof_cb)(rpc_conn *conn, const char *reason);
/* Every handle of the connection is closed: the owner may free it now. */
typedef void (*rpc_conn_closed_cb)(rpc_conn *conn);

typedef union rpc_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_pipe_t pipe;
  uv_tty_t tty;
  uv_tcp_t tcp;
} rpc_stream;

struct rpc_conn {
  uv_loop_t *loop;
  rpc_conn_message_cb on_message;
  rpc_conn_eof_cb on_eof;
  rpc_conn_closed_cb on_closed;
  void *data;

  /* private */
  rpc_stream in, out;
  bool in_is_file, out_is_file, duplex;
  bool in_open, out_open, reading, eof_sent, closing;
  int in_fd, out_fd;
  uv_fs_t file_read;
  char *file_buf;
  bool file_read_busy;
  rpc_reader reader;
  size_t write_pending;       /* bytes handed to uv_write and not yet done */
  size_t write_max_pending;   /* a client that stops reading is dropped past this */
  int handles_open;
  int dispatching;
};

/* Sets up a connection over two fds (stdin/stdout); each may be a pipe,
 * a socket, a tty or a regular file. The fds stay owned by the process.
 * Returns 0 or a negative uv error. */
int rpc_conn_init_fds(rpc_conn *self, uv_loop_t *loop, int in_fd, int out_fd, size_t max_body);
/* Accepts a pending connection from a listening stream (pipe or tcp). */
int rpc_conn_init_accept(rpc_conn *self, uv_loop_t *loop, uv_stream_t *server, bool tcp, size_t max_body);
/* Starts reading; messages arrive through on_message. */
int rpc_conn_start(rpc_conn *self);
/* Stops reading (pending frames in the current read are still delivered). */
void rpc_conn_stop(rpc_conn *self);
/* Sends one framed message. Takes ownership of body (malloc'd). Returns 0,
 * or a negative error when the connection is closing or the client has
 * stopped reading (more than write_max_pending bytes queued). */
int rpc_conn_send(rpc_conn *self, char *body, size_t len);
/* The uid of the process at the other end of a unix socket connection
 * (SO_PEERCRED, as it was when it connected). Returns 0 or a negative errno
 * (-ENOTSOCK for stdio and files). */
int rpc_conn_peer_uid(rpc_conn *self, uid_t *uid);
/* Closes the connection once queued writes are flushed (or have failed);
 * on_closed runs when every handle is closed. Idempotent. */
void rpc_conn_close(rpc_conn *self);

#endif
