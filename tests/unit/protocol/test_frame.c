/* Unit tests for the LSP framing reader and header writer (protocol/frame.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/frame.h"

#define MAX_MSGS 64

typedef struct recorder {
  char *bodies[MAX_MSGS];
  size_t lens[MAX_MSGS];
  size_t count;
  size_t stop_after; /* stop (return 1) after this many messages; 0 = never */
} recorder;

static int record_cb(void *ud, const char *body, size_t len)
{
  recorder *r = ud;
  assert_true(r->count < MAX_MSGS);
  r->bodies[r->count] = malloc(len + 1);
  assert_non_null(r->bodies[r->count]);
  memcpy(r->bodies[r->count], body, len);
  r->bodies[r->count][len] = '\0';
  r->lens[r->count] = len;
  r->count++;
  return r->stop_after && r->count >= r->stop_after;
}

static void recorder_clear(recorder *r)
{
  for (size_t i = 0; i < r->count; i++)
    free(r->bodies[i]);
  memset(r, 0, sizeof(*r));
}

/* Feeds the whole string in one call to a fresh reader; returns the result. */
static int feed_all(const char *s, size_t max_body, recorder *r, rpc_reader *rd)
{
  rpc_reader_init(rd, max_body);
  return rpc_reader_feed(rd, s, strlen(s), record_cb, r);
}

static const char three_msgs[] =
  "Content-Length: 2\r\n\r\n{}"
  "content-type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: 10\r\n\r\n[1,\"\xc3\xa9\",3]"
  "X-Other: whatever: with colon\r\ncontent-length:5\r\n\r\nhello";

static void check_three(const recorder *r)
{
  assert_int_equal(r->count, 3);
  assert_string_equal(r->bodies[0], "{}");
  assert_int_equal(r->lens[1], 10);
  assert_string_equal(r->bodies[1], "[1,\"\xc3\xa9\",3]");
  assert_string_equal(r->bodies[2], "hello");
}

static void test_single_chunk_many_messages(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  assert_int_equal(feed_all(three_msgs, 0, &r, &rd), 0);
  assert_int_equal(rpc_reader_consumed(&rd), strlen(three_msgs));
  check_three(&r);
  assert_string_equal(rpc_reader_error(&rd), "");
  /* Whole bodies inside one chunk are handed out without buffering. */
  assert_null(rd.body);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_byte_by_byte(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  rpc_reader_init(&rd, 0);
  size_t n = strlen(three_msgs);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(rpc_reader_feed(&rd, three_msgs + i, 1, record_cb, &r), 0);
  check_three(&r);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_every_split_point(void **state)
{
  size_t n = strlen(three_msgs);
  for (size_t k = 0; k <= n; k++) {
    recorder r = {0};
    rpc_reader rd;
    rpc_reader_init(&rd, 0);
    assert_int_equal(rpc_reader_feed(&rd, three_msgs, k, record_cb, &r), 0);
    assert_int_equal(rpc_reader_feed(&rd, three_msgs + k, n - k, record_cb, &r), 0);
    check_three(&r);
    rpc_reader_close(&rd);
    recorder_clear(&r);
  }
}

static void test_random_chunks(void **state)
{
  size_t n = strlen(three_msgs);
  uint32_t x = 12345;
  for (int round = 0; round < 500; round++) {
    recorder r = {0};
    rpc_reader rd;
    rpc_reader_init(&rd, 0);
    size_t pos = 0;
    while (pos < n) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      size_t take = 1 + x % 17;
      if (take > n - pos)
        take = n - pos;
      assert_int_equal(rpc_reader_feed(&rd, three_msgs + pos, take, record_cb, &r), 0);
      pos += take;
    }
    check_three(&r);
    rpc_reader_close(&rd);
    recorder_clear(&r);
  }
}

static void test_header_names_case_insensitive(void **state)
{
  const char *variants[] = {
    "content-length: 2\r\n\r\n{}",
    "CONTENT-LENGTH: 2\r\n\r\n{}",
    "Content-length:2\r\n\r\n{}",
    "cOnTeNt-LeNgTh: \t2 \t\r\n\r\n{}",
  };
  for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
    recorder r = {0};
    rpc_reader rd;
    assert_int_equal(feed_all(variants[i], 0, &r, &rd), 0);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.bodies[0], "{}");
    rpc_reader_close(&rd);
    recorder_clear(&r);
  }
}

