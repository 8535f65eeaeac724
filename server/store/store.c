/* Transcripts of tasks and attempts in SQLite. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "common.h"
#include "log.h"
#include "xdg.h"

/* The transcripts' file under the XDG state directory. */
#define STORE_DB_NAME "transcripts.db"

struct store {
  sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS tasks ("
    "  uid TEXT PRIMARY KEY, task TEXT, kind TEXT, question TEXT, language TEXT,"
    "  created_at REAL, outcome TEXT, iterations INTEGER DEFAULT 0,"
    "  prompt_tokens INTEGER DEFAULT 0, completion_tokens INTEGER DEFAULT 0,"
    "  duration_ms INTEGER, result TEXT);"
    "CREATE INDEX IF NOT EXISTS tasks_task ON tasks(task, created_at);"
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    "  uid TEXT, iteration INTEGER, created_at REAL, data TEXT,"
    "  PRIMARY KEY(uid, iteration));";

static double wall_now(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return tv.tv_sec + tv.tv_usec / 1e6;
}

const char *store_default_path(char *buf, size_t cap) {
  if (xdg_app_path(XDG_STATE, STORE_DB_NAME, buf, cap) && cap) buf[0] = '\0';
  return buf;
}

store *store_open(const char *path, char *err, size_t errlen) {
  char where[4096];
  if (xdg_file_prepare(XDG_STATE, STORE_DB_NAME, path, where, sizeof where, err, errlen)) return NULL;
  path = where;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 2000);
  char *msg = NULL;
  if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "cannot set up %s: %s", path, msg ? msg : "unknown error");
    sqlite3_free(msg);
    sqlite3_close(db);
    return NULL;
  }
  chmod(path, 0600);
  store *self = xcalloc(1, sizeof *self);
  self->db = db;
  return self;
}

void store_free(store *self) {
  if (!self) return;
  sqlite3_close(self->db);
  free(self);
}

void store_make_uid(char *buf, size_t cap) {
  unsigned r = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &r, sizeof r) != sizeof r) r = (unsigned)getpid();
    close(fd);
  }
  struct timeval tv;
  gettimeofday(&tv, NULL);
  snprintf(buf, cap, "t-%lld%03ld-%08x", (long long)tv.tv_sec, (long)(tv.tv_usec / 1000), r);
}

static int exec_stmt(store *self, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    log_warn("transcript store: %s", sqlite3_errmsg(self->db));
    return -1;
  }
  return 0;
}

