/* Unit tests for strict UTF-8 validation and LSP column conversions (protocol/utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/utf8.h"

static void expect_valid(const char *s, size_t len)
{
  size_t off = 12345;
  if (!utf8_valid(s, len, &off))
    fail_msg("valid input rejected at offset %zu", off);
}

static void expect_invalid(const char *s, size_t len, size_t at)
{
  size_t off = 12345;
  assert_false(utf8_valid(s, len, &off));
  assert_int_equal(off, at);
  assert_false(utf8_valid(s, len, NULL));
}

static void test_valid_boundaries(void **state)
{
  expect_valid("", 0);
  expect_valid("plain ascii text, long enough for the fast path", 47);
  expect_valid("\xc2\x80", 2);             /* U+0080 */
  expect_valid("\xdf\xbf", 2);             /* U+07FF */
  expect_valid("\xe0\xa0\x80", 3);         /* U+0800 */
  expect_valid("\xed\x9f\xbf", 3);         /* U+D7FF, just below the surrogates */
  expect_valid("\xee\x80\x80", 3);         /* U+E000, just above */
  expect_valid("\xef\xbf\xbf", 3);         /* U+FFFF */
  expect_valid("\xf0\x90\x80\x80", 4);     /* U+10000 */
  expect_valid("\xf4\x8f\xbf\xbf", 4);     /* U+10FFFF */
  expect_valid("a\xe2\x82\xac" "b\xf0\x9d\x84\x9e", 9);
  expect_valid("\0nul is valid", 13);

  uint32_t cp = 0;
  assert_int_equal(utf8_decode("\xe2\x82\xac", 3, &cp), 3);
  assert_int_equal(cp, 0x20AC);
  assert_int_equal(utf8_decode("\xf0\x9d\x84\x9e", 4, &cp), 4);
  assert_int_equal(cp, 0x1D11E);
  assert_int_equal(utf8_decode("A", 1, &cp), 1);
  assert_int_equal(cp, 'A');
}

static void test_invalid_sequences(void **state)
{
  expect_invalid("\xc0\x80", 2, 0);             /* overlong NUL */
  expect_invalid("\xc1\xbf", 2, 0);             /* overlong 2-byte */
  expect_invalid("\xe0\x80\x80", 3, 0);         /* overlong 3-byte */
  expect_invalid("\xe0\x9f\xbf", 3, 0);         /* overlong U+07FF */
  expect_invalid("\xf0\x8f\xbf\xbf", 4, 0);     /* overlong U+FFFF */
  expect_invalid("\xed\xa0\x80", 3, 0);         /* U+D800 */
  expect_invalid("\xed\xbf\xbf", 3, 0);         /* U+DFFF */
  expect_invalid("\xed\xa0\xbd\xed\xb8\x80", 6, 0); /* CESU-8 surrogate pair */
  expect_invalid("\xf4\x90\x80\x80", 4, 0);     /* U+110000 */
  expect_invalid("\xf5\x80\x80\x80", 4, 0);
  expect_invalid("\xff", 1, 0);
  expect_invalid("\xfe", 1, 0);
  expect_invalid("\x80", 1, 0);                 /* stray continuation */
  expect_invalid("ab\xbf", 3, 2);
  expect_invalid("ab\xe2\x82", 4, 2);           /* truncated at the end */
  expect_invalid("ab\xe2\x82" "A", 5, 2);       /* cut by a non-continuation byte */
  expect_invalid("\xf0\x9d\x84", 3, 0);
  expect_invalid("\xc2", 1, 0);
  /* After an ASCII run longer than the 8-byte fast path. */
  expect_invalid("0123456789abcdefg\xc0\x80", 19, 17);
  expect_invalid("0123456789abcdef\xe2\x82\xac\xc0", 20, 19);
  uint32_t cp;
  assert_int_equal(utf8_decode("\xe2\x82", 2, &cp), 0);
}

/* A decoder written the naive way (decode any shape, then check the rules),
 * to cross-check the table-driven one over every short sequence. */
