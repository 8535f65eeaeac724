/* Unit tests for JSON-RPC 2.0 parsing, validation and builders (protocol/jsonrpc.c),
 * including every example of the JSON-RPC 2.0 specification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/jsonrpc.h"
#include "protocol/utf8.h"

static int parse(rpc_batch *b, const char *s, const rpc_limits *lim)
{
  return rpc_batch_parse(b, s, strlen(s), lim);
}

/* Parses a single-object body and expects one message of `kind`. */
static rpc_msg one(rpc_batch *b, const char *s, rpc_kind kind)
{
  int rc = parse(b, s, NULL);
  if (rc != 0)
    fail_msg("%s: rc %d (%s)", s, rc, b->err_message);
  assert_false(b->is_batch);
  assert_int_equal(b->count, 1);
  if (b->msgs[0].kind != kind)
    fail_msg("%s: kind %d, want %d (%s)", s, b->msgs[0].kind, kind,
             b->msgs[0].err_message ? b->msgs[0].err_message : "");
  return b->msgs[0];
}

/* The whole body is rejected with `code` and a message containing `needle`. */
static void rejected(const char *s, size_t len, const rpc_limits *lim, int code, const char *needle)
{
  rpc_batch b;
  int rc = rpc_batch_parse(&b, s, len, lim);
  if (rc != code)
    fail_msg("%.60s: rc %d, want %d (%s)", s, rc, code, b.err_message);
  assert_int_equal(b.err_code, code);
  assert_int_equal(b.count, 0);
  assert_null(b.root);
  assert_null(b.msgs);
  if (strstr(b.err_message, needle) == NULL)
    fail_msg("%.60s: message \"%s\" lacks \"%s\"", s, b.err_message, needle);
  rpc_batch_free(&b);
}

static void invalid_one(const char *s, const char *needle)
{
  rpc_batch b;
  rpc_msg m = one(&b, s, RPC_KIND_INVALID);
  assert_int_equal(m.err_code, RPC_INVALID_REQUEST);
  assert_non_null(m.err_message);
  if (strstr(m.err_message, needle) == NULL)
    fail_msg("%s: message \"%s\" lacks \"%s\"", s, m.err_message, needle);
  rpc_batch_free(&b);
}

/* Compares a built tree with JSON text, ignoring member order and spacing. */
static void assert_json_equal(const cJSON *got, const char *want)
{
  cJSON *w = cJSON_Parse(want);
  assert_non_null(w);
  if (!cJSON_Compare(got, w, 1)) {
    char *g = cJSON_PrintUnformatted(got);
    cJSON_Delete(w);
    fail_msg("got %s\nwant %s", g, want);
  }
  cJSON_Delete(w);
}

/* ---- The examples of the JSON-RPC 2.0 specification, section 7. ---- */

static void test_spec_positional_params(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42, 23], \"id\": 1}",
                  RPC_KIND_REQUEST);
  assert_string_equal(m.method, "subtract");
  assert_true(cJSON_IsArray(m.params));
  assert_int_equal(cJSON_GetArraySize(m.params), 2);
  assert_true(cJSON_IsNumber(m.id));
  assert_int_equal(m.id->valueint, 1);
  cJSON *reply = rpc_make_result(m.id, cJSON_CreateNumber(19));
  assert_json_equal(reply, "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 1}");
  cJSON_Delete(reply);
  rpc_batch_free(&b);
}

static void test_spec_named_params(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b,
                  "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"subtrahend\": 23, \"minuend\": 42}, "
                  "\"id\": 3}",
                  RPC_KIND_REQUEST);
  assert_true(cJSON_IsObject(m.params));
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(m.params, "minuend")->valueint, 42);
  assert_int_equal(m.id->valueint, 3);
  rpc_batch_free(&b);
}

static void test_spec_notification(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": [1,2,3,4,5]}", RPC_KIND_NOTIFICATION);
  assert_string_equal(m.method, "update");
  assert_null(m.id);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\"}", RPC_KIND_NOTIFICATION);
  assert_null(m.params);
  rpc_batch_free(&b);
}

