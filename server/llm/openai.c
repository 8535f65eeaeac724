/* Building chat-completions requests and reading their answers, errors and
 * retry hints (OpenAI's API shape, which Ollama, llama-server and vLLM copy). */
#include "openai.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common.h"

static const char JSON_OBJECT_PROMPT[] =
    "Answer with one JSON object and nothing else, with exactly these string fields: "
    "\"prefix\" (a short description of the solution), \"imports\" (the import statements, one per line), "
    "\"code\" (the code without its import statements), \"dependencies\" (an array of the packages "
    "to install, as in PEP 723; [] when the standard library suffices), and optionally \"test\" "
    "(assertions run after the code). "
    "Example: {\"prefix\": \"...\", \"imports\": \"import os\", \"code\": \"print(os.getcwd())\", "
    "\"dependencies\": []}";
static const char TEXT_PROMPT[] =
    "Answer with a short description of the solution, then the complete code in one fenced code block "
    "(```python ... ```), its import statements first. When it needs packages beyond the standard library, "
    "declare them in a PEP 723 block at the top of the code (# /// script, # dependencies = [\"name\"], "
    "# ///).";

const char *llm_mode_name(llm_mode mode) {
  switch (mode) {
    case LLM_MODE_AUTO: return "auto";
    case LLM_MODE_JSON_SCHEMA: return "json_schema";
    case LLM_MODE_JSON_OBJECT: return "json_object";
    case LLM_MODE_TEXT: return "text";
  }
  return "auto";
}

int llm_mode_parse(const char *s, llm_mode *out) {
  static const llm_mode all[] = {LLM_MODE_AUTO, LLM_MODE_JSON_SCHEMA, LLM_MODE_JSON_OBJECT, LLM_MODE_TEXT};
  for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
    if (strcmp(s, llm_mode_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  return -EINVAL;
}

static cJSON *solution_schema(void) {
  cJSON *schema = cJSON_CreateObject();
  cJSON_AddStringToObject(schema, "type", "object");
  cJSON *props = cJSON_AddObjectToObject(schema, "properties");
  static const char *const fields[][2] = {
      {"prefix", "A short description of the problem and the approach"},
      {"imports", "The import statements, one per line"},
      {"code", "The code, without its import statements"},
      {"test", "Assertions that check the code's result, run after the code in the same program; empty when none"},
  };
  cJSON *req = cJSON_CreateArray();
  for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
    cJSON *p = cJSON_AddObjectToObject(props, fields[i][0]);
    cJSON_AddStringToObject(p, "type", "string");
    cJSON_AddStringToObject(p, "description", fields[i][1]);
    cJSON_AddItemToArray(req, cJSON_CreateString(fields[i][0])); /* strict mode: every field required */
  }
  /* Required too: strict mode wants every property listed; [] means none. */
  cJSON *deps = cJSON_AddObjectToObject(props, "dependencies");
  cJSON_AddStringToObject(deps, "type", "array");
  cJSON_AddStringToObject(deps, "description",
                          "Packages to install (PEP 508 names, as in PEP 723); [] when the standard library suffices");
  cJSON *items = cJSON_AddObjectToObject(deps, "items");
  cJSON_AddStringToObject(items, "type", "string");
  cJSON_AddItemToArray(req, cJSON_CreateString("dependencies"));
  cJSON_AddItemToObject(schema, "required", req);
  cJSON_AddFalseToObject(schema, "additionalProperties");
  return schema;
}

char *llm_body_build(const char *model, double temperature, const llm_message *msgs, size_t n,
                     bool structured, llm_mode mode, bool stream) {
  return llm_body_build_tools(model, temperature, msgs, n, structured, mode, stream, NULL, NULL);
}

/* One message of the request: its content (null when an assistant message
 * only called tools), the calls it made, the call a tool message answers. */
static cJSON *message_json(const llm_message *msg, const char *content) {
  cJSON *m = cJSON_CreateObject();
  const char *role = msg->role ? msg->role : "user";
  cJSON_AddStringToObject(m, "role", role);
  cJSON *calls = msg->tool_calls ? cJSON_Parse(msg->tool_calls) : NULL;
  if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0) {
    cJSON_Delete(calls);
    calls = NULL;
  }
  if (content || !calls) cJSON_AddStringToObject(m, "content", content ? content : "");
  else cJSON_AddNullToObject(m, "content");
  if (calls) cJSON_AddItemToObject(m, "tool_calls", calls);
  if (msg->tool_call_id) cJSON_AddStringToObject(m, "tool_call_id", msg->tool_call_id);
  return m;
}

