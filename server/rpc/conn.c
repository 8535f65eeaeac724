/* One client's byte transport: LSP frames over uv streams or plain files. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

#define READ_CHUNK 65536

typedef struct write_req {
  uv_write_t req;
  rpc_conn *conn;
  char *body;
  size_t len;
  char header[40];
} write_req;

static void maybe_finish_close(rpc_conn *self);

static void group_leave(rpc_conn *self) {
  rpc_conn_group *g = self->group;
  if (!g) return;
  if (self->group_prev)
    self->group_prev->group_next = self->group_next;
  else
    g->members = self->group_next;
  if (self->group_next) self->group_next->group_prev = self->group_prev;
  self->group = NULL;
  self->group_prev = self->group_next = NULL;
}

static void on_handle_closed(uv_handle_t *h) {
  rpc_conn *self = h->data;
  if (--self->handles_open) return;
  /* uv_close has run every write callback (cancelled ones too) by now. */
  group_leave(self);
  rpc_conn_closed_cb cb = self->on_closed;
  self->on_closed = NULL; /* once, even if rpc_conn_abort comes later */
  if (cb) cb(self);
}

static void report_eof(rpc_conn *self, const char *reason) {
  if (self->eof_sent || self->closing) return;
  self->eof_sent = true;
  if (self->on_eof) self->on_eof(self, reason);
}

static int deliver(void *ud, const char *body, size_t len) {
  rpc_conn *self = ud;
  if (self->closing) return 1;
  self->on_message(self, body, len);
  return self->closing ? 1 : 0;
}

static void cork_flush(rpc_conn *self);

static void feed(rpc_conn *self, const char *data, size_t len) {
  /* Handlers may close the connection while we deliver; the close finishes
   * after the feed returns, so the reader is never freed under itself. */
  self->dispatching++;
  int rc = rpc_reader_feed(&self->reader, data, len, deliver, self);
  self->dispatching--;
  if (!self->dispatching) cork_flush(self);
  if (rc < 0) {
    log_error("closing connection: framing error: %s", rpc_reader_error(&self->reader));
    rpc_conn_stop(self);
    report_eof(self, rpc_reader_error(&self->reader));
  }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = xmalloc(READ_CHUNK);
  buf->len = READ_CHUNK;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rpc_conn *self = s->data;
  if (nread > 0) {
    feed(self, buf->base, (size_t)nread);
  } else if (nread < 0) {
    rpc_conn_stop(self);
    report_eof(self, nread == UV_EOF ? NULL : uv_strerror((int)nread));
  }
  free(buf->base);
  maybe_finish_close(self);
}

static void maybe_finish_close(rpc_conn *self);

static void file_read_cb(uv_fs_t *req) {
  rpc_conn *self = container_of(req, rpc_conn, file_read);
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  self->file_read_busy = false;
  if (n > 0 && self->reading) feed(self, self->file_buf, (size_t)n);
  if (n <= 0) {
    self->reading = false;
    report_eof(self, n == 0 ? NULL : uv_strerror((int)n));
  } else if (self->reading) {
    uv_buf_t b = uv_buf_init(self->file_buf, READ_CHUNK);
    if (uv_fs_read(self->loop, &self->file_read, self->in_fd, &b, 1, -1, file_read_cb) == 0)
      self->file_read_busy = true;
  }
  maybe_finish_close(self);
}

static int open_stream(rpc_conn *self, rpc_stream *st, int fd, bool readable, bool *is_file) {
  uv_handle_type t = uv_guess_handle(fd);
  int err;
  *is_file = false;
  switch (t) {
  case UV_TTY:
    err = uv_tty_init(self->loop, &st->tty, fd, readable);
    break;
  case UV_NAMED_PIPE:
  case UV_TCP:
    err = t == UV_TCP ? uv_tcp_init(self->loop, &st->tcp) : uv_pipe_init(self->loop, &st->pipe, 0);
    if (err) break;
    err = t == UV_TCP ? uv_tcp_open(&st->tcp, fd) : uv_pipe_open(&st->pipe, fd);
    if (err) {
      /* The handle exists: it must go through uv_close like any other. */
      st->handle.data = self;
      self->handles_open++;
      uv_close(&st->handle, on_handle_closed);
      return err;
    }
    break;
  case UV_FILE:
    *is_file = true;
    return 0;
  default:
    return UV_EINVAL;
  }
  if (err) return err;
  st->handle.data = self;
  self->handles_open++;
  return 0;
}

static void conn_defaults(rpc_conn *self, uv_loop_t *loop, size_t max_body) {
  rpc_conn_message_cb m = self->on_message;
  rpc_conn_eof_cb e = self->on_eof;
  rpc_conn_closed_cb c = self->on_closed;
  void *data = self->data;
  memset(self, 0, sizeof *self);
  self->on_message = m;
  self->on_eof = e;
  self->on_closed = c;
  self->data = data;
  self->loop = loop;
  self->in_fd = self->out_fd = -1;
  self->write_max_pending = RPC_CONN_DEFAULT_MAX_PENDING;
  rpc_reader_init(&self->reader, max_body);
}

