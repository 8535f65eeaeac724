/* RunResult: names of outcomes/limits/isolation modes, the JSON form, and
 * results that outlive their callback (copies, rejected programs). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sandbox.h"
#include "utf8.h"

const char *sbx_outcome_name(sbx_outcome o) {
  static const char *names[] = {"ok", "error", "timeout", "oom", "cancelled", "rejected"};
  return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "error";
}

const char *sbx_isolation_name(sbx_isolation iso) {
  switch (iso) {
  case SBX_ISO_CGROUP_V2: return "cgroup-v2";
  case SBX_ISO_CGROUP_V1: return "cgroup-v1";
  case SBX_ISO_RLIMIT: return "rlimit";
  case SBX_ISO_CONTAINER: return "container";
  default: return "none";
  }
}

const char *sbx_isolation_unenforced(sbx_isolation iso) {
  if (iso != SBX_ISO_RLIMIT) return NULL;
  return "memory is NOT enforced as a limit: without a cgroup, RLIMIT_DATA caps each process's heap "
         "only; shared memory, memfd, tmpfs files, socket buffers and the sum over processes are "
         "not counted. Processes are capped per host uid with RLIMIT_NPROC. Run the server as root "
         "or in a delegated cgroup (systemd-run --user --scope -p Delegate=yes crucible serve) to "
         "enforce both";
}

const char *sbx_limit_name(unsigned kind) {
  switch (kind) {
  case SBX_LIMIT_WALL: return "wall";
  case SBX_LIMIT_CPU: return "cpu";
  case SBX_LIMIT_MEMORY: return "memory";
  case SBX_LIMIT_PIDS: return "pids";
  case SBX_LIMIT_OUTPUT: return "output";
  case SBX_LIMIT_DISK: return "disk";
  default: return NULL;
  }
}

/* Program output as a JSON string: invalid UTF-8 and NUL bytes become
 * U+FFFD (cJSON strings are NUL-terminated and cJSON does not validate). */
static cJSON *bytes(const char *s, size_t n) {
  char *fixed = s ? utf8_repair(s, n, NULL) : NULL;
  cJSON *str = cJSON_CreateString(fixed ? fixed : "");
  free(fixed);
  return str;
}

/* A runtime error as an LSP Diagnostic: from the reported column (or the
 * line's start) to the end of the line. */
static cJSON *lsp_diagnostic(const sbx_diag *d) {
  cJSON *j = cJSON_CreateObject();
  cJSON *range = cJSON_AddObjectToObject(j, "range");
  cJSON *start = cJSON_AddObjectToObject(range, "start");
  cJSON_AddNumberToObject(start, "line", d->line);
  cJSON_AddNumberToObject(start, "character", d->column >= 0 ? d->column : 0);
  cJSON *end = cJSON_AddObjectToObject(range, "end");
  cJSON_AddNumberToObject(end, "line", d->line + 1);
  cJSON_AddNumberToObject(end, "character", 0);
  cJSON_AddNumberToObject(j, "severity", 1);
  cJSON_AddStringToObject(j, "source", "crucible");
  cJSON_AddStringToObject(j, "code", "runtime");
  char *msg = utf8_repair(d->message, strlen(d->message), NULL);
  cJSON_AddStringToObject(j, "message", msg ? msg : "");
  free(msg);
  return j;
}

static cJSON *num_or_null(long long v) {
  return v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)v);
}

