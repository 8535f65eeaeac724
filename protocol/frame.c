/* Incremental reader and writer for the LSP base protocol's
 * "Content-Length: N\r\n\r\n<body>" framing. */
#include "frame.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_HEADER, ST_BODY, ST_ERROR };

/* A body buffer larger than this is released after its message, so one big
 * message does not pin its memory for the rest of the connection. */
#define KEEP_BODY_CAP ((size_t)1 << 20)
#define FIRST_BODY_CAP ((size_t)4096)

void rpc_reader_init(rpc_reader *self, size_t max_body)
{
  memset(self, 0, sizeof(*self));
  self->max_body = max_body ? max_body : RPC_FRAME_DEFAULT_MAX_BODY;
  if (self->max_body > (size_t)(INT64_MAX / 10))
    self->max_body = (size_t)(INT64_MAX / 10);
  self->state = ST_HEADER;
  self->content_length = -1;
}

void rpc_reader_close(rpc_reader *self)
{
  free(self->body);
  self->body = NULL;
  self->body_cap = self->body_len = 0;
}

const char *rpc_reader_error(const rpc_reader *self)
{
  return self->error;
}

size_t rpc_reader_consumed(const rpc_reader *self)
{
  return self->consumed;
}

__attribute__((format(printf, 3, 4))) static int fail(rpc_reader *self, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(self->error, sizeof(self->error), fmt, ap);
  va_end(ap);
  self->err = code;
  self->state = ST_ERROR;
  return code;
}

/* Copies at most 40 bytes of peer text into out for an error message, with
 * anything unprintable shown as '?', so a hostile header cannot inject
 * control sequences into our logs. */
static const char *excerpt(char out[48], const char *s, size_t n)
{
  size_t i, m = n > 40 ? 40 : n;
  for (i = 0; i < m; i++)
    out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (n > m) {
    memcpy(out + m, "...", 3);
    m += 3;
  }
  out[m] = '\0';
  return out;
}

static bool is_tchar(unsigned char c)
{
  /* RFC 9110 token characters. */
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void trim(const char **s, size_t *n)
{
  while (*n > 0 && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

static int content_length_parse(rpc_reader *self, const char *v, size_t n)
{
  char ex[48];
  uint64_t value = 0;
  if (n == 0)
    return fail(self, RPC_FRAME_EHEADER, "empty Content-Length header: expected a decimal byte count");
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return fail(self, RPC_FRAME_EHEADER,
                  "invalid Content-Length \"%s\": expected a decimal byte count (digits only)",
                  excerpt(ex, v, n));
    value = value * 10 + (uint64_t)(v[i] - '0');
    /* Checked per digit, so the value never overflows (the limit is below
     * INT64_MAX / 10, see rpc_reader_init) and is enforced before anything
     * is allocated for the body. */
    if (value > self->max_body)
      return fail(self, RPC_FRAME_ETOOBIG, "Content-Length %s exceeds the limit of %zu bytes; send smaller messages",
                  excerpt(ex, v, n), self->max_body);
  }
  if (self->content_length >= 0 && (uint64_t)self->content_length != value)
    return fail(self, RPC_FRAME_EHEADER, "conflicting Content-Length headers (%lld and %llu) in one message",
                (long long)self->content_length, (unsigned long long)value);
  self->content_length = (int64_t)value;
  return 0;
}

/* Accepts "type/subtype; charset=utf-8" (or utf8, any case, maybe quoted) or
 * no charset at all; the media type itself is not checked. */
static int content_type_parse(rpc_reader *self, const char *v, size_t n)
{
  char ex[48];
  const char *end = v + n;
  const char *p = memchr(v, ';', n);
  while (p != NULL) {
    const char *param = p + 1;
    const char *next = memchr(param, ';', (size_t)(end - param));
    size_t plen = (size_t)((next ? next : end) - param);
    trim(&param, &plen);
    const char *eq = memchr(param, '=', plen);
    if (eq != NULL) {
      const char *name = param;
      size_t nlen = (size_t)(eq - param);
      const char *val = eq + 1;
      size_t vlen = plen - nlen - 1;
      trim(&name, &nlen);
      trim(&val, &vlen);
      if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
        val++;
        vlen -= 2;
      }
      if (nlen == 7 && strncasecmp(name, "charset", 7) == 0) {
        bool ok = (vlen == 5 && strncasecmp(val, "utf-8", 5) == 0) || (vlen == 4 && strncasecmp(val, "utf8", 4) == 0);
        if (!ok)
          return fail(self, RPC_FRAME_EHEADER, "unsupported charset \"%s\" in Content-Type: only utf-8 is accepted",
                      excerpt(ex, val, vlen));
      }
    }
    p = next;
  }
  return 0;
}

/* Handles one complete header line, without its line ending. */
static int header_line(rpc_reader *self, const char *line, size_t n)
{
  char ex[48];
  if (n == 0) {
    if (self->line_start == 0) {
      /* A blank line before any header: tolerated (some clients end their
       * bodies with a newline), and dropped so it costs no buffer space. */
      self->hdr_len = 0;
      return 0;
    }
    if (self->content_length < 0)
      return fail(self, RPC_FRAME_EHEADER,
                  "missing Content-Length header: every message must start with \"Content-Length: <bytes>\\r\\n\\r\\n\"");
    self->state = ST_BODY;
    self->body_len = 0;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)line[i];
    if (c == '\r')
      return fail(self, RPC_FRAME_EHEADER, "stray carriage return in header line \"%s\": lines end with \\r\\n",
                  excerpt(ex, line, n));
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return fail(self, RPC_FRAME_EHEADER, "control character in header line \"%s\"", excerpt(ex, line, n));
  }
  const char *colon = memchr(line, ':', n);
  if (colon == NULL)
    return fail(self, RPC_FRAME_EHEADER, "malformed header line \"%s\": expected \"Name: value\"", excerpt(ex, line, n));
  size_t nlen = (size_t)(colon - line);
  if (nlen == 0)
    return fail(self, RPC_FRAME_EHEADER, "header line \"%s\" has an empty name", excerpt(ex, line, n));
  for (size_t i = 0; i < nlen; i++)
    if (!is_tchar((unsigned char)line[i]))
      return fail(self, RPC_FRAME_EHEADER, "invalid header name in \"%s\" (no spaces before ':')", excerpt(ex, line, n));
  const char *v = colon + 1;
  size_t vlen = n - nlen - 1;
  trim(&v, &vlen);
  if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0)
    return content_length_parse(self, v, vlen);
  if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0)
    return content_type_parse(self, v, vlen);
  return 0; /* other headers are allowed and ignored */
}

