/* `crucible doctor` and crucible/doctor: what works on this machine, as the
 * core's own engines see it — all on the loop, no thread. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crucible_config.h"
#include "embeddings.h"

typedef struct doctor_job {
  core *core;
  cfg settings;       /* a snapshot: a client may change its settings meanwhile */
  cJSON *report;
  cJSON *llm;         /* the report's "llm" section */
  cJSON *docs;        /* the report's "docs" section */
  int pending;        /* the sandbox's probes, the ping, and one for the start */
  uv_timer_t done;
  core_doctor_fn cb;
  void *ud;
} doctor_job;

static void job_freed(uv_handle_t *h) {
  doctor_job *j = container_of((uv_timer_t *)h, doctor_job, done);
  cfg_close(&j->settings);
  free(j);
}

/* Answers from the loop, after the ping's callback has returned. */
static void job_finish(uv_timer_t *t) {
  doctor_job *j = container_of(t, doctor_job, done);
  j->cb(j->ud, j->report);
  uv_close((uv_handle_t *)&j->done, job_freed);
}

static void part_done(doctor_job *j) {
  if (--j->pending == 0) uv_timer_start(&j->done, job_finish, 0, 0);
}

static void sandbox_done(void *ud, cJSON *sbx) {
  doctor_job *j = ud;
  /* "ok" says whether code can run here at all: the sandbox must work. */
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(sbx, "ok");
  cJSON_ReplaceItemInObjectCaseSensitive(j->report, "ok", cJSON_CreateBool(!ok || cJSON_IsTrue(ok)));
  cJSON_ReplaceItemInObjectCaseSensitive(j->report, "sandbox", sbx);
  part_done(j);
}

static void pinged(void *ud, const llm_ping_result *res) {
  doctor_job *j = ud;
  cJSON *llm = j->llm;
  cJSON_AddBoolToObject(llm, "reachable", res->ok);
  if (res->http_status) cJSON_AddNumberToObject(llm, "httpStatus", (double)res->http_status);
  if (res->error) cJSON_AddStringToObject(llm, "error", res->error);
  if (res->models >= 0) cJSON_AddNumberToObject(llm, "models", res->models);
  cJSON_AddBoolToObject(llm, "modelListed", res->model_listed);
  cJSON_AddNumberToObject(llm, "ms", res->ms);
  part_done(j);
}

static int ping(doctor_job *j) {
  llm_config lc;
  core_llm_config(&j->settings, &lc);
  lc.timeout_ms = 5000;
  lc.connect_timeout_ms = 3000;
  int err = j->core->llm ? llm_ping(j->core->llm, &lc, pinged, j) : -ECANCELED;
  llm_config_close(&lc);
  return err;
}

static void embedded(void *ud, const llm_embed_result *res) {
  doctor_job *j = ud;
  cJSON *e = cJSON_AddObjectToObject(j->docs, "embeddings");
  cJSON_AddBoolToObject(e, "ok", res->ok);
  if (res->ok) cJSON_AddNumberToObject(e, "dim", res->dim);
  if (res->http_status) cJSON_AddNumberToObject(e, "httpStatus", (double)res->http_status);
  if (res->error) cJSON_AddStringToObject(e, "error", res->error);
  cJSON_AddNumberToObject(e, "ms", res->ms);
  cJSON_ReplaceItemInObjectCaseSensitive(j->docs, "ranking", cJSON_CreateString(res->ok ? "hybrid" : "lexical"));
  if (!res->ok)
    cJSON_AddStringToObject(j->docs, "lexicalBecause",
                            "the endpoint's /embeddings failed (see embeddings.error): asks rank lexically");
  part_done(j);
}

/* The docs section: which ranking an ask gets. With docs.embeddingModel
 * set, one text is embedded to see that the endpoint serves /embeddings. */
