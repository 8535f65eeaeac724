/* `crucible serve`: the JSON-RPC/LSP server on stdio or a listening socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "scope.h"
#include "server.h"

static const char serve_usage[] =
    "usage: crucible serve [--listen unix:PATH|tcp:127.0.0.1:PORT]\n"
    "                      [--log FILE] [--log-level error|warn|info|debug] [--max-message BYTES]\n"
    "                      [--max-queued BYTES]\n";

/* --allow-remote is still recognised so that its refusal can say why and
 * what to do: a remote client would send the token and every request in
 * clear text, and this build has no TLS server. */
static const char allow_remote_refused[] =
    "crucible serve: --allow-remote is refused: a server reachable from other machines needs TLS, "
    "and this build has none (the token and every request would cross the network in clear text).\n"
    "Instead, keep the server on loopback or a unix socket and reach it over ssh:\n"
    "  - as the editor's server command:  ssh HOST crucible connect unix:/run/user/UID/crucible.sock\n"
    "    (or tcp:127.0.0.1:PORT: the bridge then reads the token on HOST)\n"
    "  - or forward the socket:  ssh -N -L /tmp/crucible.sock:/run/user/UID/crucible.sock HOST\n"
    "    and use  crucible connect unix:/tmp/crucible.sock  locally.\n";

static int parse_size(const char *v, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-') return -EINVAL;
  *out = (size_t)n;
  return 0;
}

int cli_serve(int argc, char **argv) {
  const char *listen = NULL, *log_path = NULL;
  log_level level = LOG_WARN;
  bool allow_remote = false;
  size_t max_body = 0, max_queued = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--listen") && v) {
      listen = v;
      i++;
    } else if (!strcmp(a, "--log") && v) {
      log_path = v;
      i++;
    } else if (!strcmp(a, "--log-level") && v) {
      level = log_level_parse(v);
      if (!level) {
        fprintf(stderr, "crucible serve: unknown log level '%s'\n%s", v, serve_usage);
        return 2;
      }
      i++;
    } else if ((!strcmp(a, "--max-message") || !strcmp(a, "--max-queued")) && v) {
      if (parse_size(v, !strcmp(a, "--max-message") ? &max_body : &max_queued)) {
        fprintf(stderr, "crucible serve: %s wants a number of bytes, not '%s'\n%s", a, v, serve_usage);
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--allow-remote")) {
      allow_remote = true;
    } else if (!strcmp(a, "--stdio")) {
      /* the default; accepted because editors pass it */
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(serve_usage, stdout);
      return 0;
    } else {
      fprintf(stderr, "crucible serve: unexpected argument '%s'\n%s", a, serve_usage);
      return 2;
    }
  }
  if (allow_remote) {
    fputs(allow_remote_refused, stderr);
    return 2;
  }
  int err = log_open(log_path, level);
  if (err) {
    fprintf(stderr, "crucible serve: cannot open log file %s: %s\n", log_path, strerror(-err));
    return 2;
  }
  /* An unprivileged server without a delegated cgroup first tries to get
   * one from the user's systemd (no return when it does). */
  sbx_scope_reexec(argc, argv);
  uv_loop_t loop;
  uv_loop_init(&loop);
  lsp_server srv;
  lsp_server_init(&srv, &loop);
  srv.max_body = max_body;
  if (max_queued) srv.out_group.max_queued = max_queued;
  int rc = 0;
  if (listen) {
    char msg[512];
    err = lsp_server_listen(&srv, listen, msg, sizeof msg);
    if (err) {
      fprintf(stderr, "crucible serve: %s\n", msg);
      lsp_server_stop(&srv, 2);
    }
  } else {
    err = lsp_server_serve_stdio(&srv);
    if (err) lsp_server_stop(&srv, 2);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = lsp_server_close(&srv);
  if (uv_loop_close(&loop) != 0) {
    /* A handle left open is a bug: make it visible to tests. */
    log_error("internal error: the event loop still has open handles at exit");
    uv_print_all_handles(&loop, stderr);
    rc = 70;
  }
  log_close();
  return rc;
}