static void test_spec_nonexistent_method(void **state)
{
  /* Valid at this level; the dispatcher answers -32601. */
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}", RPC_KIND_REQUEST);
  assert_true(cJSON_IsString(m.id));
  assert_string_equal(m.id->valuestring, "1");
  cJSON *reply = rpc_make_error(m.id, RPC_METHOD_NOT_FOUND, NULL, NULL);
  assert_json_equal(reply,
                    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32601, \"message\": \"Method not found\"}, \"id\": \"1\"}");
  cJSON_Delete(reply);
  rpc_batch_free(&b);
}

static void test_spec_invalid_json(void **state)
{
  const char *s = "{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]";
  rejected(s, strlen(s), NULL, RPC_PARSE_ERROR, "Parse error");
  cJSON *reply = rpc_make_error(NULL, RPC_PARSE_ERROR, NULL, NULL);
  assert_json_equal(reply,
                    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse error\"}, \"id\": null}");
  cJSON_Delete(reply);
}

static void test_spec_invalid_request_object(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}", RPC_KIND_INVALID);
  assert_int_equal(m.err_code, RPC_INVALID_REQUEST);
  assert_null(m.id);
  cJSON *reply = rpc_make_error(m.id, m.err_code, rpc_error_text(m.err_code), NULL);
  assert_json_equal(reply,
                    "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid Request\"}, \"id\": null}");
  cJSON_Delete(reply);
  rpc_batch_free(&b);
}

static void test_spec_batch_invalid_json(void **state)
{
  const char *s = "[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\"\n]";
  rejected(s, strlen(s), NULL, RPC_PARSE_ERROR, "Parse error");
}

static void test_spec_empty_array(void **state)
{
  rejected("[]", 2, NULL, RPC_INVALID_REQUEST, "empty batch");
  rejected("[ \n ]", 5, NULL, RPC_INVALID_REQUEST, "empty batch");
}

static void test_spec_invalid_batch(void **state)
{
  rpc_batch b;
  assert_int_equal(parse(&b, "[1]", NULL), 0);
  assert_true(b.is_batch);
  assert_int_equal(b.count, 1);
  assert_int_equal(b.msgs[0].kind, RPC_KIND_INVALID);
  assert_int_equal(b.msgs[0].err_code, RPC_INVALID_REQUEST);
  assert_null(b.msgs[0].id);
  rpc_batch_free(&b);

  assert_int_equal(parse(&b, "[1,2,3]", NULL), 0);
  assert_int_equal(b.count, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(b.msgs[i].kind, RPC_KIND_INVALID);
    assert_null(b.msgs[i].id);
  }
  rpc_batch_free(&b);
}

static void test_spec_mixed_batch(void **state)
{
  const char *s = "[\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]},\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42,23], \"id\": \"2\"},\n"
                  "  {\"foo\": \"boo\"},\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\": \"foo.get\", \"params\": {\"name\": \"myself\"}, \"id\": \"5\"},\n"
                  "  {\"jsonrpc\": \"2.0\", \"method\": \"get_data\", \"id\": \"9\"}\n"
                  "]";
  const rpc_kind kinds[] = {RPC_KIND_REQUEST, RPC_KIND_NOTIFICATION, RPC_KIND_REQUEST,
                            RPC_KIND_INVALID, RPC_KIND_REQUEST,      RPC_KIND_REQUEST};
  const char *ids[] = {"1", NULL, "2", NULL, "5", "9"};
  rpc_batch b;
  assert_int_equal(parse(&b, s, NULL), 0);
  assert_true(b.is_batch);
  assert_int_equal(b.count, 6);
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(b.msgs[i].kind, kinds[i]);
    if (ids[i])
      assert_string_equal(b.msgs[i].id->valuestring, ids[i]);
    else
      assert_null(b.msgs[i].id);
  }
  assert_string_equal(b.msgs[4].method, "foo.get");
  rpc_batch_free(&b);
}

