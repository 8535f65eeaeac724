/* The Crucible server: the loop's listeners, sessions and signals. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "documents.h"
#include "methods.h"

static void client_end(rpc_session *ses, int exit_code);
static void client_closed(rpc_session *ses);

static const rpc_session_ops client_ops = {.on_end = client_end, .on_closed = client_closed};

static lsp_client *client_new(lsp_server *srv) {
  lsp_client *c = xcalloc(1, sizeof *c);
  c->srv = srv;
  cfg_copy(&c->cfg, &srv->base);
  c->enc = LSP_ENC_UTF16;
  return c;
}

static void client_link(lsp_server *srv, lsp_client *c) {
  c->next = srv->clients;
  if (srv->clients) srv->clients->prev = c;
  srv->clients = c;
  srv->n_clients++;
}

static void client_closed(rpc_session *ses) {
  lsp_client *c = container_of(ses, lsp_client, ses);
  lsp_server *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else if (srv->clients == c)
    srv->clients = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->n_clients--;
  lsp_docs_close_all(c);
  cfg_close(&c->cfg);
  cJSON_Delete(c->init_options);
  cJSON_Delete(c->changed_settings);
  for (int i = 0; i < c->roots.n; i++) free(c->roots.items[i]);
  free(c);
}

static void client_end(rpc_session *ses, int exit_code) {
  lsp_client *c = container_of(ses, lsp_client, ses);
  if (c->stdio)
    lsp_server_stop(c->srv, exit_code);
  else
    rpc_session_close(ses);
}

static void log_to_clients(void *ud, log_level level, const char *msg) {
  lsp_server *srv = ud;
  static const int types[] = {4, 1, 2, 3, 4};
  for (lsp_client *c = srv->clients; c; c = c->next)
    if (c->trace && !rpc_session_closing(&c->ses)) rpc_session_log(&c->ses, types[level], msg);
}

static void on_signal(uv_signal_t *h, int signum) {
  lsp_server *srv = h->data;
  log_info("caught signal %d: stopping", signum);
  /* SIGTERM is the ordinary way to stop a service: a clean stop, status 0. */
  lsp_server_stop(srv, signum == SIGTERM ? 0 : 128 + signum);
}

/* The loop woke up (poll returned): callbacks run from now on. */
static void lag_check_cb(uv_check_t *h) {
  lsp_server *srv = container_of(h, lsp_server, lag_check);
  srv->lag_woke_ns = now_ns();
}

/* The loop is about to poll again: whatever ran since it woke held it. */
static void lag_prepare_cb(uv_prepare_t *h) {
  lsp_server *srv = container_of(h, lsp_server, lag_prepare);
  if (!srv->lag_woke_ns) return;
  double ms = (double)(now_ns() - srv->lag_woke_ns) / 1e6;
  if (ms > srv->lag_max_ms) srv->lag_max_ms = ms;
  if (ms > 50) log_info("the event loop was busy for %.1f ms in one iteration", ms);
}

/* Logs each line of cfg_apply's messages ("error: ..." / "warning: ..."),
 * and shows it to the client as window/logMessage when there is one (a
 * client with tracing on gets it already through the log sink). The lines
 * are cut in place. */
static void report_settings_messages(dbuf *msgs, lsp_client *client) {
  for (char *line = msgs->data, *nl; line && *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) break;
    *nl = '\0';
    bool is_err = !strncmp(line, "error", 5);
    log_msg(is_err ? LOG_ERROR : LOG_WARN, "settings: %s", line);
    if (client && !client->trace) {
      char text[1200];
      snprintf(text, sizeof text, "crucible settings: %s", line);
      rpc_session_log(&client->ses, is_err ? 1 : 2, text);
    }
  }
}

