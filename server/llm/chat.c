/* A streamed chat completion: one llm_chat is one logical request, carried
 * by one or more HTTP attempts (retries of transient failures, and the
 * fallback from one structured-output mode to the next). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"
#include "sse.h"
#include "utf8.h"

#define ERROR_BODY_CAP (64u << 10)

struct llm_chat {
  llm_client *client;
  llm_chat *prev, *next;
  llm_chat_opts opts;     /* messages and config not kept: copied below */
  llm__endpoint ep;       /* this chat's settings */
  char *chat_url;
  llm_message *msgs;
  size_t n_msgs;
  char *tools, *tool_choice; /* copies of the options' */
  char **tool_names;      /* the offered tools' names: their calls' arguments are not streamed */
  size_t n_tool_names;
  bool tools_refused;     /* the endpoint refused them: asked again without */
  llm_mode mode;
  bool mode_fixed;
  uv_timer_t timer;       /* retry backoff, or a deferred finish */
  http_request *req;
  /* per attempt */
  sse_parser sse;
  llm_answer ans;
  dbuf raw;               /* error body, or a whole non-streamed answer */
  bool streaming;
  char *retry_after, *retry_after_ms;
  /* per chat */
  bool tokens_emitted;
  bool cancelled;
  bool finished;
  int attempts, retries;
  long http_status;
  char *error;            /* an error found while reading (stream events) */
  llm_error_kind error_kind; /* of the failure being reported */
  unsigned long long deadline_ms; /* now_ms() at which the chat's whole budget runs out */
  llm_status pending_status; /* for a finish deferred through the timer */
};

static void attempt_reset(llm_chat *chat) {
  sse_parser_close(&chat->sse);
  llm_answer_close(&chat->ans);
  dbuf_close(&chat->raw);
  free(chat->retry_after);
  free(chat->retry_after_ms);
  chat->retry_after = chat->retry_after_ms = NULL;
  chat->streaming = false;
}

static void chat_closed(uv_handle_t *h) {
  llm_chat *chat = container_of((uv_timer_t *)h, llm_chat, timer);
  free(chat);
}

static void chat_finish(llm_chat *chat, llm_status status, const char *error) {
  if (chat->finished) return;
  chat->finished = true;
  llm_client *c = chat->client;
  uv_timer_stop(&chat->timer);
  if (status == LLM_OK && chat->opts.structured && !chat->mode_fixed)
    llm_client_mode_set(c, chat->ep.cfg.base_url, chat->ep.cfg.model, chat->mode);
  char *err = error ? llm__redact(chat->ep.cfg.api_key, xstrdup(error)) : NULL;
  if (err && !utf8_valid(err, strlen(err), NULL)) {
    /* endpoints' error bodies are quoted in the text: keep it valid UTF-8 */
    char *fixed = utf8_repair(err, strlen(err), NULL);
    free(err);
    err = fixed ? fixed : xstrdup("failed (unreadable error text)");
  }
  llm_result res = {
      .status = status,
      .error = status == LLM_OK ? NULL : (err ? err : (status == LLM_CANCELLED ? "cancelled" : "failed")),
      .error_kind = status == LLM_ERROR ? (chat->error_kind ? chat->error_kind : LLM_ERR_ANSWER) : LLM_ERR_NONE,
      .http_status = chat->http_status,
      .text = status == LLM_OK ? llm_answer_text(&chat->ans) : "",
      .mode = chat->opts.structured ? chat->mode : LLM_MODE_AUTO,
      .tool_call = chat->ans.tool_args.len > 0,
      .finish_reason = chat->ans.finish_reason,
      .prompt_tokens = chat->ans.prompt_tokens,
      .completion_tokens = chat->ans.completion_tokens,
      .attempts = chat->attempts,
      .tool_calls = status == LLM_OK ? chat->ans.calls : NULL,
      .n_tool_calls = status == LLM_OK ? chat->ans.n_calls : 0,
      .tools_refused = chat->tools_refused,
      .content = status == LLM_OK && chat->ans.content.data ? chat->ans.content.data : "",
  };
  char *calls_json = status == LLM_OK ? llm_answer_calls_json(&chat->ans) : NULL;
  res.tool_calls_json = calls_json;
  if (chat->prev) chat->prev->next = chat->next;
  else c->chats = chat->next;
  if (chat->next) chat->next->prev = chat->prev;
  chat->opts.on_done(chat->opts.ud, &res);
  free(err);
  free(calls_json);
  free(chat->tools);
  free(chat->tool_choice);
  for (size_t i = 0; i < chat->n_tool_names; i++) free(chat->tool_names[i]);
  free(chat->tool_names);
  attempt_reset(chat);
  free(chat->error);
  for (size_t i = 0; i < chat->n_msgs; i++) {
    free((char *)chat->msgs[i].role);
    free((char *)chat->msgs[i].content);
    free((char *)chat->msgs[i].tool_calls);
    free((char *)chat->msgs[i].tool_call_id);
  }
  free(chat->msgs);
  llm__endpoint_close(&chat->ep);
  free(chat->chat_url);
  uv_close((uv_handle_t *)&chat->timer, chat_closed);
  llm__client_unref(c);
}

