/* The documentation tools of an ask: what the model is offered, and one
 * call answered from the docs store, within the ask's bounds. */
#include "tools.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"

static const char TOOLS_JSON[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"docs_search\","
    "\"description\":\"Search the documentation attached to this request. Returns the titles and URLs of the "
    "best-matching sections; read one with docs_read. At most 4 documentation tool calls per answer.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\","
    "\"description\":\"Words to search for: names of functions, modules, concepts\"}},"
    "\"required\":[\"query\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"docs_read\","
    "\"description\":\"Read one page of the documentation attached to this request (a URL from docs_search, "
    "or from a Source: line of the documentation given), from its start or from a section, up to about "
    "2000 tokens.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\","
    "\"description\":\"The page's URL or path\"},\"section\":{\"type\":\"string\","
    "\"description\":\"Optional: a section title (or part of one) to start reading at\"}},"
    "\"required\":[\"url\"]}}}]";

const char *agent_tools_json(void) {
  return TOOLS_JSON;
}

bool agent_tool_known(const char *name) {
  return name && (strcmp(name, "docs_search") == 0 || strcmp(name, "docs_read") == 0);
}

long agent_tool_tokens_max(int docs_budget_tokens) {
  return docs_budget_tokens > 0 ? (long)docs_budget_tokens * 4 / 3 : 0;
}

void agent_tool_outcome_close(agent_tool_outcome *self) {
  free(self->content);
  free(self->argument);
  free(self->error);
  free(self->page_title);
  free(self->page_url);
  memset(self, 0, sizeof *self);
}

static void refuse(agent_tool_outcome *out, char *why, bool bounded) {
  out->error = why;
  out->bounded = bounded;
  out->content = bounded ? xasprintf("Error: %s. Do not call docs_search or docs_read again: answer now with the "
                                     "solution, using what you have read.", why)
                         : xasprintf("Error: %s.", why);
}

static const char *str_arg(const cJSON *args, const char *key) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, key));
  return s && *s ? s : NULL;
}

void agent_tool_run(docs_store *store, const char *const *sources, size_t n_sources, const char *name,
                    const char *args_json, agent_tool_bounds *b, agent_tool_outcome *out) {
  memset(out, 0, sizeof *out);
  cJSON *args = cJSON_Parse(args_json ? args_json : "");
  bool search = name && strcmp(name, "docs_search") == 0;
  const char *query = str_arg(args, "query"), *url = str_arg(args, "url"), *section = str_arg(args, "section");
  if (search) out->argument = xstrdup(query ? query : "");
  else if (url && section) out->argument = xasprintf("%s#%s", url, section);
  else out->argument = xstrdup(url ? url : "");
  if (b->calls >= AGENT_TOOL_CALLS_PER_ATTEMPT) {
    refuse(out, xasprintf("the limit of %d documentation tool calls per answer is reached",
                          AGENT_TOOL_CALLS_PER_ATTEMPT), true);
    goto out;
  }
  if (b->tokens >= b->tokens_max) {
    refuse(out, xasprintf("the %ld tokens of documentation tool results this request allows are spent",
                          b->tokens_max), true);
    goto out;
  }
  b->calls++;
  char *text = NULL;
  if (!agent_tool_known(name)) {
    refuse(out, xasprintf("there is no tool \"%s\": the tools are docs_search and docs_read", name ? name : ""),
           false);
    goto out;
  }
  if (!cJSON_IsObject(args) || (search ? !query : !url)) {
    refuse(out, xasprintf("the arguments must be a JSON object with a string \"%s\"", search ? "query" : "url"),
           false);
    goto out;
  }
  if (search) {
    char *hits = docs_tool_search(store, query, sources, n_sources, AGENT_TOOL_SEARCH_HITS);
    text = *hits ? xasprintf("Sections matching \"%s\":\n%sRead one with docs_read (url, and the section title).",
                             query, hits)
                 : xasprintf("No section of the documentation matches \"%s\". Try other words.", query);
    free(hits);
  } else {
    int rc = docs_tool_read(store, url, section, sources, n_sources, (size_t)AGENT_TOOL_READ_TOKENS * 4, &text);
    if (rc == -EACCES || rc == -EINVAL) {
      refuse(out, xasprintf("%s is not a page of the documentation attached to this request", url), false);
      goto out;
    }
    if (rc < 0) {
      refuse(out, xasprintf("%s is not an indexed page%s: use a URL from docs_search", url,
                            rc == -ENOENT ? "" : " (the cache could not be read)"),
             false);
      goto out;
    }
    /* "# <title>\nSource: <url>\n": the page, for AskResult.sources */
    const char *nl = strchr(text, '\n');
    const char *src = nl ? strstr(nl, "Source: ") : NULL;
    if (nl && text[0] == '#' && src == nl + 1) {
      out->page_title = xstrndup(text + 2, (size_t)(nl - text - 2));
      const char *end = strchr(src + 8, '\n');
      out->page_url = end ? xstrndup(src + 8, (size_t)(end - src - 8)) : xstrdup(src + 8);
    }
  }
  /* the ask's token bound holds exactly: a longer result is cut to it */
  size_t room = (size_t)(b->tokens_max - b->tokens) * 4, len = strlen(text);
  if (len > room) {
    while (room > 0 && ((unsigned char)text[room] & 0xC0) == 0x80) room--;
    text[room] = '\0';
    char *cut = xasprintf("%s\n[cut: the documentation tool results of this request reached their %ld tokens]",
                          text, b->tokens_max);
    free(text);
    text = cut;
    len = room;
  }
  out->tokens = (long)((len + 3) / 4);
  b->tokens += out->tokens;
  out->content = text;
out:
  cJSON_Delete(args);
}