int lsp_server_init(lsp_server *self, uv_loop_t *loop) {
  memset(self, 0, sizeof *self);
  self->loop = loop;
  self->max_body = 0;
  rpc_conn_group_init(&self->out_group, 0);
  cfg_init(&self->base);
  dbuf msgs;
  dbuf_init(&msgs, 0);
  cfg_load_user(&self->base, &msgs);
  report_settings_messages(&msgs, NULL);
  dbuf_close(&msgs);
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(loop, &self->sig_int);
  uv_signal_init(loop, &self->sig_term);
  self->sig_int.data = self->sig_term.data = self;
  uv_signal_start(&self->sig_int, on_signal, SIGINT);
  uv_signal_start(&self->sig_term, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&self->sig_int);
  uv_unref((uv_handle_t *)&self->sig_term);
  uv_prepare_init(loop, &self->lag_prepare);
  uv_check_init(loop, &self->lag_check);
  uv_prepare_start(&self->lag_prepare, lag_prepare_cb);
  uv_check_start(&self->lag_check, lag_check_cb);
  uv_unref((uv_handle_t *)&self->lag_prepare);
  uv_unref((uv_handle_t *)&self->lag_check);
  uv_timer_init(loop, &self->stop_timer);
  uv_unref((uv_handle_t *)&self->stop_timer);
  log_set_sink(log_to_clients, self);
  core_init(&self->core, loop, &self->base, &(core_options){.warm = true});
  return 0;
}

int lsp_server_serve_stdio(lsp_server *self) {
  lsp_client *c = client_new(self);
  c->stdio = true;
  c->ses.data = c;
  int err = rpc_session_init_fds(&c->ses, self->loop, 0, 1, lsp_methods, lsp_n_methods, &client_ops,
                                 self->max_body);
  if (err) {
    log_error("cannot use stdin/stdout: %s", uv_strerror(err));
    cfg_close(&c->cfg);
    free(c);
    return err;
  }
  client_link(self, c);
  rpc_conn_join(&c->ses.conn, &self->out_group);
  err = rpc_session_start(&c->ses);
  if (err) {
    log_error("cannot read stdin: %s", uv_strerror(err));
    rpc_session_close(&c->ses);
  }
  return err;
}

/* A unix socket admits only our own uid. The file is 0600 already, but
 * root reaches it anyway, a chmod or a parent directory's ACL can open it,
 * and the credentials are what the kernel vouches for. */
static bool unix_peer_allowed(lsp_client *c) {
  uid_t uid = (uid_t)-1;
  int err = rpc_conn_peer_uid(&c->ses.conn, &uid);
  if (err) {
    log_error("refused a connection on unix:%s: cannot read its credentials: %s", c->srv->unix_path,
              strerror(-err));
    return false;
  }
  if (uid != geteuid()) {
    log_warn("refused a connection on unix:%s from uid %u: only uid %u may connect", c->srv->unix_path,
             (unsigned)uid, (unsigned)geteuid());
    return false;
  }
  return true;
}

static void on_connection(uv_stream_t *server, int status) {
  lsp_server *self = server->data;
  if (status < 0) {
    log_error("accept failed: %s", uv_strerror(status));
    return;
  }
  lsp_client *c = client_new(self);
  c->ses.data = c;
  client_link(self, c);
  int err = rpc_session_init_accept(&c->ses, self->loop, server, self->listen_tcp, lsp_methods,
                                    lsp_n_methods, &client_ops, self->max_body);
  if (err) {
    log_error("cannot serve a new client: %s", uv_strerror(err));
    rpc_session_close(&c->ses);
    return;
  }
  if (!self->listen_tcp && !unix_peer_allowed(c)) {
    /* Closed before a byte is read or written: the peer sees EOF only. */
    rpc_session_close(&c->ses);
    return;
  }
  rpc_conn_join(&c->ses.conn, &self->out_group);
  if (self->listen_tcp) rpc_session_require_token(&c->ses, self->token);
  err = rpc_session_start(&c->ses);
  if (err) {
    log_error("cannot serve a new client: %s", uv_strerror(err));
    rpc_session_close(&c->ses);
    return;
  }
  log_info("client connected (%d active)", self->n_clients);
}

/* What is at path before we bind there: nothing (fine), a socket nobody
 * listens on (left by a server that died: removed), or anything else, which
 * is refused. Unlinking blindly would delete a user's file, or steal the
 * path of a live server whose clients then reach us. */