static void set_error(llm_chat *chat, char *msg) {
  if (!chat->error) chat->error = msg;
  else free(msg);
}

/* Whether name is one of the tools the chat offers. */
static bool offered(const llm_chat *chat, const char *name) {
  for (size_t i = 0; name && i < chat->n_tool_names; i++)
    if (strcmp(chat->tool_names[i], name) == 0) return true;
  return false;
}

static bool delta_is_tool_args(const llm_chat *chat, const char *delta) {
  const dbuf *b = &chat->ans.tool_args;
  return b->data && delta >= b->data && delta < b->data + b->len;
}

static int on_sse_event(void *ud, const sse_event *ev) {
  llm_chat *chat = ud;
  if (chat->ans.done) return 0; /* anything after [DONE] is ignored */
  const char *delta;
  size_t dlen;
  char *err = NULL;
  int rc = llm_answer_add_chunk(&chat->ans, ev->data, ev->data_len, &delta, &dlen, &err);
  if (rc < 0) {
    const char *what = rc == -EREMOTEIO ? "reported an error mid-stream" : "sent";
    set_error(chat, xasprintf("LLM endpoint %s %s: %s", chat->ep.cfg.base_url, what, err));
    free(err);
    return rc;
  }
  if (dlen > 0) {
    chat->tokens_emitted = true;
    if (chat->opts.on_token && !(delta_is_tool_args(chat, delta) && offered(chat, chat->ans.tool_name)))
      chat->opts.on_token(chat->opts.ud, delta, dlen);
  }
  return 0;
}

static int on_http_headers(http_request *req, long status, void *ud) {
  llm_chat *chat = ud;
  chat->http_status = status;
  if (status >= 400) {
    const char *ra = http_request_header(req, "retry-after");
    const char *ram = http_request_header(req, "retry-after-ms");
    if (ra) chat->retry_after = xstrdup(ra);
    if (ram) chat->retry_after_ms = xstrdup(ram);
    dbuf_init(&chat->raw, ERROR_BODY_CAP);
    return 0;
  }
  const char *ct = http_request_header(req, "content-type");
  chat->streaming = ct && strcasestr(ct, "text/event-stream");
  /* Servers that ignore "stream" answer with one JSON body instead. */
  if (!chat->streaming) dbuf_init(&chat->raw, chat->ep.cfg.max_answer_bytes);
  return 0;
}

