/* The docs cache in SQLite: sources, pages (with their validators and links,
 * so a revalidation needs no parsing) and chunks indexed with FTS5. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"
#include "xdg.h"

/* Bump when the schema changes: an older cache is dropped and rebuilt by the
 * next sync (it is only a cache). */
#define SCHEMA_VERSION 6
/* The index's file under the XDG cache directory. */
#define DOCS_DB_NAME "docs.db"
/* A batch commits after this many page writes or this age, whichever first:
 * long enough to amortise FTS5's per-transaction segment flush, short enough
 * that another process sharing the cache never waits long for the lock. */
#define BATCH_MAX_PAGES 256
#define BATCH_MAX_MS 100
/* Location tokens per page: its URL's '/'-prefixes plus the URL itself. */
#define MAX_LOC_TOKENS 64

static const char pragmas[] =
    "PRAGMA journal_mode=WAL;"
    /* WAL + NORMAL: a crash loses at most the last batch, never corrupts */
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA temp_store=MEMORY;"
    "PRAGMA cache_size=-16384;"
    "PRAGMA mmap_size=268435456;";

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS sources ("
    "  source TEXT PRIMARY KEY, kind TEXT, prefix TEXT, added_at REAL, synced_at REAL);"
    "CREATE TABLE IF NOT EXISTS pages ("
    "  id INTEGER PRIMARY KEY, url TEXT UNIQUE NOT NULL, source TEXT, state INTEGER NOT NULL,"
    "  title TEXT, etag TEXT, last_modified TEXT, fetched_at REAL, checked_at REAL,"
    "  bytes INTEGER, links TEXT, text_hash INTEGER, legacy INTEGER NOT NULL DEFAULT 0);"
    /* the same text under two URLs of one source (index and print variants,
     * copies) is indexed once: docs_store_same_text */
    "CREATE INDEX IF NOT EXISTS pages_text_hash ON pages(text_hash);"
    /* loc: the page's location tokens (docs_loc_tokens), so a source filter
     * is part of the FTS5 query instead of a filter after ranking */
    "CREATE TABLE IF NOT EXISTS chunks ("
    "  id INTEGER PRIMARY KEY, page_id INTEGER NOT NULL, seq INTEGER NOT NULL, title TEXT, body TEXT, loc TEXT);"
    "CREATE INDEX IF NOT EXISTS chunks_page ON chunks(page_id, seq);"
    /* External-content FTS5: the text lives once, in chunks. Titles weigh
     * more than bodies and loc not at all (see rank.c). */
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "  title, body, loc, content='chunks', content_rowid='id', tokenize='porter unicode61');"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');"
    "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, title, body, loc) VALUES (new.id, new.title, new.body, new.loc); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, title, body, loc)"
    "  VALUES ('delete', old.id, old.title, old.body, old.loc); END;"
    /* embeddings of chunks (vector.c): one row per chunk and model, unit
     * length float32 in host order; they go with their chunk */
    "CREATE TABLE IF NOT EXISTS chunk_vectors ("
    "  chunk_id INTEGER NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,"
    "  PRIMARY KEY (chunk_id, model)) WITHOUT ROWID;"
    "CREATE TRIGGER IF NOT EXISTS chunks_vd AFTER DELETE ON chunks BEGIN"
    "  DELETE FROM chunk_vectors WHERE chunk_id = old.id; END;";

static const char drop_old[] =
    "DROP TRIGGER IF EXISTS chunks_ai; DROP TRIGGER IF EXISTS chunks_ad; DROP TRIGGER IF EXISTS chunks_vd;"
    "DROP TABLE IF EXISTS chunk_vectors;"
    "DROP TABLE IF EXISTS chunks_vocab; DROP TABLE IF EXISTS chunks_fts; DROP TABLE IF EXISTS chunks;"
    "DROP TABLE IF EXISTS pages; DROP TABLE IF EXISTS sources;";

static const char *const stmt_sql[DOCS_STMT_N] = {
    [DOCS_STMT_PAGE_GET] = "SELECT id, state, etag, last_modified, checked_at, links FROM pages WHERE url = ?1",
    [DOCS_STMT_PAGE_PUT] =
        "INSERT INTO pages (url, source, state, title, etag, last_modified, fetched_at, checked_at,"
        " bytes, links, legacy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)"
        " ON CONFLICT(url) DO UPDATE SET source = ?2, state = ?3, title = ?4, etag = ?5,"
        " last_modified = ?6, fetched_at = ?7, checked_at = ?7, bytes = ?8, links = ?9, legacy = ?10"
        " RETURNING id",
    [DOCS_STMT_CHUNKS_DEL] = "DELETE FROM chunks WHERE page_id = ?1",
    [DOCS_STMT_CHUNK_ADD] = "INSERT INTO chunks (page_id, seq, title, body, loc) VALUES (?1, ?2, ?3, ?4, ?5)",
    [DOCS_STMT_PAGE_TOUCH] = "UPDATE pages SET checked_at = ?1 WHERE id = ?2",
    [DOCS_STMT_PAGE_DEL] = "DELETE FROM pages WHERE id = ?1",
    [DOCS_STMT_SAME_TEXT] = "SELECT url FROM pages WHERE text_hash = ?1 AND source = ?2 AND url != ?3 AND state = 0"
                            " LIMIT 1",
    [DOCS_STMT_HASH_SET] = "UPDATE pages SET text_hash = ?2 WHERE url = ?1",
    [DOCS_STMT_VOCAB_DOC] = "SELECT doc FROM chunks_vocab WHERE term = ?1",
    [DOCS_STMT_COUNT] = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?1",
    [DOCS_STMT_ROWS] = "SELECT count(*) FROM chunks",
    [DOCS_STMT_PAGES_UNDER] =
        "SELECT id, url FROM pages WHERE url = ?1 OR (url >= ?2 AND url < ?3) ORDER BY url",
    /* one step runs the whole ranking: crucible_rank keeps the best rows
     * and is false for every row, so none is sorted or returned (an
     * aggregate around it is refused by FTS5) */
    [DOCS_STMT_RANK] = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 AND crucible_rank(chunks_fts, ?2)",
    [DOCS_STMT_CHUNK_GET] = "SELECT c.title, c.body, p.url, p.title, p.legacy FROM chunks c JOIN pages p ON p.id = c.page_id"
                            " WHERE c.id = ?1 AND p.state = 0",
    [DOCS_STMT_DATA_VERSION] = "PRAGMA data_version",
    /* FTS5's docsize table: one blob of varints (tokens per column) per row */
    [DOCS_STMT_LENGTHS] = "SELECT id, sz FROM chunks_fts_docsize ORDER BY id",
    [DOCS_STMT_PAGES_OUTSIDE] =
        "SELECT EXISTS (SELECT 1 FROM pages WHERE url < ?1) OR EXISTS (SELECT 1 FROM pages WHERE url > ?1 AND url < ?2)"
        " OR EXISTS (SELECT 1 FROM pages WHERE url >= ?3)",
};

double docs_wall_now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

const char *docs_store_default_path(char *buf, size_t cap) {
  if (xdg_app_path(XDG_CACHE, DOCS_DB_NAME, buf, cap) && cap) buf[0] = '\0';
  return buf;
}

static int user_version(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int v = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Creates the schema, dropping a cache written by an older version first. */
static int setup_schema(sqlite3 *db, char **msg) {
  if (sqlite3_exec(db, pragmas, NULL, NULL, msg) != SQLITE_OK) return -EIO;
  int v = user_version(db);
  if (v == SCHEMA_VERSION) return sqlite3_exec(db, schema, NULL, NULL, msg) == SQLITE_OK ? 0 : -EIO;
  char *sql = xasprintf("BEGIN IMMEDIATE; %s %s PRAGMA user_version=%d; COMMIT;", drop_old, schema, SCHEMA_VERSION);
  int rc = sqlite3_exec(db, sql, NULL, NULL, msg);
  free(sql);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -EIO;
  }
  if (v > 0) log_info("docs cache: rebuilt (schema %d -> %d); the next sync fetches the sources again", v,
                      SCHEMA_VERSION);
  return 0;
}

docs_store *docs_store_open(const char *path, char *err, size_t errlen) {
  char where[4096];
  if (xdg_file_prepare(XDG_CACHE, DOCS_DB_NAME, path, where, sizeof where, err, errlen)) return NULL;
  path = where;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 2000);
  char *msg = NULL;
  if (setup_schema(db, &msg)) {
    snprintf(err, errlen, "cannot set up %s: %s (delete the file to rebuild the cache; is FTS5 available?)",
             path, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_close(db);
    return NULL;
  }
  docs_store *s = xcalloc(1, sizeof *s);
  s->db = db;
  if (docs_rank_register(s)) {
    snprintf(err, errlen, "cannot set up ranking on %s: %s (SQLite needs FTS5)", path, sqlite3_errmsg(db));
    docs_store_free(s);
    return NULL;
  }
  return s;
}

void docs_store_free(docs_store *self) {
  if (!self) return;
  if (self->in_txn) docs_store_flush(self);
  for (int i = 0; i < DOCS_STMT_N; i++) sqlite3_finalize(self->stmts[i]);
  docs_rank_unregister(self);
  docs_store_caches_free(self);
  docs_vec_cache_close(&self->vecs);
  sqlite3_close(self->db);
  free(self);
}

sqlite3_stmt *docs_store_stmt(docs_store *self, docs_stmt which) {
  sqlite3_stmt *st = self->stmts[which];
  if (st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  if (sqlite3_prepare_v3(self->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    log_warn("docs cache: %s", sqlite3_errmsg(self->db));
    return NULL;
  }
  self->stmts[which] = st;
  return st;
}

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? xstrdup((const char *)t) : NULL;
}

static void split_links(const char *s, docs_page_info *out) {
  if (!s) return;
  size_t cap = 0;
  while (*s) {
    size_t n = strcspn(s, "\n");
    if (n) {
      if (out->n_links == cap) {
        cap = cap ? cap * 2 : 16;
        out->links = xrealloc(out->links, cap * sizeof *out->links);
      }
      out->links[out->n_links++] = xstrndup(s, n);
    }
    s += n;
    if (*s) s++;
  }
}

int docs_store_page_get(docs_store *self, const char *url, docs_page_info *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_PAGE_GET);
  if (!st) return -EIO;
  sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    out->id = sqlite3_column_int64(st, 0);
    out->state = (docs_page_state)sqlite3_column_int(st, 1);
    out->etag = col_dup(st, 2);
    out->last_modified = col_dup(st, 3);
    out->checked_at = sqlite3_column_double(st, 4);
    split_links((const char *)sqlite3_column_text(st, 5), out);
    ret = 1;
  } else if (rc != SQLITE_DONE) {
    ret = -EIO;
  }
  sqlite3_reset(st);
  return ret;
}