char *llm_body_build_tools(const char *model, double temperature, const llm_message *msgs, size_t n,
                           bool structured, llm_mode mode, bool stream, const char *tools, const char *tool_choice) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", model ? model : "");
  const char *extra = NULL;
  if (structured && mode == LLM_MODE_JSON_OBJECT) extra = JSON_OBJECT_PROMPT;
  if (structured && mode == LLM_MODE_TEXT) extra = TEXT_PROMPT;
  cJSON *arr = cJSON_AddArrayToObject(root, "messages");
  size_t i = 0;
  if (extra) {
    /* The format instruction joins the caller's system message, or opens one. */
    char *sys = (n > 0 && msgs[0].role && strcmp(msgs[0].role, "system") == 0)
                    ? xasprintf("%s\n\n%s", msgs[0].content ? msgs[0].content : "", extra)
                    : xstrdup(extra);
    if (n > 0 && msgs[0].role && strcmp(msgs[0].role, "system") == 0) i = 1;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", sys);
    cJSON_AddItemToArray(arr, m);
    free(sys);
  }
  for (; i < n; i++) cJSON_AddItemToArray(arr, message_json(&msgs[i], msgs[i].content));
  if (stream) {
    cJSON_AddTrueToObject(root, "stream");
    cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
    cJSON_AddTrueToObject(so, "include_usage");
  } else {
    cJSON_AddFalseToObject(root, "stream");
  }
  if (temperature >= 0) cJSON_AddNumberToObject(root, "temperature", temperature);
  if (structured && mode == LLM_MODE_JSON_SCHEMA) {
    cJSON *rf = cJSON_AddObjectToObject(root, "response_format");
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", "code_solution");
    cJSON_AddTrueToObject(js, "strict");
    cJSON_AddItemToObject(js, "schema", solution_schema());
  } else if (structured && mode == LLM_MODE_JSON_OBJECT) {
    cJSON *rf = cJSON_AddObjectToObject(root, "response_format");
    cJSON_AddStringToObject(rf, "type", "json_object");
  }
  cJSON *tl = tools ? cJSON_Parse(tools) : NULL;
  if (cJSON_IsArray(tl) && cJSON_GetArraySize(tl) > 0) {
    cJSON_AddItemToObject(root, "tools", tl);
    if (tool_choice) cJSON_AddStringToObject(root, "tool_choice", tool_choice);
  } else {
    cJSON_Delete(tl);
  }
  char *out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!out) abort(); /* cJSON fails only on out-of-memory here */
  return out;
}

void llm_answer_init(llm_answer *self, size_t max) {
  memset(self, 0, sizeof *self);
  dbuf_init(&self->content, max);
  dbuf_init(&self->tool_args, max);
  self->prompt_tokens = self->completion_tokens = -1;
}

void llm_answer_close(llm_answer *self) {
  dbuf_close(&self->content);
  dbuf_close(&self->tool_args);
  for (size_t i = 0; i < self->n_calls; i++) {
    free(self->calls[i].id);
    free(self->calls[i].name);
    dbuf_close(&self->calls[i].args);
  }
  self->n_calls = 0;
  free(self->tool_name);
  free(self->finish_reason);
  self->tool_name = self->finish_reason = NULL;
}

const char *llm_answer_text(const llm_answer *self) {
  const dbuf *b = self->tool_args.len > 0 ? &self->tool_args : &self->content;
  return b->data ? b->data : "";
}

char *llm_answer_calls_json(const llm_answer *self) {
  if (!self->n_calls) return NULL;
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < self->n_calls; i++) {
    const llm_tool_call *c = &self->calls[i];
    cJSON *o = cJSON_CreateObject();
    char fallback[32];
    snprintf(fallback, sizeof fallback, "call_%zu", i + 1);
    cJSON_AddStringToObject(o, "id", c->id && *c->id ? c->id : fallback);
    cJSON_AddStringToObject(o, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(o, "function");
    cJSON_AddStringToObject(fn, "name", c->name ? c->name : "");
    cJSON_AddStringToObject(fn, "arguments", c->args.data ? c->args.data : "");
    cJSON_AddItemToArray(arr, o);
  }
  char *out = cJSON_PrintUnformatted(arr);
  cJSON_Delete(arr);
  if (!out) abort();
  return out;
}

/* A printable excerpt of untrusted bytes: at most `max` bytes, controls as '?'. */
static char *excerpt(const char *p, size_t len, size_t max) {
  while (len > 0 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++, len--;
  while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == '\t')) len--;
  bool cut = len > max;
  if (cut) len = max;
  char *s = xmalloc(len + 4);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  strcpy(s + len, cut ? "..." : "");
  return s;
}