int rpc_conn_init_fds(rpc_conn *self, uv_loop_t *loop, int in_fd, int out_fd, size_t max_body) {
  conn_defaults(self, loop, max_body);
  self->in_fd = in_fd;
  self->out_fd = out_fd;
  int err = open_stream(self, &self->in, in_fd, true, &self->in_is_file);
  if (err) goto fail;
  self->in_open = !self->in_is_file;
  err = open_stream(self, &self->out, out_fd, false, &self->out_is_file);
  if (err) goto fail;
  self->out_open = !self->out_is_file;
  if (self->in_is_file) self->file_buf = xmalloc(READ_CHUNK);
  return 0;
fail:
  /* Handles already opened close asynchronously; the owner still gets on_closed. */
  self->closing = true;
  if (self->in_open) uv_close(&self->in.handle, on_handle_closed);
  self->in_open = false;
  rpc_reader_close(&self->reader);
  return err;
}

int rpc_conn_init_accept(rpc_conn *self, uv_loop_t *loop, uv_stream_t *server, bool tcp, size_t max_body) {
  conn_defaults(self, loop, max_body);
  int err = tcp ? uv_tcp_init(loop, &self->in.tcp) : uv_pipe_init(loop, &self->in.pipe, 0);
  if (err) return err;
  self->in.handle.data = self;
  self->handles_open++;
  self->in_open = true;
  self->duplex = true;
  err = uv_accept(server, &self->in.stream);
  if (err) {
    self->closing = true;
    self->in_open = false;
    uv_close(&self->in.handle, on_handle_closed);
    return err;
  }
  return 0;
}

int rpc_conn_start(rpc_conn *self) {
  if (self->closing) return UV_EINVAL;
  self->reading = true;
  if (self->in_is_file) {
    uv_buf_t b = uv_buf_init(self->file_buf, READ_CHUNK);
    int err = uv_fs_read(self->loop, &self->file_read, self->in_fd, &b, 1, -1, file_read_cb);
    if (err) return err;
    self->file_read_busy = true;
    return 0;
  }
  return uv_read_start(&self->in.stream, alloc_cb, read_cb);
}

void rpc_conn_stop(rpc_conn *self) {
  if (!self->reading) return;
  self->reading = false;
  if (!self->in_is_file && self->in_open) uv_read_stop(&self->in.stream);
}

static uv_stream_t *out_stream(rpc_conn *self) {
  return self->duplex ? &self->in.stream : &self->out.stream;
}

static void write_cb(uv_write_t *req, int status) {
  write_req *w = container_of(req, write_req, req);
  rpc_conn *self = w->conn;
  if (status < 0 && status != UV_ECANCELED) log_debug("write to client failed: %s", uv_strerror(status));
  self->write_pending -= w->len;
  if (self->group) self->group->queued -= w->len;
  free(w->body);
  free(w);
  maybe_finish_close(self);
}

/* Drops a client that does not read: no more input, the owner hears of the
 * end, and the close does not wait for queued writes (uv_close cancels
 * them), so their memory goes now and not when the client reads. */
static void conn_drop(rpc_conn *self) {
  self->discard_writes = true;
  rpc_conn_stop(self);
  report_eof(self, "client stopped reading");
  /* Already closing (and waiting for its writes): finish now. */
  maybe_finish_close(self);
}

/* The group would pass its cap if self queued `adding` more bytes. Drops the
 * member with the most bytes queued (counting `adding` for self), unless the
 * members already dropped hold enough that the others stay under the cap
 * (their writes are cancelled on the next loop turn). Returns the dropped
 * connection, or NULL. */
static rpc_conn *group_over_cap(rpc_conn *self, size_t adding) {
  rpc_conn_group *g = self->group;
  size_t live = adding;
  rpc_conn *worst = NULL;
  size_t worst_n = 0;
  for (rpc_conn *c = g->members; c; c = c->group_next) {
    if (c->discard_writes) continue;
    size_t n = c->write_pending + (c == self ? adding : 0);
    live += c->write_pending;
    if (!worst || n > worst_n) {
      worst = c;
      worst_n = n;
    }
  }
  if (live <= g->max_queued || !worst) return NULL;
  log_error("clients are not reading their replies (%zu bytes queued for all clients, cap %zu): "
            "dropping the connection with the most queued (%zu bytes)",
            live, g->max_queued, worst_n);
  conn_drop(worst);
  return worst;
}

/* The replies to one read's messages (a pipelining client sends many per
 * read) are gathered while they are dispatched and go out in one write at
 * the end of the read, instead of one write system call per reply; they are
 * counted as queued (write_pending, the group's) from the moment they are
 * sent, as single writes are. */
