/* libcurl's multi interface on a libuv loop: one uv_poll per socket curl asks
 * us to watch, one uv_timer for curl's timeouts, and per-request timers for
 * the first-byte and idle deadlines curl does not have. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common.h"
#include "dbuf.h"

#define DEFAULT_MAX_BODY (16u << 20)
#define DEFAULT_MAX_HEADER_BYTES (64u << 10)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L

typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  http_client *client;
  struct sock_ctx *prev, *next;
} sock_ctx;

typedef struct header_kv {
  char *name;
  char *value;
} header_kv;

struct http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's own timeout (CURLMOPT_TIMERFUNCTION) */
  uv_timer_t kick;  /* runs deferred work (cancels, socket failures) on the next turn */
  http_request *reqs;
  sock_ctx *socks;
  int depth;          /* >0 while we are inside one of our loop callbacks */
  bool free_pending;  /* http_client_free was called at depth > 0 */
  bool closing;
  int closes_pending;
};

struct http_request {
  http_client *client;
  http_request *prev, *next;
  CURL *easy;
  struct curl_slist *slist;
  http_request_opts opts; /* string pointers inside are not kept: see start */
  char *url;
  uv_timer_t deadline;    /* first-byte, then idle deadline */
  unsigned long long start_ns, first_byte_ns;
  unsigned long long bytes;
  dbuf body;
  header_kv *hdrs;
  size_t n_hdrs, cap_hdrs, hdr_bytes;
  long status;
  bool got_byte, got_final_headers;
  bool cancelled, too_big, aborted, headers_too_big, finished;
  char refused[64];       /* public_only: the last address refused ("" = none) */
  int sys_error;          /* a uv error while watching this transfer's socket */
  char errbuf[CURL_ERROR_SIZE];
  char errtext[CURL_ERROR_SIZE + 256];
};

/* ---- public_only ---- */

static bool v4_is_public(uint32_t a) {
  uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
  if (b0 == 0 || b0 == 10 || b0 == 127) return false;          /* this network, private, loopback */
  if (b0 == 100 && (b1 & 0xc0) == 64) return false;            /* 100.64/10 shared (CGNAT) */
  if (b0 == 169 && b1 == 254) return false;                    /* link-local */
  if (b0 == 172 && (b1 & 0xf0) == 16) return false;            /* 172.16/12 */
  if (b0 == 192 && b1 == 168) return false;                    /* 192.168/16 */
  if (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) return false; /* 192.0.0/24 protocol assignments */
  if (b0 == 198 && (b1 & 0xfe) == 18) return false;            /* 198.18/15 benchmarking */
  if (b0 >= 224) return false;                                 /* multicast, reserved, broadcast */
  return true;
}

bool http_addr_is_public(const struct sockaddr *sa) {
  if (!sa) return false;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return v4_is_public(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family != AF_INET6) return false;
  const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t zero[12] = {0};
  if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12) || !memcmp(b, zero, 12)) {
    /* ::a.b.c.d (deprecated compatible form), ::, ::1 land here too */
    uint32_t v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
    if (!memcmp(b, zero, 12) && v4 <= 1) return false; /* :: and ::1 */
    return v4_is_public(v4);
  }
  if ((b[0] & 0xfe) == 0xfc) return false;                 /* fc00::/7 unique local */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false; /* fe80::/10 link-local */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false; /* fec0::/10 old site-local */
  if (b[0] == 0xff) return false;                          /* multicast */
  return true;
}

static void note_refused(http_request *req, const struct sockaddr *sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
  snprintf(req->refused, sizeof req->refused, "%s", host);
}

/* CURLOPT_OPENSOCKETFUNCTION: curl asks for a socket for each address it is
 * about to connect to; a private one gets none (curl then tries the next
 * address, or fails with COULDNT_CONNECT). */