static bool docs_check(doctor_job *j, bool offline) {
  const char *model = j->settings.docs.embedding_model;
  cJSON *d = j->docs;
  cJSON_AddStringToObject(d, "ranking", "lexical");
  cJSON_AddStringToObject(d, "embeddingModel", model);
  if (j->core->docs) cJSON_AddNumberToObject(d, "vectors", (double)docs_vec_count(j->core->docs, *model ? model : NULL));
  if (!*model) {
    cJSON_AddStringToObject(d, "lexicalBecause", "docs.embeddingModel is not set");
    return false;
  }
  if (offline) {
    cJSON_AddStringToObject(d, "lexicalBecause", "not checked (--offline)");
    return false;
  }
  llm_config lc;
  core_llm_config(&j->settings, &lc);
  const char *text = "crucible doctor";
  int err = j->core->llm ? llm_embed_start(j->core->llm, &lc, model, &text, 1, 5000, embedded, j, NULL) : -ECANCELED;
  llm_config_close(&lc);
  if (err) cJSON_AddStringToObject(d, "lexicalBecause", "the embeddings check could not start");
  return err == 0;
}

int core_doctor_start(core *self, const cfg *settings, bool offline, core_doctor_fn cb, void *ud) {
  doctor_job *j = xmalloc(sizeof *j);
  *j = (doctor_job){.core = self, .pending = 3, .cb = cb, .ud = ud};
  int err = uv_timer_init(self->loop, &j->done);
  if (err) {
    free(j);
    return err;
  }
  cfg_copy(&j->settings, settings);
  const cfg *s = &j->settings;

  cJSON *r = j->report = cJSON_CreateObject();
  cJSON *srv = cJSON_AddObjectToObject(r, "server");
  cJSON_AddStringToObject(srv, "name", "crucible");
  cJSON_AddStringToObject(srv, "version", CRUCIBLE_VERSION);
  char path[4096];
  cJSON_AddStringToObject(srv, "configFile", cfg_user_path(path, sizeof path));
  cJSON_AddStringToObject(srv, "transcripts", store_default_path(path, sizeof path));
  /* placeholders, in the report's order, filled as the parts come in */
  cJSON_AddNullToObject(r, "sandbox");
  cJSON_AddItemToObject(r, "checks", chk_doctor_report());
  cJSON_AddItemToObject(r, "environments",
                        env_doctor_report(self->envs, s->sandbox.interpreters[LANG_PYTHON], s->sandbox.package_index,
                                          s->sandbox.npm_registry, s->sandbox.env_cache_mb));
  cJSON_AddItemToObject(r, "settings", cfg_to_json(s));
  cJSON_AddBoolToObject(r, "ok", false);
  j->llm = cJSON_AddObjectToObject(r, "llm");
  cJSON_AddStringToObject(j->llm, "baseUrl", s->llm.base_url);
  cJSON_AddStringToObject(j->llm, "model", s->llm.model);
  const char *key = getenv(s->llm.api_key_env);
  cJSON_AddStringToObject(j->llm, "apiKeyEnv", s->llm.api_key_env);
  cJSON_AddBoolToObject(j->llm, "apiKeySet", key && *key);

  if (!self->runner_open || sbx_doctor_start(&self->runner, sandbox_done, j)) {
    cJSON *sbx = cJSON_CreateObject();
    cJSON_AddBoolToObject(sbx, "ok", false);
    cJSON_AddStringToObject(sbx, "problem", "the sandbox could not be set up (see the log)");
    sandbox_done(j, sbx);
  }
  if (offline) {
    cJSON_AddStringToObject(j->llm, "skipped", "--offline");
    j->pending--;
  } else if (ping(j)) {
    cJSON_AddStringToObject(j->llm, "error", "cannot start the check");
    j->pending--;
  }
  j->docs = cJSON_AddObjectToObject(r, "docs");
  if (docs_check(j, offline)) j->pending++;
  part_done(j);
  return 0;
}
