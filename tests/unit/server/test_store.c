/* Unit tests of the transcript store on a real SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

static void round_trip(void **state) {
  char dir[] = "/tmp/crucible-store-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/sub/dir/t.db", dir);
  char err[256];
  store *s = store_open(path, err, sizeof err);
  assert_non_null(s);
  char uid1[64], uid2[64];
  store_make_uid(uid1, sizeof uid1);
  store_make_uid(uid2, sizeof uid2);
  assert_string_not_equal(uid1, uid2);
  assert_int_equal(store_task_begin(s, uid1, "label", "ask", "first question", "python"), 0);
  cJSON *a = cJSON_Parse("{\"iteration\":1,\"passed\":false,\"error\":\"boom\"}");
  assert_int_equal(store_attempt_put(s, uid1, 1, a), 0);
  cJSON_Delete(a);
  a = cJSON_Parse("{\"iteration\":2,\"passed\":true}");
  assert_int_equal(store_attempt_put(s, uid1, 2, a), 0);
  cJSON_Delete(a);
  cJSON *res = cJSON_Parse("{\"outcome\":\"passed\"}");
  assert_int_equal(store_task_finish(s, uid1, "passed", 2, 100, 20, 1234, res), 0);
  cJSON_Delete(res);
  usleep(2000);
  assert_int_equal(store_task_begin(s, uid2, "label", "ask", "second question", "python"), 0);
  store_free(s);

  /* reopen: the data is on disk */
  s = store_open(path, err, sizeof err);
  assert_non_null(s);
  cJSON *h = store_history(s, 10);
  assert_int_equal(cJSON_GetArraySize(h), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(h, 0), "question")->valuestring, "second question");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(h, 1), "outcome")->valuestring, "passed");
  cJSON_Delete(h);
  cJSON *t = store_transcript(s, uid1);
  assert_non_null(t);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "result"), "outcome")->valuestring, "passed");
  cJSON_Delete(t);
  /* by label: the newest task with it */
  t = store_transcript(s, "label");
  assert_string_equal(cJSON_GetObjectItem(t, "uid")->valuestring, uid2);
  cJSON_Delete(t);
  assert_null(store_transcript(s, "no-such-task"));
  store_free(s);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void unwritable_path_is_an_error(void **state) {
  char err[256];
  store *s = store_open("/proc/crucible/nope.db", err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "/proc/crucible"));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(round_trip), cmocka_unit_test(unwritable_path_is_an_error)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
