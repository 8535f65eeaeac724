/* Test driver: runs one chat (or a ping) against an endpoint and prints each
 * event as a JSON line on stdout, for tests/integration/test_llm_client.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "client.h"
#include "common.h"

typedef struct drive {
  llm_client *client;
  llm_chat *chat;
  uv_timer_t cancel_timer;
  long cancel_after_ms;
  int exit_code;
  unsigned long long t0;
} drive;

static void emit(cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  printf("%s\n", s);
  fflush(stdout);
  free(s);
  cJSON_Delete(o);
}

static cJSON *event(drive *d, const char *name) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "event", name);
  cJSON_AddNumberToObject(o, "ms", (double)(now_ms() - d->t0));
  return o;
}

static void on_token(void *ud, const char *text, size_t len) {
  cJSON *o = event(ud, "token");
  char *t = xstrndup(text, len);
  cJSON_AddStringToObject(o, "text", t);
  free(t);
  emit(o);
}

static void on_retry(void *ud, int retry, long delay_ms, long status, const char *reason) {
  cJSON *o = event(ud, "retry");
  cJSON_AddNumberToObject(o, "retry", retry);
  cJSON_AddNumberToObject(o, "delayMs", (double)delay_ms);
  cJSON_AddNumberToObject(o, "status", (double)status);
  cJSON_AddStringToObject(o, "reason", reason);
  emit(o);
}

static void on_fallback(void *ud, llm_mode from, llm_mode to, const char *reason) {
  cJSON *o = event(ud, "fallback");
  cJSON_AddStringToObject(o, "from", llm_mode_name(from));
  cJSON_AddStringToObject(o, "to", llm_mode_name(to));
  cJSON_AddStringToObject(o, "reason", reason);
  emit(o);
}

static void cancel_timer_closed(uv_handle_t *h) {
  (void)h;
}

static void on_done(void *ud, const llm_result *res) {
  drive *d = ud;
  d->chat = NULL;
  cJSON *o = event(d, "done");
  static const char *const names[] = {"ok", "error", "cancelled"};
  cJSON_AddStringToObject(o, "status", names[res->status]);
  if (res->error) cJSON_AddStringToObject(o, "error", res->error);
  cJSON_AddNumberToObject(o, "httpStatus", (double)res->http_status);
  cJSON_AddStringToObject(o, "text", res->text);
  cJSON_AddStringToObject(o, "mode", llm_mode_name(res->mode));
  cJSON_AddBoolToObject(o, "toolCall", res->tool_call);
  if (res->finish_reason) cJSON_AddStringToObject(o, "finishReason", res->finish_reason);
  cJSON_AddNumberToObject(o, "attempts", res->attempts);
  cJSON *u = cJSON_AddObjectToObject(o, "usage");
  cJSON_AddNumberToObject(u, "promptTokens", (double)res->prompt_tokens);
  cJSON_AddNumberToObject(u, "completionTokens", (double)res->completion_tokens);
  cJSON_AddStringToObject(o, "modeRemembered",
                          llm_mode_name(llm_client_mode_get(d->client, getenv("DRIVE_BASE") ? getenv("DRIVE_BASE") : "",
                                                            getenv("DRIVE_MODEL") ? getenv("DRIVE_MODEL") : "")));
  if (res->status == LLM_OK) {
    llm_solution sol;
    char *err = NULL;
    if (llm_solution_parse(res->text, res->mode, &sol, &err) == 0) {
      cJSON *s = cJSON_AddObjectToObject(o, "solution");
      cJSON_AddStringToObject(s, "prefix", sol.prefix);
      cJSON_AddStringToObject(s, "imports", sol.imports);
      cJSON_AddStringToObject(s, "code", sol.code);
      llm_solution_close(&sol);
    } else {
      cJSON_AddStringToObject(o, "solutionError", err);
      free(err);
    }
  }
  emit(o);
  d->exit_code = res->status == LLM_OK ? 0 : 1;
  uv_timer_stop(&d->cancel_timer);
  /* freeing the client from inside its own callback must be safe */
  llm_client_free(d->client);
  d->client = NULL;
}

