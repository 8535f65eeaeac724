/* Terminal-safe printing of untrusted text (see term.h for the escaped form). */
#include "term.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "jsonrpc.h"
#include "utf8.h"

/* One per standard stream; like stdio's own buffers, process-wide. */
typedef struct term_stream {
  bool escape;
  char carry[4]; /* the start of a UTF-8 sequence cut by the previous write */
  size_t n_carry;
} term_stream;

static term_stream streams[2];

static term_stream *stream_of(FILE *f) {
  if (f == stdout) return &streams[0];
  if (f == stderr) return &streams[1];
  return NULL;
}

void term_init(bool raw) {
  streams[0].escape = !raw && isatty(STDOUT_FILENO);
  streams[1].escape = !raw && isatty(STDERR_FILENO);
}

bool term_escaping(FILE *f) {
  term_stream *s = stream_of(f);
  return s && s->escape;
}

static bool is_control(uint32_t cp) {
  return (cp < 0x20 && cp != '\n' && cp != '\t') || (cp >= 0x7f && cp <= 0x9f);
}

size_t term_escape(const char *p, size_t n, bool at_end, dbuf *out) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i = 0, run = 0; /* run: start of the pending stretch of plain bytes */
  while (i < n) {
    if (u[i] >= 0x20 && u[i] < 0x7f) {
      i++;
      continue;
    }
    uint32_t cp = u[i];
    size_t len = u[i] < 0x80 ? 1 : utf8_decode(p + i, n - i, &cp);
    if (len == 0 && !at_end && n - i <= 3 && utf8_whole_prefix(p + i, n - i) == 0)
      break; /* a sequence the next chunk may complete */
    if (len && !is_control(cp)) {
      i += len;
      continue;
    }
    dbuf_add(out, p + run, i - run);
    if (len) dbuf_addf(out, "\\u%04x", (unsigned)cp);
    else dbuf_addf(out, "\\x%02x", u[i]);
    i += len ? len : 1;
    run = i;
  }
  dbuf_add(out, p + run, i - run);
  return i;
}

static void write_escaped(FILE *f, term_stream *s, const char *p, size_t n, bool at_end) {
  dbuf in, out;
  dbuf_init(&in, 0);
  dbuf_init(&out, 0);
  if (s->n_carry) {
    /* Put the held start of a sequence in front of this chunk. */
    dbuf_add(&in, s->carry, s->n_carry);
    dbuf_add(&in, p, n);
    p = in.data;
    n = in.len;
  }
  size_t used = term_escape(p, n, at_end, &out);
  s->n_carry = n - used; /* at most 3: term_escape's contract */
  memcpy(s->carry, p + used, s->n_carry);
  if (out.len) fwrite(out.data, 1, out.len, f);
  dbuf_close(&in);
  dbuf_close(&out);
}

void term_write(FILE *f, const char *p, size_t n) {
  term_stream *s = stream_of(f);
  if (!s || !s->escape) {
    fwrite(p, 1, n, f);
  } else if (n) {
    write_escaped(f, s, p, n, false);
  }
  fflush(f);
}

void term_puts(FILE *f, const char *s) {
  term_write(f, s, strlen(s));
}

void term_printf(FILE *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = NULL;
  int n = vasprintf(&text, fmt, ap);
  va_end(ap);
  if (n < 0) abort(); /* out of memory */
  term_write(f, text, (size_t)n);
  free(text);
}

void term_end(FILE *f) {
  term_stream *s = stream_of(f);
  if (s && s->n_carry) {
    size_t n = s->n_carry;
    s->n_carry = 0;
    write_escaped(f, s, s->carry, n, true);
  }
  fflush(f);
}

void term_print_json(const cJSON *v, bool formatted) {
  char *text = rpc_print_utf8(v, formatted);
  if (!text) abort(); /* out of memory */
  term_puts(stdout, text);
  term_puts(stdout, "\n");
  free(text);
}