static curl_socket_t open_public_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr) {
  http_request *req = ud;
  (void)purpose;
  if (!http_addr_is_public(&addr->addr)) {
    note_refused(req, &addr->addr);
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* CURLOPT_PREREQFUNCTION: runs before each request is sent, on a new or a
 * reused connection; a pooled connection opened by an unrestricted request
 * to the same host name must not carry a restricted one. */
static int check_reused_public(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  http_request *req = ud;
  (void)local_ip, (void)primary_port, (void)local_port;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, primary_ip, &in4->sin_addr) == 1) ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, primary_ip, &in6->sin6_addr) == 1) ss.ss_family = AF_INET6;
  if (http_addr_is_public((struct sockaddr *)&ss)) return CURL_PREREQFUNC_OK;
  snprintf(req->refused, sizeof req->refused, "%s", primary_ip);
  return CURL_PREREQFUNC_ABORT;
}

static void client_enter(http_client *c) {
  c->depth++;
}
static void client_destroy(http_client *c);
static void client_leave(http_client *c) {
  if (--c->depth == 0 && c->free_pending) client_destroy(c);
}

static void on_kick(uv_timer_t *t);
static void kick_schedule(http_client *c) {
  /* uv_timer_start cannot fail on an initialised, open timer with a callback. */
  if (!c->closing) (void)uv_timer_start(&c->kick, on_kick, 0, 0);
}

/* ---- request bookkeeping ---- */

static void headers_clear(http_request *req) {
  for (size_t i = 0; i < req->n_hdrs; i++) {
    free(req->hdrs[i].name);
    free(req->hdrs[i].value);
  }
  req->n_hdrs = 0;
  req->hdr_bytes = 0;
}

static void req_closed(uv_handle_t *h) {
  http_request *req = container_of((uv_timer_t *)h, http_request, deadline);
  free(req);
}

static double elapsed_ms(unsigned long long from_ns, unsigned long long to_ns) {
  return to_ns > from_ns ? (double)(to_ns - from_ns) / 1e6 : 0.0;
}

/* Ends a request: detaches it from curl, reports it, frees it. Runs only in
 * loop context (never inside a curl callback). */
static void req_finish(http_request *req, http_outcome outcome, int curl_code) {
  if (req->finished) return;
  req->finished = true;
  http_client *c = req->client;
  uv_timer_stop(&req->deadline);

  http_result res = {0};
  res.outcome = outcome;
  res.status = req->status;
  res.curl_code = curl_code;
  res.bytes = req->bytes;
  res.total_ms = elapsed_ms(req->start_ns, now_ns());
  res.first_byte_ms = req->got_byte ? elapsed_ms(req->start_ns, req->first_byte_ns) : 0.0;
  curl_off_t us = 0;
  if (curl_easy_getinfo(req->easy, CURLINFO_CONNECT_TIME_T, &us) == CURLE_OK) res.connect_ms = (double)us / 1e3;
  if (!req->opts.on_data && outcome == HTTP_DONE) {
    if (!req->body.data) dbuf_add(&req->body, "", 0);
    res.body = req->body.data;
    res.body_len = req->body.len;
  }

  switch (outcome) {
    case HTTP_DONE: req->errtext[0] = '\0'; break;
    case HTTP_FAILED:
      if (req->sys_error)
        snprintf(req->errtext, sizeof req->errtext, "cannot watch the connection's socket: %s",
                 uv_strerror(req->sys_error));
      else if (req->headers_too_big)
        snprintf(req->errtext, sizeof req->errtext, "response headers larger than %zu bytes",
                 req->opts.max_header_bytes);
      else
        snprintf(req->errtext, sizeof req->errtext, "%s",
                 req->errbuf[0] ? req->errbuf : curl_easy_strerror((CURLcode)curl_code));
      break;
    case HTTP_TIMEOUT_CONNECT:
      snprintf(req->errtext, sizeof req->errtext, "could not connect within %ld ms",
               req->opts.connect_timeout_ms);
      break;
    case HTTP_TIMEOUT_FIRST_BYTE:
      snprintf(req->errtext, sizeof req->errtext, "no response within %ld ms", req->opts.first_byte_timeout_ms);
      break;
    case HTTP_TIMEOUT_IDLE:
      snprintf(req->errtext, sizeof req->errtext, "response stalled: no data for %ld ms",
               req->opts.idle_timeout_ms);
      break;
    case HTTP_TIMEOUT_TOTAL:
      snprintf(req->errtext, sizeof req->errtext, "no complete response within %ld ms",
               req->opts.total_timeout_ms);
      break;
    case HTTP_TOO_BIG:
      snprintf(req->errtext, sizeof req->errtext, "response body larger than %zu bytes", req->opts.max_body);
      break;
    case HTTP_ABORTED: snprintf(req->errtext, sizeof req->errtext, "transfer aborted by its reader"); break;
    case HTTP_CANCELLED: snprintf(req->errtext, sizeof req->errtext, "cancelled"); break;
    case HTTP_REFUSED:
      snprintf(req->errtext, sizeof req->errtext,
               "refused to connect to %s: a loopback, private or link-local address", req->refused);
      break;
  }
  res.error = req->errtext;

  /* Removing a transfer that has not completed makes curl close its
   * connection instead of returning it to the pool: that is the abort. */
  curl_multi_remove_handle(c->multi, req->easy);
  if (req->prev) req->prev->next = req->next;
  else c->reqs = req->next;
  if (req->next) req->next->prev = req->prev;
  req->prev = req->next = NULL;

  req->opts.on_done(req, &res, req->opts.ud);

  curl_easy_cleanup(req->easy);
  curl_slist_free_all(req->slist);
  headers_clear(req);
  free(req->hdrs);
  free(req->url);
  dbuf_close(&req->body);
  uv_close((uv_handle_t *)&req->deadline, req_closed);
}

