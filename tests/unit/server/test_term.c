/* Unit tests for the terminal-safe escaping of untrusted text (server/cli/term.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "term.h"

/* Escapes s whole (at_end) and returns the text (static buffer). */
static const char *esc(const char *s, size_t n) {
  static char buf[1024];
  dbuf out;
  dbuf_init(&out, 0);
  size_t used = term_escape(s, n, true, &out);
  assert_int_equal(used, n);
  snprintf(buf, sizeof buf, "%s", out.data ? out.data : "");
  dbuf_close(&out);
  return buf;
}
#define ESC(lit) esc(lit, sizeof lit - 1)

static void test_controls_shown(void **state) {
  (void)state;
  assert_string_equal(ESC("plain text\n\tok"), "plain text\n\tok");
  assert_string_equal(ESC("\x1b]52;c;ZWNobw==\x07"), "\\u001b]52;c;ZWNobw==\\u0007");
  assert_string_equal(ESC("fake\rcrucible: ok"), "fake\\u000dcrucible: ok");
  assert_string_equal(ESC("\x1b[6n\x1b[c\b\x7f"), "\\u001b[6n\\u001b[c\\u0008\\u007f");
  /* C1 controls as characters (U+009B CSI, U+0085 NEL), and as raw bytes */
  assert_string_equal(ESC("a\xc2\x9b" "31mb\xc2\x85"), "a\\u009b31mb\\u0085");
  assert_string_equal(ESC("\x9b" "6n"), "\\x9b6n");
  /* other characters pass: é, U+00A0, an emoji */
  assert_string_equal(ESC("caf\xc3\xa9\xc2\xa0\xf0\x9f\x98\x80"), "caf\xc3\xa9\xc2\xa0\xf0\x9f\x98\x80");
  /* invalid UTF-8: each bad byte shown by value */
  assert_string_equal(ESC("\xff\xc3(\xed\xa0\x80"), "\\xff\\xc3(\\xed\\xa0\\x80");
  assert_string_equal(esc("a\0b", 3), "a\\u0000b");
}

/* Feeding any split of the input chunk by chunk gives the same text as
 * feeding it whole: sequences cut at a boundary are carried, never shown
 * as broken bytes. */
static void test_split_anywhere(void **state) {
  (void)state;
  static const char in[] = "x\xc2\x9b\xe2\x82\xac\xf0\x9f\x98\x80\x1b[2J\xc3";
  size_t n = sizeof in - 1;
  const char *whole_ref = esc(in, n);
  char whole[1024];
  snprintf(whole, sizeof whole, "%s", whole_ref);
  for (size_t cut1 = 0; cut1 <= n; cut1++) {
    for (size_t cut2 = cut1; cut2 <= n; cut2++) {
      size_t cuts[] = {0, cut1, cut2, n};
      dbuf out;
      dbuf_init(&out, 0);
      char carry[8];
      size_t nc = 0;
      for (int k = 0; k < 3; k++) {
        char chunk[64];
        memcpy(chunk, carry, nc);
        memcpy(chunk + nc, in + cuts[k], cuts[k + 1] - cuts[k]);
        size_t len = nc + cuts[k + 1] - cuts[k];
        size_t used = term_escape(chunk, len, k == 2, &out);
        assert_true(len - used <= 3);
        nc = len - used;
        memcpy(carry, chunk + used, nc);
      }
      assert_int_equal(nc, 0);
      assert_string_equal(out.data ? out.data : "", whole);
      dbuf_close(&out);
    }
  }
  /* not at the end, an incomplete tail waits for more */
  dbuf out;
  dbuf_init(&out, 0);
  assert_int_equal(term_escape("ab\xe2\x82", 4, false, &out), 2);
  assert_string_equal(out.data, "ab");
  dbuf_close(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_controls_shown),
      cmocka_unit_test(test_split_anywhere),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
