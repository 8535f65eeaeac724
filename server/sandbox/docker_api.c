/* The Docker Engine API as the docker backend speaks it: locating the
 * engine, blocking calls for setup (libcurl's easy interface), the version
 * negotiation, the sweep of containers left by dead servers, the create
 * body of a run, and the attach stream's frames. */
#include "docker_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bwrap.h"
#include "common.h"
#include "dbuf.h"
#include "lang.h"
#include "log.h"

/* One environment string holds at most MAX_ARG_STRLEN (128 KiB) bytes: the
 * program travels in pieces below that, and in all below what the engine's
 * exec of /bin/sh takes (a quarter of its 8 MiB stack limit). */
#define ENV_CHUNK 120000
#define MAX_DELIVERY (1u << 20)

/* ---- locating ---- */

static bool is_socket(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

char *sbx_dk_locate(const char *host, char **why) {
  *why = NULL;
  if (!host || !*host) host = getenv("DOCKER_HOST");
  if (host && *host) {
    if (!strncmp(host, "unix://", 7)) host += 7;
    if (host[0] == '/') return xstrdup(host);
    *why = xasprintf("engine address '%s' is not a unix socket (unix:///path)", host);
    return NULL;
  }
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  char *podman_user = xdg && *xdg ? xasprintf("%s/podman/podman.sock", xdg) : NULL;
  const char *cands[] = {"/var/run/docker.sock", podman_user, "/run/podman/podman.sock"};
  for (size_t i = 0; i < ARRAY_LEN(cands); i++) {
    if (cands[i] && is_socket(cands[i])) {
      char *r = xstrdup(cands[i]);
      free(podman_user);
      return r;
    }
  }
  free(podman_user);
  *why = xstrdup("no container engine socket found (/var/run/docker.sock, "
                 "$XDG_RUNTIME_DIR/podman/podman.sock, /run/podman/podman.sock; or set "
                 "sandbox.docker.hosts / DOCKER_HOST): start dockerd (apt install docker.io) or "
                 "podman's API service (podman system service)");
  return NULL;
}

int sbx_dk_engine_locate(sbx_dk_engine *self, const char *host, char **why) {
  return sbx_dk_engine_locate_with(self, host, NULL, why);
}

int sbx_dk_engine_locate_with(sbx_dk_engine *self, const char *host, const char *cert_path, char **why) {
  memset(self, 0, sizeof *self);
  *why = NULL;
  if (!host || !*host) host = getenv("DOCKER_HOST");
  if (host && !strncmp(host, "tcp://", 6)) {
    const char *hp = host + 6;
    size_t n = strcspn(hp, "/?#");
    if (!n) {
      *why = xasprintf("engine address '%s' names no host:port", host);
      return -EINVAL;
    }
    const char *verify = getenv("DOCKER_TLS_VERIFY");
    if (!cert_path && (!verify || !*verify || !strcmp(verify, "0"))) {
      *why = xasprintf("the engine %s is on the network: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH "
                       "(ca.pem, cert.pem, key.pem; dockerd --tlsverify): an engine is never spoken to "
                       "without TLS and a client certificate",
                       host);
      return -EPERM;
    }
    const char *dir = cert_path ? cert_path : getenv("DOCKER_CERT_PATH");
    const char *home = getenv("HOME");
    char *certdir = dir && *dir ? xstrdup(dir) : xasprintf("%s/.docker", home ? home : "");
    self->ca = xasprintf("%s/ca.pem", certdir);
    self->cert = xasprintf("%s/cert.pem", certdir);
    self->key = xasprintf("%s/key.pem", certdir);
    const char *files[] = {self->ca, self->cert, self->key};
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
      if (access(files[i], R_OK)) {
        *why = xasprintf("the TLS file %s for the engine %s cannot be read (%s): set DOCKER_CERT_PATH to "
                         "the folder holding ca.pem, cert.pem and key.pem",
                         files[i], host, strerror(errno));
        free(certdir);
        sbx_dk_engine_close(self);
        return -ENOENT;
      }
    }
    free(certdir);
    self->host = xstrdup(host);
    self->base = xasprintf("https://%.*s", (int)n, hp);
    return 0;
  }
  self->socket = sbx_dk_locate(host, why);
  if (!self->socket) return -ENOENT;
  self->host = xasprintf("unix://%s", self->socket);
  self->base = xstrdup("http://docker");
  return 0;
}

