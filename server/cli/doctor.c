/* `crucible doctor`: what works on this machine, for people (or --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "methods.h"
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

typedef struct ping_ctx {
  cJSON *llm;
  bool done;
} ping_ctx;

static void pinged(void *ud, const llm_ping_result *res) {
  ping_ctx *p = ud;
  lsp_doctor_llm_result(p->llm, res);
  p->done = true;
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
  cJSON *report = lsp_doctor_report(&settings);
  ping_ctx p = {.llm = lsp_doctor_llm_section(&settings)};
  cJSON_AddItemToObject(report, "llm", p.llm);
  if (!offline) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    llm_client *client = NULL;
    if (!llm_client_new(&loop, &client) && !lsp_doctor_ping(client, &settings, pinged, &p)) {
      while (!p.done && uv_run(&loop, UV_RUN_ONCE)) {
      }
    }
    llm_client_free(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  if (json) {
    term_print_json(report, true);
  } else {
    print_tree(report, 0);
  }
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(report, "ok");
  int rc = cJSON_IsFalse(ok) ? 1 : 0;
  cJSON_Delete(report);
  cfg_close(&settings);
  return rc;
}