static void check_multi_info(http_client *c) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    http_request *req = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
    if (!req || req->finished) continue;
    CURLcode code = msg->data.result;
    http_outcome out;
    if (req->cancelled) out = HTTP_CANCELLED;
    else if (req->too_big) out = HTTP_TOO_BIG;
    else if (req->aborted) out = HTTP_ABORTED;
    else if (req->headers_too_big) out = HTTP_FAILED;
    else if (code == CURLE_OK) out = HTTP_DONE;
    else if (req->refused[0]) out = HTTP_REFUSED;
    else if (code == CURLE_OPERATION_TIMEDOUT) {
      curl_off_t us = 0;
      curl_easy_getinfo(req->easy, CURLINFO_CONNECT_TIME_T, &us);
      out = (us == 0 && !req->got_byte) ? HTTP_TIMEOUT_CONNECT : HTTP_TIMEOUT_TOTAL;
      if (out == HTTP_TIMEOUT_TOTAL && !req->opts.total_timeout_ms) out = HTTP_FAILED;
    } else out = HTTP_FAILED;
    req_finish(req, out, (int)code);
  }
}

/* ---- curl <-> uv glue ---- */

static void sock_closed(uv_handle_t *h) {
  free(container_of((uv_poll_t *)h, sock_ctx, poll));
}

static void sock_close(http_client *c, sock_ctx *s) {
  if (s->prev) s->prev->next = s->next;
  else c->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *s = container_of(h, sock_ctx, poll);
  http_client *c = s->client;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  curl_socket_t fd = s->fd; /* s may be closed during the call */
  int running;
  client_enter(c);
  curl_multi_socket_action(c->multi, fd, flags, &running);
  check_multi_info(c);
  client_leave(c);
}

/* Marks the transfer on `easy` as failed for a uv error; the kick finishes it. */
static void fail_easy(http_client *c, CURL *easy, int uv_err) {
  http_request *req = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
  if (req && !req->sys_error) req->sys_error = uv_err;
  kick_schedule(c);
}

