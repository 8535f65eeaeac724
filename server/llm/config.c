/* LLM settings: defaults, the environment's overrides, and the normalised
 * copy a request works from. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crucible_config.h"
#include "internal.h"

#define DEFAULT_TIMEOUT_MS ((long)CFG_DEFAULT_LLM_TIMEOUT_MS)

void llm_config_init(llm_config *self) {
  memset(self, 0, sizeof *self);
  self->temperature = -1;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
  self->max_retries = CFG_DEFAULT_LLM_MAX_RETRIES;
  self->backoff_base_ms = 500;
  self->backoff_max_ms = 30000;
  self->structured_output = LLM_MODE_AUTO;
  self->max_answer_bytes = 4u << 20;
}

static void replace(char **dst, const char *v) {
  free(*dst);
  *dst = xstrdup(v);
}

static const char *first_set(const char *a, const char *b, const char *c) {
  if (a && *a) return a;
  if (b && *b) return b;
  return c;
}

int llm_config_resolve(llm_config *self, const char *base_url, const char *model, const char *api_key_env) {
  const char *url = first_set(base_url, getenv("OPENAI_BASE_URL"), LLM_DEFAULT_BASE_URL);
  size_t n = strlen(url);
  while (n > 0 && url[n - 1] == '/') n--;
  free(self->base_url);
  self->base_url = xstrndup(url, n);
  replace(&self->model, first_set(model, getenv("CRUCIBLE_MODEL"), LLM_DEFAULT_MODEL));
  const char *key = getenv(api_key_env && *api_key_env ? api_key_env : CFG_DEFAULT_LLM_API_KEY_ENV);
  replace(&self->api_key, key ? key : "");
  return 0;
}

void llm_config_close(llm_config *self) {
  free(self->base_url);
  free(self->model);
  if (self->api_key) {
    /* don't leave the key lying in freed memory */
    memset(self->api_key, 0, strlen(self->api_key));
    free(self->api_key);
  }
  free(self->user_agent);
  self->base_url = self->model = self->api_key = self->user_agent = NULL;
}

static void config_copy(llm_config *dst, const llm_config *src) {
  *dst = *src;
  dst->base_url = xstrdup(src->base_url ? src->base_url : LLM_DEFAULT_BASE_URL);
  size_t n = strlen(dst->base_url);
  while (n > 0 && dst->base_url[n - 1] == '/') dst->base_url[--n] = '\0';
  dst->model = xstrdup(src->model ? src->model : LLM_DEFAULT_MODEL);
  dst->api_key = xstrdup(src->api_key ? src->api_key : "");
  dst->user_agent = src->user_agent ? xstrdup(src->user_agent) : xstrdup("crucible/" CRUCIBLE_VERSION);
  if (dst->timeout_ms <= 0) dst->timeout_ms = DEFAULT_TIMEOUT_MS;
  if (dst->total_timeout_ms <= 0) dst->total_timeout_ms = dst->timeout_ms;
  if (dst->connect_timeout_ms <= 0) dst->connect_timeout_ms = dst->timeout_ms < 10000 ? dst->timeout_ms : 10000;
  if (dst->first_byte_timeout_ms <= 0) dst->first_byte_timeout_ms = dst->timeout_ms;
  if (dst->idle_timeout_ms <= 0) dst->idle_timeout_ms = dst->timeout_ms;
  if (dst->max_retries < 0) dst->max_retries = 0;
  if (dst->backoff_base_ms <= 0) dst->backoff_base_ms = 500;
  if (dst->backoff_max_ms <= 0) dst->backoff_max_ms = 30000;
  if (!dst->max_answer_bytes) dst->max_answer_bytes = 4u << 20;
}

void llm__endpoint_init(llm__endpoint *self, const llm_config *cfg) {
  config_copy(&self->cfg, cfg);
  self->auth_header = self->cfg.api_key[0] ? xasprintf("Authorization: Bearer %s", self->cfg.api_key) : NULL;
}

void llm__endpoint_close(llm__endpoint *self) {
  if (self->auth_header) {
    /* don't leave the key lying in freed memory */
    memset(self->auth_header, 0, strlen(self->auth_header));
    free(self->auth_header);
    self->auth_header = NULL;
  }
  llm_config_close(&self->cfg);
}