void docs_page_info_close(docs_page_info *self) {
  if (!self) return;
  free(self->etag);
  free(self->last_modified);
  for (size_t i = 0; i < self->n_links; i++) free(self->links[i]);
  free(self->links);
  memset(self, 0, sizeof *self);
}

static int exec(docs_store *self, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    log_warn("docs cache: %s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return -EIO;
  }
  return 0;
}

/* ---- location tokens ---- */

void docs_loc_token(const char *s, size_t n, char out[DOCS_LOC_TOKEN_SIZE]) {
  unsigned long long h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  /* letters then hex then a digit: one unicode61 token that no stemming rule
   * changes, and no word a question would contain */
  snprintf(out, DOCS_LOC_TOKEN_SIZE, "zl%016llx0", h);
}

char *docs_loc_tokens(const char *url) {
  dbuf b;
  dbuf_init(&b, 0);
  char tok[DOCS_LOC_TOKEN_SIZE];
  const char *scheme = strstr(url, "://");
  size_t skip = scheme ? (size_t)(scheme - url) + 3 : 0;
  int n = 0;
  for (size_t i = skip; url[i] && n < MAX_LOC_TOKENS - 1; i++) {
    if (url[i] != '/') continue;
    docs_loc_token(url, i + 1, tok);
    dbuf_addf(&b, "%s ", tok);
    n++;
  }
  docs_loc_token(url, strlen(url), tok);
  dbuf_adds(&b, tok);
  return dbuf_take(&b);
}

