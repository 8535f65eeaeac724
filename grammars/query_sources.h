/* The project's tree-sitter queries, embedded at build time from grammars/<language>/<name>.scm. */
#ifndef CRUCIBLE_GRAMMARS_QUERY_SOURCES_H
#define CRUCIBLE_GRAMMARS_QUERY_SOURCES_H

#include <stddef.h>

typedef struct chk_query_source {
  const char *language; /* "python", "javascript", "bash" */
  const char *name;     /* file stem, e.g. "imports" */
  const char *path;     /* source path, for error messages */
  const char *text;
} chk_query_source;

extern const chk_query_source chk_query_sources[];
extern const size_t chk_query_source_count;

#endif