/* CURLMOPT_SOCKETFUNCTION: only records what to watch. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  http_client *c = userp;
  sock_ctx *s = socketp;
  if (c->closing) return 0;
  if (what == CURL_POLL_REMOVE) {
    if (s) sock_close(c, s);
    return 0;
  }
  if (!s) {
    s = xcalloc(1, sizeof *s);
    s->fd = fd;
    s->client = c;
    int r = uv_poll_init_socket(c->loop, &s->poll, fd);
    if (r < 0) {
      free(s);
      fail_easy(c, easy, r);
      return -1;
    }
    s->next = c->socks;
    if (c->socks) c->socks->prev = s;
    c->socks = s;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  int r = uv_poll_start(&s->poll, ev, on_poll);
  if (r < 0) {
    fail_easy(c, easy, r);
    return -1;
  }
  return 0;
}

static void on_timer(uv_timer_t *t) {
  http_client *c = container_of(t, http_client, timer);
  int running;
  client_enter(c);
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi_info(c);
  client_leave(c);
}

/* CURLMOPT_TIMERFUNCTION: never drives curl from here (that would re-enter
 * curl); a 0 ms timeout runs on the loop's next turn. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  http_client *c = userp;
  if (c->closing) return 0;
  if (timeout_ms < 0) return uv_timer_stop(&c->timer) < 0 ? -1 : 0;
  return uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

static void on_kick(uv_timer_t *t) {
  http_client *c = container_of(t, http_client, kick);
  client_enter(c);
  for (;;) {
    http_request *found = NULL;
    for (http_request *r = c->reqs; r; r = r->next)
      if (!r->finished && (r->cancelled || r->sys_error)) {
        found = r;
        break;
      }
    if (!found) break;
    req_finish(found, found->cancelled ? HTTP_CANCELLED : HTTP_FAILED, 0);
  }
  client_leave(c);
}

static void on_deadline(uv_timer_t *t) {
  http_request *req = container_of(t, http_request, deadline);
  http_client *c = req->client;
  client_enter(c);
  req_finish(req, req->got_byte ? HTTP_TIMEOUT_IDLE : HTTP_TIMEOUT_FIRST_BYTE, 0);
  client_leave(c);
}

/* Called for every response byte batch (headers and body). */
static void note_bytes(http_request *req) {
  if (!req->got_byte) {
    req->got_byte = true;
    req->first_byte_ns = now_ns();
  }
  if (req->opts.idle_timeout_ms > 0)
    uv_timer_start(&req->deadline, on_deadline, (uint64_t)req->opts.idle_timeout_ms, 0);
  else
    uv_timer_stop(&req->deadline);
}

static bool is_followed_redirect(const http_request *req) {
  if (req->opts.max_redirects <= 0) return false;
  long s = req->status;
  if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) return false;
  return http_request_header(req, "location") != NULL;
}

static size_t on_curl_header(char *p, size_t size, size_t n, void *ud) {
  http_request *req = ud;
  size_t len = size * n;
  if (req->cancelled || req->finished) return 0;
  note_bytes(req);
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    headers_clear(req);
    const char *sp = memchr(p, ' ', len);
    req->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    return len;
  }
  if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
    if (req->status >= 200 && !is_followed_redirect(req) && !req->got_final_headers) {
      req->got_final_headers = true;
      if (req->opts.on_headers && req->opts.on_headers(req, req->status, req->opts.ud) != 0) {
        req->aborted = true;
        return 0;
      }
    }
    return len;
  }
  if (req->hdr_bytes + len > req->opts.max_header_bytes) {
    req->headers_too_big = true;
    return 0;
  }
  req->hdr_bytes += len;
  const char *colon = memchr(p, ':', len);
  if (!colon) return len;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1, *end = p + len;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
  if (req->n_hdrs == req->cap_hdrs) {
    req->cap_hdrs = req->cap_hdrs ? req->cap_hdrs * 2 : 16;
    req->hdrs = xrealloc(req->hdrs, req->cap_hdrs * sizeof *req->hdrs);
  }
  req->hdrs[req->n_hdrs].name = xstrndup(p, nlen);
  req->hdrs[req->n_hdrs].value = xstrndup(v, (size_t)(end - v));
  req->n_hdrs++;
  return len;
}