static int unix_path_clear(const char *path, char *errbuf, size_t errlen) {
  struct stat st;
  if (lstat(path, &st)) {
    if (errno == ENOENT) return 0;
    int e = errno;
    snprintf(errbuf, errlen, "cannot listen on unix:%s: %s", path, strerror(e));
    return -e;
  }
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(errbuf, errlen, "refusing to listen on unix:%s: the path exists and is not a socket "
             "(remove it yourself if it is not needed, or choose another path)", path);
    return -EEXIST;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int e = errno;
    snprintf(errbuf, errlen, "cannot listen on unix:%s: socket: %s", path, strerror(e));
    return -e;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path); /* length checked by rpc_addr_parse */
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = rc ? errno : 0;
  close(fd);
  if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
    snprintf(errbuf, errlen, "refusing to listen on unix:%s: another server is listening there "
             "(stop it first, or choose another path)", path);
    return -EADDRINUSE;
  }
  if (e != ECONNREFUSED) {
    snprintf(errbuf, errlen, "refusing to listen on unix:%s: cannot tell whether a server uses it "
             "(connect: %s); remove it yourself if none does", path, strerror(e));
    return -e;
  }
  if (unlink(path) && errno != ENOENT) {
    e = errno;
    snprintf(errbuf, errlen, "cannot remove the stale socket %s: %s", path, strerror(e));
    return -e;
  }
  log_info("removed the stale socket %s (nothing listened on it)", path);
  return 0;
}

/* The socket appears at its path only once it accepts connections: it is
 * bound under a temporary name beside it, made to listen, then renamed into
 * place (atomic), so a client that sees the path never gets ECONNREFUSED.
 * A path too long for the temporary name binds in place instead. */
static int listen_unix(lsp_server *self, const rpc_addr *addr, char *errbuf, size_t errlen) {
  int err = unix_path_clear(addr->path, errbuf, errlen);
  if (err) return err;
  char tmp[sizeof ((struct sockaddr_un *)0)->sun_path];
  int n = snprintf(tmp, sizeof tmp, "%s.%ld~", addr->path, (long)getpid());
  bool renamed = n > 0 && (size_t)n < sizeof tmp;
  const char *bind_path = renamed ? tmp : addr->path;
  if (renamed) unlink(tmp); /* a leftover of a dead server with our pid */
  err = uv_pipe_init(self->loop, &self->listener.pipe, 0);
  if (err) goto uv_fail;
  self->listening = true;
  self->listener.handle.data = self;
  /* The umask makes the socket 0600 from its first instant (a chmod after
   * bind leaves a window in which anyone may connect). */
  mode_t old = umask(0177);
  err = uv_pipe_bind(&self->listener.pipe, bind_path);
  umask(old);
  if (err) goto uv_fail;
  struct stat st;
  if (chmod(bind_path, 0600)) {
    err = -errno;
    goto undo;
  }
  err = uv_listen(&self->listener.stream, 64, on_connection);
  if (err) goto undo;
  if (renamed && rename(tmp, addr->path)) {
    err = -errno;
    goto undo;
  }
  self->unix_path = xstrdup(addr->path);
  if (lstat(addr->path, &st)) {
    err = -errno;
    goto uv_fail;
  }
  self->unix_dev = st.st_dev;
  self->unix_ino = st.st_ino;
  return 0;
undo:
  unlink(bind_path);
uv_fail:
  snprintf(errbuf, errlen, "cannot listen on unix:%s: %s", addr->path, uv_strerror(err));
  return err;
}

static int listen_tcp(lsp_server *self, const rpc_addr *addr, char *errbuf, size_t errlen) {
  struct sockaddr_storage sa;
  if (uv_ip4_addr(addr->host, addr->port, (struct sockaddr_in *)&sa) &&
      uv_ip6_addr(addr->host, addr->port, (struct sockaddr_in6 *)&sa)) {
    snprintf(errbuf, errlen, "--listen: '%s' is not an IP address (use 127.0.0.1 or ::1)", addr->host);
    return -EINVAL;
  }
  if (!rpc_addr_is_loopback(addr)) {
    snprintf(errbuf, errlen,
             "refusing to listen on %s: only loopback addresses (127.0.0.1, ::1) are allowed. To reach "
             "the server from another machine, keep it on loopback or a unix socket there and go "
             "through ssh (e.g. `ssh HOST crucible connect tcp:127.0.0.1:PORT` as the editor's server "
             "command; see docs/protocol.md)", addr->host);
    return -EPERM;
  }
  /* The token before the socket: no listener exists without one. */
  char path[4200];
  int err = rpc_access_token_create(self->token, path, sizeof path, errbuf, errlen);
  if (err) return err;
  err = uv_tcp_init(self->loop, &self->listener.tcp);
  if (err) goto uv_fail;
  self->listening = true;
  self->listen_tcp = true;
  self->listener.handle.data = self;
  err = uv_tcp_bind(&self->listener.tcp, (struct sockaddr *)&sa, 0);
  if (err) goto uv_fail;
  err = uv_listen(&self->listener.stream, 64, on_connection);
  if (err) goto uv_fail;
  return 0;
uv_fail:
  snprintf(errbuf, errlen, "cannot listen on tcp:%s:%d: %s", addr->host, addr->port, uv_strerror(err));
  return err;
}

