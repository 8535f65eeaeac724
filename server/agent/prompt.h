/* The words of an ask task: the system prompt, the question with its context,
 * and the feedback that tells the model why an attempt failed. Pure functions. */
#ifndef CRUCIBLE_AGENT_PROMPT_H
#define CRUCIBLE_AGENT_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "check.h"
#include "client.h"
#include "sandbox.h"

/* A growing list of chat messages that owns its strings. */
typedef struct agent_conv {
  llm_message *msgs;
  size_t n, cap;
} agent_conv;

void agent_conv_init(agent_conv *self);
void agent_conv_close(agent_conv *self);
/* Appends a message; content is copied. */
void agent_conv_add(agent_conv *self, const char *role, const char *content);
/* Appends a message, taking ownership of content (malloc'd). */
void agent_conv_take(agent_conv *self, const char *role, char *content);
/* Appends an assistant message that called tools: content may be NULL,
 * tool_calls is the calls' JSON array text (llm_message.tool_calls); both
 * copied. */
void agent_conv_add_calls(agent_conv *self, const char *content, const char *tool_calls);
/* Appends the tool message answering call `id` (both copied). */
void agent_conv_add_tool(agent_conv *self, const char *id, const char *content);
/* Fills dst (not initialised, or closed) with a copy of src's messages. */
void agent_conv_copy(agent_conv *dst, const agent_conv *src);

/* The system prompt for a language, with documentation context (may be NULL). */
char *agent_system_prompt(const char *language, const char *docs);
/* The line of the system prompt naming the n third-party modules the
 * program's environment has (a compact list, cut near 1,500 bytes with how
 * many more), or saying there are none. New string. */
char *agent_modules_note(const char *const *modules, size_t n);
/* The user's question with an optional editor selection (text, uri, first line). */
char *agent_question_prompt(const char *question, const char *context_text, const char *context_uri);

/* Why the checks rejected the program: each error diagnostic with its line
 * number (1-based, in the joined program) and the offending source line.
 * At most `budget` bytes. */
char *agent_check_feedback(const chk_report *report, const char *program, size_t budget);
/* Why a run failed: the outcome, the limit that ended it with its value
 * (10 s, 512 MiB), the exit code or signal, the line the error (or the
 * program when the limit stopped it) was at, and the tail of stderr —
 * library frames condensed (agent_condense_traceback) — and of stdout,
 * trimmed to `budget` bytes, keeping the end. stage names what ran:
 * "import test", "program", "test". */
char *agent_run_feedback(const sbx_result *res, const char *stage, size_t budget);

/* stderr of a lang run with the frames outside the user's script (its base
 * name, "main.py") condensed: each run of library frames, with their source
 * lines, becomes one line saying how many and where the last was. Python
 * tracebacks and node stacks; other text is kept as it is. New string. */
char *agent_condense_traceback(sbx_lang lang, const char *text, size_t len, const char *script);
/* The program normalised for comparing answers: trailing blanks and blank
 * lines dropped. New string. */
char *agent_program_key(const char *program);
/* Whether a question asks for output (print, show, compute, how many, …):
 * then a program that prints nothing has not answered it. */
bool agent_question_wants_output(const char *question);

/* The ask to reflect on the failure before trying again. */
const char *agent_reflect_prompt(void);
/* The ask to answer again in the structured form. */
const char *agent_retry_prompt(void);

/* Keeps the last `budget` bytes of text (starting at a line boundary when
 * one is near), prefixed with a note of how much was cut. New string. */
char *agent_tail(const char *text, size_t len, size_t budget);

#endif