static char *error_object_message(const cJSON *err) {
  if (cJSON_IsString(err)) return xstrdup(err->valuestring);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
  if (cJSON_IsString(m) && m->valuestring[0]) return xstrdup(m->valuestring);
  char *raw = cJSON_PrintUnformatted(err);
  char *out = raw ? excerpt(raw, strlen(raw), 300) : xstrdup("(no message)");
  free(raw);
  return out;
}

static void set_str(char **dst, const cJSON *v) {
  if (!cJSON_IsString(v)) return;
  free(*dst);
  *dst = xstrdup(v->valuestring);
}

static int add_text(dbuf *b, const cJSON *v, char **err) {
  if (!cJSON_IsString(v) || !v->valuestring[0]) return 0;
  if (dbuf_adds(b, v->valuestring) < 0) {
    *err = xasprintf("the answer passed the %zu-byte cap", b->max);
    return -E2BIG;
  }
  return 0;
}

static void take_usage(llm_answer *self, const cJSON *root) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
  if (!cJSON_IsObject(u)) return;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
  if (cJSON_IsNumber(p)) self->prompt_tokens = (long)p->valuedouble;
  if (cJSON_IsNumber(c)) self->completion_tokens = (long)c->valuedouble;
}

/* The call with stream index `index`, added when new; NULL past the cap. */
static llm_tool_call *answer_call(llm_answer *self, int index) {
  for (size_t i = 0; i < self->n_calls; i++)
    if (self->calls[i].index == index) return &self->calls[i];
  if (self->n_calls == LLM_MAX_TOOL_CALLS) return NULL;
  llm_tool_call *c = &self->calls[self->n_calls++];
  memset(c, 0, sizeof *c);
  c->index = index;
  dbuf_init(&c->args, self->tool_args.max);
  return c;
}

/* Applies one choice's `delta` (streaming) or `message` (whole body). */
static int take_message(llm_answer *self, const cJSON *msg, char **err) {
  if (!cJSON_IsObject(msg)) return 0;
  int rc = add_text(&self->content, cJSON_GetObjectItemCaseSensitive(msg, "content"), err);
  if (rc) return rc;
  const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
  const cJSON *call;
  int pos = 0;
  cJSON_ArrayForEach(call, calls) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    /* Streams key a call's fragments by "index"; a whole body lists the
     * calls in order. */
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(call, "index");
    int index = cJSON_IsNumber(ix) ? (int)ix->valuedouble : pos;
    pos++;
    llm_tool_call *c = answer_call(self, index);
    if (!c) continue;
    set_str(&c->id, cJSON_GetObjectItemCaseSensitive(call, "id"));
    if (!cJSON_IsObject(fn)) continue;
    set_str(&c->name, cJSON_GetObjectItemCaseSensitive(fn, "name"));
    bool first = c == &self->calls[0];
    if (first) set_str(&self->tool_name, cJSON_GetObjectItemCaseSensitive(fn, "name"));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    char *printed = NULL;
    if (cJSON_IsObject(args)) {
      /* some servers send the arguments as an object, not a string */
      printed = cJSON_PrintUnformatted(args);
    } else if (cJSON_IsString(args)) {
      printed = xstrdup(args->valuestring);
    }
    if (printed && (dbuf_adds(&c->args, printed) < 0 || (first && dbuf_adds(&self->tool_args, printed) < 0)))
      rc = -E2BIG;
    free(printed);
    if (rc) {
      *err = xasprintf("the answer passed the %zu-byte cap", self->tool_args.max);
      return rc;
    }
  }
  return 0;
}

static int apply_json(llm_answer *self, const char *data, size_t len, bool whole, char **err) {
  cJSON *root = cJSON_ParseWithLength(data, len);
  if (!cJSON_IsObject(root)) {
    char *ex = excerpt(data, len, 120);
    *err = xasprintf("unreadable %s (not a JSON object): %s", whole ? "response body" : "stream event", ex);
    free(ex);
    cJSON_Delete(root);
    return -EPROTO;
  }
  int rc = 0;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (e && !cJSON_IsNull(e)) {
    *err = error_object_message(e);
    rc = -EREMOTEIO;
    goto out;
  }
  take_usage(self, root);
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  if (whole && (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0)) {
    *err = xstrdup("the response has no choices");
    rc = -EPROTO;
    goto out;
  }
  const cJSON *ch = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
  if (ch) {
    rc = take_message(self, cJSON_GetObjectItemCaseSensitive(ch, whole ? "message" : "delta"), err);
    if (rc) goto out;
    set_str(&self->finish_reason, cJSON_GetObjectItemCaseSensitive(ch, "finish_reason"));
  }
  self->chunks++;
  if (whole) self->done = true;
out:
  cJSON_Delete(root);
  return rc;
}

