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

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS sources ("
    "  source TEXT PRIMARY KEY, kind TEXT, prefix TEXT, added_at REAL, synced_at REAL);"
    "CREATE TABLE IF NOT EXISTS pages ("
    "  id INTEGER PRIMARY KEY, url TEXT UNIQUE NOT NULL, source TEXT, state INTEGER NOT NULL,"
    "  title TEXT, etag TEXT, last_modified TEXT, fetched_at REAL, checked_at REAL,"
    "  bytes INTEGER, links TEXT);"
    "CREATE TABLE IF NOT EXISTS chunks ("
    "  id INTEGER PRIMARY KEY, page_id INTEGER NOT NULL, seq INTEGER NOT NULL, title TEXT, body TEXT);"
    "CREATE INDEX IF NOT EXISTS chunks_page ON chunks(page_id, seq);"
    /* External-content FTS5: the text lives once, in chunks. Titles weigh
     * more than bodies (see bm25() in context.c). */
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "  title, body, content='chunks', content_rowid='id', tokenize='porter unicode61');"
    "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END;";

double docs_wall_now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

const char *docs_store_default_path(char *buf, size_t cap) {
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/')
    snprintf(buf, cap, "%s/crucible/docs.db", xdg);
  else
    snprintf(buf, cap, "%s/.cache/crucible/docs.db", getenv("HOME") ? getenv("HOME") : "/tmp");
  return buf;
}

static int make_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
  return 0;
}

docs_store *docs_store_open(const char *path, char *err, size_t errlen) {
  char def[4096];
  if (!path) path = docs_store_default_path(def, sizeof def);
  int e = make_parent(path);
  if (e) {
    snprintf(err, errlen, "cannot create the directory for %s: %s (set XDG_CACHE_HOME to a writable folder)",
             path, strerror(-e));
    return NULL;
  }
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 2000);
  char *msg = NULL;
  if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "cannot set up %s: %s (delete the file to rebuild the cache; is FTS5 available?)",
             path, msg ? msg : "unknown error");
    sqlite3_free(msg);
    sqlite3_close(db);
    return NULL;
  }
  docs_store *s = xcalloc(1, sizeof *s);
  s->db = db;
  return s;
}

void docs_store_free(docs_store *self) {
  if (!self) return;
  sqlite3_close(self->db);
  free(self);
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
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(self->db,
                         "SELECT id, state, etag, last_modified, checked_at, links FROM pages WHERE url = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return -EIO;
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
  sqlite3_finalize(st);
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

int docs_store_page_put(docs_store *self, const char *url, const char *source, docs_page_state state,
                        const char *title, const char *etag, const char *last_modified, char *const *links,
                        size_t n_links, const docs_chunks *chunks, size_t bytes) {
  int err = 0;
  sqlite3_stmt *st = NULL;
  dbuf lk;
  dbuf_init(&lk, 0);
  for (size_t i = 0; i < n_links; i++) {
    dbuf_adds(&lk, links[i]);
    dbuf_add(&lk, "\n", 1);
  }
  double now = docs_wall_now();
  if (exec(self, "BEGIN IMMEDIATE")) {
    dbuf_close(&lk);
    return -EIO;
  }
  if (sqlite3_prepare_v2(self->db,
                         "INSERT INTO pages (url, source, state, title, etag, last_modified, fetched_at, checked_at,"
                         " bytes, links) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)"
                         " ON CONFLICT(url) DO UPDATE SET source = ?2, state = ?3, title = ?4, etag = ?5,"
                         " last_modified = ?6, fetched_at = ?7, checked_at = ?7, bytes = ?8, links = ?9"
                         " RETURNING id",
                         -1, &st, NULL) != SQLITE_OK) {
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
  if (sqlite3_step(st) != SQLITE_ROW) {
    err = -EIO;
    goto out;
  }
  long long id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  if (state != DOCS_PAGE_OK || chunks) {
    if (sqlite3_prepare_v2(self->db, "DELETE FROM chunks WHERE page_id = ?1", -1, &st, NULL) != SQLITE_OK) {
      err = -EIO;
      goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) err = -EIO;
    sqlite3_finalize(st);
    st = NULL;
    if (err) goto out;
  }
  if (state == DOCS_PAGE_OK && chunks) {
    if (sqlite3_prepare_v2(self->db, "INSERT INTO chunks (page_id, seq, title, body) VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
      err = -EIO;
      goto out;
    }
    for (size_t i = 0; i < chunks->n; i++) {
      sqlite3_bind_int64(st, 1, id);
      sqlite3_bind_int(st, 2, (int)i);
      sqlite3_bind_text(st, 3, chunks->v[i].title, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, chunks->v[i].text, (int)chunks->v[i].len, SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_DONE) {
        err = -EIO;
        goto out;
      }
      sqlite3_reset(st);
    }
  }
out:
  sqlite3_finalize(st);
  dbuf_close(&lk);
  if (err) {
    log_warn("docs cache: cannot store %s: %s", url, sqlite3_errmsg(self->db));
    exec(self, "ROLLBACK");
  } else if (exec(self, "COMMIT")) {
    err = -EIO;
  }
  return err;
}

int docs_store_page_touch(docs_store *self, long long id) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(self->db, "UPDATE pages SET checked_at = ?1 WHERE id = ?2", -1, &st, NULL) != SQLITE_OK)
    return -EIO;
  sqlite3_bind_double(st, 1, docs_wall_now());
  sqlite3_bind_int64(st, 2, id);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
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