/* ---- blocking calls ---- */

static size_t sync_write(char *p, size_t size, size_t n, void *ud) {
  return dbuf_add(ud, p, size * n) ? 0 : size * n; /* past the cap: the transfer fails */
}

char *sbx_dk_url(const sbx_dk_engine *e, const char *path) {
  return e->api[0] ? xasprintf("%s/v%s%s", e->base, e->api, path) : xasprintf("%s%s", e->base, path);
}

long sbx_dk_engine_call(const sbx_dk_engine *e, const char *method, const char *path, const char *body,
                        char **out, long timeout_ms, char **err) {
  if (out) *out = NULL;
  if (err) *err = NULL;
  CURL *c = curl_easy_init();
  if (!c) return -ENOMEM;
  char *url = sbx_dk_url(e, path);
  char ebuf[CURL_ERROR_SIZE] = "";
  dbuf b;
  dbuf_init(&b, 16u << 20);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  if (e->socket) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, e->socket);
  if (e->ca) curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
  if (e->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert);
  if (e->key) curl_easy_setopt(c, CURLOPT_SSLKEY, e->key);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sync_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  } else if (!strcmp(method, "POST")) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  }
  long status = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  else {
    status = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
    if (err) *err = xstrdup(*ebuf ? ebuf : curl_easy_strerror(rc));
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  free(url);
  if (status > 0 && out) *out = b.data ? b.data : xstrdup(""), b.data = NULL;
  dbuf_close(&b);
  return status;
}

long sbx_dk_call_sync(const char *socket, const char *api, const char *method, const char *path,
                      const char *body, char **out, long timeout_ms) {
  sbx_dk_engine e = {.socket = (char *)socket, .base = (char *)"http://docker"};
  if (api) snprintf(e.api, sizeof e.api, "%s", api);
  return sbx_dk_engine_call(&e, method, path, body, out, timeout_ms, NULL);
}

/* ---- the engine ---- */

/* "1.41" → 1041; -1 when unreadable. */
static int api_num(const char *v) {
  int maj, min;
  if (!v || sscanf(v, "%d.%d", &maj, &min) != 2) return -1;
  return maj * 1000 + min;
}

int sbx_dk_engine_parse_version(sbx_dk_engine *self, const char *body, char **why) {
  cJSON *v = cJSON_Parse(body);
  const char *ver = cJSON_GetStringValue(cJSON_GetObjectItem(v, "Version"));
  const char *api = cJSON_GetStringValue(cJSON_GetObjectItem(v, "ApiVersion"));
  free(self->version);
  free(self->name);
  self->version = xstrdup(ver ? ver : "?");
  const char *name = NULL;
  cJSON *comps = cJSON_GetObjectItem(v, "Components"), *c;
  cJSON_ArrayForEach(c, comps) {
    name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "Name"));
    if (name) break;
  }
  self->name = xstrdup(name ? name : "Docker Engine API");
  self->podman = strstr(self->name, "Podman") != NULL;
  int have = api_num(api);
  int rc = 0;
  if (have < api_num(SBX_DK_API_MIN)) {
    *why = xasprintf("the container engine at %s speaks API %s; at least %s is needed", self->host,
                     api ? api : "?", SBX_DK_API_MIN);
    rc = -EPROTO;
  } else {
    snprintf(self->api, sizeof self->api, "%s", have < api_num(SBX_DK_API_MAX) ? api : SBX_DK_API_MAX);
  }
  cJSON_Delete(v);
  return rc;
}

int sbx_dk_engine_open(sbx_dk_engine *self, const char *host, char **why) {
  return sbx_dk_engine_open_with(self, host, NULL, why);
}

int sbx_dk_engine_open_with(sbx_dk_engine *self, const char *host, const char *cert_path, char **why) {
  int rc = sbx_dk_engine_locate_with(self, host, cert_path, why);
  if (rc) {
    self->host = host && *host ? xstrdup(host) : getenv("DOCKER_HOST") ? xstrdup(getenv("DOCKER_HOST"))
                                                                     : xstrdup("(the local socket)");
    return rc;
  }
  char *body = NULL, *err = NULL;
  long st = sbx_dk_engine_call(self, "GET", "/version", NULL, &body, 5000, &err);
  if (st != 200) {
    *why = st < 0 ? xasprintf("the container engine at %s does not answer (%s): is dockerd (or "
                              "podman system service) running, and may this user use it?",
                              self->host, err ? err : strerror((int)-st))
                  : xasprintf("the container engine at %s answered GET /version with HTTP %ld",
                              self->host, st);
    free(body);
    free(err);
    return st < 0 ? (int)st : -EPROTO;
  }
  rc = sbx_dk_engine_parse_version(self, body, why);
  free(body);
  return rc;
}