static void test_spec_all_notifications(void **state)
{
  rpc_batch b;
  assert_int_equal(parse(&b,
                         "[{\"jsonrpc\": \"2.0\", \"method\": \"notify_sum\", \"params\": [1,2,4]},"
                         " {\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]}]",
                         NULL),
                   0);
  assert_int_equal(b.count, 2);
  assert_int_equal(b.msgs[0].kind, RPC_KIND_NOTIFICATION);
  assert_int_equal(b.msgs[1].kind, RPC_KIND_NOTIFICATION);
  rpc_batch_free(&b);
}

/* ---- Validation rules. ---- */

static void test_jsonrpc_member(void **state)
{
  invalid_one("{\"method\": \"m\", \"id\": 1}", "\"jsonrpc\"");
  invalid_one("{\"jsonrpc\": \"1.0\", \"method\": \"m\", \"id\": 1}", "\"jsonrpc\"");
  invalid_one("{\"jsonrpc\": 2.0, \"method\": \"m\", \"id\": 1}", "\"jsonrpc\"");
  /* The id is still reported when it could be read. */
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.1\", \"method\": \"m\", \"id\": 7}", RPC_KIND_INVALID);
  assert_non_null(m.id);
  assert_int_equal(m.id->valueint, 7);
  rpc_batch_free(&b);
}

static void test_method_member(void **state)
{
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": null, \"id\": 1}", "\"method\" must be a string");
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": [\"m\"], \"id\": 1}", "\"method\" must be a string");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1}", "\"method\" is missing");
  invalid_one("{}", "\"jsonrpc\"");
  /* Keys are case-sensitive. */
  invalid_one("{\"jsonrpc\": \"2.0\", \"Method\": \"m\", \"id\": 1}", "\"method\" is missing");
  /* rpc.* is reserved, but that is the dispatcher's business. */
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"rpc.discover\", \"id\": 1}", RPC_KIND_REQUEST);
  assert_string_equal(m.method, "rpc.discover");
  rpc_batch_free(&b);
  /* Unknown members are ignored. */
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"x-extra\": {\"a\": 1}}", RPC_KIND_NOTIFICATION);
  rpc_batch_free(&b);
  /* Non-ASCII method names survive intact. */
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"caf\xc3\xa9/\\u00e9\", \"id\": 2}", RPC_KIND_REQUEST);
  assert_string_equal(m.method, "caf\xc3\xa9/\xc3\xa9");
  rpc_batch_free(&b);
}

static void test_id_rules(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": -5}", RPC_KIND_REQUEST);
  assert_int_equal(m.id->valueint, -5);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 9007199254740992}", RPC_KIND_REQUEST);
  cJSON *reply = rpc_make_result(m.id, NULL);
  char *text = cJSON_PrintUnformatted(reply);
  assert_non_null(strstr(text, "\"id\":9007199254740992"));
  free(text);
  cJSON_Delete(reply);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": -1234567890123456}", RPC_KIND_REQUEST);
  reply = rpc_make_error(m.id, RPC_INTERNAL_ERROR, NULL, NULL);
  text = cJSON_PrintUnformatted(reply);
  assert_non_null(strstr(text, "\"id\":-1234567890123456"));
  free(text);
  cJSON_Delete(reply);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 1.0}", RPC_KIND_REQUEST);
  assert_int_equal(m.id->valueint, 1);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": \"\"}", RPC_KIND_REQUEST);
  rpc_batch_free(&b);

  const char *bad[] = {
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 1.5}",
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 1e300}",
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 9007199254740994}",
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": true}",
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": {}}",
    "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": [1]}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    m = one(&b, bad[i], RPC_KIND_INVALID);
    assert_null(m.id); /* unusable: answered with id null */
    assert_non_null(strstr(m.err_message, "\"id\""));
    rpc_batch_free(&b);
  }
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": null}", "must not be null");
}

static void test_params_rules(void **state)
{
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"params\": \"bar\", \"id\": 1}", "\"params\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"params\": 5}", "\"params\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"params\": true}", "\"params\"");
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"shutdown\", \"params\": null, \"id\": 1}", RPC_KIND_REQUEST);
  assert_null(m.params); /* null params count as absent */
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"params\": {}}", RPC_KIND_NOTIFICATION);
  assert_true(cJSON_IsObject(m.params));
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"params\": []}", RPC_KIND_NOTIFICATION);
  assert_true(cJSON_IsArray(m.params));
  rpc_batch_free(&b);
}