static size_t on_curl_write(char *p, size_t size, size_t n, void *ud) {
  http_request *req = ud;
  size_t len = size * n;
  if (req->cancelled || req->finished) return 0;
  note_bytes(req);
  if (len > req->opts.max_body || req->bytes > req->opts.max_body - len) {
    req->too_big = true;
    return 0;
  }
  req->bytes += len;
  if (req->opts.on_data) {
    if (req->opts.on_data(req, p, len, req->opts.ud) != 0) {
      req->aborted = true;
      return 0;
    }
    /* on_data may have cancelled us */
    return req->cancelled ? 0 : len;
  }
  if (dbuf_add(&req->body, p, len) < 0) {
    req->too_big = true;
    return 0;
  }
  return len;
}

/* ---- public API ---- */

/* libcurl's global state and the client's multi handle, made on the first
 * request: a client that never sends one never loads libcurl
 * (curl_lazy.c). Returns 0, -EIO or -ENOMEM. */
static int client_multi(http_client *c) {
  static bool global_done;
  if (c->multi) return 0;
  if (!global_done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -EIO;
    global_done = true;
  }
  c->multi = curl_multi_init();
  if (!c->multi) return -ENOMEM;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  return 0;
}

int http_client_new(uv_loop_t *loop, http_client **out) {
  http_client *c = xcalloc(1, sizeof *c);
  c->loop = loop;
  uv_timer_init(loop, &c->timer);
  uv_timer_init(loop, &c->kick);
  *out = c;
  return 0;
}

static void client_handle_closed(uv_handle_t *h) {
  http_client *c = h->data;
  if (--c->closes_pending == 0) free(c);
}

static void client_destroy(http_client *c) {
  c->free_pending = true; /* refuses new requests from the done callbacks below */
  c->depth++;             /* and keeps client_leave from destroying twice */
  while (c->reqs) req_finish(c->reqs, HTTP_CANCELLED, 0);
  c->closing = true;
  /* Our poll handles go first; curl then closes its sockets without telling us. */
  while (c->socks) {
    sock_ctx *s = c->socks;
    curl_multi_assign(c->multi, s->fd, NULL);
    sock_close(c, s);
  }
  if (c->multi) curl_multi_cleanup(c->multi);
  c->multi = NULL;
  c->closes_pending = 2;
  c->timer.data = c;
  c->kick.data = c;
  uv_close((uv_handle_t *)&c->timer, client_handle_closed);
  uv_close((uv_handle_t *)&c->kick, client_handle_closed);
}

void http_client_free(http_client *self) {
  if (!self || self->closing || self->free_pending) return;
  if (self->depth > 0) {
    /* Inside one of our callbacks: finish unwinding first. */
    self->free_pending = true;
    return;
  }
  client_destroy(self);
}