void sbx_dk_engine_close(sbx_dk_engine *self) {
  free(self->host);
  free(self->socket);
  free(self->base);
  free(self->ca);
  free(self->cert);
  free(self->key);
  free(self->version);
  free(self->name);
  memset(self, 0, sizeof *self);
}

static bool pid_alive(long pid) {
  return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Removes our containers on e: those of dead servers of this host, or
 * (own) this process's. */
static int sweep(const sbx_dk_engine *e, bool own) {
  /* filters={"label":["crucible.owner"]}, URL-encoded. */
  char *body = NULL;
  long st = sbx_dk_engine_call(e, "GET",
                               "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22" SBX_DK_LABEL_OWNER
                               "%22%5D%7D",
                               NULL, &body, 10000, NULL);
  if (st != 200) {
    free(body);
    return 0;
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  cJSON *list = cJSON_Parse(body), *c;
  free(body);
  int n = 0;
  cJSON_ArrayForEach(c, list) {
    cJSON *labels = cJSON_GetObjectItem(c, "Labels");
    const char *owner = cJSON_GetStringValue(cJSON_GetObjectItem(labels, SBX_DK_LABEL_OWNER));
    const char *on = cJSON_GetStringValue(cJSON_GetObjectItem(labels, SBX_DK_LABEL_HOST));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(c, "Id"));
    if (!owner || !id || !on || strcmp(on, host)) continue;
    long pid = strtol(owner, NULL, 10);
    if (own ? pid != (long)getpid() : pid_alive(pid)) continue;
    char *path = xasprintf("/containers/%s?force=1&v=1", id);
    long d = sbx_dk_engine_call(e, "DELETE", path, NULL, NULL, 10000, NULL);
    free(path);
    if (d == 204 || d == 404) n++;
  }
  cJSON_Delete(list);
  return n;
}

int sbx_dk_sweep(const sbx_dk_engine *e) {
  return sweep(e, false);
}

int sbx_dk_sweep_own(const sbx_dk_engine *e) {
  return sweep(e, true);
}

bool sbx_dk_image_present(const sbx_dk_engine *e, const char *image) {
  char *path = sbx_dk_image_path(image);
  long st = sbx_dk_engine_call(e, "GET", path, NULL, NULL, 10000, NULL);
  free(path);
  return st == 200;
}

char *sbx_dk_image_path(const char *image) {
  char *esc = curl_easy_escape(NULL, image, 0);
  char *path = xasprintf("/images/%s/json", esc ? esc : image);
  curl_free(esc);
  return path;
}

int sbx_dk_image_id_of(const sbx_dk_engine *e, const char *image, long status, const char *body, char **id,
                       char **why) {
  *id = NULL;
  *why = NULL;
  if (status == 404) return 0;
  cJSON *j = body ? cJSON_Parse(body) : NULL;
  int rc;
  if (status == 200) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Id"));
    if (s && *s) {
      *id = xstrdup(s);
      rc = 1;
    } else {
      *why = xasprintf("the container engine at %s described the image '%s' without its ID", e->socket, image);
      rc = -EPROTO;
    }
  } else {
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
    *why = xasprintf("the container engine refused to describe the image '%s' (HTTP %ld%s%s)", image, status,
                     m ? ": " : "", m ? m : "");
    rc = -EPROTO;
  }
  cJSON_Delete(j);
  return rc;
}

int sbx_dk_image_id(const sbx_dk_engine *e, const char *image, long timeout_ms, char **id, char **why) {
  *id = NULL;
  *why = NULL;
  char *path = sbx_dk_image_path(image);
  char *body = NULL;
  long st = sbx_dk_call_sync(e->socket, e->api, "GET", path, NULL, &body, timeout_ms);
  free(path);
  int rc;
  if (st < 0) {
    *why = xasprintf("the container engine at %s does not answer (%s)", e->socket, strerror((int)-st));
    rc = (int)st;
  } else {
    rc = sbx_dk_image_id_of(e, image, st, body, id, why);
  }
  free(body);
  return rc;
}