static void test_duplicate_members(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 1, \"id\": 2}", RPC_KIND_INVALID);
  assert_null(m.id);
  assert_non_null(strstr(m.err_message, "twice"));
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"method\": \"a\", \"method\": \"b\", \"id\": 3}", RPC_KIND_INVALID);
  assert_int_equal(m.id->valueint, 3);
  rpc_batch_free(&b);
}

static void test_responses(void **state)
{
  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": null}", RPC_KIND_RESPONSE);
  assert_non_null(m.result);
  assert_true(cJSON_IsNull(m.result));
  assert_null(m.error);
  assert_int_equal(m.id->valueint, 1);
  rpc_batch_free(&b);
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"id\": \"a\", \"error\": {\"code\": -32601, \"message\": \"nope\", \"data\": 1}}",
          RPC_KIND_RESPONSE);
  assert_non_null(m.error);
  assert_null(m.result);
  rpc_batch_free(&b);
  /* A peer's reply to a message it could not parse has id null. */
  m = one(&b, "{\"jsonrpc\": \"2.0\", \"id\": null, \"error\": {\"code\": -32700, \"message\": \"Parse error\"}}",
          RPC_KIND_RESPONSE);
  assert_null(m.id);
  rpc_batch_free(&b);

  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": null, \"result\": 1}", "non-null");
  invalid_one("{\"jsonrpc\": \"2.0\", \"result\": 1}", "must have an \"id\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": 1, \"error\": {\"code\": 1, \"message\": \"x\"}}",
              "both");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": \"bad\"}", "\"error\" must be an object");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"message\": \"x\"}}", "integer \"code\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": 1.5, \"message\": \"x\"}}", "integer \"code\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": 1e12, \"message\": \"x\"}}", "integer \"code\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": 1}}", "string \"message\"");
  invalid_one("{\"jsonrpc\": \"2.0\", \"id\": 1.5, \"result\": 1}", "\"id\"");
}

