/* The environments part of the doctor's report: the cache, the indexes,
 * and whether what builds environments is installed. Files are looked at;
 * nothing runs (the report is made on the loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

/* Where a module of the interpreter pyname ("python3.11") may be installed:
 * the first path that exists (new string), or NULL. */
static char *module_at(const char *pyname, const char *module) {
  static const char *const dirs[][2] = {
      {"/usr/lib", ""}, {"/usr/lib", "/dist-packages"}, {"/usr/lib", "/site-packages"},
      {"/usr/local/lib", "/dist-packages"}, {"/usr/local/lib", "/site-packages"},
  };
  if (strncmp(pyname, "python", 6)) return NULL;
  char *p = xasprintf("/usr/lib/python3/dist-packages/%s/__init__.py", module);
  for (size_t i = 0; access(p, R_OK) != 0; i++) {
    free(p);
    if (i == ARRAY_LEN(dirs)) return NULL;
    p = xasprintf("%s/%s%s/%s/__init__.py", dirs[i][0], pyname, dirs[i][1], module);
  }
  return p;
}

cJSON *env_doctor_report(env_cache *cache, const char *python, const char *index, const char *registry,
                         long cache_mb) {
  cJSON *o = cJSON_CreateObject();
  if (cache) {
    cJSON_AddStringToObject(o, "cacheDir", env_cache_dir(cache));
    cJSON *l = env_cache_list(cache);
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(l));
    cJSON_Delete(l);
    cJSON_AddNumberToObject(o, "sizeBytes", (double)env_cache_size(cache));
  } else {
    cJSON_AddStringToObject(o, "error", "the environments' cache folder could not be made (see the log)");
  }
  cJSON_AddNumberToObject(o, "cacheMb", (double)cache_mb);
  char *idx = env_url_redact(index ? index : ""), *reg = env_url_redact(registry ? registry : "");
  cJSON_AddStringToObject(o, "packageIndex", idx);
  cJSON_AddStringToObject(o, "npmRegistry", reg);
  free(idx);
  free(reg);
  char pyname[128];
  env_interp_version(python, pyname, sizeof pyname);
  char *venv = module_at(pyname, "venv"), *pip = module_at(pyname, "pip");
  const char *npm = access("/usr/bin/npm", X_OK) == 0 ? "/usr/bin/npm"
                    : access("/usr/local/bin/npm", X_OK) == 0 ? "/usr/local/bin/npm" : NULL;
  cJSON_AddItemToObject(o, "venv", venv ? cJSON_CreateString(venv) : cJSON_CreateFalse());
  cJSON_AddItemToObject(o, "pip", pip ? cJSON_CreateString(pip) : cJSON_CreateFalse());
  cJSON_AddItemToObject(o, "npm", npm ? cJSON_CreateString(npm) : cJSON_CreateFalse());
  cJSON *hints = cJSON_AddArrayToObject(o, "hints");
  if (!venv || !pip)
    cJSON_AddItemToArray(hints, cJSON_CreateString("Python packages need venv and pip for the sandbox's interpreter: "
                                                   "apt install python3-venv python3-pip"));
  if (!npm) cJSON_AddItemToArray(hints, cJSON_CreateString("JavaScript packages need npm: apt install npm"));
  free(venv);
  free(pip);
  return o;
}