char *sbx_dk_pull_query(const char *image) {
  if (!image || !*image || strlen(image) > 512) return NULL;
  for (const char *p = image; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f) return NULL;
  const char *at = strchr(image, '@');
  const char *slash = strrchr(image, '/');
  const char *colon = strrchr(image, ':');
  char *name, *tag = NULL;
  if (at) {
    name = xstrdup(image); /* name@digest: fromImage takes it whole */
  } else if (colon && (!slash || colon > slash)) {
    name = xstrndup(image, (size_t)(colon - image));
    tag = xstrdup(colon + 1);
  } else {
    name = xstrdup(image);
    tag = xstrdup("latest");
  }
  if (!*name || (tag && !*tag)) {
    free(name);
    free(tag);
    return NULL;
  }
  char *en = curl_easy_escape(NULL, name, 0), *et = tag ? curl_easy_escape(NULL, tag, 0) : NULL;
  char *q = et ? xasprintf("fromImage=%s&tag=%s", en, et) : xasprintf("fromImage=%s", en);
  curl_free(en);
  curl_free(et);
  free(name);
  free(tag);
  return q;
}

void sbx_dk_pull_progress_init(sbx_dk_pull_progress *self) {
  memset(self, 0, sizeof *self);
  self->percent = -1;
}

void sbx_dk_pull_progress_close(sbx_dk_pull_progress *self) {
  free(self->error);
  self->error = NULL;
}

static int layer_of(sbx_dk_pull_progress *self, const char *id) {
  for (int i = 0; i < self->nlayers; i++)
    if (!strcmp(self->ids[i], id)) return i;
  if (self->nlayers == SBX_DK_PULL_LAYERS) return -1;
  snprintf(self->ids[self->nlayers], sizeof self->ids[0], "%s", id);
  return self->nlayers++;
}

bool sbx_dk_pull_progress_line(sbx_dk_pull_progress *self, const char *json, size_t len, char *line, size_t cap) {
  cJSON *j = cJSON_ParseWithLength(json, len);
  if (!j) return false;
  bool show = false;
  /* {error} in the stream; {message} when the engine refused the pull
   * outright (an HTTP error, the body one object). */
  const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
  if (!err) err = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
  const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
  if (err) {
    if (!self->error) self->error = xstrdup(err);
    snprintf(line, cap, "%s", err);
    cJSON_Delete(j);
    return true;
  }
  if (!status) {
    cJSON_Delete(j);
    return false;
  }
  int k = id && *id ? layer_of(self, id) : -1;
  cJSON *pd = cJSON_GetObjectItem(j, "progressDetail");
  cJSON *cur = cJSON_GetObjectItem(pd, "current"), *tot = cJSON_GetObjectItem(pd, "total");
  bool downloading = !strcmp(status, "Downloading");
  if (k >= 0 && downloading && cJSON_IsNumber(tot) && tot->valuedouble > 0) {
    self->total[k] = tot->valuedouble;
    if (cJSON_IsNumber(cur)) self->current[k] = cur->valuedouble;
  } else if (k >= 0 && (!strcmp(status, "Download complete") || !strcmp(status, "Pull complete") ||
                        !strcmp(status, "Already exists"))) {
    self->done[k] = true;
    if (self->total[k] > 0) self->current[k] = self->total[k];
  }
  double c = 0, t = 0;
  for (int i = 0; i < self->nlayers; i++)
    if (self->total[i] > 0) {
      t += self->total[i];
      c += self->current[i] < self->total[i] ? self->current[i] : self->total[i];
    }
  int pct = t > 0 ? (int)(100.0 * c / t) : -1;
  if (pct > self->percent) {
    self->percent = pct;
    show = true;
  }
  if (!downloading) show = true;
  if (show) {
    if (id && *id) snprintf(line, cap, "%s %s", status, id);
    else snprintf(line, cap, "%s", status);
  }
  cJSON_Delete(j);
  return show;
}

int sbx_dk_count_oom_events(const char *body, size_t len) {
  int n = 0;
  const char *p = body, *end = body + len;
  while (p && p < end) {
    const char *after = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &after, false);
    if (!j) break;
    const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Action"));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Type"));
    if ((!type || !strcmp(type, "container")) &&
        ((action && !strcmp(action, "oom")) || (status && !strcmp(status, "oom"))))
      n++;
    cJSON_Delete(j);
    p = after;
    while (p && p < end && (*p == '\n' || *p == '\r' || *p == ' ')) p++;
  }
  return n;
}