int store_task_begin(store *self, const char *uid, const char *task, const char *kind,
                     const char *question, const char *language) {
  if (!self) return -1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(self->db,
                         "INSERT OR REPLACE INTO tasks(uid, task, kind, question, language, created_at, outcome)"
                         " VALUES (?,?,?,?,?,?, 'running')",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, task, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, question ? question : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, language ? language : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_double(st, 6, wall_now());
  return exec_stmt(self, st);
}

int store_attempt_put(store *self, const char *uid, int iteration, const cJSON *attempt) {
  if (!self) return -1;
  char *text = cJSON_PrintUnformatted(attempt);
  if (!text) return -1;
  sqlite3_stmt *st;
  int err = -1;
  if (sqlite3_prepare_v2(self->db, "INSERT OR REPLACE INTO attempts(uid, iteration, created_at, data) VALUES (?,?,?,?)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, iteration);
    sqlite3_bind_double(st, 3, wall_now());
    sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
    err = exec_stmt(self, st);
  }
  cJSON_free(text);
  return err;
}

int store_task_finish(store *self, const char *uid, const char *outcome, int iterations,
                      long long prompt_tokens, long long completion_tokens, long long duration_ms,
                      const cJSON *result) {
  if (!self) return -1;
  char *text = result ? cJSON_PrintUnformatted(result) : NULL;
  sqlite3_stmt *st;
  int err = -1;
  if (sqlite3_prepare_v2(self->db,
                         "UPDATE tasks SET outcome=?, iterations=?, prompt_tokens=?, completion_tokens=?,"
                         " duration_ms=?, result=? WHERE uid=?",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, outcome, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, iterations);
    sqlite3_bind_int64(st, 3, prompt_tokens);
    sqlite3_bind_int64(st, 4, completion_tokens);
    sqlite3_bind_int64(st, 5, duration_ms);
    if (text)
      sqlite3_bind_text(st, 6, text, -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, 6);
    sqlite3_bind_text(st, 7, uid, -1, SQLITE_TRANSIENT);
    err = exec_stmt(self, st);
  }
  cJSON_free(text);
  return err;
}

static void add_text(cJSON *o, const char *key, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  if (t)
    cJSON_AddStringToObject(o, key, (const char *)t);
  else
    cJSON_AddNullToObject(o, key);
}

static cJSON *task_row(sqlite3_stmt *st) {
  cJSON *o = cJSON_CreateObject();
  add_text(o, "uid", st, 0);
  add_text(o, "task", st, 1);
  add_text(o, "kind", st, 2);
  add_text(o, "question", st, 3);
  add_text(o, "language", st, 4);
  cJSON_AddNumberToObject(o, "createdAt", sqlite3_column_double(st, 5));
  add_text(o, "outcome", st, 6);
  cJSON_AddNumberToObject(o, "iterations", sqlite3_column_int(st, 7));
  cJSON *u = cJSON_AddObjectToObject(o, "usage");
  cJSON_AddNumberToObject(u, "promptTokens", (double)sqlite3_column_int64(st, 8));
  cJSON_AddNumberToObject(u, "completionTokens", (double)sqlite3_column_int64(st, 9));
  if (sqlite3_column_type(st, 10) == SQLITE_NULL)
    cJSON_AddNullToObject(o, "durationMs");
  else
    cJSON_AddNumberToObject(o, "durationMs", (double)sqlite3_column_int64(st, 10));
  return o;
}

#define TASK_COLS "uid, task, kind, question, language, created_at, outcome, iterations, prompt_tokens, completion_tokens, duration_ms"

cJSON *store_history(store *self, int limit) {
  cJSON *arr = cJSON_CreateArray();
  if (!self) return arr;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(self->db, "SELECT " TASK_COLS " FROM tasks ORDER BY created_at DESC LIMIT ?", -1, &st,
                         NULL) != SQLITE_OK)
    return arr;
  sqlite3_bind_int(st, 1, limit > 0 ? limit : 20);
  while (sqlite3_step(st) == SQLITE_ROW) cJSON_AddItemToArray(arr, task_row(st));
  sqlite3_finalize(st);
  return arr;
}

cJSON *store_transcript(store *self, const char *task) {
  if (!self) return NULL;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(self->db,
                         "SELECT " TASK_COLS ", result FROM tasks WHERE uid=?1 OR task=?1 "
                         "ORDER BY (uid=?1) DESC, created_at DESC LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
  cJSON *o = NULL;
  char uid[128] = "";
  if (sqlite3_step(st) == SQLITE_ROW) {
    o = task_row(st);
    snprintf(uid, sizeof uid, "%s", (const char *)sqlite3_column_text(st, 0));
    const unsigned char *res = sqlite3_column_text(st, 11);
    cJSON *r = res ? cJSON_Parse((const char *)res) : NULL;
    cJSON_AddItemToObject(o, "result", r ? r : cJSON_CreateNull());
  }
  sqlite3_finalize(st);
  if (!o) return NULL;
  cJSON *atts = cJSON_AddArrayToObject(o, "attempts");
  if (sqlite3_prepare_v2(self->db, "SELECT data FROM attempts WHERE uid=? ORDER BY iteration", -1, &st, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      cJSON *a = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
      if (a) cJSON_AddItemToArray(atts, a);
    }
    sqlite3_finalize(st);
  }
  return o;
}
