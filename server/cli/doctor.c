/* `crucible doctor`: what works on this machine, for people (or --json). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "methods.h"

static void print_tree(const cJSON *node, int depth) {
  const cJSON *it;
  cJSON_ArrayForEach(it, node) {
    for (int i = 0; i < depth; i++) fputs("  ", stdout);
    if (it->string) printf("%s:", it->string);
    if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
      putchar('\n');
      print_tree(it, depth + 1);
      continue;
    }
    char *v = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
    printf("%s%s\n", it->string ? " " : "- ", v ? v : it->valuestring);
    cJSON_free(v);
  }
}

int cli_doctor(int argc, char **argv) {
  bool json = argc > 1 && !strcmp(argv[1], "--json");
  cfg settings;
  cfg_init(&settings);
  dbuf msgs;
  dbuf_init(&msgs, 0);
  cfg_load_user(&settings, &msgs);
  if (msgs.len) fputs(msgs.data, stderr);
  dbuf_close(&msgs);
  cJSON *report = lsp_doctor_report(&settings);
  if (json) {
    char *s = cJSON_Print(report);
    puts(s);
    cJSON_free(s);
  } else {
    print_tree(report, 0);
  }
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(report, "ok");
  int rc = cJSON_IsFalse(ok) ? 1 : 0;
  cJSON_Delete(report);
  cfg_close(&settings);
  return rc;
}
