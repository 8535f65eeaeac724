/* Unit tests of the embeddings answer's parsing (the /embeddings wire
 * format): order by index, one finite vector per input, equal lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "embeddings.h"

static float *parse(const char *body, size_t n, int *dim, const char **why) {
  return llm_embed_parse(body, strlen(body), n, dim, why);
}

static void test_ordered_by_index(void **state) {
  (void)state;
  int dim;
  const char *why;
  float *v = parse("{\"object\":\"list\",\"data\":[{\"index\":1,\"embedding\":[3,4]},"
                   "{\"index\":0,\"embedding\":[1,2]}],\"model\":\"m\"}",
                   2, &dim, &why);
  assert_non_null(v);
  assert_int_equal(dim, 2);
  assert_true(v[0] == 1 && v[1] == 2 && v[2] == 3 && v[3] == 4);
  free(v);
  /* without index: the array's order */
  v = parse("{\"data\":[{\"embedding\":[0.5]},{\"embedding\":[-0.5]}]}", 2, &dim, &why);
  assert_non_null(v);
  assert_true(v[0] == 0.5f && v[1] == -0.5f);
  free(v);
}

static void test_refused(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",                                                               /* not JSON */
      "{\"data\": [{\"embedding\": [0.1, \"x\"",                        /* cut */
      "{\"error\": {\"message\": \"no\"}}",                             /* no data */
      "{\"data\": [{\"embedding\": [1, 2]}]}",                          /* one for two inputs */
      "{\"data\": [{\"embedding\": [1, 2]}, {\"embedding\": [1]}]}",    /* lengths differ */
      "{\"data\": [{\"embedding\": [1]}, {\"embedding\": []}]}",        /* empty */
      "{\"data\": [{\"index\": 0, \"embedding\": [1]}, {\"index\": 0, \"embedding\": [2]}]}", /* same index */
      "{\"data\": [{\"index\": 5, \"embedding\": [1]}, {\"index\": 0, \"embedding\": [2]}]}", /* out of range */
      "{\"data\": [{\"embedding\": [1]}, {\"embedding\": [\"1\"]}]}",   /* not a number */
      "{\"data\": [{\"embedding\": [1]}, {\"embedding\": [1e999]}]}",   /* not finite */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int dim = 7;
    const char *why = NULL;
    float *v = parse(bad[i], 2, &dim, &why);
    if (v) fail_msg("accepted: %s", bad[i]);
    assert_non_null(why);
    assert_int_equal(dim, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ordered_by_index),
      cmocka_unit_test(test_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