cJSON *sbx_result_to_json(const sbx_result *self) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "outcome", sbx_outcome_name(self->outcome));
  cJSON_AddItemToObject(o, "exitCode", self->exit_code < 0 ? cJSON_CreateNull()
                                                           : cJSON_CreateNumber(self->exit_code));
  if (self->signal > 0) {
    const char *abbrev = sigabbrev_np(self->signal);
    char name[32];
    if (abbrev) {
      strcpy(name, "SIG");
      strncat(name, abbrev, sizeof name - 4);
      cJSON_AddStringToObject(o, "signal", name);
    } else {
      cJSON_AddNumberToObject(o, "signal", self->signal);
    }
  } else {
    cJSON_AddNullToObject(o, "signal");
  }
  cJSON_AddItemToObject(o, "stdout", bytes(self->out, self->out_len));
  cJSON_AddItemToObject(o, "stderr", bytes(self->err, self->err_len));
  cJSON_AddBoolToObject(o, "truncated", self->truncated);
  cJSON_AddNumberToObject(o, "durationMs", (double)self->duration_ms);
  cJSON_AddItemToObject(o, "cpuMs", num_or_null(self->cpu_ms));
  cJSON_AddItemToObject(o, "maxRssKb", num_or_null(self->max_rss_kb));
  cJSON *diags = cJSON_AddArrayToObject(o, "diagnostics");
  for (int i = 0; i < self->ndiags; i++) {
    cJSON_AddItemToArray(diags, lsp_diagnostic(&self->diags[i]));
  }
  const char *lim = sbx_limit_name(self->limit);
  if (lim) cJSON_AddStringToObject(o, "limit", lim);
  else cJSON_AddNullToObject(o, "limit");
  cJSON *hit = cJSON_AddArrayToObject(o, "limitsHit");
  for (unsigned bit = 1; bit <= SBX_LIMIT_DISK; bit <<= 1)
    if (self->limits_hit & bit) cJSON_AddItemToArray(hit, cJSON_CreateString(sbx_limit_name(bit)));
  cJSON_AddItemToObject(o, "limits", sbx_limits_to_json(&self->limits));
  cJSON_AddStringToObject(o, "isolation", sbx_isolation_name(self->isolation));
  cJSON_AddItemToObject(o, "hostUid", num_or_null(self->host_uid));
  cJSON_AddItemToObject(o, "hostGid", num_or_null(self->host_gid));
  cJSON *un = cJSON_AddArrayToObject(o, "unenforced");
  if (self->unenforced) {
    cJSON_AddItemToArray(un, cJSON_CreateString("memory"));
    cJSON_AddStringToObject(o, "warning", self->unenforced);
  }
  cJSON_AddStringToObject(o, "language", sbx_lang_name(self->lang));
  if (self->error) cJSON_AddStringToObject(o, "error", self->error);
  return o;
}

void sbx_result_rejected(sbx_result *self, sbx_lang lang, const sbx_limits *limits) {
  memset(self, 0, sizeof *self);
  self->outcome = SBX_REJECTED;
  self->exit_code = -1;
  self->isolation = SBX_ISO_NONE;
  self->lang = lang;
  if (limits) self->limits = *limits;
  self->host_uid = self->host_gid = -1;
}

/* A copy of n bytes plus a NUL (the bytes may hold NULs). */
static char *copy_bytes(const char *s, size_t n) {
  if (!s) return NULL;
  char *c = xmalloc(n + 1);
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

sbx_result *sbx_result_dup(const sbx_result *self) {
  if (!self) return NULL;
  sbx_result *r = xmalloc(sizeof *r);
  *r = *self;
  r->out = copy_bytes(self->out, self->out_len);
  r->err = copy_bytes(self->err, self->err_len);
  r->unenforced = self->unenforced ? xstrdup(self->unenforced) : NULL;
  r->error = self->error ? xstrdup(self->error) : NULL;
  sbx_diag *d = NULL;
  if (self->ndiags > 0 && self->diags) {
    d = xcalloc((size_t)self->ndiags, sizeof *d);
    for (int i = 0; i < self->ndiags; i++) {
      d[i] = self->diags[i];
      d[i].message = xstrdup(self->diags[i].message ? self->diags[i].message : "");
    }
  } else {
    r->ndiags = 0;
  }
  r->diags = d;
  return r;
}

void sbx_result_free(sbx_result *self) {
  if (!self) return;
  free((char *)self->out);
  free((char *)self->err);
  free((char *)self->unenforced);
  free((char *)self->error);
  for (int i = 0; i < self->ndiags; i++) free(self->diags[i].message);
  free((sbx_diag *)self->diags);
  free(self);
}