static int on_http_data(http_request *req, const char *p, size_t n, void *ud) {
  llm_chat *chat = ud;
  if (chat->http_status >= 400) {
    dbuf_add_head(&chat->raw, p, n); /* the start of an error body is enough */
    return 0;
  }
  if (!chat->streaming) {
    if (dbuf_add(&chat->raw, p, n) < 0) {
      set_error(chat, xasprintf("LLM endpoint %s sent an answer larger than %zu bytes",
                                chat->ep.cfg.base_url, chat->ep.cfg.max_answer_bytes));
      return 1;
    }
    return 0;
  }
  int rc = sse_parser_feed(&chat->sse, p, n);
  if (rc == -E2BIG)
    set_error(chat, xasprintf("LLM endpoint %s sent a stream event larger than %zu bytes",
                              chat->ep.cfg.base_url, chat->ep.cfg.max_answer_bytes));
  return rc != 0;
}

static void attempt_start(llm_chat *chat);

/* The error text of a chat that ran out of its whole budget (a new string). */
static char *budget_error(const llm_chat *chat) {
  return xasprintf("LLM endpoint %s timed out: no complete answer within %ld ms (the whole request%s, "
                   "llm.timeoutMs)", chat->ep.cfg.base_url, chat->ep.cfg.total_timeout_ms,
                   chat->attempts > 1 ? " including its retries" : "");
}

static void on_timer(uv_timer_t *t) {
  llm_chat *chat = container_of(t, llm_chat, timer);
  if (chat->cancelled || chat->pending_status == LLM_CANCELLED) chat_finish(chat, LLM_CANCELLED, NULL);
  else attempt_start(chat);
}

/* Schedules the next attempt after delay_ms (0 = the loop's next turn). */
static void attempt_later(llm_chat *chat, long delay_ms) {
  attempt_reset(chat);
  if (uv_timer_start(&chat->timer, on_timer, (uint64_t)delay_ms, 0) < 0)
    chat_finish(chat, LLM_ERROR, "cannot schedule the next attempt");
}

static llm_mode next_mode(llm_mode m) {
  return m == LLM_MODE_JSON_SCHEMA ? LLM_MODE_JSON_OBJECT : LLM_MODE_TEXT;
}

static bool is_reset(int curl_code) {
  return curl_code == CURLE_RECV_ERROR || curl_code == CURLE_SEND_ERROR || curl_code == CURLE_GOT_NOTHING ||
         curl_code == CURLE_PARTIAL_FILE;
}

/* Retries when allowed; returns false when the caller must fail instead. */
static bool maybe_retry(llm_chat *chat, long status, const char *reason) {
  llm_client *c = chat->client;
  if (chat->tokens_emitted || chat->retries >= chat->ep.cfg.max_retries || c->closing) return false;
  long delay = llm_retry_after_ms(chat->retry_after, chat->retry_after_ms, time(NULL));
  if (delay > chat->ep.cfg.backoff_max_ms) return false;
  if (delay < 0)
    delay = llm_backoff_ms(chat->retries + 1, chat->ep.cfg.backoff_base_ms, chat->ep.cfg.backoff_max_ms,
                           llm__rng_next(c));
  /* Retries share the chat's one budget: a wait that would end past it is
   * not worth starting (the failure is reported now instead). */
  if (now_ms() + (unsigned long long)delay >= chat->deadline_ms) return false;
  chat->retries++;
  log_info("llm: %s; retry %d of %d in %ld ms", reason, chat->retries, chat->ep.cfg.max_retries, delay);
  if (chat->opts.on_retry) chat->opts.on_retry(chat->opts.ud, chat->retries, delay, status, reason);
  if (chat->cancelled) return true; /* the retry callback cancelled: cancel path finishes */
  attempt_later(chat, delay);
  return true;
}