int llm_answer_add_chunk(llm_answer *self, const char *data, size_t len, const char **delta,
                         size_t *delta_len, char **err) {
  *delta = "";
  *delta_len = 0;
  const char *p = data;
  size_t n = len;
  while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n')) n--;
  if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
    self->done = true;
    return 1;
  }
  size_t before_c = self->content.len, before_t = self->tool_args.len;
  int rc = apply_json(self, data, len, false, err);
  if (rc) return rc;
  if (self->content.len > before_c) {
    *delta = self->content.data + before_c;
    *delta_len = self->content.len - before_c;
  } else if (self->tool_args.len > before_t) {
    *delta = self->tool_args.data + before_t;
    *delta_len = self->tool_args.len - before_t;
  }
  return 0;
}

int llm_answer_set_body(llm_answer *self, const char *body, size_t len, char **err) {
  return apply_json(self, body, len, true, err);
}

char *llm_error_parse(const char *body, size_t len, char **type, char **code) {
  *type = *code = NULL;
  cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
  char *msg = NULL;
  if (cJSON_IsObject(root)) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e && !cJSON_IsNull(e)) {
      msg = error_object_message(e);
      set_str(type, cJSON_GetObjectItemCaseSensitive(e, "type"));
      const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
      if (cJSON_IsString(c)) *code = xstrdup(c->valuestring);
      else if (cJSON_IsNumber(c)) *code = xasprintf("%ld", (long)c->valuedouble);
    } else {
      /* FastAPI servers (vLLM) say {"detail": ...}; others {"message": ...} */
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");
      if (!d) d = cJSON_GetObjectItemCaseSensitive(root, "message");
      if (cJSON_IsString(d)) msg = xstrdup(d->valuestring);
      else if (d) {
        char *raw = cJSON_PrintUnformatted(d);
        msg = raw ? excerpt(raw, strlen(raw), 300) : NULL;
        free(raw);
      }
    }
  }
  cJSON_Delete(root);
  if (!msg) msg = (body && len) ? excerpt(body, len, 300) : xstrdup("(empty body)");
  if (!msg[0]) {
    free(msg);
    msg = xstrdup("(empty body)");
  }
  return msg;
}

long llm_retry_after_ms(const char *retry_after, const char *retry_after_ms, time_t now) {
  if (retry_after_ms && *retry_after_ms) {
    char *end;
    double v = strtod(retry_after_ms, &end);
    while (*end == ' ') end++;
    if (end != retry_after_ms && !*end && v >= 0 && v < 1e9) return (long)ceil(v);
  }
  if (retry_after && *retry_after) {
    const char *p = retry_after;
    while (*p == ' ') p++;
    char *end;
    double v = strtod(p, &end);
    while (*end == ' ') end++;
    if (end != p && !*end && (*p >= '0' && *p <= '9')) return v < 1e6 ? (long)ceil(v * 1000.0) : -1;
    time_t t = curl_getdate(p, NULL);
    if (t == (time_t)-1) return -1;
    if (t <= now) return 0;
    double ms = difftime(t, now) * 1000.0;
    return ms < 1e9 ? (long)ms : -1;
  }
  return -1;
}

long llm_backoff_ms(int attempt, long base_ms, long max_ms, unsigned rnd) {
  if (attempt < 1) attempt = 1;
  if (base_ms < 1) base_ms = 1;
  if (max_ms < base_ms) max_ms = base_ms;
  long d = base_ms;
  for (int i = 1; i < attempt && d < max_ms; i++) d = d > max_ms / 2 ? max_ms : d * 2;
  if (d > max_ms) d = max_ms;
  long half = d / 2;
  return half + (long)(rnd % (unsigned long)(d - half + 1));
}

static bool icontains(const char *hay, const char *needle) {
  return hay && strcasestr(hay, needle) != NULL;
}

llm_verdict llm_status_verdict(long status, const char *message, const char *type, const char *code) {
  if (status == 429) {
    if ((type && strcmp(type, "insufficient_quota") == 0) || (code && strcmp(code, "insufficient_quota") == 0))
      return LLM_FATAL;
    return LLM_RETRY;
  }
  if (status == 408 || status == 500 || status == 502 || status == 503 || status == 504) return LLM_RETRY;
  if (status == 400 || status == 422) {
    static const char *const hints[] = {"response_format", "json_schema", "json_object", "structured output",
                                        "guided_json", "grammar"};
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
      if (icontains(message, hints[i]) || icontains(code, hints[i])) return LLM_FORMAT_REJECTED;
  }
  return LLM_FATAL;
}