bool sbx_dk_oom_needs_events(bool oom_killed, long long code, bool we_killed) {
  return !oom_killed && code == 128 + SIGKILL && !we_killed;
}

bool sbx_dk_oom_verdict(bool oom_killed, long long code, bool we_killed, int oom_events) {
  if (oom_killed) return true;
  return sbx_dk_oom_needs_events(false, code, we_killed) && oom_events > 0;
}

/* ---- a run's container ---- */

/* Adds NAME_0..NAME_k (k < return) holding data in pieces of at most
 * ENV_CHUNK bytes, never splitting a UTF-8 sequence (the engine decodes
 * JSON strings as UTF-8). Returns the number of pieces. */
static int add_chunks(cJSON *env, const char *name, const char *data, size_t len) {
  int k = 0;
  for (size_t off = 0; off < len; k++) {
    size_t n = len - off < ENV_CHUNK ? len - off : ENV_CHUNK;
    while (off + n < len && n > 1 && ((unsigned char)data[off + n] & 0xc0) == 0x80) n--;
    char *s = xasprintf("%s_%d=%.*s", name, k, (int)n, data + off);
    cJSON_AddItemToArray(env, cJSON_CreateString(s));
    free(s);
    off += n;
  }
  return k;
}

static const char *interp_name(sbx_lang lang) {
  const char *p = lang_get(lang)->interpreter, *slash = strrchr(p, '/');
  return slash ? slash + 1 : p;
}

static char *check_delivery(const char *code, size_t code_len, const char *stdin_data, size_t stdin_len) {
  if (memchr(code, '\0', code_len) || (stdin_len && memchr(stdin_data, '\0', stdin_len)))
    return xstrdup("the docker backend cannot deliver a program or stdin holding NUL bytes");
  if (code_len + stdin_len > MAX_DELIVERY)
    return xasprintf("the docker backend delivers at most %u bytes of program and stdin", MAX_DELIVERY);
  return NULL;
}

/* The environment (defaults, then the program and stdin in pieces) and the
 * /bin/sh command line that delivers them. With reap, the interpreter runs
 * as sh's child and, once it ended, sh kills whatever it left (an exec'd
 * program is not its container's init, so nothing else would). */
static void add_program(cJSON *o, sbx_lang lang, const char *code, size_t code_len, const char *stdin_data,
                        size_t stdin_len, bool reap) {
  cJSON *env = cJSON_AddArrayToObject(o, "Env");
  for (const char *const *e = sbx_bwrap_env; *e; e += 2) {
    char *s = xasprintf("%s=%s", e[0], e[1]);
    cJSON_AddItemToArray(env, cJSON_CreateString(s));
    free(s);
  }
  int ncode = add_chunks(env, "CRUCIBLE_CODE", code, code_len);
  int nin = add_chunks(env, "CRUCIBLE_STDIN", stdin_data, stdin_len);
  /* /bin/sh writes the pieces to the scratch tmpfs, drops them from the
   * environment and execs the interpreter: the program's environment holds
   * none of them. */
  char *boot = xasprintf("w() { i=0; while [ $i -lt $2 ]; do eval \"printf %%s \\\"\\${$1_$i}\\\"\"; "
                         "unset $1_$i; i=$((i+1)); done; }; "
                         "w CRUCIBLE_CODE %d > \"$1\" && w CRUCIBLE_STDIN %d > .stdin && %s",
                         ncode, nin,
                         reap ? "{ \"$0\" \"$1\" < .stdin; r=$?; kill -9 -1 2>/dev/null; exit $r; }"
                              : "exec \"$0\" \"$1\" < .stdin");
  cJSON *cmd = cJSON_AddArrayToObject(o, "Cmd");
  cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
  cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
  cJSON_AddItemToArray(cmd, cJSON_CreateString(boot));
  cJSON_AddItemToArray(cmd, cJSON_CreateString(interp_name(lang)));
  cJSON_AddItemToArray(cmd, cJSON_CreateString(sbx_lang_script(lang)));
  free(boot);
}

/* Given any ulimit but RLIMIT_NPROC, rootful Podman sets that one to
 * 1048576 on its own, and a host that withholds CAP_SYS_RESOURCE from root
 * (a machine that is itself a container) refuses it: no container starts.
 * So a Podman container gets one named: the server's own hard limit, at
 * most PODMAN_NPROC_MAX. It bounds the processes of the container's uid,
 * not the run's (PidsLimit does that). */