static void on_status_error(llm_chat *chat, long status) {
  char *type = NULL, *code = NULL;
  char *msg = llm_error_parse(chat->raw.data, chat->raw.len, &type, &code);
  msg = llm__redact(chat->ep.cfg.api_key, msg);
  llm_verdict v = llm_status_verdict(status, msg, type, code);
  char *full = xasprintf("LLM endpoint %s answered %ld: %s", chat->ep.cfg.base_url, status, msg);
  chat->error_kind = LLM_ERR_STATUS;
  if ((status == 400 || status == 422) && chat->tools && !chat->tools_refused && strcasestr(msg, "tool")) {
    /* llama-server without --jinja, older servers: ask without the tools */
    chat->tools_refused = true;
    log_info("llm: %s refused tools (%s); asking without them", chat->ep.cfg.base_url, msg);
    if (!chat->cancelled) attempt_later(chat, 0);
  } else if (v == LLM_FORMAT_REJECTED && chat->opts.structured && !chat->mode_fixed && chat->mode != LLM_MODE_TEXT) {
    llm_mode from = chat->mode;
    chat->mode = next_mode(from);
    log_info("llm: %s refused response_format %s; trying %s", chat->ep.cfg.base_url, llm_mode_name(from),
             llm_mode_name(chat->mode));
    if (chat->opts.on_fallback) chat->opts.on_fallback(chat->opts.ud, from, chat->mode, msg);
    if (!chat->cancelled) attempt_later(chat, 0);
  } else if (!(v == LLM_RETRY && maybe_retry(chat, status, full))) {
    if (v == LLM_RETRY && chat->retries > 0) {
      char *more = xasprintf("%s (after %d retries)", full, chat->retries);
      free(full);
      full = more;
    }
    chat_finish(chat, LLM_ERROR, full);
  }
  free(full);
  free(msg);
  free(type);
  free(code);
}

static void on_http_done(http_request *req, const http_result *res, void *ud) {
  llm_chat *chat = ud;
  chat->req = NULL;
  if (chat->cancelled || res->outcome == HTTP_CANCELLED) {
    chat_finish(chat, LLM_CANCELLED, NULL);
    return;
  }
  if (chat->error) {
    char *e = chat->error;
    chat->error = NULL;
    chat_finish(chat, LLM_ERROR, e);
    free(e);
    return;
  }
  char *msg = NULL;
  const char *base = chat->ep.cfg.base_url;
  switch (res->outcome) {
    case HTTP_DONE:
      if (res->status >= 400) {
        on_status_error(chat, res->status);
        return;
      }
      if (res->status < 200 || res->status >= 300) {
        msg = xasprintf("LLM endpoint %s answered %ld, not an answer: check llm.baseUrl", base, res->status);
      } else if (!chat->streaming) {
        char *err = NULL;
        if (llm_answer_set_body(&chat->ans, chat->raw.data ? chat->raw.data : "", chat->raw.len, &err) < 0) {
          msg = xasprintf("LLM endpoint %s sent %s", base, err);
          free(err);
        } else {
          if (chat->opts.on_token && chat->ans.content.len)
            chat->opts.on_token(chat->opts.ud, chat->ans.content.data, chat->ans.content.len);
          chat_finish(chat, LLM_OK, NULL);
          return;
        }
      } else if (chat->ans.done) {
        chat_finish(chat, LLM_OK, NULL);
        return;
      } else if (chat->sse.events == 0) {
        msg = xasprintf("LLM endpoint %s: stream ended early: no events arrived (is this an "
                        "OpenAI-compatible endpoint?)", base);
      } else {
        msg = xasprintf("LLM endpoint %s: stream ended early (connection closed before [DONE])", base);
      }
      break;
    case HTTP_FAILED:
      if (res->curl_code == CURLE_COULDNT_CONNECT || res->curl_code == CURLE_COULDNT_RESOLVE_HOST) {
        chat->error_kind = LLM_ERR_CONNECT;
        msg = xasprintf("cannot connect to LLM endpoint %s: %s. Is the server running, and is llm.baseUrl right?",
                        base, res->error);
      } else if (chat->streaming && chat->tokens_emitted && res->curl_code == CURLE_PARTIAL_FILE) {
        msg = xasprintf("LLM endpoint %s: stream ended early (connection closed before [DONE])", base);
      } else {
        msg = xasprintf("LLM endpoint %s failed: %s", base, res->error);
        if (is_reset(res->curl_code) && maybe_retry(chat, 0, msg)) {
          free(msg);
          return;
        }
      }
      break;
    case HTTP_TIMEOUT_CONNECT:
      chat->error_kind = LLM_ERR_TIMEOUT;
      msg = xasprintf("cannot connect to LLM endpoint %s: %s", base, res->error);
      break;
    case HTTP_TIMEOUT_FIRST_BYTE:
      chat->error_kind = LLM_ERR_TIMEOUT;
      msg = xasprintf("LLM endpoint %s timed out: %s (first-byte timeout; raise llm.timeoutMs for slow models)",
                      base, res->error);
      break;
    case HTTP_TIMEOUT_IDLE:
      chat->error_kind = LLM_ERR_TIMEOUT;
      msg = xasprintf("LLM endpoint %s timed out: %s (idle-stream timeout)", base, res->error);
      break;
    case HTTP_TIMEOUT_TOTAL:
      chat->error_kind = LLM_ERR_TIMEOUT;
      msg = budget_error(chat);
      break;
    case HTTP_TOO_BIG:
    case HTTP_ABORTED:
    case HTTP_REFUSED:
      msg = xasprintf("LLM endpoint %s: %s", base, res->error);
      break;
    case HTTP_CANCELLED: break;
  }
  chat_finish(chat, LLM_ERROR, msg ? msg : "failed");
  free(msg);
}

