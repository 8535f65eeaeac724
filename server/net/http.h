/* A generic asynchronous HTTP client: libcurl's multi interface driven by a libuv loop. */
#ifndef CRUCIBLE_NET_HTTP_H
#define CRUCIBLE_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

#include <uv.h>

typedef struct http_client http_client;
typedef struct http_request http_request;

/* How a transfer ended. HTTP_DONE means a whole response arrived, whatever its
 * status; everything else means it did not. */
typedef enum http_outcome {
  HTTP_DONE = 0,
  HTTP_FAILED,             /* transport error: see curl_code and error */
  HTTP_TIMEOUT_CONNECT,    /* connect_timeout_ms passed before a connection */
  HTTP_TIMEOUT_FIRST_BYTE, /* first_byte_timeout_ms passed before any response byte */
  HTTP_TIMEOUT_IDLE,       /* idle_timeout_ms passed between two response bytes */
  HTTP_TIMEOUT_TOTAL,      /* total_timeout_ms passed */
  HTTP_TOO_BIG,            /* the body passed max_body */
  HTTP_ABORTED,            /* on_data or on_headers returned nonzero */
  HTTP_CANCELLED,          /* http_request_cancel or http_client_free */
  HTTP_REFUSED,            /* public_only: every address of the host was loopback/private/link-local */
} http_outcome;

typedef struct http_result {
  http_outcome outcome;
  long status;       /* status of the final response; 0 when none arrived */
  int curl_code;     /* CURLcode of the transfer (0 when curl reported none) */
  const char *error; /* what went wrong, for people; "" when outcome is HTTP_DONE */
  double connect_ms; /* time to connect; 0 when no connection was made */
  double first_byte_ms; /* time to the first response byte; 0 when none came */
  double total_ms;
  unsigned long long bytes; /* body bytes received */
  const char *body;  /* the body when on_data is NULL (NUL-terminated), else NULL */
  size_t body_len;
} http_result;

/* Called with body bytes as they arrive (never for the body of a redirect
 * being followed). Return 0 to go on, nonzero to abort the transfer
 * (outcome HTTP_ABORTED). */
typedef int (*http_data_fn)(http_request *req, const char *p, size_t n, void *ud);
/* Called once when the final response's header block is complete; headers
 * are readable through http_request_header*. Return nonzero to abort. */
typedef int (*http_headers_fn)(http_request *req, long status, void *ud);
/* Called exactly once per started request, always from the loop (never from
 * inside http_request_start or http_request_cancel). `res` and everything it
 * points to, and `req` itself, are freed when this returns. */
typedef void (*http_done_fn)(http_request *req, const http_result *res, void *ud);

typedef struct http_request_opts {
  const char *method;          /* NULL = "GET"; "HEAD" asks for no body */
  const char *url;             /* http:// or https:// only */
  const char *unix_socket;     /* connect to this unix socket path instead of the URL's host
                                  (a local engine's API); NULL: by the URL. Not with public_only */
  const char *tls_ca;          /* https: verify the server against this CA file only (NULL: the system's) */
  const char *tls_cert;        /* https: present this client certificate (PEM file) ... */
  const char *tls_key;         /* ... with this private key (PEM file); both or neither */
  const char *const *headers;  /* NULL-terminated "Name: value" lines, or NULL */
  const char *body;            /* copied; may be NULL */
  size_t body_len;
  const char *user_agent;      /* NULL = "crucible" */
  long connect_timeout_ms;     /* 0 = 10000 */
  long first_byte_timeout_ms;  /* from start to the first response byte; 0 = none */
  long idle_timeout_ms;        /* longest silence between response bytes; 0 = none */
  long total_timeout_ms;       /* 0 = none */
  size_t max_body;             /* cap on body bytes, checked before buffering; 0 = 16 MiB */
  size_t max_header_bytes;     /* cap on one response's header block; 0 = 64 KiB */
  int max_redirects;           /* 0 = do not follow redirects */
  bool accept_compressed;      /* offer gzip/deflate/br and decode them */
  bool public_only;            /* connect only to public addresses (http_addr_is_public), checked on
                                  the address actually connected to: every new connection (redirects
                                  and every resolved address included) and every reused one. No
                                  proxy is used for such a request: behind a proxy the address
                                  reached could not be checked */
  http_data_fn on_data;        /* NULL = buffer the body into the result */
  http_headers_fn on_headers;  /* may be NULL */
  http_done_fn on_done;        /* required */
  void *ud;
} http_request_opts;

/* Creates a client on `loop`. Returns 0 or a negative errno; *out is set only
 * on success. */
int http_client_new(uv_loop_t *loop, http_client **out);
/* Cancels every outstanding request (their on_done runs before this returns,
 * with HTTP_CANCELLED) and closes the client. Its handles are released by the
 * loop: run it until it ends. NULL is a no-op. */
void http_client_free(http_client *self);

/* Starts a request. Returns 0 and sets *out (may be NULL) to a handle that
 * stays valid until on_done has returned; or a negative errno and nothing is
 * called back. */
int http_request_start(http_client *self, const http_request_opts *opts, http_request **out);
/* Aborts the transfer: the connection is dropped on the loop's next turn and
 * on_done reports HTTP_CANCELLED. Safe from inside on_data/on_headers. Must not
 * be called after on_done. */
void http_request_cancel(http_request *req);

/* The first value of header `name` (case-insensitive) in the final response,
 * or NULL. Valid from on_headers until on_done returns. */
const char *http_request_header(const http_request *req, const char *name);
/* Header count and access by index (same validity as http_request_header). */
size_t http_request_header_count(const http_request *req);
void http_request_header_at(const http_request *req, size_t i, const char **name, const char **value);
/* The URL of the final response (after redirects), or the request URL. */
const char *http_request_url(const http_request *req);

/* Whether an address is one a request named by an untrusted party (a
 * workspace) may reach: false for loopback (127/8, ::1), private (10/8,
 * 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10),
 * shared (100.64/10), "this network" (0/8, ::), multicast, reserved and
 * broadcast (224/3, ff00::/8) addresses, IPv4-mapped (::ffff:a.b.c.d) and
 * NAT64 (64:ff9b::/96) forms of those, and anything not IPv4/IPv6. */
bool http_addr_is_public(const struct sockaddr *sa);

/* A short English name for an outcome ("timeout waiting for the first byte"). */
const char *http_outcome_str(http_outcome outcome);

#endif