/* ---- writes and batches ---- */

static int txn_begin(docs_store *self) {
  if (self->in_txn) return 0;
  if (exec(self, "BEGIN IMMEDIATE")) return -EIO;
  self->in_txn = true;
  self->txn_pages = 0;
  self->txn_started_ms = now_ms();
  return 0;
}

int docs_store_flush(docs_store *self) {
  if (!self->in_txn) return 0;
  self->in_txn = false;
  if (exec(self, "COMMIT")) {
    exec(self, "ROLLBACK");
    return -EIO;
  }
  return 0;
}

void docs_store_batch_begin(docs_store *self) {
  self->batch_users++;
}

int docs_store_batch_end(docs_store *self) {
  if (self->batch_users > 0) self->batch_users--;
  return self->batch_users ? 0 : docs_store_flush(self);
}

int docs_store_flush_due(docs_store *self) {
  if (self->in_txn && (self->txn_pages >= BATCH_MAX_PAGES || now_ms() - self->txn_started_ms >= BATCH_MAX_MS))
    return docs_store_flush(self);
  return 0;
}

/* Runs one write inside the open batch (a savepoint, so a failed page undoes
 * only itself) or, outside any batch, in its own transaction. */
static int write_begin(docs_store *self) {
  self->gen++;
  if (!self->batch_users) return exec(self, "BEGIN IMMEDIATE");
  if (txn_begin(self)) return -EIO;
  return exec(self, "SAVEPOINT page");
}