static void attempt_start(llm_chat *chat) {
  llm_client *c = chat->client;
  if (c->closing) {
    chat_finish(chat, LLM_CANCELLED, NULL);
    return;
  }
  unsigned long long now = now_ms();
  if (now >= chat->deadline_ms) {
    char *msg = budget_error(chat);
    chat->error_kind = LLM_ERR_TIMEOUT;
    chat_finish(chat, LLM_ERROR, msg);
    free(msg);
    return;
  }
  long left = (long)(chat->deadline_ms - now);
  attempt_reset(chat);
  sse_parser_init(&chat->sse, chat->ep.cfg.max_answer_bytes, on_sse_event, chat);
  llm_answer_init(&chat->ans, chat->ep.cfg.max_answer_bytes);
  dbuf_init(&chat->raw, ERROR_BODY_CAP);
  char *body = llm_body_build_tools(chat->ep.cfg.model, chat->ep.cfg.temperature, chat->msgs, chat->n_msgs,
                                    chat->opts.structured, chat->mode, true,
                                    chat->tools_refused ? NULL : chat->tools, chat->tool_choice);
  const char *headers[] = {"Content-Type: application/json", "Accept: text/event-stream", chat->ep.auth_header,
                           NULL};
  http_request_opts o = {
      .method = "POST",
      .url = chat->chat_url,
      .headers = headers,
      .body = body,
      .body_len = strlen(body),
      .user_agent = chat->ep.cfg.user_agent,
      .connect_timeout_ms = chat->ep.cfg.connect_timeout_ms < left ? chat->ep.cfg.connect_timeout_ms : left,
      .first_byte_timeout_ms = chat->ep.cfg.first_byte_timeout_ms,
      .idle_timeout_ms = chat->ep.cfg.idle_timeout_ms,
      /* what is left of the chat's budget bounds this attempt, however
       * slowly (one byte at a time) the answer arrives */
      .total_timeout_ms = left,
      .max_body = chat->ep.cfg.max_answer_bytes * 4 + (1u << 20), /* SSE framing and JSON wrap the text */
      .on_data = on_http_data,
      .on_headers = on_http_headers,
      .on_done = on_http_done,
      .ud = chat,
  };
  chat->attempts++;
  int err = http_request_start(c->http, &o, &chat->req);
  free(body);
  if (err < 0) {
    char *msg =
        xasprintf("cannot start a request to LLM endpoint %s: %s", chat->ep.cfg.base_url, strerror(-err));
    chat_finish(chat, LLM_ERROR, msg);
    free(msg);
  }
}