#define PODMAN_NPROC_MAX 32768

static double podman_nproc(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NPROC, &rl) != 0 || rl.rlim_max == RLIM_INFINITY || rl.rlim_max > PODMAN_NPROC_MAX)
    return PODMAN_NPROC_MAX;
  return (double)rl.rlim_max;
}

/* Everything of a container but its command: the promises and the limits. */
static cJSON *base_body(const sbx_limits *lim, const char *image, long uid, long gid, bool podman) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "Image", image);
  cJSON_AddArrayToObject(o, "Entrypoint"); /* empty: the image's entrypoint never runs */
  cJSON_AddStringToObject(o, "WorkingDir", SBX_SCRATCH);
  char *user = xasprintf("%ld:%ld", uid, gid);
  cJSON_AddStringToObject(o, "User", user);
  free(user);
  cJSON_AddBoolToObject(o, "NetworkDisabled", true);
  cJSON_AddBoolToObject(o, "AttachStdin", false);
  cJSON_AddBoolToObject(o, "AttachStdout", true);
  cJSON_AddBoolToObject(o, "AttachStderr", true);
  cJSON_AddBoolToObject(o, "OpenStdin", false);
  cJSON_AddBoolToObject(o, "Tty", false);
  cJSON *labels = cJSON_AddObjectToObject(o, "Labels");
  char pid[32], host[256] = "";
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  gethostname(host, sizeof host - 1);
  cJSON_AddStringToObject(labels, SBX_DK_LABEL_OWNER, pid);
  cJSON_AddStringToObject(labels, SBX_DK_LABEL_HOST, host);

  cJSON *hc = cJSON_AddObjectToObject(o, "HostConfig");
  cJSON_AddStringToObject(hc, "NetworkMode", "none");
  cJSON_AddBoolToObject(hc, "ReadonlyRootfs", true);
  /* The engine's init (docker-init, Podman's catatonit) is pid 1 and the
   * program its child: as pid 1 the program would ignore every signal it
   * has no handler for (the wall time's SIGTERM, RLIMIT_CPU's SIGXCPU);
   * the init passes them on and exits as the program did (128+N for a
   * signal), and its end ends every process left. */
  cJSON_AddBoolToObject(hc, "Init", true);
  cJSON *caps = cJSON_AddArrayToObject(hc, "CapDrop");
  cJSON_AddItemToArray(caps, cJSON_CreateString("ALL"));
  cJSON *sec = cJSON_AddArrayToObject(hc, "SecurityOpt");
  cJSON_AddItemToArray(sec, cJSON_CreateString("no-new-privileges"));
  double mem = (double)lim->memory_mb * 1048576.0;
  cJSON_AddNumberToObject(hc, "Memory", mem);
  cJSON_AddNumberToObject(hc, "MemorySwap", mem);
  cJSON_AddNumberToObject(hc, "PidsLimit", (double)lim->pids);
  cJSON_AddNumberToObject(hc, "NanoCpus", 1e9);
  cJSON_AddNumberToObject(hc, "ShmSize", (double)lim->disk_mb * 1048576.0);
  cJSON *tmpfs = cJSON_AddObjectToObject(hc, "Tmpfs");
  /* The engine makes the working dir root's 0755 whatever mode= says: the
   * scratch tmpfs is owned by the program's uid instead (Podman: "U", the
   * container's user). */
  char *scratch = podman ? xasprintf("rw,nosuid,nodev,size=%ldm,U,mode=0700", lim->disk_mb)
                         : xasprintf("rw,nosuid,nodev,size=%ldm,uid=%ld,gid=%ld,mode=0700", lim->disk_mb, uid, gid);
  char *tmp = xasprintf("rw,nosuid,nodev,size=%ldm,mode=1777", lim->disk_mb);
  cJSON_AddStringToObject(tmpfs, SBX_SCRATCH, scratch);
  cJSON_AddStringToObject(tmpfs, "/tmp", tmp);
  free(scratch);
  free(tmp);
  cJSON *ul = cJSON_AddArrayToObject(hc, "Ulimits");
  struct {
    const char *name;
    double soft, hard;
  } lims[] = {
      {"cpu", (double)lim->cpu_seconds, (double)lim->cpu_seconds + 1},
      {"fsize", (double)lim->disk_mb * 1048576.0, (double)lim->disk_mb * 1048576.0},
      {"nofile", 1024, 1024},
      {"core", 0, 0},
      {NULL, 0, 0}, /* Podman: nproc */
  };
  size_t n = ARRAY_LEN(lims) - 1;
  if (podman) lims[n++] = (typeof(lims[0])){"nproc", podman_nproc(), podman_nproc()};
  for (size_t i = 0; i < n; i++) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "Name", lims[i].name);
    cJSON_AddNumberToObject(u, "Soft", lims[i].soft);
    cJSON_AddNumberToObject(u, "Hard", lims[i].hard);
    cJSON_AddItemToArray(ul, u);
  }
  cJSON *lc = cJSON_AddObjectToObject(hc, "LogConfig");
  cJSON_AddStringToObject(lc, "Type", "none");
  cJSON_AddObjectToObject(lc, "Config");
  return o;
}

