/* GET {base_url}/models, for `crucible doctor`: is the endpoint there, and
 * does it list the configured model. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "internal.h"
#include "utf8.h"

#define PING_BODY_CAP (4u << 20)

typedef struct llm_ping_op {
  llm_client *client;
  llm__endpoint ep;   /* this ping's settings */
  llm_ping_fn cb;
  void *ud;
} llm_ping_op;

static void on_ping_done(http_request *req, const http_result *res, void *ud) {
  llm_ping_op *op = ud;
  llm_client *c = op->client;
  llm_ping_result pr = {.http_status = res->status, .models = -1, .ms = res->total_ms};
  char *msg = NULL;
  if (res->outcome != HTTP_DONE) {
    msg = xasprintf("cannot reach LLM endpoint %s: %s", op->ep.cfg.base_url, res->error);
  } else if (res->status != 200) {
    char *type = NULL, *code = NULL;
    char *m = llm__redact(op->ep.cfg.api_key, llm_error_parse(res->body, res->body_len, &type, &code));
    msg = xasprintf("LLM endpoint %s answered %ld: %s", op->ep.cfg.base_url, res->status, m);
    free(m);
    free(type);
    free(code);
  } else {
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (!cJSON_IsArray(data)) {
      msg = xasprintf("LLM endpoint %s answered GET /models without a model list", op->ep.cfg.base_url);
    } else {
      pr.ok = true;
      pr.models = cJSON_GetArraySize(data);
      const cJSON *m;
      cJSON_ArrayForEach(m, data) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, op->ep.cfg.model) == 0) pr.model_listed = true;
      }
    }
    cJSON_Delete(j);
  }
  if (msg && !utf8_valid(msg, strlen(msg), NULL)) {
    char *fixed = utf8_repair(msg, strlen(msg), NULL);
    free(msg);
    msg = fixed;
  }
  pr.error = msg;
  op->cb(op->ud, &pr);
  free(msg);
  llm__endpoint_close(&op->ep);
  free(op);
  llm__client_unref(c);
}

int llm_ping(llm_client *self, const llm_config *cfg, llm_ping_fn cb, void *ud) {
  if (!cfg || !cb) return -EINVAL;
  if (!self || self->closing) return -ECANCELED;
  llm_ping_op *op = xcalloc(1, sizeof *op);
  op->client = self;
  llm__endpoint_init(&op->ep, cfg);
  op->cb = cb;
  op->ud = ud;
  char *url = xasprintf("%s/models", op->ep.cfg.base_url);
  const char *headers[] = {"Accept: application/json", op->ep.auth_header, NULL};
  http_request_opts o = {
      .url = url,
      .headers = headers,
      .user_agent = op->ep.cfg.user_agent,
      .connect_timeout_ms = op->ep.cfg.connect_timeout_ms,
      .first_byte_timeout_ms = op->ep.cfg.first_byte_timeout_ms,
      .idle_timeout_ms = op->ep.cfg.idle_timeout_ms,
      .max_body = PING_BODY_CAP,
      .on_done = on_ping_done,
      .ud = op,
  };
  int err = http_request_start(self->http, &o, NULL);
  free(url);
  if (err < 0) {
    llm__endpoint_close(&op->ep);
    free(op);
    return err;
  }
  self->refs++;
  return 0;
}