static int write_end(docs_store *self, int err) {
  if (!self->batch_users) {
    if (err) {
      exec(self, "ROLLBACK");
      return err;
    }
    return exec(self, "COMMIT");
  }
  if (err) {
    exec(self, "ROLLBACK TO page");
    exec(self, "RELEASE page");
    return err;
  }
  if (exec(self, "RELEASE page")) return -EIO;
  self->txn_pages++;
  return docs_store_flush_due(self);
}

static int step_done(sqlite3_stmt *st);

char *docs_store_same_text(docs_store *self, const char *url, const char *source, long long hash) {
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_SAME_TEXT);
  if (!st) return NULL;
  sqlite3_bind_int64(st, 1, hash);
  sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
  char *out = NULL;
  if (sqlite3_step(st) == SQLITE_ROW) out = xstrdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_reset(st);
  return out;
}

int docs_store_text_hash_set(docs_store *self, const char *url, long long hash) {
  if (write_begin(self)) return -EIO;
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_HASH_SET);
  if (!st) return -EIO;
  sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, hash);
  return step_done(st);
}

static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

int docs_store_page_put(docs_store *self, const char *url, const char *source, docs_page_state state,
                        const char *title, const char *etag, const char *last_modified, char *const *links,
                        size_t n_links, const docs_chunks *chunks, size_t bytes) {
  int err = 0;
  dbuf lk;
  dbuf_init(&lk, 0);
  for (size_t i = 0; i < n_links; i++) {
    dbuf_adds(&lk, links[i]);
    dbuf_add(&lk, "\n", 1);
  }
  char *loc = NULL;
  double now = docs_wall_now();
  if (write_begin(self)) {
    dbuf_close(&lk);
    return -EIO;
  }
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_PAGE_PUT);
  if (!st) {
    err = -EIO;
    goto out;
  }
  sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, (int)state);
  sqlite3_bind_text(st, 4, title, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, etag, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, last_modified, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 7, now);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)bytes);
  sqlite3_bind_text(st, 9, lk.data ? lk.data : "", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 10, chunks && chunks->legacy);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    err = -EIO;
    goto out;
  }
  long long id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (state != DOCS_PAGE_OK || chunks) {
    if (!(st = docs_store_stmt(self, DOCS_STMT_CHUNKS_DEL))) {
      err = -EIO;
      goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if ((err = step_done(st))) goto out;
  }
  if (state == DOCS_PAGE_OK && chunks) {
    if (!(st = docs_store_stmt(self, DOCS_STMT_CHUNK_ADD))) {
      err = -EIO;
      goto out;
    }
    loc = docs_loc_tokens(url);
    for (size_t i = 0; i < chunks->n; i++) {
      sqlite3_bind_int64(st, 1, id);
      sqlite3_bind_int(st, 2, (int)i);
      sqlite3_bind_text(st, 3, chunks->v[i].title, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, chunks->v[i].text, (int)chunks->v[i].len, SQLITE_STATIC);
      sqlite3_bind_text(st, 5, loc, -1, SQLITE_STATIC);
      if ((err = step_done(st))) goto out;
    }
  }
out:
  if (err) log_warn("docs cache: cannot store %s: %s", url, sqlite3_errmsg(self->db));
  err = write_end(self, err);
  free(loc);
  dbuf_close(&lk);
  return err;
}

int docs_store_page_del(docs_store *self, long long id) {
  if (write_begin(self)) return -EIO;
  int err = 0;
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_CHUNKS_DEL);
  if (!st) err = -EIO;
  else sqlite3_bind_int64(st, 1, id), err = step_done(st);
  if (!err) {
    if (!(st = docs_store_stmt(self, DOCS_STMT_PAGE_DEL))) err = -EIO;
    else sqlite3_bind_int64(st, 1, id), err = step_done(st);
  }
  return write_end(self, err);
}