/* Ensures room for `need` body bytes, growing geometrically but never past
 * the announced Content-Length (already checked against max_body). */
static int body_reserve(rpc_reader *self, size_t need)
{
  if (need <= self->body_cap)
    return 0;
  size_t cl = (size_t)self->content_length;
  size_t cap = self->body_cap ? self->body_cap * 2 : FIRST_BODY_CAP;
  if (cap < need)
    cap = need;
  if (cap > cl)
    cap = cl;
  char *p = realloc(self->body, cap);
  if (p == NULL)
    return fail(self, RPC_FRAME_ENOMEM, "out of memory buffering a %zu-byte message", cl);
  self->body = p;
  self->body_cap = cap;
  return 0;
}

static void message_reset(rpc_reader *self)
{
  self->state = ST_HEADER;
  self->hdr_len = 0;
  self->line_start = 0;
  self->content_length = -1;
  self->body_len = 0;
}

int rpc_reader_feed(rpc_reader *self, const char *data, size_t len, rpc_frame_cb cb, void *ud)
{
  size_t pos = 0;
  int err = 0;

  self->consumed = 0;
  if (self->err)
    return self->err;
  for (;;) {
    if (self->state == ST_BODY) {
      size_t cl = (size_t)self->content_length;
      size_t avail = len - pos;
      const char *body;
      bool owned = false;
      if (self->body_len == 0 && avail >= cl) {
        /* Whole body in this chunk: hand it out without copying. */
        body = cl ? data + pos : "";
        pos += cl;
      } else if (avail == 0) {
        break;
      } else {
        size_t take = cl - self->body_len;
        if (take > avail)
          take = avail;
        err = body_reserve(self, self->body_len + take);
        if (err)
          goto out;
        memcpy(self->body + self->body_len, data + pos, take);
        self->body_len += take;
        pos += take;
        if (self->body_len < cl)
          continue;
        body = self->body;
        owned = true;
      }
      message_reset(self);
      int stop = cb(ud, body, cl);
      if (owned && self->body_cap > KEEP_BODY_CAP) {
        free(self->body);
        self->body = NULL;
        self->body_cap = 0;
      }
      if (stop) {
        err = RPC_FRAME_STOPPED;
        goto out;
      }
      continue;
    }
    if (pos == len)
      break;

    /* Header section: copy up to and including the next '\n'. */
    const char *nl = memchr(data + pos, '\n', len - pos);
    size_t take = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
    if (take > RPC_FRAME_MAX_HEADER - self->hdr_len) {
      err = fail(self, RPC_FRAME_EHEADER,
                 "header section longer than %d bytes: is the peer speaking the LSP base protocol?",
                 RPC_FRAME_MAX_HEADER);
      goto out;
    }
    memcpy(self->hdr + self->hdr_len, data + pos, take);
    self->hdr_len += take;
    pos += take;
    if (nl == NULL)
      break;
    const char *line = self->hdr + self->line_start;
    size_t n = self->hdr_len - self->line_start - 1;
    if (n > 0 && line[n - 1] == '\r')
      n--;
    err = header_line(self, line, n);
    if (err)
      goto out;
    self->line_start = self->hdr_len;
  }
out:
  self->consumed = pos;
  return err;
}

size_t rpc_frame_header(char *buf, size_t cap, size_t body_len)
{
  int n = snprintf(buf, cap, "Content-Length: %zu\r\n\r\n", body_len);
  if (n < 0 || (size_t)n >= cap) {
    if (cap > 0)
      buf[0] = '\0';
    return 0;
  }
  return (size_t)n;
}