int lsp_server_listen(lsp_server *self, const char *spec, char *errbuf, size_t errlen) {
  rpc_addr addr;
  char perr[400];
  int err = rpc_addr_parse(&addr, spec, perr, sizeof perr);
  if (err) {
    snprintf(errbuf, errlen, "--listen %s", perr);
    return err;
  }
  err = addr.kind == RPC_ADDR_UNIX ? listen_unix(self, &addr, errbuf, errlen)
                                   : listen_tcp(self, &addr, errbuf, errlen);
  if (err) return err;
  if (self->listen_tcp) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "";
    uv_tcp_getsockname(&self->listener.tcp, (struct sockaddr *)&ss, &len);
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    fprintf(stderr, "crucible: listening on tcp:%s:%d\n", ip, port);
    char path[4200];
    if (!rpc_access_token_path(path, sizeof path))
      log_info("tcp clients must present the token stored in %s", path);
  } else {
    fprintf(stderr, "crucible: listening on unix:%s\n", self->unix_path);
  }
  return 0;
}

static void listener_closed(uv_handle_t *h) {
  (void)h;
}

/* The grace given after a stop for replies still queued to reach clients. */
#define STOP_FLUSH_MS 2000

static void stop_timer_cb(uv_timer_t *h) {
  lsp_server *self = container_of(h, lsp_server, stop_timer);
  if (self->clients) log_warn("closing the connections left without waiting for their unread replies");
  for (lsp_client *c = self->clients, *next; c; c = next) {
    next = c->next;
    rpc_conn_abort(&c->ses.conn);
  }
}

void lsp_server_stop(lsp_server *self, int exit_code) {
  if (self->stopping) return;
  self->stopping = true;
  self->exit_code = exit_code;
  log_set_sink(NULL, NULL);
  if (self->listening) {
    self->listening = false;
    uv_close(&self->listener.handle, listener_closed);
    /* Remove the socket file only if it is still the one we bound: another
     * server may own the path by now. */
    struct stat st;
    if (self->unix_path && !lstat(self->unix_path, &st) && st.st_dev == self->unix_dev &&
        st.st_ino == self->unix_ino)
      unlink(self->unix_path);
  }
  uv_signal_stop(&self->sig_int);
  uv_signal_stop(&self->sig_term);
  for (lsp_client *c = self->clients, *next; c; c = next) {
    next = c->next;
    rpc_session_close(&c->ses);
  }
  /* Closing waits for queued replies; a client that never reads them must
   * not keep the server from exiting. The timer is unref'd: it does not
   * hold the loop open by itself. */
  if (self->clients) uv_timer_start(&self->stop_timer, stop_timer_cb, STOP_FLUSH_MS, 0);
  /* Sessions have cancelled their work; now stop what is left (queued and
   * running sandboxes, module probes) and remove every cgroup. */
  core_close(&self->core);
}

int lsp_server_close(lsp_server *self) {
  uv_close((uv_handle_t *)&self->lag_prepare, NULL);
  uv_close((uv_handle_t *)&self->lag_check, NULL);
  uv_close((uv_handle_t *)&self->stop_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&self->sig_int)) uv_close((uv_handle_t *)&self->sig_int, NULL);
  if (!uv_is_closing((uv_handle_t *)&self->sig_term)) uv_close((uv_handle_t *)&self->sig_term, NULL);
  uv_run(self->loop, UV_RUN_DEFAULT);
  free(self->unix_path);
  core_free(&self->core);
  cfg_close(&self->base);
  return self->exit_code;
}

void lsp_client_update_settings(lsp_client *self) {
  lsp_server *srv = self->srv;
  cfg next;
  cfg_copy(&next, &srv->base);
  dbuf msgs;
  dbuf_init(&msgs, 0);
  cfg_apply(&next, self->init_options, CFG_SOURCE_CLIENT, &srv->base, &msgs);
  cfg_apply(&next, self->changed_settings, CFG_SOURCE_CLIENT, &srv->base, &msgs);
  cfg_close(&self->cfg);
  self->cfg = next;
  report_settings_messages(&msgs, self);
  dbuf_close(&msgs);
}
