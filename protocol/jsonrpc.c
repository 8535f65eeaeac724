/* JSON-RPC 2.0 messages: a bounded pre-scan, parsing with cJSON, validation
 * of requests, notifications, responses and batches, and reply builders. */
#include "jsonrpc.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

__attribute__((format(printf, 3, 4))) static int reject(rpc_batch *self, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(self->err_message, sizeof(self->err_message), fmt, ap);
  va_end(ap);
  self->err_code = code;
  return code;
}

static int hexval(unsigned char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads "\uXXXX" at s[i..len); returns the code unit or -1. */
static long hex4(const char *s, size_t len, size_t i)
{
  long v = 0;
  if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
    return -1;
  for (size_t k = 2; k < 6; k++) {
    int h = hexval((unsigned char)s[i + k]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

/* One pass over the raw body, before cJSON allocates anything: strict UTF-8
 * everywhere, string escapes, string sizes, nesting depth, and the element
 * count of a top-level array. It does not check the JSON grammar otherwise:
 * cJSON does that next. */
static int prescan(rpc_batch *self, const char *s, size_t len, const rpc_limits *lim, size_t *elements,
                   size_t *nul_at)
{
  size_t i = 0, commas = 0;
  int depth = 0;
  bool top_array = false, seen_value = false, nonempty = false;

  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"') {
      size_t start = ++i;
      if (depth == 1 && top_array)
        nonempty = true;
      seen_value = true;
      for (;;) {
        if (i - start > lim->max_string)
          return reject(self, RPC_PARSE_ERROR, "Parse error: string at byte %zu is longer than %zu bytes", start - 1,
                        lim->max_string);
        if (i >= len)
          return reject(self, RPC_PARSE_ERROR, "Parse error: unterminated string starting at byte %zu", start - 1);
        c = (unsigned char)s[i];
        if (c == '"') {
          i++;
          break;
        }
        if (c == '\\') {
          if (i + 1 >= len)
            return reject(self, RPC_PARSE_ERROR, "Parse error: unterminated string starting at byte %zu", start - 1);
          unsigned char e = (unsigned char)s[i + 1];
          if (e != 'u') {
            if (!strchr("\"\\/bfnrt", e) || e == 0)
              return reject(self, RPC_PARSE_ERROR, "Parse error: invalid escape sequence at byte %zu", i);
            i += 2;
            continue;
          }
          long u = hex4(s, len, i);
          if (u < 0)
            return reject(self, RPC_PARSE_ERROR, "Parse error: invalid \\u escape at byte %zu", i);
          if (u == 0 && *nul_at == SIZE_MAX)
            *nul_at = i;
          if (u >= 0xDC00 && u <= 0xDFFF)
            return reject(self, RPC_PARSE_ERROR, "Parse error: unpaired low surrogate escape at byte %zu", i);
          if (u >= 0xD800 && u <= 0xDBFF) {
            long lo = hex4(s, len, i + 6);
            if (lo < 0xDC00 || lo > 0xDFFF)
              return reject(self, RPC_PARSE_ERROR, "Parse error: unpaired high surrogate escape at byte %zu", i);
            i += 12;
          } else {
            i += 6;
          }
          continue;
        }
        if (c < 0x20)
          return reject(self, RPC_PARSE_ERROR,
                        "Parse error: unescaped control character 0x%02x in a string at byte %zu", c, i);
        if (c < 0x80) {
          i++;
          continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0)
          return reject(self, RPC_PARSE_ERROR, "Parse error: invalid UTF-8 at byte %zu", i);
        i += n;
      }
      continue;
    }
    switch (c) {
    case '[':
    case '{':
      if (!seen_value && c == '[')
        top_array = true;
      if (depth == 1 && top_array)
        nonempty = true;
      seen_value = true;
      if (++depth > lim->max_depth)
        return reject(self, RPC_PARSE_ERROR, "Parse error: nesting deeper than %d levels at byte %zu", lim->max_depth,
                      i);
      break;
    case ']':
    case '}':
      if (depth > 0)
        depth--;
      break;
    case ',':
      if (depth == 1 && top_array)
        commas++;
      break;
    case ' ':
    case '\t':
    case '\n':
    case '\r':
      break;
    default:
      if (c >= 0x80) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0)
          return reject(self, RPC_PARSE_ERROR, "Parse error: invalid UTF-8 at byte %zu", i);
        i += n;
        continue;
      }
      if (depth == 1 && top_array)
        nonempty = true;
      seen_value = true;
      break;
    }
    i++;
  }
  *elements = top_array && nonempty ? commas + 1 : 0;
  return 0;
}

