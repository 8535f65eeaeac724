/* libFuzzer target for the protocol layer: the input is a byte stream fed to
 * the framing reader in several chunkings that must agree, every body is
 * parsed and validated, replies are built and must parse back as valid
 * responses; the input is also parsed as one body and run through the UTF-8
 * column conversions. Any disagreement traps. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/jsonrpc.h"
#include "protocol/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)          \
  do {                       \
    if (!(cond))             \
      __builtin_trap();      \
  } while (0)

/* Small limits so the limit paths are reached by small inputs. */
static const rpc_limits fuzz_limits = {.max_depth = 12, .max_string = 200, .max_batch = 8};

/* A reply we build must always read back as a valid response. */
static void reply_check(cJSON *reply, const cJSON *id)
{
  CHECK(reply != NULL);
  char *text = cJSON_PrintUnformatted(reply);
  CHECK(text != NULL);
  rpc_batch b;
  CHECK(rpc_batch_parse(&b, text, strlen(text), NULL) == 0);
  CHECK(b.count == 1 && b.msgs[0].kind == RPC_KIND_RESPONSE);
  if (id != NULL) {
    /* The id comes back as it went in. */
    CHECK(b.msgs[0].id != NULL);
    CHECK(cJSON_IsString(id) == cJSON_IsString(b.msgs[0].id));
    if (cJSON_IsString(id))
      CHECK(strcmp(id->valuestring, b.msgs[0].id->valuestring) == 0);
    else
      CHECK(id->valuedouble == b.msgs[0].id->valuedouble);
  } else {
    CHECK(b.msgs[0].id == NULL);
  }
  rpc_batch_free(&b);
  free(text);
  cJSON_Delete(reply);
}

/* What the server does with one body: parse, validate, answer. */
static void body_handle(const char *body, size_t len)
{
  rpc_batch b;
  int rc = rpc_batch_parse(&b, body, len, &fuzz_limits);
  if (rc != 0) {
    CHECK(b.root == NULL && b.count == 0 && b.err_message[0] != '\0');
    CHECK(rc == RPC_PARSE_ERROR || rc == RPC_INVALID_REQUEST || rc == RPC_INTERNAL_ERROR);
    reply_check(rpc_make_error(NULL, rc, b.err_message, NULL), NULL);
    rpc_batch_free(&b);
    return;
  }
  /* Whatever passed the pre-scan is valid UTF-8. */
  CHECK(utf8_valid(body, len, NULL));
  CHECK(b.count >= 1 && b.count <= fuzz_limits.max_batch);
  for (size_t i = 0; i < b.count; i++) {
    const rpc_msg *m = &b.msgs[i];
    switch (m->kind) {
    case RPC_KIND_REQUEST:
      CHECK(m->method != NULL && m->id != NULL);
      reply_check(rpc_make_result(m->id, m->params ? cJSON_Duplicate(m->params, 1) : NULL), m->id);
      reply_check(rpc_make_error(m->id, RPC_METHOD_NOT_FOUND, m->method, NULL), m->id);
      break;
    case RPC_KIND_NOTIFICATION: {
      CHECK(m->method != NULL && m->id == NULL);
      cJSON *n = rpc_make_notification(m->method, m->params ? cJSON_Duplicate(m->params, 1) : NULL);
      CHECK(n != NULL);
      cJSON_Delete(n);
      break;
    }
    case RPC_KIND_RESPONSE:
      CHECK((m->result == NULL) != (m->error == NULL));
      break;
    case RPC_KIND_INVALID:
      CHECK(m->err_code == RPC_INVALID_REQUEST && m->err_message != NULL);
      reply_check(rpc_make_error(m->id, m->err_code, m->err_message, NULL), m->id);
      break;
    }
  }
  rpc_batch_free(&b);
}

typedef struct digest {
  size_t count;
  uint64_t hash;
  bool handle;
} digest;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

static int digest_cb(void *ud, const char *body, size_t len)
{
  digest *d = ud;
  d->count++;
  d->hash = fnv(d->hash, &len, sizeof(len));
  d->hash = fnv(d->hash, body, len);
  if (d->handle)
    body_handle(body, len);
  return 0;
}

/* Feeds data in pseudo-random chunks of 1..max_chunk bytes (all at once when
 * max_chunk is 0); returns the reader's result and copies its error text. */
static int feed_chunked(const uint8_t *data, size_t size, uint64_t seed, size_t max_chunk, digest *d, char *err,
                        size_t errcap)
{
  rpc_reader rd;
  rpc_reader_init(&rd, 4096);
  size_t pos = 0;
  int rc = 0;
  while (pos < size && rc == 0) {
    size_t take = size - pos;
    if (max_chunk) {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      if (take > 1 + seed % max_chunk)
        take = 1 + (size_t)(seed % max_chunk);
    }
    rc = rpc_reader_feed(&rd, (const char *)data + pos, take, digest_cb, d);
    CHECK(rc != 0 || rpc_reader_consumed(&rd) == take);
    pos += take;
  }
  strncpy(err, rpc_reader_error(&rd), errcap - 1);
  err[errcap - 1] = '\0';
  CHECK((rc == 0) == (err[0] == '\0'));
  rpc_reader_close(&rd);
  return rc;
}

static void utf8_check(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  size_t bad = 0;
  bool ok = utf8_valid(s, size, &bad);
  if (!ok) {
    uint32_t cp;
    CHECK(bad < size && utf8_valid(s, bad, NULL) && utf8_decode(s + bad, size - bad, &cp) == 0);
  }
  /* Column checks on the first 32 bytes as one line: conversions are
   * linear in the line, and the interesting cases are short. */
  size_t n = size < 32 ? size : 32;
  for (int e = 0; e < 3; e++) {
    uint32_t prev = 0;
    for (size_t b = 0; b <= n; b++) {
      uint32_t col = utf8_col_to_lsp(s, n, b, (lsp_encoding)e);
      CHECK(col >= prev);
      prev = col;
      size_t back = utf8_col_from_lsp(s, n, col, (lsp_encoding)e);
      CHECK(back <= b);
      CHECK(utf8_col_to_lsp(s, n, back, (lsp_encoding)e) == col);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err_a[160], err_b[160], err_c[160];
  uint64_t seed = fnv(0xcbf29ce484222325ull, data, size) | 1;

  /* One feed; every body is also handled like the server would. */
  digest a = {.hash = 1, .handle = true};
  int rc_a = feed_chunked(data, size, seed, 0, &a, err_a, sizeof(err_a));
  /* Random small chunks and byte by byte must see exactly the same. */
  digest b = {.hash = 1}, c = {.hash = 1};
  int rc_b = feed_chunked(data, size, seed, 17, &b, err_b, sizeof(err_b));
  int rc_c = feed_chunked(data, size, seed, 1, &c, err_c, sizeof(err_c));
  CHECK(rc_a == rc_b && rc_b == rc_c);
  CHECK(a.count == b.count && b.count == c.count);
  CHECK(a.hash == b.hash && b.hash == c.hash);
  CHECK(strcmp(err_a, err_b) == 0 && strcmp(err_b, err_c) == 0);

  body_handle((const char *)data, size);
  utf8_check(data, size);
  return 0;
}
