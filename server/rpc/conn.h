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
typedef struct rpc_conn_group rpc_conn_group;

/* Bytes queued for writing across every connection of a server: past
 * RPC_CONN_DEFAULT_MAX_QUEUED in all (or the group's own cap), the
 * connection with the most queued is dropped, as one that passes its own cap
 * is. Clients that stop reading would otherwise grow the server without
 * bound, each staying under its own cap. */
#define RPC_CONN_DEFAULT_MAX_QUEUED ((size_t)256 << 20)
/* One connection's own cap on bytes queued for writing. */
#define RPC_CONN_DEFAULT_MAX_PENDING ((size_t)256 << 20)

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
  bool discard_writes;        /* dropped: close without waiting for queued writes */
  rpc_conn_group *group;
  rpc_conn *group_prev, *group_next;
  int handles_open;
  int dispatching;
  char *cork;                 /* frames sent while a read is dispatched, written at its end */
  size_t cork_len, cork_cap;
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
 * stopped reading (more than write_max_pending bytes queued). A connection
 * that passes its own cap, or has the most queued when its group passes the
 * group's cap, is dropped: a log line, on_eof ("client stopped reading"), and
 * once closed its queued writes are discarded instead of waited for. The
 * dropped connection may be another member of the group than self. */
int rpc_conn_send(rpc_conn *self, char *body, size_t len);
/* The uid of the process at the other end of a unix socket connection
 * (SO_PEERCRED, as it was when it connected). Returns 0 or a negative errno
 * (-ENOTSOCK for stdio and files). */
int rpc_conn_peer_uid(rpc_conn *self, uid_t *uid);
/* Closes the connection once queued writes are flushed (or have failed);
 * on_closed runs when every handle is closed. Idempotent. */
void rpc_conn_close(rpc_conn *self);
/* Like rpc_conn_close, but queued writes are discarded rather than waited
 * for, so a client that does not read cannot hold the close up. Idempotent;
 * may follow rpc_conn_close. */
void rpc_conn_abort(rpc_conn *self);

struct rpc_conn_group {
  size_t queued;              /* bytes queued by every member, not yet written */
  size_t max_queued;
  /* private */
  rpc_conn *members;
};

/* Prepares an empty group; max_queued 0 means RPC_CONN_DEFAULT_MAX_QUEUED. */
void rpc_conn_group_init(rpc_conn_group *self, size_t max_queued);
/* Counts the connection's queued writes against the group's cap from now
 * on, until it is closed. The group must outlive the connection. */
void rpc_conn_join(rpc_conn *self, rpc_conn_group *group);

#endif