static bool is_ws(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Integral and exactly representable, so it prints back as the same digits
 * (checked without libm's floor: within 2^53 the conversion is exact). */
static bool number_is_id(const cJSON *n)
{
  double d = n->valuedouble;
  return fabs(d) <= 9007199254740992.0 && (double)(long long)d == d;
}

static int invalid(rpc_msg *m, const char *text)
{
  m->kind = RPC_KIND_INVALID;
  m->err_code = RPC_INVALID_REQUEST;
  m->err_message = text;
  return 0;
}

/* Classifies one message object into *m (pointers borrowed from `o`). */
static int msg_classify(const cJSON *o, rpc_msg *m)
{
  const cJSON *jsonrpc = NULL, *method = NULL, *id = NULL, *params = NULL, *result = NULL, *error = NULL;
  bool dup = false, id_dup = false;

  memset(m, 0, sizeof(*m));
  if (!cJSON_IsObject(o))
    return invalid(m, "Invalid Request: a message must be a JSON object");
  /* One walk over the members instead of six lookups; keys are
   * case-sensitive in JSON-RPC (cJSON_GetObjectItem is not). */
  for (const cJSON *c = o->child; c != NULL; c = c->next) {
    const cJSON **slot = NULL;
    if (c->string == NULL)
      continue;
    if (strcmp(c->string, "jsonrpc") == 0)
      slot = &jsonrpc;
    else if (strcmp(c->string, "method") == 0)
      slot = &method;
    else if (strcmp(c->string, "id") == 0)
      slot = &id;
    else if (strcmp(c->string, "params") == 0)
      slot = &params;
    else if (strcmp(c->string, "result") == 0)
      slot = &result;
    else if (strcmp(c->string, "error") == 0)
      slot = &error;
    if (slot == NULL)
      continue;
    if (*slot != NULL) {
      dup = true;
      if (slot == &id)
        id_dup = true;
    }
    *slot = c;
  }

  bool id_ok = id != NULL && !id_dup && (cJSON_IsString(id) || (cJSON_IsNumber(id) && number_is_id(id)));
  if (id_ok)
    m->id = id;
  if (dup)
    return invalid(m, "Invalid Request: a member (jsonrpc, id, method, params, result or error) appears twice");
  if (jsonrpc == NULL || !cJSON_IsString(jsonrpc) || strcmp(jsonrpc->valuestring, "2.0") != 0)
    return invalid(m, "Invalid Request: \"jsonrpc\" must be the string \"2.0\"");
  if (id != NULL && !id_ok && !cJSON_IsNull(id))
    return invalid(m, "Invalid Request: \"id\" must be a string or an integer (no fraction, at most 2^53)");

  if (method != NULL) {
    if (!cJSON_IsString(method))
      return invalid(m, "Invalid Request: \"method\" must be a string");
    if (id != NULL && cJSON_IsNull(id))
      return invalid(m, "Invalid Request: \"id\" must not be null; use a string or an integer, or omit it for a notification");
    if (params != NULL && cJSON_IsNull(params))
      params = NULL;
    if (params != NULL && !cJSON_IsObject(params) && !cJSON_IsArray(params))
      return invalid(m, "Invalid Request: \"params\" must be an object or an array");
    m->kind = id != NULL ? RPC_KIND_REQUEST : RPC_KIND_NOTIFICATION;
    m->method = method->valuestring;
    m->params = params;
    return 0;
  }

  if (result == NULL && error == NULL)
    return invalid(m, "Invalid Request: \"method\" is missing");
  if (id == NULL)
    return invalid(m, "Invalid Request: a response must have an \"id\"");
  if (result != NULL && error != NULL)
    return invalid(m, "Invalid Request: a response must not have both \"result\" and \"error\"");
  if (error != NULL) {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
    if (!cJSON_IsObject(error) || !cJSON_IsNumber(code) || !number_is_id(code) || code->valuedouble < INT32_MIN ||
        code->valuedouble > INT32_MAX || !cJSON_IsString(message))
      return invalid(m, "Invalid Request: \"error\" must be an object with an integer \"code\" and a string \"message\"");
  } else if (cJSON_IsNull(id)) {
    return invalid(m, "Invalid Request: a successful response must have a non-null \"id\"");
  }
  m->kind = RPC_KIND_RESPONSE;
  m->result = result;
  m->error = error;
  return 0;
}

int rpc_batch_parse(rpc_batch *self, const char *body, size_t len, const rpc_limits *lim)
{
  rpc_limits l = lim ? *lim : RPC_LIMITS_DEFAULT;
  const rpc_limits d = RPC_LIMITS_DEFAULT;
  size_t elements = 0, nul_at = SIZE_MAX;
  const char *end = NULL;
  int err;

  memset(self, 0, sizeof(*self));
  if (l.max_depth <= 0)
    l.max_depth = d.max_depth;
  if (l.max_string == 0)
    l.max_string = d.max_string;
  if (l.max_batch == 0)
    l.max_batch = d.max_batch;

  err = prescan(self, body, len, &l, &elements, &nul_at);
  if (err)
    return err;
  if (elements > l.max_batch)
    return reject(self, RPC_INVALID_REQUEST, "Invalid Request: batch of %zu messages is above the limit of %zu",
                  elements, l.max_batch);

  /* Not NUL-terminated: the trailing bytes are checked here instead, as
   * cJSON's require_null_terminated would want a NUL inside len. */
  if (nul_at != SIZE_MAX && elements > 0)
    return reject(self, RPC_PARSE_ERROR, "Parse error: \\u0000 at byte %zu is not supported in strings", nul_at);
  self->root = len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
  if (self->root == NULL) {
    size_t off = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
    if (len == 0)
      return reject(self, RPC_PARSE_ERROR, "Parse error: empty message body");
    return reject(self, RPC_PARSE_ERROR, "Parse error: invalid JSON at byte %zu", off);
  }
  for (const char *p = end; p < body + len; p++)
    if (!is_ws(*p)) {
      err = reject(self, RPC_PARSE_ERROR, "Parse error: unexpected data after the JSON value at byte %zu",
                   (size_t)(p - body));
      goto fail;
    }

  size_t n = 1;
  if (cJSON_IsArray(self->root)) {
    self->is_batch = true;
    n = 0;
    for (const cJSON *c = self->root->child; c != NULL; c = c->next)
      n++;
    if (n == 0) {
      err = reject(self, RPC_INVALID_REQUEST, "Invalid Request: empty batch");
      goto fail;
    }
    if (n > l.max_batch) { /* the pre-scan counted already; this guards its arithmetic */
      err = reject(self, RPC_INVALID_REQUEST, "Invalid Request: batch of %zu messages is above the limit of %zu", n,
                   l.max_batch);
      goto fail;
    }
  } else if (!cJSON_IsObject(self->root)) {
    err = reject(self, RPC_INVALID_REQUEST, "Invalid Request: a message must be a JSON object or an array of them");
    goto fail;
  }
  self->msgs = calloc(n, sizeof(*self->msgs));
  if (self->msgs == NULL) {
    err = reject(self, RPC_INTERNAL_ERROR, "Internal error: out of memory");
    goto fail;
  }
  self->count = n;
  if (!self->is_batch) {
    msg_classify(self->root, &self->msgs[0]);
    /* cJSON ends a string at its first NUL, so the message was read cut
     * short: it is answered, with its id, but never dispatched. */
    if (nul_at != SIZE_MAX) {
      const cJSON *id = self->msgs[0].id;
      memset(&self->msgs[0], 0, sizeof(self->msgs[0]));
      self->msgs[0].id = id;
      self->msgs[0].kind = RPC_KIND_INVALID;
      self->msgs[0].err_code = RPC_INVALID_REQUEST;
      self->msgs[0].err_message = "Invalid Request: \\u0000 inside a string is not supported "
                                  "(it would cut the string short)";
    }
    return 0;
  }
  size_t k = 0;
  for (const cJSON *c = self->root->child; c != NULL; c = c->next)
    msg_classify(c, &self->msgs[k++]);
  return 0;

fail:
  /* A rejected body keeps only its error: no tree, no messages. */
  rpc_batch_free(self);
  return err;
}

void rpc_batch_free(rpc_batch *self)
{
  cJSON_Delete(self->root);
  free(self->msgs);
  self->root = NULL;
  self->msgs = NULL;
  self->count = 0;
}

/* Copies an id for a reply. cJSON prints numbers of 16 or more digits with
 * 15 significant digits when that compares equal within DBL_EPSILON, which
 * would answer id 9007199254740992 with 9.00719925474099e+15: such integral
 * ids are copied as raw text printed in full instead. */
static cJSON *id_copy(const cJSON *id)
{
  if (cJSON_IsNumber(id) && fabs(id->valuedouble) >= 1e15 && number_is_id(id)) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.0f", id->valuedouble);
    return cJSON_CreateRaw(buf);
  }
  return cJSON_Duplicate(id, 1);
}

static cJSON *envelope(const cJSON *id, bool with_id)
{
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  if (!cJSON_AddStringToObject(o, "jsonrpc", "2.0"))
    goto fail;
  if (with_id) {
    cJSON *idc = id && !cJSON_IsNull(id) ? id_copy(id) : cJSON_CreateNull();
    if (idc == NULL || !cJSON_AddItemToObject(o, "id", idc)) {
      cJSON_Delete(idc);
      goto fail;
    }
  }
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

/* Adds `item` (taken over; NULL means JSON null when null_ok, else nothing)
 * under `key`. On failure `item` is freed and false returned. */
static bool add_owned(cJSON *o, const char *key, cJSON *item, bool null_ok)
{
  if (item == NULL) {
    if (!null_ok)
      return true;
    item = cJSON_CreateNull();
    if (item == NULL)
      return false;
  }
  if (!cJSON_AddItemToObject(o, key, item)) {
    cJSON_Delete(item);
    return false;
  }
  return true;
}

cJSON *rpc_make_result(const cJSON *id, cJSON *result)
{
  cJSON *o = envelope(id, true);
  if (o == NULL) {
    cJSON_Delete(result);
    return NULL;
  }
  if (!add_owned(o, "result", result, true)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

cJSON *rpc_make_error(const cJSON *id, int code, const char *message, cJSON *data)
{
  cJSON *o = envelope(id, true);
  cJSON *e = o ? cJSON_CreateObject() : NULL;
  if (e == NULL || !add_owned(o, "error", e, false))
    goto fail; /* add_owned freed e if it failed */
  if (!cJSON_AddNumberToObject(e, "code", code) ||
      !cJSON_AddStringToObject(e, "message", message ? message : rpc_error_text(code)))
    goto fail;
  if (!add_owned(e, "data", data, false)) {
    data = NULL; /* freed by add_owned */
    goto fail;
  }
  return o;
fail:
  cJSON_Delete(o);
  cJSON_Delete(data);
  return NULL;
}

static cJSON *call_make(const cJSON *id, bool with_id, const char *method, cJSON *params)
{
  cJSON *o = envelope(id, with_id);
  if (o == NULL || !cJSON_AddStringToObject(o, "method", method)) {
    cJSON_Delete(o);
    cJSON_Delete(params);
    return NULL;
  }
  if (!add_owned(o, "params", params, false)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

cJSON *rpc_make_notification(const char *method, cJSON *params)
{
  return call_make(NULL, false, method, params);
}

cJSON *rpc_make_request(const cJSON *id, const char *method, cJSON *params)
{
  return call_make(id, true, method, params);
}

const char *rpc_error_text(int code)
{
  switch (code) {
  case RPC_PARSE_ERROR: return "Parse error";
  case RPC_INVALID_REQUEST: return "Invalid Request";
  case RPC_METHOD_NOT_FOUND: return "Method not found";
  case RPC_INVALID_PARAMS: return "Invalid params";
  case RPC_INTERNAL_ERROR: return "Internal error";
  case RPC_SERVER_NOT_INITIALIZED: return "Server not initialized";
  case RPC_UNKNOWN_ERROR_CODE: return "Unknown error code";
  case RPC_REQUEST_FAILED: return "Request failed";
  case RPC_SERVER_CANCELLED: return "Server cancelled";
  case RPC_CONTENT_MODIFIED: return "Content modified";
  case RPC_REQUEST_CANCELLED: return "Request cancelled";
  default: break;
  }
  if (code >= -32099 && code <= -32000)
    return "Server error";
  return "Unknown error";
}

char *rpc_print_utf8(const cJSON *msg, bool formatted) {
  if (!msg) return NULL;
  char *text = formatted ? cJSON_Print(msg) : cJSON_PrintUnformatted(msg);
  if (!text) return NULL;
  size_t len = strlen(text);
  if (utf8_valid(text, len, NULL)) return text;
  char *fixed = utf8_repair(text, len, NULL);
  free(text);
  return fixed;
}
