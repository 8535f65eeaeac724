/* The documentation tools an ask offers the model (docs_search, docs_read):
 * their definitions, and one call run against the docs store within the
 * ask's bounds. */
#ifndef CRUCIBLE_AGENT_TOOLS_H
#define CRUCIBLE_AGENT_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "docs.h"

#define AGENT_TOOL_CALLS_PER_ATTEMPT 4 /* calls answered per attempt; later ones get an error */
#define AGENT_TOOL_READ_TOKENS 2000    /* one docs_read result at most */
#define AGENT_TOOL_SEARCH_HITS 8       /* sections one docs_search lists */

/* The tools as OpenAI's "tools" array, JSON text (static). */
const char *agent_tools_json(void);
/* Whether name is one of them. */
bool agent_tool_known(const char *name);

/* The tokens of tool results an ask may receive: docs.budgetTokens × 4/3
 * (8,000 at the default 6,000), so a client that lowers the prompt's budget
 * lowers this one too, and none can raise it past the user file's. */
long agent_tool_tokens_max(int docs_budget_tokens);

/* What the calls of an ask have used so far. */
typedef struct agent_tool_bounds {
  int calls;         /* answered calls in this attempt (reset per attempt) */
  long tokens;       /* tokens of results in this ask */
  long tokens_max;
} agent_tool_bounds;

/* What one call came to. */
typedef struct agent_tool_outcome {
  char *content;     /* the tool message's text for the model (new string) */
  char *argument;    /* what it asked: the query, or the URL (+ "#section") (new string) */
  char *error;       /* why it was refused or failed (new string), or NULL */
  bool bounded;      /* refused because a bound is reached: the model must answer now */
  long tokens;       /* tokens (chars/4) of content when answered; 0 when refused */
  char *page_title;  /* docs_read: the page read (new strings), else NULL */
  char *page_url;
} agent_tool_outcome;

/* Runs the call `name`(args_json) against store, seeing only the pages
 * under sources. A call past AGENT_TOOL_CALLS_PER_ATTEMPT, or with the
 * ask's tokens spent, is refused with a result telling the model to answer
 * now; a result longer than the tokens left is cut to them. Updates *b.
 * Release *out with agent_tool_outcome_close. */
void agent_tool_run(docs_store *store, const char *const *sources, size_t n_sources, const char *name,
                    const char *args_json, agent_tool_bounds *b, agent_tool_outcome *out);
void agent_tool_outcome_close(agent_tool_outcome *self);

#endif