int docs_store_prune(docs_store *self, const char *prefix, bool (*gone)(void *ud, const char *url), void *ud) {
  size_t n = strlen(prefix);
  char *exact = xstrndup(prefix, n && prefix[n - 1] == '/' ? n - 1 : n);
  char *hi = xasprintf("%s\xff", prefix);
  long long *ids = NULL;
  size_t n_ids = 0;
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_PAGES_UNDER);
  if (st) {
    sqlite3_bind_text(st, 1, exact, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *url = (const char *)sqlite3_column_text(st, 1);
      if (!url || !gone(ud, url)) continue;
      ids = xrealloc(ids, (n_ids + 1) * sizeof *ids);
      ids[n_ids++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
  }
  /* deleted after the scan: never while the statement walks the table */
  int removed = 0;
  for (size_t i = 0; i < n_ids; i++)
    if (docs_store_page_del(self, ids[i]) == 0) removed++;
  free(ids);
  free(exact);
  free(hi);
  return removed;
}

int docs_store_page_touch(docs_store *self, long long id) {
  sqlite3_stmt *st = docs_store_stmt(self, DOCS_STMT_PAGE_TOUCH);
  if (!st) return -EIO;
  sqlite3_bind_double(st, 1, docs_wall_now());
  sqlite3_bind_int64(st, 2, id);
  return step_done(st);
}

int docs_store_source_put(docs_store *self, const char *source, const char *kind, const char *prefix) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(self->db,
                         "INSERT INTO sources (source, kind, prefix, added_at, synced_at) VALUES (?1, ?2, ?3, ?4, ?4)"
                         " ON CONFLICT(source) DO UPDATE SET kind = ?2, prefix = ?3, synced_at = ?4",
                         -1, &st, NULL) != SQLITE_OK)
    return -EIO;
  sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, prefix, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, docs_wall_now());
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

cJSON *docs_store_list(docs_store *self) {
  cJSON *arr = cJSON_CreateArray();
  sqlite3_stmt *st = NULL, *cnt = NULL;
  if (sqlite3_prepare_v2(self->db, "SELECT source, kind, prefix, synced_at FROM sources ORDER BY source", -1, &st,
                         NULL) != SQLITE_OK)
    return arr;
  /* the same prefix rule as the context: the prefix itself, or below it */
  if (sqlite3_prepare_v2(self->db,
                         "SELECT count(*), min(fetched_at), max(fetched_at),"
                         " (SELECT count(*) FROM chunks c JOIN pages q ON q.id = c.page_id WHERE q.state = 0 AND"
                         "   (q.url = ?1 OR (q.url >= ?2 AND q.url < ?3)))"
                         " FROM pages p WHERE p.state = 0 AND (p.url = ?1 OR (p.url >= ?2 AND p.url < ?3))",
                         -1, &cnt, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return arr;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *prefix = (const char *)sqlite3_column_text(st, 2);
    if (!prefix) prefix = "";
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddStringToObject(o, "kind", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddStringToObject(o, "prefix", prefix);
    size_t n = strlen(prefix);
    char *exact = xstrndup(prefix, n && prefix[n - 1] == '/' ? n - 1 : n);
    char *hi = xasprintf("%s\xff", prefix);
    sqlite3_bind_text(cnt, 1, exact, -1, SQLITE_STATIC);
    sqlite3_bind_text(cnt, 2, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(cnt, 3, hi, -1, SQLITE_STATIC);
    if (sqlite3_step(cnt) == SQLITE_ROW) {
      cJSON_AddNumberToObject(o, "pages", sqlite3_column_int(cnt, 0));
      cJSON_AddNumberToObject(o, "chunks", sqlite3_column_int(cnt, 3));
      cJSON_AddNumberToObject(o, "syncedAt", sqlite3_column_double(st, 3));
      cJSON_AddNumberToObject(o, "oldestFetch", sqlite3_column_double(cnt, 1));
      cJSON_AddNumberToObject(o, "newestFetch", sqlite3_column_double(cnt, 2));
    }
    sqlite3_reset(cnt);
    free(exact);
    free(hi);
    cJSON_AddItemToArray(arr, o);
  }
  sqlite3_finalize(cnt);
  sqlite3_finalize(st);
  return arr;
}