int llm_chat_start(llm_client *self, const llm_chat_opts *opts, llm_chat **out) {
  if (out) *out = NULL;
  if (!opts || !opts->on_done || !opts->config) return -EINVAL;
  if (!self || self->closing) return -ECANCELED;
  llm_chat *chat = xcalloc(1, sizeof *chat);
  chat->client = self;
  chat->opts = *opts;
  chat->opts.config = NULL;
  llm__endpoint_init(&chat->ep, opts->config);
  chat->chat_url = xasprintf("%s/chat/completions", chat->ep.cfg.base_url);
  chat->n_msgs = opts->n_messages;
  chat->msgs = xcalloc(chat->n_msgs ? chat->n_msgs : 1, sizeof *chat->msgs);
  for (size_t i = 0; i < chat->n_msgs; i++) {
    chat->msgs[i].role = xstrdup(opts->messages[i].role ? opts->messages[i].role : "user");
    const llm_message *m = &opts->messages[i];
    chat->msgs[i].content = m->content || !m->tool_calls ? xstrdup(m->content ? m->content : "") : NULL;
    chat->msgs[i].tool_calls = m->tool_calls ? xstrdup(m->tool_calls) : NULL;
    chat->msgs[i].tool_call_id = m->tool_call_id ? xstrdup(m->tool_call_id) : NULL;
  }
  chat->opts.messages = NULL;
  if (opts->tools) {
    chat->tools = xstrdup(opts->tools);
    chat->tool_choice = opts->tool_choice ? xstrdup(opts->tool_choice) : NULL;
    cJSON *tl = cJSON_Parse(opts->tools), *it;
    cJSON_ArrayForEach(it, tl) {
      const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
          cJSON_GetObjectItemCaseSensitive(it, "function"), "name"));
      if (!name) continue;
      chat->tool_names = xrealloc(chat->tool_names, (chat->n_tool_names + 1) * sizeof *chat->tool_names);
      chat->tool_names[chat->n_tool_names++] = xstrdup(name);
    }
    cJSON_Delete(tl);
  }
  chat->opts.tools = chat->opts.tool_choice = NULL;
  if (chat->ep.cfg.structured_output != LLM_MODE_AUTO) {
    chat->mode = chat->ep.cfg.structured_output;
    chat->mode_fixed = true;
  } else {
    chat->mode = llm_client_mode_get(self, chat->ep.cfg.base_url, chat->ep.cfg.model);
    if (chat->mode == LLM_MODE_AUTO) chat->mode = LLM_MODE_JSON_SCHEMA;
  }
  sse_parser_init(&chat->sse, 1, NULL, NULL);
  llm_answer_init(&chat->ans, 1);
  dbuf_init(&chat->raw, 1);
  uv_timer_init(self->loop, &chat->timer);
  chat->deadline_ms = now_ms() + (unsigned long long)chat->ep.cfg.total_timeout_ms;
  self->refs++;
  chat->next = self->chats;
  if (self->chats) self->chats->prev = chat;
  self->chats = chat;
  if (out) *out = chat;
  /* The first attempt starts on the loop's next turn, so a start failure is
   * reported through on_done like every other failure. */
  attempt_later(chat, 0);
  return 0;
}

void llm_chat_cancel(llm_chat *chat) {
  if (!chat || chat->finished || chat->cancelled) return;
  chat->cancelled = true;
  if (chat->req) {
    http_request_cancel(chat->req);
  } else {
    chat->pending_status = LLM_CANCELLED;
    uv_timer_start(&chat->timer, on_timer, 0, 0);
  }
}

void llm__chats_cancel_idle(llm_client *c) {
  for (llm_chat *ch = c->chats, *next; ch; ch = next) {
    next = ch->next;
    if (!ch->req && !ch->finished) chat_finish(ch, LLM_CANCELLED, NULL);
  }
}

const char *llm_error_kind_name(llm_error_kind kind) {
  switch (kind) {
    case LLM_ERR_TIMEOUT: return "timeout";
    case LLM_ERR_CONNECT: return "connect";
    case LLM_ERR_STATUS: return "status";
    case LLM_ERR_ANSWER: return "answer";
    case LLM_ERR_NONE: break;
  }
  return NULL;
}
