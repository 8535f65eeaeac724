/* Per-request overhead of the LLM client against a fake endpoint with instant
 * answers, next to a blocking curl_easy POST of the same body (the baseline). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "client.h"
#include "common.h"
#include "../stats.h"

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p, (void)ud;
  return s * n;
}

typedef struct run {
  int done, ok;
} run;

static void on_done(void *ud, const llm_result *res) {
  run *r = ud;
  r->done = 1;
  r->ok = res->status == LLM_OK;
  if (!r->ok) fprintf(stderr, "bench_llm: %s\n", res->error);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_llm BASE_URL [N]   (start tests/fakes/fake_openai.py first)\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 200;
  if (n < 1) n = 1;
  double *base = xcalloc((size_t)n, sizeof *base), *cli = xcalloc((size_t)n, sizeof *cli);
  llm_message msgs[] = {{.role = "user", .content = "print hello"}};
  char *body = llm_body_build("fake-model", -1, msgs, 1, true, LLM_MODE_JSON_SCHEMA, true);
  char *url = xasprintf("%s/chat/completions", argv[1]);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  for (int i = 0; i < n; i++) {
    unsigned long long t = now_ns();
    if (curl_easy_perform(e) != CURLE_OK) {
      fprintf(stderr, "baseline request failed: is the fake running at %s?\n", argv[1]);
      return 1;
    }
    base[i] = (double)(now_ns() - t) / 1e6;
  }
  curl_easy_cleanup(e);
  curl_slist_free_all(h);

  uv_loop_t loop;
  uv_loop_init(&loop);
  llm_config cfg;
  llm_config_init(&cfg);
  llm_config_resolve(&cfg, argv[1], "fake-model", NULL);
  llm_client *c;
  if (llm_client_new(&loop, &c) < 0) return 1;
  for (int i = 0; i < n; i++) {
    run r = {0};
    llm_chat_opts o = {.config = &cfg, .messages = msgs, .n_messages = 1, .structured = true, .on_done = on_done,
                       .ud = &r};
    unsigned long long t = now_ns();
    llm_chat_start(c, &o, NULL);
    /* pooled connections keep the loop alive: run until this chat is done */
    while (!r.done) uv_run(&loop, UV_RUN_ONCE);
    cli[i] = (double)(now_ns() - t) / 1e6;
    if (!r.ok) {
      fprintf(stderr, "client request %d failed\n", i);
      return 1;
    }
  }
  llm_client_free(c);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  llm_config_close(&cfg);

  double mb = bench_median(base, n), mc = bench_median(cli, n);
  printf("requests: %d\n", n);
  printf("baseline curl_easy POST (body discarded): median %.3f ms\n", mb);
  printf("llm_chat (stream parse, solution JSON):   median %.3f ms\n", mc);
  printf("ratio client/baseline: %.2f\n", mc / mb);
  free(base);
  free(cli);
  free(body);
  free(url);
  return 0;
}
