/* `crucible history` and `crucible show TASK`: past tasks from the
 * transcript database. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "store.h"
#include "term.h"

static store *open_store(void) {
  char err[512];
  store *s = store_open(NULL, err, sizeof err);
  if (!s) fprintf(stderr, "crucible: %s\n", err);
  return s;
}

int cli_history(int argc, char **argv) {
  int limit = STORE_HISTORY_DEFAULT_LIMIT;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: crucible history [--limit N] [--json] [--raw-output]\n");
      return 2;
    }
  }
  store *s = open_store();
  if (!s) return 1;
  cJSON *h = store_history(s, limit);
  if (json) {
    term_print_json(h, true);
  } else {
    const cJSON *it;
    cJSON_ArrayForEach(it, h) {
      time_t when = (time_t)cJSON_GetObjectItemCaseSensitive(it, "createdAt")->valuedouble;
      char ts[32];
      strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime(&when));
      const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "question"));
      term_printf(stdout, "%s  %-26s %-9s %2d attempt(s)  %.60s\n", ts,
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "uid")),
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "outcome")),
             cJSON_GetObjectItemCaseSensitive(it, "iterations")->valueint, q ? q : "");
    }
  }
  cJSON_Delete(h);
  store_free(s);
  return 0;
}

int cli_show(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: crucible show TASK [--json] [--raw-output]\n");
    return 2;
  }
  bool json = argc > 2 && !strcmp(argv[2], "--json");
  store *s = open_store();
  if (!s) return 1;
  cJSON *t = store_transcript(s, argv[1]);
  store_free(s);
  if (!t) {
    fprintf(stderr, "crucible: no task '%s' (see crucible history)\n", argv[1]);
    return 1;
  }
  if (json) {
    term_print_json(t, true);
    cJSON_Delete(t);
    return 0;
  }
  term_printf(stdout, "task %s (%s): %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "uid")),
         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "outcome")),
         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "question")));
  const cJSON *a;
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(t, "attempts")) {
    term_printf(stdout, "\n=== attempt %d: %s\n", cJSON_GetObjectItemCaseSensitive(a, "iteration")->valueint,
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "passed")) ? "passed" : "failed");
    const cJSON *sol = cJSON_GetObjectItemCaseSensitive(a, "solution");
    if (cJSON_IsObject(sol))
      term_printf(stdout, "%s\n%s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sol, "imports")),
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sol, "code")));
    const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "error"));
    if (err) term_printf(stdout, "--- error\n%s\n", err);
    const char *refl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "reflection"));
    if (refl) term_printf(stdout, "--- reflection\n%s\n", refl);
  }
  cJSON_Delete(t);
  return 0;
}