int http_request_start(http_client *self, const http_request_opts *o, http_request **out) {
  if (out) *out = NULL;
  if (!o || !o->url || !o->on_done) return -EINVAL;
  if (o->unix_socket && o->public_only) return -EINVAL;
  if (self->closing || self->free_pending) return -ECANCELED;
  int merr = client_multi(self);
  if (merr) return merr;
  http_request *req = xcalloc(1, sizeof *req);
  req->client = self;
  req->opts = *o;
  req->url = xstrdup(o->url);
  req->opts.url = req->url;
  req->opts.method = NULL;
  req->opts.headers = NULL;
  req->opts.body = NULL;
  req->opts.user_agent = NULL;
  req->opts.unix_socket = NULL;
  req->opts.tls_ca = req->opts.tls_cert = req->opts.tls_key = NULL;
  if (!req->opts.max_body) req->opts.max_body = DEFAULT_MAX_BODY;
  if (!req->opts.max_header_bytes) req->opts.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
  if (req->opts.connect_timeout_ms <= 0) req->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  dbuf_init(&req->body, req->opts.max_body);

  CURL *e = curl_easy_init();
  if (!e) {
    free(req->url);
    free(req);
    return -ENOMEM;
  }
  req->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, req);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "crucible");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->opts.connect_timeout_ms);
  if (o->total_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
  if (o->max_redirects > 0) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)o->max_redirects);
  }
  if (o->accept_compressed) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  /* curl copies the path; connections are pooled per socket path. */
  if (o->unix_socket) curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
  /* curl copies these too. */
  if (o->tls_ca) curl_easy_setopt(e, CURLOPT_CAINFO, o->tls_ca);
  if (o->tls_cert) curl_easy_setopt(e, CURLOPT_SSLCERT, o->tls_cert);
  if (o->tls_key) curl_easy_setopt(e, CURLOPT_SSLKEY, o->tls_key);
  if (o->public_only) {
    /* The check is on the address connected to, not on the URL's text:
     * names that resolve (or rebind) to 127.0.0.1, redirects, and numeric
     * spellings like 2130706433 all end at one of these two callbacks. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, req);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, check_reused_public);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, req);
  }
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, req);

  const char *method = o->method ? o->method : "GET";
  if (strcmp(method, "GET") == 0) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else {
    if (strcmp(method, "POST") == 0) curl_easy_setopt(e, CURLOPT_POST, 1L);
    else curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (o->body || strcmp(method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  /* curl would otherwise wait for "100 Continue" before sending large bodies. */
  req->slist = curl_slist_append(NULL, "Expect:");
  for (const char *const *h = o->headers; h && *h; h++) {
    struct curl_slist *n = curl_slist_append(req->slist, *h);
    if (!n) abort();
    req->slist = n;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->slist);

  uv_timer_init(self->loop, &req->deadline);
  req->start_ns = now_ns();
  CURLMcode mc = curl_multi_add_handle(self->multi, e);
  if (mc != CURLM_OK) {
    curl_easy_cleanup(e);
    curl_slist_free_all(req->slist);
    free(req->url);
    req->finished = true;
    uv_close((uv_handle_t *)&req->deadline, req_closed);
    return -EIO;
  }
  if (o->first_byte_timeout_ms > 0)
    uv_timer_start(&req->deadline, on_deadline, (uint64_t)o->first_byte_timeout_ms, 0);
  req->next = self->reqs;
  if (self->reqs) self->reqs->prev = req;
  self->reqs = req;
  if (out) *out = req;
  return 0;
}

void http_request_cancel(http_request *req) {
  if (!req || req->finished || req->cancelled) return;
  req->cancelled = true;
  kick_schedule(req->client);
}

const char *http_request_header(const http_request *req, const char *name) {
  for (size_t i = 0; i < req->n_hdrs; i++)
    if (strcasecmp(req->hdrs[i].name, name) == 0) return req->hdrs[i].value;
  return NULL;
}

size_t http_request_header_count(const http_request *req) {
  return req->n_hdrs;
}

void http_request_header_at(const http_request *req, size_t i, const char **name, const char **value) {
  *name = i < req->n_hdrs ? req->hdrs[i].name : NULL;
  *value = i < req->n_hdrs ? req->hdrs[i].value : NULL;
}

const char *http_request_url(const http_request *req) {
  char *eff = NULL;
  if (curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) return eff;
  return req->url;
}

const char *http_outcome_str(http_outcome o) {
  switch (o) {
    case HTTP_DONE: return "done";
    case HTTP_FAILED: return "failed";
    case HTTP_TIMEOUT_CONNECT: return "timeout while connecting";
    case HTTP_TIMEOUT_FIRST_BYTE: return "timeout waiting for the first byte";
    case HTTP_TIMEOUT_IDLE: return "timeout waiting for more data";
    case HTTP_TIMEOUT_TOTAL: return "timeout for the whole transfer";
    case HTTP_TOO_BIG: return "response too big";
    case HTTP_ABORTED: return "aborted";
    case HTTP_CANCELLED: return "cancelled";
    case HTTP_REFUSED: return "refused: not a public address";
  }
  return "unknown";
}
