/* POST {base_url}/embeddings: the request body, the answer's parsing, and
 * the request on the LLM client's loop. */
#include "embeddings.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "internal.h"
#include "utf8.h"

/* n x dim floats as JSON text: 768 dims of ~20 chars, 64 inputs ~ 1 MB. */
#define EMBED_BODY_CAP (64u << 20)

struct llm_embed {
  llm_client *client;
  llm__endpoint ep;
  size_t n;
  llm_embed_fn cb;
  void *ud;
  http_request *req;
};

float *llm_embed_parse(const char *body, size_t len, size_t n, int *dim, const char **why) {
  *dim = 0;
  *why = NULL;
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
  float *out = NULL;
  bool *seen = NULL;
  if (!cJSON_IsArray(data)) {
    *why = j ? "no \"data\" array" : "not JSON";
    goto fail;
  }
  if ((size_t)cJSON_GetArraySize(data) != n) {
    *why = "\"data\" does not hold one embedding per input";
    goto fail;
  }
  seen = xcalloc(n + 1, sizeof *seen);
  size_t pos = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, data) {
    const cJSON *emb = cJSON_GetObjectItemCaseSensitive(it, "embedding");
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(it, "index");
    size_t i = pos++;
    if (cJSON_IsNumber(idx)) {
      if (idx->valuedouble < 0 || idx->valuedouble >= (double)n) {
        *why = "an embedding's \"index\" is out of range";
        goto fail;
      }
      i = (size_t)idx->valuedouble;
    }
    if (seen[i]) {
      *why = "two embeddings with the same \"index\"";
      goto fail;
    }
    seen[i] = true;
    int d = cJSON_IsArray(emb) ? cJSON_GetArraySize(emb) : 0;
    if (d <= 0 || d > LLM_EMBED_MAX_DIM) {
      *why = "an item without an \"embedding\" array of numbers";
      goto fail;
    }
    if (!out) {
      *dim = d;
      out = xcalloc(n * (size_t)d, sizeof *out);
    } else if (d != *dim) {
      *why = "embeddings of different lengths";
      goto fail;
    }
    size_t k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, emb) {
      if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
        *why = "an embedding holds something other than a finite number";
        goto fail;
      }
      out[i * (size_t)d + k++] = (float)x->valuedouble;
    }
  }
  free(seen);
  cJSON_Delete(j);
  return out;
fail:
  free(seen);
  free(out);
  cJSON_Delete(j);
  *dim = 0;
  return NULL;
}

static void on_embed_done(http_request *req, const http_result *res, void *ud) {
  (void)req;
  llm_embed *e = ud;
  llm_client *c = e->client;
  llm_embed_result r = {.http_status = res->status, .ms = res->total_ms, .n = e->n};
  char *msg = NULL;
  float *vecs = NULL;
  if (res->outcome == HTTP_CANCELLED) {
    r.cancelled = true;
    msg = xstrdup("cancelled");
  } else if (res->outcome != HTTP_DONE) {
    msg = xasprintf("embeddings endpoint %s/embeddings: %s", e->ep.cfg.base_url, res->error);
  } else if (res->status != 200) {
    char *type = NULL, *code = NULL;
    char *m = llm__redact(e->ep.cfg.api_key, llm_error_parse(res->body, res->body_len, &type, &code));
    msg = xasprintf("embeddings endpoint %s/embeddings answered %ld: %s", e->ep.cfg.base_url, res->status, m);
    free(m), free(type), free(code);
  } else {
    const char *why = NULL;
    vecs = llm_embed_parse(res->body, res->body_len, e->n, &r.dim, &why);
    if (!vecs) msg = xasprintf("embeddings endpoint %s/embeddings answered something unusable: %s",
                               e->ep.cfg.base_url, why);
  }
  if (msg && !utf8_valid(msg, strlen(msg), NULL)) {
    char *fixed = utf8_repair(msg, strlen(msg), NULL);
    free(msg);
    msg = fixed;
  }
  r.ok = vecs != NULL;
  r.vecs = vecs;
  r.error = msg;
  e->cb(e->ud, &r);
  free(msg);
  free(vecs);
  llm__endpoint_close(&e->ep);
  free(e);
  llm__client_unref(c);
}

int llm_embed_start(llm_client *self, const llm_config *cfg, const char *model, const char *const *texts, size_t n,
                    long timeout_ms, llm_embed_fn cb, void *ud, llm_embed **out) {
  if (!cfg || !cb || !model || !*model || !n || n > LLM_EMBED_MAX_INPUTS) return -EINVAL;
  if (!self || self->closing) return -ECANCELED;
  llm_embed *e = xcalloc(1, sizeof *e);
  e->client = self;
  llm__endpoint_init(&e->ep, cfg);
  e->n = n;
  e->cb = cb;
  e->ud = ud;
  cJSON *body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "model", model);
  cJSON *in = cJSON_AddArrayToObject(body, "input");
  for (size_t i = 0; i < n; i++) {
    /* the text goes as JSON: invalid UTF-8 is repaired first */
    const char *t = texts[i] ? texts[i] : "";
    char *fixed = utf8_valid(t, strlen(t), NULL) ? NULL : utf8_repair(t, strlen(t), NULL);
    cJSON_AddItemToArray(in, cJSON_CreateString(fixed ? fixed : t));
    free(fixed);
  }
  char *json = cJSON_PrintUnformatted(body);
  cJSON_Delete(body);
  char *url = xasprintf("%s/embeddings", e->ep.cfg.base_url);
  long total = timeout_ms > 0 ? timeout_ms : e->ep.cfg.timeout_ms;
  const char *headers[] = {"Content-Type: application/json", "Accept: application/json", e->ep.auth_header, NULL};
  http_request_opts o = {
      .method = "POST",
      .url = url,
      .headers = headers,
      .body = json,
      .body_len = strlen(json),
      .user_agent = e->ep.cfg.user_agent,
      .connect_timeout_ms = e->ep.cfg.connect_timeout_ms < total ? e->ep.cfg.connect_timeout_ms : total,
      .total_timeout_ms = total,
      .max_body = EMBED_BODY_CAP,
      .on_done = on_embed_done,
      .ud = e,
  };
  int err = http_request_start(self->http, &o, &e->req);
  free(url);
  free(json);
  if (err < 0) {
    llm__endpoint_close(&e->ep);
    free(e);
    return err;
  }
  self->refs++;
  if (out) *out = e;
  return 0;
}

void llm_embed_cancel(llm_embed *self) {
  if (self && self->req) http_request_cancel(self->req);
}