static size_t reference_decode(const unsigned char *p, size_t len, uint32_t *out)
{
  size_t n;
  uint32_t v, min;
  if (p[0] < 0x80) {
    *out = p[0];
    return 1;
  } else if ((p[0] & 0xE0) == 0xC0) {
    n = 2, v = p[0] & 0x1F, min = 0x80;
  } else if ((p[0] & 0xF0) == 0xE0) {
    n = 3, v = p[0] & 0x0F, min = 0x800;
  } else if ((p[0] & 0xF8) == 0xF0) {
    n = 4, v = p[0] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *out = v;
  return n;
}

static void test_cross_check_exhaustive(void **state)
{
  unsigned char b[4];
  uint32_t a = 0, r = 0;
  /* All one-, two- and three-byte inputs starting with a lead byte. */
  for (unsigned b0 = 0x80; b0 <= 0xFF; b0++)
    for (unsigned b1 = 0; b1 <= 0xFF; b1++)
      for (unsigned b2 = 0; b2 <= 0xFF; b2++) {
        b[0] = (unsigned char)b0, b[1] = (unsigned char)b1, b[2] = (unsigned char)b2, b[3] = 0x80;
        for (size_t len = 1; len <= 4; len++) {
          size_t x = utf8_decode((const char *)b, len, &a);
          size_t y = reference_decode(b, len, &r);
          if (x != y || (x && a != r))
            fail_msg("%02x %02x %02x len %zu: got %zu/%x want %zu/%x", b0, b1, b2, len, x, a, y, r);
        }
      }
}

/* "a€𝄞b": a (1 byte), € U+20AC (3 bytes), 𝄞 U+1D11E (4 bytes, a surrogate
 * pair in UTF-16), b. */
static const char line[] = "a\xe2\x82\xac\xf0\x9d\x84\x9e" "b";
#define LINE_LEN 9

static void test_col_to_lsp(void **state)
{
  const size_t bytes[] = {0, 1, 4, 8, 9};
  const uint32_t u16[] = {0, 1, 2, 4, 5};
  const uint32_t u32[] = {0, 1, 2, 3, 4};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, bytes[i], LSP_ENC_UTF16), u16[i]);
    assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, bytes[i], LSP_ENC_UTF32), u32[i]);
    assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, bytes[i], LSP_ENC_UTF8), bytes[i]);
  }
  /* Inside a character: its start. */
  assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, 2, LSP_ENC_UTF16), 1);
  assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, 6, LSP_ENC_UTF16), 2);
  assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, 6, LSP_ENC_UTF8), 4);
  /* Past the end: clamped. */
  assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, 100, LSP_ENC_UTF16), 5);
  assert_int_equal(utf8_col_to_lsp(line, LINE_LEN, 100, LSP_ENC_UTF8), 9);
  /* An invalid byte is one unit. */
  assert_int_equal(utf8_col_to_lsp("a\xff" "b", 3, 3, LSP_ENC_UTF16), 3);
  assert_int_equal(utf8_col_to_lsp("\xf0\x9d\x84", 3, 3, LSP_ENC_UTF16), 3);
  assert_int_equal(utf8_col_to_lsp("", 0, 0, LSP_ENC_UTF16), 0);
}

static void test_col_from_lsp(void **state)
{
  const size_t bytes[] = {0, 1, 4, 8, 9};
  const uint32_t u16[] = {0, 1, 2, 4, 5};
  const uint32_t u32[] = {0, 1, 2, 3, 4};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, u16[i], LSP_ENC_UTF16), bytes[i]);
    assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, u32[i], LSP_ENC_UTF32), bytes[i]);
    assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, (uint32_t)bytes[i], LSP_ENC_UTF8), bytes[i]);
  }
  /* Between the halves of the surrogate pair: the start of 𝄞. */
  assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, 3, LSP_ENC_UTF16), 4);
  /* A UTF-8 column inside € rounds down to its start. */
  assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, 2, LSP_ENC_UTF8), 1);
  assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, 7, LSP_ENC_UTF8), 4);
  /* Past the end: the line's length. */
  assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, 6, LSP_ENC_UTF16), 9);
  assert_int_equal(utf8_col_from_lsp(line, LINE_LEN, UINT32_MAX, LSP_ENC_UTF32), 9);
  assert_int_equal(utf8_col_from_lsp("a\xff" "b", 3, 2, LSP_ENC_UTF16), 2);
}

