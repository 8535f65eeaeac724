/* A docs cache over real folders for unit tests: a temporary folder holding
 * docs/ (pages the test writes) and docs.db (the SQLite file), and a sync
 * of local sources run to its end on a loop. */
#ifndef CRUCIBLE_TESTS_DOCS_FIXTURE_H
#define CRUCIBLE_TESTS_DOCS_FIXTURE_H

#include <stdbool.h>

#include <uv.h>

#include "docs.h"

typedef struct tu_docs {
  char dir[256], docs[300], db[300];
  docs_store *store;
} tu_docs;

/* Makes the folder, docs/ and the store; tag names the folder. */
void tu_docs_init(tu_docs *d, const char *tag);

/* Frees the store and removes the folder. */
void tu_docs_close(tu_docs *d);

/* What one sync reported: its stats, the error (owned, NULL on success;
 * st.embed_error is copied as "set" or NULL, since the sync owns the text)
 * and how often each callback ran. */
typedef struct tu_sync_result {
  docs_sync_stats st;
  char *error;
  int done_calls, progress_calls;
} tu_sync_result;

/* Runs a sync of o to its end and checks that it ends exactly once, never
 * from inside docs_sync_start. loop NULL: a loop of its own, closed after
 * (it must be left empty); else the caller's, run until it has nothing to
 * do. cancel: cancelled right after it starts. */
tu_sync_result tu_docs_sync(docs_store *store, uv_loop_t *loop, const docs_sync_opts *o, bool cancel);

/* A sync of one local folder, depth 5, cache ignored (freshness -1),
 * expected to succeed. */
tu_sync_result tu_docs_sync_folder(docs_store *store, const char *folder);

#endif