static void cork_append(rpc_conn *self, const char *header, size_t hl, const char *body, size_t len) {
  size_t need = self->cork_len + hl + len;
  if (need > self->cork_cap) {
    size_t cap = self->cork_cap ? self->cork_cap : 4096;
    while (cap < need) cap *= 2;
    self->cork = xrealloc(self->cork, cap);
    self->cork_cap = cap;
  }
  memcpy(self->cork + self->cork_len, header, hl);
  memcpy(self->cork + self->cork_len + hl, body, len);
  self->cork_len = need;
}

static void cork_flush(rpc_conn *self) {
  if (!self->cork) return;
  write_req *w = xmalloc(sizeof *w);
  w->conn = self;
  w->body = self->cork;
  w->len = self->cork_len;
  self->cork = NULL;
  self->cork_len = self->cork_cap = 0;
  int err = UV_ECANCELED;
  if (!self->discard_writes && w->len) {
    uv_buf_t b = uv_buf_init(w->body, (unsigned)w->len);
    err = uv_write(&w->req, out_stream(self), &b, 1, write_cb);
  }
  if (err) {
    self->write_pending -= w->len;
    if (self->group) self->group->queued -= w->len;
    free(w->body);
    free(w);
  }
}

int rpc_conn_send(rpc_conn *self, char *body, size_t len) {
  /* closing, or dropped for not reading: nothing more goes out (and a
   * dropped client is reported once, not once per reply) */
  if (self->closing || self->discard_writes) {
    free(body);
    return UV_EPIPE;
  }
  char header[40];
  size_t hl = rpc_frame_header(header, sizeof header, len);
  if (self->out_is_file) {
    int err = write_all(self->out_fd, header, hl);
    if (!err) err = write_all(self->out_fd, body, len);
    free(body);
    return err;
  }
  if (self->write_pending > self->write_max_pending) {
    free(body);
    log_error("client is not reading its replies (%zu bytes queued): dropping the connection",
              self->write_pending);
    conn_drop(self);
    return UV_ENOBUFS;
  }
  if (self->group && self->group->queued + hl + len > self->group->max_queued &&
      group_over_cap(self, hl + len) == self) {
    free(body);
    return UV_ENOBUFS;
  }
  if (self->dispatching) {
    cork_append(self, header, hl, body, len);
    free(body);
    self->write_pending += hl + len;
    if (self->group) self->group->queued += hl + len;
    return 0;
  }
  write_req *w = xmalloc(sizeof *w);
  w->conn = self;
  w->body = body;
  w->len = hl + len;
  memcpy(w->header, header, hl);
  uv_buf_t bufs[2] = {uv_buf_init(w->header, (unsigned)hl), uv_buf_init(body, (unsigned)len)};
  int err = uv_write(&w->req, out_stream(self), bufs, 2, write_cb);
  if (err) {
    free(body);
    free(w);
    return err;
  }
  self->write_pending += w->len;
  if (self->group) self->group->queued += w->len;
  return 0;
}

static void maybe_finish_close(rpc_conn *self) {
  if (!self->closing || self->dispatching) return;
  if ((self->write_pending && !self->discard_writes) || self->file_read_busy) return;
  if (self->in_open) {
    self->in_open = false;
    uv_close(&self->in.handle, on_handle_closed);
  }
  if (self->out_open) {
    self->out_open = false;
    uv_close(&self->out.handle, on_handle_closed);
  }
  if (self->file_buf) {
    free(self->file_buf);
    self->file_buf = NULL;
  }
  if (self->handles_open == 0 && self->on_closed) {
    /* Nothing async to wait for (file-backed stdio): this runs synchronously,
     * so callers must not touch the connection after rpc_conn_close. */
    rpc_conn_closed_cb cb = self->on_closed;
    self->on_closed = NULL;
    group_leave(self);
    rpc_reader_close(&self->reader);
    cb(self);
    return;
  }
  rpc_reader_close(&self->reader);
}

int rpc_conn_peer_uid(rpc_conn *self, uid_t *uid) {
  if (!self->duplex || self->in.handle.type != UV_NAMED_PIPE) return -ENOTSOCK;
  uv_os_fd_t fd;
  int err = uv_fileno(&self->in.handle, &fd);
  if (err) return err;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) return -errno;
  *uid = cred.uid;
  return 0;
}

void rpc_conn_group_init(rpc_conn_group *self, size_t max_queued) {
  memset(self, 0, sizeof *self);
  self->max_queued = max_queued ? max_queued : RPC_CONN_DEFAULT_MAX_QUEUED;
}

void rpc_conn_join(rpc_conn *self, rpc_conn_group *group) {
  if (self->group || self->closing) return;
  self->group = group;
  self->group_next = group->members;
  if (group->members) group->members->group_prev = self;
  group->members = self;
  group->queued += self->write_pending;
}

void rpc_conn_close(rpc_conn *self) {
  if (self->closing) return;
  self->closing = true;
  rpc_conn_stop(self);
  if (self->file_read_busy) uv_cancel((uv_req_t *)&self->file_read);
  maybe_finish_close(self);
}

void rpc_conn_abort(rpc_conn *self) {
  self->discard_writes = true;
  if (!self->closing)
    rpc_conn_close(self);
  else
    maybe_finish_close(self);
}
