/* `crucible doctor`: what works on this machine, for people (or --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "core.h"
#include "term.h"

static void print_tree(const cJSON *node, int depth) {
  const cJSON *it;
  cJSON_ArrayForEach(it, node) {
    for (int i = 0; i < depth; i++) fputs("  ", stdout);
    if (it->string) printf("%s:", it->string);
    if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
      if (!it->string) putchar('-');
      if (cJSON_GetArraySize(it) == 0) {
        printf(cJSON_IsArray(it) ? " (none)\n" : "\n");
        continue;
      }
      putchar('\n');
      print_tree(it, depth + 1);
      continue;
    }
    char *v = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
    /* values include an endpoint's own error text: shown, not obeyed */
    term_printf(stdout, "%s%s\n", it->string ? " " : "- ", v ? v : it->valuestring);
    cJSON_free(v);
  }
}

static void reported(void *ud, cJSON *report) {
  *(cJSON **)ud = report;
}

int cli_doctor(int argc, char **argv) {
  bool json = false, offline = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "--offline")) offline = true;
    else {
      fprintf(stderr, "usage: crucible doctor [--json] [--offline]\n");
      return 2;
    }
  }
  cfg settings;
  cfg_init_cli(&settings);
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* The engines a one-shot command gets, as `crucible run` and `ask` do. */
  core c;
  core_init(&c, &loop, &settings, &(core_options){.no_stores = true});
  cJSON *report = NULL;
  int err = core_doctor_start(&c, &settings, offline, reported, &report);
  if (!err) {
    while (!report && uv_run(&loop, UV_RUN_ONCE)) {
    }
  }
  core_close(&c);
  uv_run(&loop, UV_RUN_DEFAULT);
  core_free(&c);
  int rc = uv_loop_close(&loop) ? 70 : 0;
  if (!report) {
    fprintf(stderr, "crucible doctor: cannot start: %s\n", uv_strerror(err));
    cfg_close(&settings);
    return 70;
  }
  if (json) {
    term_print_json(report, true);
  } else {
    print_tree(report, 0);
  }
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(report, "ok");
  if (!rc) rc = cJSON_IsFalse(ok) ? 1 : 0;
  cJSON_Delete(report);
  cfg_close(&settings);
  return rc;
}