static void test_content_type(void **state)
{
  const char *ok[] = {
    "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Type: application/vscode-jsonrpc; charset=utf8\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Type: application/json;charset=\"UTF-8\"\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Type: application/json; foo=bar ; Charset = Utf-8\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    recorder r = {0};
    rpc_reader rd;
    assert_int_equal(feed_all(ok[i], 0, &r, &rd), 0);
    assert_int_equal(r.count, 1);
    rpc_reader_close(&rd);
    recorder_clear(&r);
  }
  const char *bad[] = {
    "Content-Type: application/vscode-jsonrpc; charset=latin1\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Length: 2\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n{}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    recorder r = {0};
    rpc_reader rd;
    assert_int_equal(feed_all(bad[i], 0, &r, &rd), RPC_FRAME_EHEADER);
    assert_int_equal(r.count, 0);
    assert_non_null(strstr(rpc_reader_error(&rd), "charset"));
    assert_non_null(strstr(rpc_reader_error(&rd), "utf-8"));
    rpc_reader_close(&rd);
    recorder_clear(&r);
  }
}

static void test_too_big_before_allocation(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  /* Only the Content-Length line: the limit fires before the header section
   * ends, so nothing of the body can have been allocated. */
  assert_int_equal(feed_all("Content-Length: 101\r\n", 100, &r, &rd), RPC_FRAME_ETOOBIG);
  assert_null(rd.body);
  assert_int_equal(rd.body_cap, 0);
  assert_non_null(strstr(rpc_reader_error(&rd), "101"));
  assert_non_null(strstr(rpc_reader_error(&rd), "limit of 100"));
  /* Sticky: the stream is unusable from now on. */
  assert_int_equal(rpc_reader_feed(&rd, "\r\n{}", 4, record_cb, &r), RPC_FRAME_ETOOBIG);
  assert_int_equal(r.count, 0);
  rpc_reader_close(&rd);

  /* A number far beyond any integer type is "too big", not an overflow. */
  assert_int_equal(feed_all("Content-Length: 999999999999999999999999999999\r\n\r\n", 0, &r, &rd), RPC_FRAME_ETOOBIG);
  assert_null(rd.body);
  rpc_reader_close(&rd);

  /* The largest limit still refuses what no integer type can hold. */
  assert_int_equal(feed_all("Content-Length: 99999999999999999999999999\r\n", SIZE_MAX, &r, &rd), RPC_FRAME_ETOOBIG);
  rpc_reader_close(&rd);

  /* Exactly at the limit is fine. */
  char msg[200];
  snprintf(msg, sizeof(msg), "Content-Length: 100\r\n\r\n%0100d", 7);
  assert_int_equal(feed_all(msg, 100, &r, &rd), 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.lens[0], 100);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_buffer_grows_with_received_bytes(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  /* A peer announcing 10 MB but sending 10 bytes costs a small buffer only. */
  assert_int_equal(feed_all("Content-Length: 10000000\r\n\r\n0123456789", 0, &r, &rd), 0);
  assert_int_equal(r.count, 0);
  assert_true(rd.body_cap <= 4096);
  assert_int_equal(rd.body_len, 10);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_large_body_in_chunks(void **state)
{
  const size_t n = (size_t)2 << 20; /* above the 1 MiB kept between messages */
  char *body = malloc(n);
  assert_non_null(body);
  for (size_t i = 0; i < n; i++)
    body[i] = (char)('a' + i % 26);
  char hdr[RPC_FRAME_HEADER_MAX];
  size_t hl = rpc_frame_header(hdr, sizeof(hdr), n);
  assert_true(hl > 0);

  recorder r = {0};
  rpc_reader rd;
  rpc_reader_init(&rd, 0);
  assert_int_equal(rpc_reader_feed(&rd, hdr, hl, record_cb, &r), 0);
  for (size_t pos = 0; pos < n; pos += 65536) {
    size_t take = n - pos < 65536 ? n - pos : 65536;
    assert_int_equal(rpc_reader_feed(&rd, body + pos, take, record_cb, &r), 0);
  }
  assert_int_equal(r.count, 1);
  assert_int_equal(r.lens[0], n);
  assert_memory_equal(r.bodies[0], body, n);
  /* The big buffer is released after its message. */
  assert_null(rd.body);
  assert_int_equal(rd.body_cap, 0);
  rpc_reader_close(&rd);
  recorder_clear(&r);
  free(body);
}

static void expect_header_error(const char *input, const char *needle)
{
  recorder r = {0};
  rpc_reader rd;
  int rc = feed_all(input, 1000, &r, &rd);
  if (rc != RPC_FRAME_EHEADER)
    fail_msg("input \"%s\": expected RPC_FRAME_EHEADER, got %d", input, rc);
  assert_int_equal(r.count, 0);
  if (strstr(rpc_reader_error(&rd), needle) == NULL)
    fail_msg("input \"%s\": error \"%s\" lacks \"%s\"", input, rpc_reader_error(&rd), needle);
  assert_null(rd.body);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_bad_headers(void **state)
{
  expect_header_error("Content-Length: -5\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length: +5\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length: abc\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length: 12a\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length: 1 2\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length: 0x10\r\n\r\n", "invalid Content-Length");
  expect_header_error("Content-Length:\r\n\r\n", "empty Content-Length");
  expect_header_error("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting");
  expect_header_error("X-Foo: bar\r\n\r\n{}", "missing Content-Length");
  expect_header_error("Content-Length 2\r\n\r\n{}", "expected \"Name: value\"");
  expect_header_error(": 2\r\n\r\n{}", "empty name");
  expect_header_error("Content-Length : 2\r\n\r\n{}", "invalid header name");
  expect_header_error("Content-Length: 2\rX: y\r\n\r\n{}", "stray carriage return");
  expect_header_error("Content-Length: 2\r\r\n\r\n{}", "stray carriage return");
  expect_header_error("Content-Length: \x01" "2\r\n\r\n{}", "control character");
  /* The error text never carries raw control bytes from the peer. */
  expect_header_error("\x1b[31mboom\r\n\r\n", "?[31mboom");
}

static void test_header_section_cap(void **state)
{
  /* Many small header lines: the cap is on the whole section. */
  size_t cap = RPC_FRAME_MAX_HEADER + 200;
  char *s = malloc(cap);
  assert_non_null(s);
  size_t n = 0;
  while (n + 20 < RPC_FRAME_MAX_HEADER + 100)
    n += (size_t)sprintf(s + n, "X-Pad: 0123456789\r\n");
  s[n] = '\0';
  expect_header_error(s, "header section longer than");

  /* One endless line, fed byte by byte, fails as soon as it passes the cap. */
  recorder r = {0};
  rpc_reader rd;
  rpc_reader_init(&rd, 0);
  memset(s, 'A', cap);
  size_t i;
  int rc = 0;
  for (i = 0; i < cap && rc == 0; i++)
    rc = rpc_reader_feed(&rd, s + i, 1, record_cb, &r);
  assert_int_equal(rc, RPC_FRAME_EHEADER);
  assert_int_equal(i, RPC_FRAME_MAX_HEADER + 1);
  rpc_reader_close(&rd);
  free(s);
}

static void test_lenient_line_endings(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  /* Bare "\n" line ends, and blank lines between messages, are tolerated. */
  const char *s = "Content-Length: 2\n\n{}\r\n\r\n\nContent-Type: application/json\nContent-Length: 3\r\n\n[1]\n";
  assert_int_equal(feed_all(s, 0, &r, &rd), 0);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.bodies[0], "{}");
  assert_string_equal(r.bodies[1], "[1]");
  /* Skipped blank lines are not buffered. */
  assert_int_equal(rd.hdr_len, 0);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_empty_body(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  assert_int_equal(feed_all("Content-Length: 0\r\n\r\n", 0, &r, &rd), 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.lens[0], 0);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_stop_and_resume(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  r.stop_after = 1;
  size_t n = strlen(three_msgs);
  assert_int_equal(feed_all(three_msgs, 0, &r, &rd), RPC_FRAME_STOPPED);
  assert_int_equal(r.count, 1);
  size_t used = rpc_reader_consumed(&rd);
  assert_int_equal(used, strlen("Content-Length: 2\r\n\r\n{}"));
  r.stop_after = 0;
  assert_int_equal(rpc_reader_feed(&rd, three_msgs + used, n - used, record_cb, &r), 0);
  check_three(&r);
  rpc_reader_close(&rd);
  recorder_clear(&r);

  /* Stopping on a message assembled from several chunks works the same. */
  rpc_reader_init(&rd, 0);
  r.stop_after = 2;
  int rc = 0;
  size_t i;
  for (i = 0; i < n && rc == 0; i++)
    rc = rpc_reader_feed(&rd, three_msgs + i, 1, record_cb, &r);
  assert_int_equal(rc, RPC_FRAME_STOPPED);
  assert_int_equal(r.count, 2);
  assert_int_equal(rpc_reader_consumed(&rd), 1);
  r.stop_after = 0;
  assert_int_equal(rpc_reader_feed(&rd, three_msgs + i, n - i, record_cb, &r), 0);
  check_three(&r);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_reinit_after_close(void **state)
{
  recorder r = {0};
  rpc_reader rd;
  assert_int_equal(feed_all("Content-Length: 5\r\n\r\nab", 0, &r, &rd), 0);
  assert_non_null(rd.body);
  rpc_reader_close(&rd);
  assert_null(rd.body);
  assert_int_equal(feed_all("Content-Length: 2\r\n\r\n{}", 0, &r, &rd), 0);
  assert_int_equal(r.count, 1);
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

static void test_frame_header(void **state)
{
  char buf[RPC_FRAME_HEADER_MAX];
  assert_int_equal(rpc_frame_header(buf, sizeof(buf), 42), strlen("Content-Length: 42\r\n\r\n"));
  assert_string_equal(buf, "Content-Length: 42\r\n\r\n");
  assert_int_equal(rpc_frame_header(buf, sizeof(buf), 0), 21);
  assert_string_equal(buf, "Content-Length: 0\r\n\r\n");
  size_t n = rpc_frame_header(buf, sizeof(buf), SIZE_MAX);
  assert_true(n > 0 && n < sizeof(buf));
  /* Too small: nothing half-written. */
  assert_int_equal(rpc_frame_header(buf, 10, 42), 0);
  assert_string_equal(buf, "");
  /* 32 bytes suffice below 1 GB. */
  assert_true(rpc_frame_header(buf, 32, 999999999) > 0);

  /* What the writer writes, the reader reads. */
  recorder r = {0};
  rpc_reader rd;
  rpc_reader_init(&rd, 0);
  n = rpc_frame_header(buf, sizeof(buf), 4);
  assert_int_equal(rpc_reader_feed(&rd, buf, n, record_cb, &r), 0);
  assert_int_equal(rpc_reader_feed(&rd, "null", 4, record_cb, &r), 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.bodies[0], "null");
  rpc_reader_close(&rd);
  recorder_clear(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_single_chunk_many_messages),
    cmocka_unit_test(test_byte_by_byte),
    cmocka_unit_test(test_every_split_point),
    cmocka_unit_test(test_random_chunks),
    cmocka_unit_test(test_header_names_case_insensitive),
    cmocka_unit_test(test_content_type),
    cmocka_unit_test(test_too_big_before_allocation),
    cmocka_unit_test(test_buffer_grows_with_received_bytes),
    cmocka_unit_test(test_large_body_in_chunks),
    cmocka_unit_test(test_bad_headers),
    cmocka_unit_test(test_header_section_cap),
    cmocka_unit_test(test_lenient_line_endings),
    cmocka_unit_test(test_empty_body),
    cmocka_unit_test(test_stop_and_resume),
    cmocka_unit_test(test_reinit_after_close),
    cmocka_unit_test(test_frame_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
