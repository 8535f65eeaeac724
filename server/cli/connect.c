/* `crucible connect`: a stdio <-> socket bridge, so that any stdio LSP client
 * (an editor, a script) can use a `crucible serve --listen` server. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "access.h"
#include "addr.h"
#include "cli.h"
#include "common.h"
#include "dbuf.h"
#include "frame.h"

static const char connect_usage[] =
    "usage: crucible connect tcp:HOST:PORT | unix:PATH\n"
    "Bridges stdin/stdout to a `crucible serve --listen` server. For tcp it reads the\n"
    "server's token ($XDG_RUNTIME_DIR/crucible/token) and adds it to the client's\n"
    "initialize request; everything else passes through unchanged. Exits when\n"
    "either side closes.\n";

#define CHUNK 65536

typedef struct bridge {
  int sock;
  const char *token;  /* NULL: no rewriting (unix sockets) */
  /* Until the first message is complete (tcp only): its bytes as read, and
   * the frame reader that finds where it ends. */
  bool first_done;
  rpc_reader reader;
  dbuf held;
  char *first_body;   /* set by on_first_body */
  size_t first_len;
} bridge;

/* The client's first message with initializationOptions.token set, as a new
 * malloc'd body, or NULL when the message is not an initialize request whose
 * options can take it (it then goes to the server unchanged, and the server
 * answers with an error). */
static char *add_token(const char *body, size_t len, const char *token) {
  cJSON *msg = cJSON_ParseWithLength(body, len);
  char *out = NULL;
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  if (!cJSON_IsObject(msg) || !cJSON_IsString(method) || strcmp(method->valuestring, "initialize") != 0)
    goto done;
  cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
  if (!params || cJSON_IsNull(params)) {
    cJSON_DeleteItemFromObjectCaseSensitive(msg, "params");
    params = cJSON_AddObjectToObject(msg, "params");
  }
  if (!cJSON_IsObject(params)) goto done;
  cJSON *opts = cJSON_GetObjectItemCaseSensitive(params, "initializationOptions");
  if (!opts || cJSON_IsNull(opts)) {
    cJSON_DeleteItemFromObjectCaseSensitive(params, "initializationOptions");
    opts = cJSON_AddObjectToObject(params, "initializationOptions");
  }
  if (!cJSON_IsObject(opts)) goto done;
  cJSON_DeleteItemFromObjectCaseSensitive(opts, "token");
  cJSON_AddStringToObject(opts, "token", token);
  out = cJSON_PrintUnformatted(msg);
done:
  cJSON_Delete(msg);
  return out;
}

static int on_first_body(void *ud, const char *body, size_t len) {
  bridge *b = ud;
  b->first_body = xstrndup(body, len);
  b->first_len = len;
  return 1; /* stop right after it: the rest passes through as read */
}

/* Sends the first message, with the token added, then what followed it. */
static int send_first(bridge *b, const char *rest, size_t rest_len) {
  char *body = add_token(b->first_body, b->first_len, b->token);
  const char *p = body ? body : b->first_body;
  size_t n = body ? strlen(body) : b->first_len;
  char header[RPC_FRAME_HEADER_MAX];
  size_t hl = rpc_frame_header(header, sizeof header, n);
  int err = write_all(b->sock, header, hl);
  if (!err) err = write_all(b->sock, p, n);
  if (!err) err = write_all(b->sock, rest, rest_len);
  /* The token is a secret: do not leave copies in freed memory. */
  if (body) memset(body, 0, strlen(body));
  free(body);
  free(b->first_body);
  b->first_body = NULL;
  return err;
}

/* Bytes from the client. Before the first message is complete they are held
 * (and parsed) so the token can be added; after, they go straight through. */
static int from_client(bridge *b, const char *data, size_t n) {
  if (b->first_done) return write_all(b->sock, data, n);
  if (dbuf_add(&b->held, data, n)) {
    fprintf(stderr, "crucible connect: the client's first message is too large\n");
    return -E2BIG;
  }
  int rc = rpc_reader_feed(&b->reader, data, n, on_first_body, b);
  if (rc == 0) return 0;
  b->first_done = true;
  int err;
  if (rc == RPC_FRAME_STOPPED) {
    size_t used = rpc_reader_consumed(&b->reader);
    err = send_first(b, data + used, n - used);
  } else {
    /* Broken framing: pass the bytes on as they were; the server reports it. */
    err = write_all(b->sock, b->held.data, b->held.len);
  }
  dbuf_close(&b->held);
  return err;
}