cJSON *sbx_dk_create_body(sbx_lang lang, const sbx_limits *lim, const char *image, const char *code,
                          size_t code_len, const char *stdin_data, size_t stdin_len, long uid, long gid,
                          bool podman, char **err) {
  *err = check_delivery(code, code_len, stdin_data, stdin_len);
  if (*err) return NULL;
  cJSON *o = base_body(lim, image, uid, gid, podman);
  add_program(o, lang, code, code_len, stdin_data, stdin_len, false);
  return o;
}

cJSON *sbx_dk_warm_body(const sbx_limits *lim, const char *image, long uid, long gid, bool podman) {
  cJSON *o = base_body(lim, image, uid, gid, podman);
  cJSON *env = cJSON_AddArrayToObject(o, "Env");
  for (const char *const *e = sbx_bwrap_env; *e; e += 2) {
    char *s = xasprintf("%s=%s", e[0], e[1]);
    cJSON_AddItemToArray(env, cJSON_CreateString(s));
    free(s);
  }
  cJSON *cmd = cJSON_AddArrayToObject(o, "Cmd");
  cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
  cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
  /* Bounded: a container of a server that died and never restarts ends by
   * itself (the next start's sweep removes it). */
  char *sleep = xasprintf("exec sleep %d", SBX_DK_WARM_LIFETIME_S);
  cJSON_AddItemToArray(cmd, cJSON_CreateString(sleep));
  free(sleep);
  cJSON_AddBoolToObject(o, "AttachStdout", false);
  cJSON_AddBoolToObject(o, "AttachStderr", false);
  return o;
}

cJSON *sbx_dk_exec_body(sbx_lang lang, const char *code, size_t code_len, const char *stdin_data,
                        size_t stdin_len, long uid, long gid, char **err) {
  *err = check_delivery(code, code_len, stdin_data, stdin_len);
  if (*err) return NULL;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddBoolToObject(o, "AttachStdin", false);
  cJSON_AddBoolToObject(o, "AttachStdout", true);
  cJSON_AddBoolToObject(o, "AttachStderr", true);
  cJSON_AddBoolToObject(o, "Tty", false);
  cJSON_AddBoolToObject(o, "Privileged", false);
  char *user = xasprintf("%ld:%ld", uid, gid);
  cJSON_AddStringToObject(o, "User", user);
  free(user);
  add_program(o, lang, code, code_len, stdin_data, stdin_len, true);
  return o;
}

/* ---- the attach stream ---- */

void sbx_dk_demux_feed(sbx_dk_demux *self, const char *p, size_t n, sbx_dk_emit_fn emit, void *ud) {
  while (n) {
    if (self->left == 0) {
      size_t take = sizeof self->hdr - self->hlen;
      if (take > n) take = n;
      memcpy(self->hdr + self->hlen, p, take);
      self->hlen += take, p += take, n -= take;
      if (self->hlen < sizeof self->hdr) return;
      self->hlen = 0;
      self->stream = self->hdr[0];
      self->left = (unsigned long)self->hdr[4] << 24 | (unsigned long)self->hdr[5] << 16 |
                   (unsigned long)self->hdr[6] << 8 | self->hdr[7];
      continue;
    }
    size_t take = n < self->left ? n : (size_t)self->left;
    if (self->stream == 1 || self->stream == 2) emit(ud, self->stream, p, take);
    self->left -= take, p += take, n -= take;
  }
}
