/* Run limits (defaults, ceilings, JSON) and language names. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "defaults.h"
#include "sandbox.h"

void sbx_limits_default(sbx_limits *self) {
  *self = (sbx_limits){.timeout_ms = CFG_DEFAULT_SANDBOX_TIMEOUT_MS,
                       .memory_mb = CFG_DEFAULT_SANDBOX_MEMORY_MB,
                       .cpu_seconds = CFG_DEFAULT_SANDBOX_CPU_SECONDS,
                       .pids = CFG_DEFAULT_SANDBOX_PIDS,
                       .output_bytes = CFG_DEFAULT_SANDBOX_OUTPUT_BYTES,
                       .disk_mb = CFG_DEFAULT_SANDBOX_DISK_MB};
}

void sbx_limits_max(sbx_limits *self) {
  *self = (sbx_limits){.timeout_ms = 600000, .memory_mb = 16384, .cpu_seconds = 600,
                       .pids = 4096, .output_bytes = 64 << 20, .disk_mb = 4096};
}

void sbx_limits_fill(sbx_limits *self, const sbx_limits *base) {
  if (self->timeout_ms <= 0) self->timeout_ms = base->timeout_ms;
  if (self->memory_mb <= 0) self->memory_mb = base->memory_mb;
  if (self->cpu_seconds <= 0) self->cpu_seconds = base->cpu_seconds;
  if (self->pids <= 0) self->pids = base->pids;
  if (self->output_bytes <= 0) self->output_bytes = base->output_bytes;
  if (self->disk_mb <= 0) self->disk_mb = base->disk_mb;
}

static const struct {
  const char *key;
  size_t off;
} limit_keys[] = {
    {"timeoutMs", offsetof(sbx_limits, timeout_ms)},
    {"memoryMb", offsetof(sbx_limits, memory_mb)},
    {"cpuSeconds", offsetof(sbx_limits, cpu_seconds)},
    {"pids", offsetof(sbx_limits, pids)},
    {"outputBytes", offsetof(sbx_limits, output_bytes)},
    {"diskMb", offsetof(sbx_limits, disk_mb)},
};

int sbx_limits_from_json(sbx_limits *self, const cJSON *obj, const sbx_limits *max, char **err) {
  *err = NULL;
  if (!obj || cJSON_IsNull(obj)) return 0;
  if (!cJSON_IsObject(obj)) {
    *err = xstrdup("limits must be an object");
    return -EINVAL;
  }
  sbx_limits tmp = *self;
  for (size_t i = 0; i < ARRAY_LEN(limit_keys); i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, limit_keys[i].key);
    if (!v || cJSON_IsNull(v)) continue;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= 1) || !is_integral(d) || d > 1e15) {
      *err = xasprintf("limits.%s must be a positive integer", limit_keys[i].key);
      return -EINVAL;
    }
    long *field = (long *)((char *)&tmp + limit_keys[i].off);
    if (max) {
      long ceiling = *(const long *)((const char *)max + limit_keys[i].off);
      if (ceiling > 0 && d > (double)ceiling) {
        *err = xasprintf("limits.%s is %.0f, above the allowed maximum %ld", limit_keys[i].key, d,
                         ceiling);
        return -EINVAL;
      }
    }
    *field = (long)d;
  }
  *self = tmp;
  return 0;
}

cJSON *sbx_limits_to_json(const sbx_limits *self) {
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; i < ARRAY_LEN(limit_keys); i++)
    cJSON_AddNumberToObject(o, limit_keys[i].key,
                            (double)*(const long *)((const char *)self + limit_keys[i].off));
  return o;
}

int sbx_lang_parse(const char *name, sbx_lang *out) {
  lang_id id = lang_parse(name);
  if (id == LANG_NONE) return -EINVAL;
  *out = id;
  return 0;
}

const char *sbx_lang_name(sbx_lang lang) {
  const lang_info *l = lang_get(lang);
  return l ? l->name : "unknown";
}

const char *sbx_lang_script(sbx_lang lang) {
  const lang_info *l = lang_get(lang);
  return l ? l->script : "main";
}

int sbx_lang_from_path(const char *path, sbx_lang *out) {
  lang_id id = lang_from_path(path);
  if (id == LANG_NONE) return -ENOENT;
  *out = id;
  return 0;
}