static int open_socket(const rpc_addr *addr) {
  if (addr->kind == RPC_ADDR_UNIX) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr->path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
      int e = errno;
      close(fd);
      return -e;
    }
    return fd;
  }
  char port[8];
  snprintf(port, sizeof port, "%d", addr->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(addr->host, port, &hints, &res);
  if (gai) {
    fprintf(stderr, "crucible connect: %s: %s\n", addr->host, gai_strerror(gai));
    return -EHOSTUNREACH;
  }
  int err = -ECONNREFUSED;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    /* The token would cross the network in clear text: loopback only, as
     * the server listens (a remote server is reached through ssh). */
    bool loopback =
        (ai->ai_family == AF_INET &&
         (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127) ||
        (ai->ai_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr));
    if (!loopback) {
      err = -EPERM;
      continue;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = -errno;
      continue;
    }
    if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
      freeaddrinfo(res);
      return fd;
    }
    err = -errno;
    close(fd);
  }
  freeaddrinfo(res);
  if (err == -EPERM)
    fprintf(stderr, "crucible connect: %s is not a loopback address: the token is only sent to "
            "127.0.0.1 or ::1 (reach a remote server through ssh, see docs/protocol.md)\n", addr->host);
  return err;
}

/* Moves bytes both ways until the server closes the connection. When the
 * client's input ends, the socket is half-closed so the server still
 * delivers what it has to say and then closes. Returns the exit status. */
static int pump(bridge *b) {
  char *buf = xmalloc(CHUNK);
  bool in_open = true;
  int status = 0;
  for (;;) {
    struct pollfd pf[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN}, {.fd = b->sock, .events = POLLIN}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "crucible connect: poll: %s\n", strerror(errno));
      status = 1;
      break;
    }
    if (pf[1].revents) {
      ssize_t n = read(b->sock, buf, CHUNK);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        /* A reset is the server closing while bytes we sent were still
         * unread (a stop, or a refusal): it went away, as with EOF. */
        if (n < 0 && errno != ECONNRESET) {
          fprintf(stderr, "crucible connect: connection lost: %s\n", strerror(errno));
          status = 1;
        }
        break;
      }
      if (write_all(1, buf, (size_t)n)) break; /* the client is gone */
    }
    if (pf[0].revents) {
      ssize_t n = read(0, buf, CHUNK);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        in_open = false;
        /* A first message left incomplete goes on as it is. */
        if (!b->first_done && b->held.len && write_all(b->sock, b->held.data, b->held.len)) break;
        b->first_done = true;
        shutdown(b->sock, SHUT_WR);
        continue;
      }
      int err = from_client(b, buf, (size_t)n);
      if (err) {
        if (err != -E2BIG) fprintf(stderr, "crucible connect: writing to the server: %s\n", strerror(-err));
        status = 1;
        break;
      }
    }
  }
  free(buf);
  return status;
}

int cli_connect(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(connect_usage, argc == 2 ? stdout : stderr);
    return argc == 2 ? 0 : 2;
  }
  rpc_addr addr;
  char msg[600];
  if (rpc_addr_parse(&addr, argv[1], msg, sizeof msg)) {
    fprintf(stderr, "crucible connect: %s\n", msg);
    return 2;
  }
  if (addr.kind == RPC_ADDR_TCP && addr.port == 0) {
    fprintf(stderr, "crucible connect: tcp:%s:0: give the port the server printed\n", addr.host);
    return 2;
  }
  char token[RPC_ACCESS_TOKEN_LEN + 1] = "";
  if (addr.kind == RPC_ADDR_TCP && rpc_access_token_read(token, msg, sizeof msg)) {
    fprintf(stderr, "crucible connect: %s\n", msg);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  int fd = open_socket(&addr);
  if (fd < 0) {
    if (fd != -EPERM && fd != -EHOSTUNREACH)
      fprintf(stderr, "crucible connect: cannot connect to %s: %s\n", argv[1], strerror(-fd));
    memset(token, 0, sizeof token);
    return 1;
  }
  bridge b = {.sock = fd, .token = token, .first_done = addr.kind != RPC_ADDR_TCP};
  rpc_reader_init(&b.reader, 0);
  dbuf_init(&b.held, RPC_FRAME_DEFAULT_MAX_BODY + RPC_FRAME_MAX_HEADER);
  int status = pump(&b);
  rpc_reader_close(&b.reader);
  dbuf_close(&b.held);
  free(b.first_body);
  memset(token, 0, sizeof token);
  close(fd);
  return status;
}