static void test_col_round_trip(void **state)
{
  /* Pseudo-random mixes of 1- to 4-byte characters and invalid bytes. */
  static const char *pieces[] = {"x", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xe2\x82"};
  uint32_t x = 99;
  for (int round = 0; round < 200; round++) {
    char buf[256];
    size_t len = 0, starts[128], nstarts = 0;
    while (len < 200) {
      x = x * 1103515245u + 12345u;
      const char *p = pieces[(x >> 16) % 6];
      starts[nstarts++] = len;
      memcpy(buf + len, p, strlen(p));
      len += strlen(p);
    }
    starts[nstarts++] = len;
    for (int e = 0; e < 3; e++) {
      uint32_t prev = 0;
      for (size_t i = 0; i < nstarts; i++) {
        uint32_t col = utf8_col_to_lsp(buf, len, starts[i], (lsp_encoding)e);
        assert_true(i == 0 || col > prev);
        prev = col;
        /* Every piece starts on a character boundary (no piece starts with
         * a continuation byte), so the conversion must come back exactly. */
        assert_int_equal(utf8_col_from_lsp(buf, len, col, (lsp_encoding)e), starts[i]);
      }
    }
  }
}

static void test_repair(void **state) {
  (void)state;
  size_t n = 0;
  char *r = utf8_repair("a\xff" "b\xe2\x82\xac" "c\0d\xe2\x82", 11, &n);
  assert_non_null(r);
  /* bad byte, NUL and a cut sequence each become U+FFFD; good text stays */
  assert_string_equal(r, "a\xef\xbf\xbd" "b\xe2\x82\xac" "c\xef\xbf\xbd" "d\xef\xbf\xbd\xef\xbf\xbd");
  assert_int_equal(n, strlen(r));
  assert_true(utf8_valid(r, n, NULL));
  free(r);
  r = utf8_repair("", 0, &n);
  assert_string_equal(r, "");
  free(r);
}

static void test_whole_prefix(void **state) {
  (void)state;
  assert_int_equal(utf8_whole_prefix("abc", 3), 3);
  assert_int_equal(utf8_whole_prefix("ab\xe2\x82", 4), 2);      /* euro sign cut after 2 of 3 bytes */
  assert_int_equal(utf8_whole_prefix("ab\xe2\x82\xac", 5), 5);  /* complete */
  assert_int_equal(utf8_whole_prefix("\xf0\x9d\x84", 3), 0);    /* astral, 3 of 4 */
  assert_int_equal(utf8_whole_prefix("a\xff", 2), 2);             /* invalid is not waited for */
  assert_int_equal(utf8_whole_prefix("a\x80", 2), 2);             /* stray continuation */
}

static void test_repair_with(void **state) {
  (void)state;
  size_t n = 0;
  /* a cut sequence loses its first byte only: the rest is looked at again */
  char *r = utf8_repair_with("ok \xc3\xa9 \xff \xed\xa0\x80 \xc3", 13, "?", 1, &n);
  assert_non_null(r);
  assert_string_equal(r, "ok \xc3\xa9 ? ??? ?");
  assert_int_equal(n, 13);
  free(r);
  /* NUL is replaced too; an empty replacement drops the byte */
  r = utf8_repair_with("a\0b\x80" "c", 5, "", 0, &n);
  assert_string_equal(r, "abc");
  assert_int_equal(n, 3);
  free(r);
  /* a longer replacement grows the output; valid input comes back unchanged */
  r = utf8_repair_with("\xff\xfe", 2, "<bad>", 5, NULL);
  assert_string_equal(r, "<bad><bad>");
  free(r);
  r = utf8_repair_with("\xe2\x82\xac\xf0\x9d\x84\x9e", 7, "?", 1, &n);
  assert_string_equal(r, "\xe2\x82\xac\xf0\x9d\x84\x9e");
  assert_int_equal(n, 7);
  free(r);
  /* utf8_repair is the U+FFFD case */
  char *a = utf8_repair("x\xffy", 3, NULL), *b = utf8_repair_with("x\xffy", 3, "\xef\xbf\xbd", 3, NULL);
  assert_string_equal(a, b);
  free(a);
  free(b);
}

static void test_char_start(void **state) {
  (void)state;
  const char *s = "a\xe2\x82\xac" "b";  /* a, euro sign (bytes 1..3), b */
  assert_int_equal(utf8_char_start(s, 5, 0), 0);
  assert_int_equal(utf8_char_start(s, 5, 1), 1);
  assert_int_equal(utf8_char_start(s, 5, 2), 1); /* inside the euro sign: its start */
  assert_int_equal(utf8_char_start(s, 5, 3), 1);
  assert_int_equal(utf8_char_start(s, 5, 4), 4);
  assert_int_equal(utf8_char_start(s, 5, 5), 5);  /* the end is a cut point */
  assert_int_equal(utf8_char_start(s, 5, 99), 5); /* clamped */
  /* stray continuation bytes from the start: back to 0 */
  assert_int_equal(utf8_char_start("\x80\x80\x80", 3, 2), 0);
  assert_int_equal(utf8_char_start("", 0, 0), 0);
}

static void test_offset_at(void **state) {
  (void)state;
  /* line 0 "a<U+1D11E>b", CRLF; line 1 "<e-acute>x"; line 2 "end" without newline */
  const char *t = "a\xf0\x9d\x84\x9e" "b\r\n\xc3\xa9x\nend";
  size_t len = strlen(t);
  assert_int_equal(utf8_offset_at(t, len, 0, 0, LSP_ENC_UTF16), 0);
  assert_int_equal(utf8_offset_at(t, len, 0, 3, LSP_ENC_UTF16), 5);  /* after the pair */
  assert_int_equal(utf8_offset_at(t, len, 0, 2, LSP_ENC_UTF16), 1);  /* inside the pair */
  assert_int_equal(utf8_offset_at(t, len, 0, 2, LSP_ENC_UTF32), 5);
  assert_int_equal(utf8_offset_at(t, len, 0, 5, LSP_ENC_UTF8), 5);
  /* past the line's end clamps before the CR */
  assert_int_equal(utf8_offset_at(t, len, 0, 99, LSP_ENC_UTF16), 6);
  assert_int_equal(utf8_offset_at(t, len, 1, 0, LSP_ENC_UTF16), 8);
  assert_int_equal(utf8_offset_at(t, len, 1, 1, LSP_ENC_UTF16), 10);
  assert_int_equal(utf8_offset_at(t, len, 1, 1, LSP_ENC_UTF8), 8);   /* inside e-acute */
  assert_int_equal(utf8_offset_at(t, len, 2, 3, LSP_ENC_UTF16), len);
  assert_int_equal(utf8_offset_at(t, len, 2, 1, LSP_ENC_UTF16), 13);
  /* a line past the last one is the end */
  assert_int_equal(utf8_offset_at(t, len, 3, 0, LSP_ENC_UTF16), len);
  assert_int_equal(utf8_offset_at(t, len, UINT32_MAX, UINT32_MAX, LSP_ENC_UTF16), len);
  assert_int_equal(utf8_offset_at("", 0, 0, 5, LSP_ENC_UTF16), 0);
  /* a trailing newline opens an empty last line */
  assert_int_equal(utf8_offset_at("x\n", 2, 1, 4, LSP_ENC_UTF16), 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid_boundaries),
    cmocka_unit_test(test_invalid_sequences),
    cmocka_unit_test(test_cross_check_exhaustive),
    cmocka_unit_test(test_col_to_lsp),
    cmocka_unit_test(test_col_from_lsp),
    cmocka_unit_test(test_col_round_trip),
    cmocka_unit_test(test_repair),
    cmocka_unit_test(test_whole_prefix),
    cmocka_unit_test(test_repair_with),
    cmocka_unit_test(test_char_start),
    cmocka_unit_test(test_offset_at),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