static void test_body_shapes(void **state)
{
  rejected("1", 1, NULL, RPC_INVALID_REQUEST, "object or an array");
  rejected("\"x\"", 3, NULL, RPC_INVALID_REQUEST, "object or an array");
  rejected("null", 4, NULL, RPC_INVALID_REQUEST, "object or an array");
  rejected("", 0, NULL, RPC_PARSE_ERROR, "empty");
  rejected("   ", 3, NULL, RPC_PARSE_ERROR, "invalid JSON");
  rejected("{}{}", 4, NULL, RPC_PARSE_ERROR, "after the JSON value at byte 2");
  rejected("{} x", 4, NULL, RPC_PARSE_ERROR, "at byte 3");
  /* Trailing whitespace is fine; so is a body that is not NUL-terminated. */
  rpc_batch b;
  const char s[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\"} \r\n\t{garbage";
  assert_int_equal(rpc_batch_parse(&b, s, 34, NULL), 0);
  assert_int_equal(b.msgs[0].kind, RPC_KIND_NOTIFICATION);
  rpc_batch_free(&b);
  /* Nested arrays in a batch are invalid elements. */
  assert_int_equal(parse(&b, "[[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}], {\"jsonrpc\":\"2.0\",\"method\":\"m\"}]", NULL), 0);
  assert_int_equal(b.count, 2);
  assert_int_equal(b.msgs[0].kind, RPC_KIND_INVALID);
  assert_int_equal(b.msgs[1].kind, RPC_KIND_NOTIFICATION);
  rpc_batch_free(&b);
}

static void test_utf8_prescan(void **state)
{
  /* The byte offset of the bad byte is reported. */
  const char s1[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\xff\"}";
  rejected(s1, sizeof(s1) - 1, NULL, RPC_PARSE_ERROR, "invalid UTF-8 at byte 28");
  const char s2[] = "{\"jsonrpc\":\"2.0\",\"method\":\"\xc0\x80\"}";
  rejected(s2, sizeof(s2) - 1, NULL, RPC_PARSE_ERROR, "invalid UTF-8 at byte 27");
  const char s3[] = "{\"jsonrpc\":\"2.0\",\"method\":\"\xed\xa0\x80\"}";
  rejected(s3, sizeof(s3) - 1, NULL, RPC_PARSE_ERROR, "invalid UTF-8 at byte 27");
  const char s4[] = "{\"a\":1}\xe2\x82";
  rejected(s4, sizeof(s4) - 1, NULL, RPC_PARSE_ERROR, "invalid UTF-8 at byte 7");
  /* Valid UTF-8 outside a string is still not JSON. */
  const char s5[] = "{\"a\":\xc3\xa9}";
  rejected(s5, sizeof(s5) - 1, NULL, RPC_PARSE_ERROR, "invalid JSON");
}

static void test_string_escapes(void **state)
{
  /* \u0000 cannot be held in a C string: a single message holding one is
   * answered with its id and never dispatched (the method read is cut short);
   * a batch holding one is a parse error. */
  {
    rpc_batch nb;
    rpc_msg m = one(&nb, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"m\",\"params\":{\"a\":\"x\\u0000y\"}}",
                    RPC_KIND_INVALID);
    assert_int_equal(m.err_code, RPC_INVALID_REQUEST);
    assert_non_null(strstr(m.err_message, "\\u0000"));
    assert_true(cJSON_IsNumber(m.id) && m.id->valueint == 7);
    assert_null(m.method);
    rpc_batch_free(&nb);
    m = one(&nb, "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"shutdown\\u0000x\"}", RPC_KIND_INVALID);
    assert_string_equal(m.id->valuestring, "s");
    rpc_batch_free(&nb);
  }
  rejected("[{\"a\":\"x\\u0000y\"}]", 18, NULL, RPC_PARSE_ERROR, "\\u0000 at byte 8");
  rejected("{\"a\":\"\\ud800\"}", 14, NULL, RPC_PARSE_ERROR, "unpaired high surrogate");
  rejected("{\"a\":\"\\ud800\\u0041\"}", 20, NULL, RPC_PARSE_ERROR, "unpaired high surrogate");
  rejected("{\"a\":\"\\udc00\"}", 14, NULL, RPC_PARSE_ERROR, "unpaired low surrogate");
  rejected("{\"a\":\"\\u12g4\"}", 14, NULL, RPC_PARSE_ERROR, "invalid \\u escape");
  rejected("{\"a\":\"\\x41\"}", 12, NULL, RPC_PARSE_ERROR, "invalid escape");
  rejected("{\"a\":\"tab\there\"}", 16, NULL, RPC_PARSE_ERROR, "control character 0x09");
  rejected("{\"a\":\"abc", 9, NULL, RPC_PARSE_ERROR, "unterminated string starting at byte 5");
  rejected("{\"a\":\"abc\\", 10, NULL, RPC_PARSE_ERROR, "unterminated");

  rpc_batch b;
  rpc_msg m = one(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"\\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
                  RPC_KIND_NOTIFICATION);
  assert_string_equal(m.method, "\xf0\x9f\x98\x80 \"q\" \\ / \b\f\n\r\t");
  rpc_batch_free(&b);
}

static void test_depth_limit(void **state)
{
  rpc_limits lim = RPC_LIMITS_DEFAULT;
  lim.max_depth = 3;
  rpc_batch b;
  /* object, array, array: 3 levels. */
  assert_int_equal(parse(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[[1]]}", &lim), 0);
  rpc_batch_free(&b);
  const char *deep = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[[{}]]}";
  rejected(deep, strlen(deep), &lim, RPC_PARSE_ERROR, "nesting deeper than 3 levels at byte 41");
  /* Brackets inside strings do not count. */
  assert_int_equal(parse(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"[[[[{{{{\"}", &lim), 0);
  rpc_batch_free(&b);

  /* Default: 64 levels pass, 65 do not, and the scan stops before cJSON. */
  char buf[300];
  for (int depth = 64; depth <= 65; depth++) {
    size_t n = 0;
    for (int i = 0; i < depth; i++)
      buf[n++] = '[';
    for (int i = 0; i < depth; i++)
      buf[n++] = ']';
    int rc = rpc_batch_parse(&b, buf, n, NULL);
    if (depth == 64) {
      assert_int_equal(rc, 0);
      assert_int_equal(b.count, 1);
      assert_int_equal(b.msgs[0].kind, RPC_KIND_INVALID);
      rpc_batch_free(&b);
    } else {
      assert_int_equal(rc, RPC_PARSE_ERROR);
      assert_null(b.root);
      rpc_batch_free(&b);
    }
  }
}

static void test_string_limit(void **state)
{
  rpc_limits lim = RPC_LIMITS_DEFAULT;
  lim.max_string = 8;
  rpc_batch b;
  assert_int_equal(parse(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"abcdefgh\"}", &lim), 0);
  rpc_batch_free(&b);
  const char *s = "{\"jsonrpc\":\"2.0\",\"method\":\"abcdefghi\"}";
  rejected(s, strlen(s), &lim, RPC_PARSE_ERROR, "string at byte 26 is longer than 8 bytes");
  /* Escapes count as their raw bytes; keys count too. */
  s = "{\"jsonrpc\":\"2.0\",\"method\":\"\\u00e9\\u00e9\"}";
  rejected(s, strlen(s), &lim, RPC_PARSE_ERROR, "longer than 8");
  s = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"long_key_name\":1}";
  rejected(s, strlen(s), &lim, RPC_PARSE_ERROR, "longer than 8");
}

static void test_batch_limit(void **state)
{
  rpc_limits lim = RPC_LIMITS_DEFAULT;
  lim.max_batch = 2;
  rpc_batch b;
  /* Commas inside elements and strings are not elements. */
  assert_int_equal(parse(&b, "[{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[1,2,3,4]}, \"a,b,c\"]", &lim), 0);
  assert_int_equal(b.count, 2);
  rpc_batch_free(&b);
  const char *s = "[1,2,3]";
  rejected(s, strlen(s), &lim, RPC_INVALID_REQUEST, "batch of 3 messages is above the limit of 2");
  /* A zero field takes its default. */
  rpc_limits zero = {0};
  assert_int_equal(parse(&b, "[1,2,3]", &zero), 0);
  assert_int_equal(b.count, 3);
  rpc_batch_free(&b);
}

/* ---- Builders. ---- */

static void test_builders(void **state)
{
  cJSON *id = cJSON_CreateString("abc");
  cJSON *r = rpc_make_result(id, cJSON_CreateObject());
  cJSON *e = rpc_make_error(NULL, RPC_REQUEST_CANCELLED, NULL, cJSON_CreateString("why"));
  cJSON *n = rpc_make_notification("crucible/phase", NULL);
  cJSON *q = rpc_make_request(id, "window/workDoneProgress/create", cJSON_CreateArray());
  cJSON *nul = rpc_make_result(NULL, NULL);
  cJSON_Delete(id); /* the builders copied it */
  assert_json_equal(r, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"result\":{}}");
  assert_json_equal(e, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32800,\"message\":\"Request cancelled\","
                       "\"data\":\"why\"}}");
  assert_json_equal(n, "{\"jsonrpc\":\"2.0\",\"method\":\"crucible/phase\"}");
  assert_json_equal(q, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"window/workDoneProgress/create\",\"params\":[]}");
  assert_json_equal(nul, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":null}");
  cJSON *custom = rpc_make_error(NULL, RPC_INVALID_PARAMS, "question is required", NULL);
  assert_json_equal(custom, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32602,\"message\":\"question is required\"}}");

  /* What we build, we parse back as the same kind. */
  cJSON *all[] = {r, e, n, q};
  const rpc_kind kinds[] = {RPC_KIND_RESPONSE, RPC_KIND_RESPONSE, RPC_KIND_NOTIFICATION, RPC_KIND_REQUEST};
  for (size_t i = 0; i < 4; i++) {
    char *text = cJSON_PrintUnformatted(all[i]);
    rpc_batch b;
    assert_int_equal(parse(&b, text, NULL), 0);
    assert_int_equal(b.msgs[0].kind, kinds[i]);
    rpc_batch_free(&b);
    free(text);
  }
  cJSON_Delete(r);
  cJSON_Delete(e);
  cJSON_Delete(n);
  cJSON_Delete(q);
  cJSON_Delete(nul);
  cJSON_Delete(custom);
}

static void test_error_text(void **state)
{
  const struct {
    int code;
    const char *text;
  } t[] = {
    {RPC_PARSE_ERROR, "Parse error"},
    {RPC_INVALID_REQUEST, "Invalid Request"},
    {RPC_METHOD_NOT_FOUND, "Method not found"},
    {RPC_INVALID_PARAMS, "Invalid params"},
    {RPC_INTERNAL_ERROR, "Internal error"},
    {RPC_SERVER_NOT_INITIALIZED, "Server not initialized"},
    {RPC_REQUEST_CANCELLED, "Request cancelled"},
    {RPC_REQUEST_FAILED, "Request failed"},
    {-32050, "Server error"},
    {42, "Unknown error"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    assert_string_equal(rpc_error_text(t[i].code), t[i].text);
}


/* Invalid UTF-8 in any string (value or key, however deep) never reaches the
 * printed text; valid text is printed byte for byte. */
static void test_print_utf8(void **state) {
  (void)state;
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "ok", "caf\xc3\xa9 \xf0\x9f\x98\x80");
  char *clean = rpc_print_utf8(m, false);
  assert_string_equal(clean, "{\"ok\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
  free(clean);
  cJSON *inner = cJSON_AddObjectToObject(m, "in\xff");
  cJSON *arr = cJSON_AddArrayToObject(inner, "a");
  cJSON_AddItemToArray(arr, cJSON_CreateString("bad \xc3( \xed\xa0\x80 \xe2\x82"));
  for (int formatted = 0; formatted < 2; formatted++) {
    char *t = rpc_print_utf8(m, formatted);
    assert_non_null(t);
    assert_true(utf8_valid(t, strlen(t), NULL));
    cJSON *back = cJSON_Parse(t);
    assert_non_null(back);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(back, "in\xef\xbf\xbd"));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(back, "in\xef\xbf\xbd"), "a");
    assert_string_equal(cJSON_GetArrayItem(a, 0)->valuestring,
                        "bad \xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
    cJSON_Delete(back);
    free(t);
  }
  assert_null(rpc_print_utf8(NULL, false));
  cJSON_Delete(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_spec_positional_params),
    cmocka_unit_test(test_spec_named_params),
    cmocka_unit_test(test_spec_notification),
    cmocka_unit_test(test_spec_nonexistent_method),
    cmocka_unit_test(test_spec_invalid_json),
    cmocka_unit_test(test_spec_invalid_request_object),
    cmocka_unit_test(test_spec_batch_invalid_json),
    cmocka_unit_test(test_spec_empty_array),
    cmocka_unit_test(test_spec_invalid_batch),
    cmocka_unit_test(test_spec_mixed_batch),
    cmocka_unit_test(test_spec_all_notifications),
    cmocka_unit_test(test_jsonrpc_member),
    cmocka_unit_test(test_method_member),
    cmocka_unit_test(test_id_rules),
    cmocka_unit_test(test_params_rules),
    cmocka_unit_test(test_duplicate_members),
    cmocka_unit_test(test_responses),
    cmocka_unit_test(test_body_shapes),
    cmocka_unit_test(test_utf8_prescan),
    cmocka_unit_test(test_string_escapes),
    cmocka_unit_test(test_depth_limit),
    cmocka_unit_test(test_string_limit),
    cmocka_unit_test(test_batch_limit),
    cmocka_unit_test(test_builders),
    cmocka_unit_test(test_error_text),
    cmocka_unit_test(test_print_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
