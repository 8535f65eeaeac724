/* Unit tests for the incremental SSE parser: splits at every byte, line endings, fields, caps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbuf.h"
#include "sse.h"

typedef struct seen {
  dbuf log; /* "type|id|data\n" per event */
  int count;
  int stop_at; /* return nonzero at this event number (1-based), 0 = never */
} seen;

static int collect(void *ud, const sse_event *ev) {
  seen *s = ud;
  s->count++;
  dbuf_addf(&s->log, "%s|%s|", ev->type, ev->id);
  dbuf_add(&s->log, ev->data, ev->data_len);
  assert_int_equal(strlen(ev->data), ev->data_len);
  dbuf_adds(&s->log, "\n");
  return s->stop_at && s->count == s->stop_at ? 42 : 0;
}

/* Feeds `in` in pieces of `step` bytes (0 = all at once) and returns the log. */
static char *run(const char *in, size_t len, size_t step, size_t cap, int *rc_out) {
  seen s = {0};
  dbuf_init(&s.log, 0);
  sse_parser p;
  sse_parser_init(&p, cap, collect, &s);
  int rc = 0;
  if (!step) step = len ? len : 1;
  for (size_t i = 0; i < len && !rc; i += step) rc = sse_parser_feed(&p, in + i, len - i < step ? len - i : step);
  sse_parser_close(&p);
  if (rc_out) *rc_out = rc;
  return dbuf_take(&s.log);
}

static void check_all_splits(const char *in, const char *want) {
  size_t len = strlen(in);
  for (size_t step = 0; step <= len; step++) {
    char *got = run(in, len, step, 0, NULL);
    assert_string_equal(got, want);
    free(got);
  }
  /* and every two-piece split */
  for (size_t cut = 0; cut <= len; cut++) {
    seen s = {0};
    dbuf_init(&s.log, 0);
    sse_parser p;
    sse_parser_init(&p, 0, collect, &s);
    assert_int_equal(sse_parser_feed(&p, in, cut), 0);
    assert_int_equal(sse_parser_feed(&p, in + cut, len - cut), 0);
    sse_parser_close(&p);
    char *got = dbuf_take(&s.log);
    assert_string_equal(got, want);
    free(got);
  }
}

static void test_openai_stream(void **state) {
  (void)state;
  check_all_splits(": keep-alive\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n",
                   "message||{\"a\":1}\nmessage||[DONE]\n");
}

static void test_line_endings(void **state) {
  (void)state;
  const char *want = "message||one\nmessage||two\nmessage||three\n";
  check_all_splits("data: one\r\n\r\ndata: two\r\rdata: three\n\n", want);
  check_all_splits("data: one\r\rdata: two\n\ndata: three\r\n\r\n", want);
}

static void test_multiline_and_fields(void **state) {
  (void)state;
  check_all_splits("event: delta\nid: 7\ndata: a\ndata:b\ndata\n: comment\n\ndata: next\n\n",
                   "delta|7|a\nb\n\nmessage|7|next\n");
}

static void test_no_data_no_event(void **state) {
  (void)state;
  /* an event with only a type is not dispatched, and its type does not leak */
  check_all_splits("event: ping\n\ndata: x\n\n", "message||x\n");
  check_all_splits("unknown: field\nnocolon\n\n", "");
}

static void test_bom_and_space(void **state) {
  (void)state;
  check_all_splits("\xEF\xBB\xBF" "data:  two spaces\n\n", "message|| two spaces\n");
  /* a lone first BOM byte is ordinary text: the field name is then not "data" */
  check_all_splits("\xEF" "data: x\n\n", "");
}

static void test_unterminated_event_is_pending(void **state) {
  (void)state;
  seen s = {0};
  dbuf_init(&s.log, 0);
  sse_parser p;
  sse_parser_init(&p, 0, collect, &s);
  const char in[] = "data: complete\n\ndata: cut";
  assert_int_equal(sse_parser_feed(&p, in, sizeof in - 1), 0);
  assert_int_equal(s.count, 1);
  assert_true(sse_parser_pending(&p));
  sse_parser_close(&p);
  dbuf_close(&s.log);
}

static void test_cap(void **state) {
  (void)state;
  char big[200];
  memset(big, 'x', sizeof big);
  dbuf in;
  dbuf_init(&in, 0);
  dbuf_adds(&in, "data: ");
  dbuf_add(&in, big, sizeof big);
  dbuf_adds(&in, "\n\n");
  int rc;
  char *got = run(in.data, in.len, 7, 100, &rc);
  assert_int_equal(rc, -E2BIG);
  assert_string_equal(got, "");
  free(got);
  /* many small data lines also hit the event cap */
  dbuf_reset(&in);
  for (int i = 0; i < 60; i++) dbuf_adds(&in, "data: 0123\n");
  got = run(in.data, in.len, 0, 100, &rc);
  assert_int_equal(rc, -E2BIG);
  free(got);
  /* an event exactly at the cap passes */
  dbuf_reset(&in);
  dbuf_adds(&in, "data: ");
  dbuf_add(&in, big, 100);
  dbuf_adds(&in, "\n\n");
  got = run(in.data, in.len, 1, 100, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(strlen(got), strlen("message||") + 100 + 1);
  free(got);
  dbuf_close(&in);
}

static void test_callback_stops(void **state) {
  (void)state;
  seen s = {.stop_at = 1};
  dbuf_init(&s.log, 0);
  sse_parser p;
  sse_parser_init(&p, 0, collect, &s);
  const char in[] = "data: a\n\ndata: b\n\n";
  assert_int_equal(sse_parser_feed(&p, in, sizeof in - 1), 42);
  assert_int_equal(s.count, 1);
  assert_int_equal(sse_parser_feed(&p, "data: c\n\n", 9), -EINVAL);
  sse_parser_close(&p);
  dbuf_close(&s.log);
}

static void test_retry_field(void **state) {
  (void)state;
  sse_parser p;
  sse_parser_init(&p, 0, NULL, NULL);
  assert_int_equal(sse_parser_feed(&p, "retry: 1500\nretry: x1\n\n", 23), 0);
  assert_int_equal(p.retry_ms, 1500);
  sse_parser_close(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_openai_stream),
      cmocka_unit_test(test_line_endings),
      cmocka_unit_test(test_multiline_and_fields),
      cmocka_unit_test(test_no_data_no_event),
      cmocka_unit_test(test_bom_and_space),
      cmocka_unit_test(test_unterminated_event_is_pending),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_callback_stops),
      cmocka_unit_test(test_retry_field),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
