/* Unit tests of server/util/common.c: is_integral (the libm-free integer
 * check of configuration values, limits and JSON-RPC ids) and the lazily
 * loaded libm forwarders (math_lazy.c) giving libm's own answers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"

static void integral_values(void **state) {
  (void)state;
  static const double yes[] = {0.0, -0.0, 1.0, -1.0, 42.0, 1e15, -1e15, 4503599627370495.0,
                               4503599627370496.0, 9007199254740993.0, 1e300, -1e300};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) assert_true(is_integral(yes[i]));
  static const double no[] = {0.5, -0.5, 1.000001, 4503599627370495.5, -4503599627370495.5, 1e-300};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) assert_false(is_integral(no[i]));
  assert_false(is_integral(NAN));
  assert_false(is_integral(INFINITY));
  assert_false(is_integral(-INFINITY));
}

static void lazy_libm_answers(void **state) {
  (void)state;
  volatile double x = 2.0, e = 2.718281828459045, q = 3.2;
  assert_true(fabs(sqrt(x) - 1.4142135623730951) < 1e-15);
  assert_true(fabs(log(e) - 1.0) < 1e-15);
  assert_true(ceil(q) == 4.0);
  assert_true(ceil(-q) == -3.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(integral_values),
      cmocka_unit_test(lazy_libm_answers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