static void on_ping(void *ud, const llm_ping_result *res) {
  drive *d = ud;
  cJSON *o = event(d, "ping");
  cJSON_AddBoolToObject(o, "ok", res->ok);
  cJSON_AddNumberToObject(o, "httpStatus", (double)res->http_status);
  if (res->error) cJSON_AddStringToObject(o, "error", res->error);
  cJSON_AddNumberToObject(o, "models", res->models);
  cJSON_AddBoolToObject(o, "modelListed", res->model_listed);
  emit(o);
  d->exit_code = res->ok ? 0 : 1;
  /* pooled connections keep the loop alive while the client lives */
  llm_client_free(d->client);
  d->client = NULL;
}

static void on_cancel_timer(uv_timer_t *t) {
  drive *d = container_of(t, drive, cancel_timer);
  if (!d->chat) return;
  emit(event(d, "cancel"));
  llm_chat_cancel(d->chat);
}

static void usage(void) {
  fprintf(stderr,
          "usage: llm_drive BASE_URL [--model M] [--mode auto|json_schema|json_object|text] [--plain]\n"
          "       [--prompt TEXT] [--cancel-after-ms N] [--timeout-ms N] [--connect-timeout-ms N]\n"
          "       [--first-byte-timeout-ms N] [--idle-timeout-ms N] [--max-retries N] [--backoff-ms N]\n"
          "       [--api-key-env VAR] [--remember MODE] [--ping]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  drive d = {.exit_code = 2, .t0 = now_ms()};
  llm_config cfg;
  llm_config_init(&cfg);
  const char *base = argv[1], *model = NULL, *prompt = "Write a program that prints hello.", *key_env = NULL;
  const char *remember = NULL;
  bool plain = false, ping = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--plain") == 0) plain = true;
    else if (strcmp(a, "--ping") == 0) ping = true;
    else if (!v) usage();
    else {
      i++;
      if (strcmp(a, "--model") == 0) model = v;
      else if (strcmp(a, "--mode") == 0) {
        if (llm_mode_parse(v, &cfg.structured_output) < 0) usage();
      } else if (strcmp(a, "--prompt") == 0) prompt = v;
      else if (strcmp(a, "--cancel-after-ms") == 0) d.cancel_after_ms = atol(v);
      else if (strcmp(a, "--timeout-ms") == 0) cfg.timeout_ms = atol(v);
      else if (strcmp(a, "--connect-timeout-ms") == 0) cfg.connect_timeout_ms = atol(v);
      else if (strcmp(a, "--first-byte-timeout-ms") == 0) cfg.first_byte_timeout_ms = atol(v);
      else if (strcmp(a, "--idle-timeout-ms") == 0) cfg.idle_timeout_ms = atol(v);
      else if (strcmp(a, "--max-retries") == 0) cfg.max_retries = atoi(v);
      else if (strcmp(a, "--backoff-ms") == 0) cfg.backoff_base_ms = atol(v);
      else if (strcmp(a, "--api-key-env") == 0) key_env = v;
      else if (strcmp(a, "--remember") == 0) remember = v;
      else usage();
    }
  }
  llm_config_resolve(&cfg, base, model, key_env);
  setenv("DRIVE_BASE", cfg.base_url, 1);
  setenv("DRIVE_MODEL", cfg.model, 1);
  uv_loop_t loop;
  uv_loop_init(&loop);
  if (llm_client_new(&loop, &d.client) < 0) return 2;
  if (remember) {
    llm_mode m;
    if (llm_mode_parse(remember, &m) < 0) usage();
    llm_client_mode_set(d.client, getenv("DRIVE_BASE"), getenv("DRIVE_MODEL"), m);
  }
  uv_timer_init(&loop, &d.cancel_timer);
  if (ping) {
    llm_ping(d.client, &cfg, on_ping, &d);
  } else {
    llm_message msgs[] = {
        {.role = "system", .content = "You are a coding assistant."},
        {.role = "user", .content = prompt},
    };
    llm_chat_opts o = {
        .config = &cfg,
        .messages = msgs,
        .n_messages = 2,
        .structured = !plain,
        .on_token = on_token,
        .on_retry = on_retry,
        .on_fallback = on_fallback,
        .on_done = on_done,
        .ud = &d,
    };
    if (llm_chat_start(d.client, &o, &d.chat) < 0) return 2;
    if (d.cancel_after_ms > 0) uv_timer_start(&d.cancel_timer, on_cancel_timer, (uint64_t)d.cancel_after_ms, 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&d.cancel_timer, cancel_timer_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  llm_config_close(&cfg);
  int rc = uv_loop_close(&loop);
  if (rc != 0) {
    fprintf(stderr, "llm_drive: handles left open on the loop\n");
    return 3;
  }
  return d.exit_code;
}
