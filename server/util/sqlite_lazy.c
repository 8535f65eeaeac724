/* libsqlite3 loaded on first use: the SQLite functions crucible calls (the
 * task history, server/store/, and the docs cache, server/docs/), defined
 * here as forwarders to a libsqlite3 opened with dlopen the first time one
 * of them is called. A one-shot `crucible run` or `crucible check` and a
 * server that has not yet stored a task never map it: on Debian its 1.4 MiB
 * and its relocations were ~1.5 ms of every start of crucible (a hello
 * world linked with libsqlite3 against one without, interleaved). The rest
 * of the code calls SQLite as usual; only the build links this file instead
 * of libsqlite3 (meson's sqlite_dep). When libsqlite3 cannot be loaded, the
 * calls fail the way SQLite reports failures (SQLITE_CANTOPEN or
 * SQLITE_ERROR, NULL handles), which the callers already handle.
 *
 * A function not listed here is an undefined reference at link time: add
 * its forwarder below (variadic ones through their va_list variant, as
 * sqlite3_mprintf does). */
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>

#include "lazylib.h"

static const char *const g_sonames[] = {"libsqlite3.so.0", "libsqlite3.so", NULL};
static util_lazylib g_lib = UTIL_LAZYLIB_INIT(g_sonames, "libsqlite3-0");

#define FWD(ret, name, params, args, fail) UTIL_LAZY_FWD(g_lib, ret, name, params, args, fail)
#define FWD_VOID(name, params, args) UTIL_LAZY_FWD_VOID(g_lib, name, params, args)

#define NOLIB "libsqlite3 could not be loaded"

/* Opening and preparing set their out-parameter even when the library is
 * missing, as SQLite does on failure. */
int sqlite3_open_v2(const char *path, sqlite3 **db, int flags, const char *vfs) {
  static int (*f)(const char *, sqlite3 **, int, const char *);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "sqlite3_open_v2");
  if (f) return f(path, db, flags, vfs);
  *db = NULL;
  return SQLITE_CANTOPEN;
}

int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st, const char **tail) {
  static int (*f)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "sqlite3_prepare_v2");
  if (f) return f(db, sql, n, st, tail);
  *st = NULL;
  return SQLITE_ERROR;
}

int sqlite3_prepare_v3(sqlite3 *db, const char *sql, int n, unsigned int flags, sqlite3_stmt **st,
                       const char **tail) {
  static int (*f)(sqlite3 *, const char *, int, unsigned int, sqlite3_stmt **, const char **);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "sqlite3_prepare_v3");
  if (f) return f(db, sql, n, flags, st, tail);
  *st = NULL;
  return SQLITE_ERROR;
}

/* The connection. */
FWD(int, sqlite3_close, (sqlite3 *db), (db), SQLITE_OK)
FWD(int, sqlite3_close_v2, (sqlite3 *db), (db), SQLITE_OK)
FWD(int, sqlite3_busy_timeout, (sqlite3 *db, int ms), (db, ms), SQLITE_ERROR)
FWD(int, sqlite3_exec, (sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *ud,
                        char **errmsg),
    (db, sql, cb, ud, errmsg), SQLITE_ERROR)
FWD(const char *, sqlite3_errmsg, (sqlite3 *db), (db), NOLIB)
FWD(int, sqlite3_errcode, (sqlite3 *db), (db), SQLITE_ERROR)
FWD(int, sqlite3_extended_errcode, (sqlite3 *db), (db), SQLITE_ERROR)
FWD(const char *, sqlite3_errstr, (int rc), (rc), NOLIB)
FWD(int, sqlite3_changes, (sqlite3 *db), (db), 0)
FWD(sqlite3_int64, sqlite3_last_insert_rowid, (sqlite3 *db), (db), 0)
FWD(int, sqlite3_get_autocommit, (sqlite3 *db), (db), 1)
FWD_VOID(sqlite3_interrupt, (sqlite3 *db), (db))
FWD(const char *, sqlite3_libversion, (void), (), NOLIB)

/* Statements. */
FWD(int, sqlite3_step, (sqlite3_stmt *st), (st), SQLITE_ERROR)
FWD(int, sqlite3_reset, (sqlite3_stmt *st), (st), SQLITE_OK)
FWD(int, sqlite3_finalize, (sqlite3_stmt *st), (st), SQLITE_OK)
FWD(int, sqlite3_clear_bindings, (sqlite3_stmt *st), (st), SQLITE_OK)
FWD(int, sqlite3_bind_text, (sqlite3_stmt *st, int i, const char *v, int n, void (*d)(void *)),
    (st, i, v, n, d), SQLITE_ERROR)
FWD(int, sqlite3_bind_blob, (sqlite3_stmt *st, int i, const void *v, int n, void (*d)(void *)),
    (st, i, v, n, d), SQLITE_ERROR)
FWD(int, sqlite3_bind_int, (sqlite3_stmt *st, int i, int v), (st, i, v), SQLITE_ERROR)
FWD(int, sqlite3_bind_int64, (sqlite3_stmt *st, int i, sqlite3_int64 v), (st, i, v), SQLITE_ERROR)
FWD(int, sqlite3_bind_double, (sqlite3_stmt *st, int i, double v), (st, i, v), SQLITE_ERROR)
FWD(int, sqlite3_bind_null, (sqlite3_stmt *st, int i), (st, i), SQLITE_ERROR)
FWD(int, sqlite3_bind_pointer, (sqlite3_stmt *st, int i, void *p, const char *type, void (*d)(void *)),
    (st, i, p, type, d), SQLITE_ERROR)
FWD(int, sqlite3_bind_parameter_count, (sqlite3_stmt *st), (st), 0)
FWD(int, sqlite3_column_count, (sqlite3_stmt *st), (st), 0)
FWD(int, sqlite3_data_count, (sqlite3_stmt *st), (st), 0)
FWD(const char *, sqlite3_column_name, (sqlite3_stmt *st, int i), (st, i), NULL)
FWD(int, sqlite3_column_type, (sqlite3_stmt *st, int i), (st, i), SQLITE_NULL)
FWD(const unsigned char *, sqlite3_column_text, (sqlite3_stmt *st, int i), (st, i), NULL)
FWD(const void *, sqlite3_column_blob, (sqlite3_stmt *st, int i), (st, i), NULL)
FWD(int, sqlite3_column_bytes, (sqlite3_stmt *st, int i), (st, i), 0)
FWD(int, sqlite3_column_int, (sqlite3_stmt *st, int i), (st, i), 0)
FWD(sqlite3_int64, sqlite3_column_int64, (sqlite3_stmt *st, int i), (st, i), 0)
FWD(double, sqlite3_column_double, (sqlite3_stmt *st, int i), (st, i), 0.0)

/* Values and results, for SQL functions (the docs ranking's FTS5 one). */
FWD(void *, sqlite3_value_pointer, (sqlite3_value *v, const char *type), (v, type), NULL)
FWD(int, sqlite3_value_type, (sqlite3_value *v), (v), SQLITE_NULL)
FWD(sqlite3_int64, sqlite3_value_int64, (sqlite3_value *v), (v), 0)
FWD(int, sqlite3_value_int, (sqlite3_value *v), (v), 0)
FWD(double, sqlite3_value_double, (sqlite3_value *v), (v), 0.0)
FWD(const unsigned char *, sqlite3_value_text, (sqlite3_value *v), (v), NULL)
FWD_VOID(sqlite3_result_int, (sqlite3_context *c, int v), (c, v))
FWD_VOID(sqlite3_result_int64, (sqlite3_context *c, sqlite3_int64 v), (c, v))
FWD_VOID(sqlite3_result_double, (sqlite3_context *c, double v), (c, v))
FWD_VOID(sqlite3_result_null, (sqlite3_context *c), (c))
FWD_VOID(sqlite3_result_error, (sqlite3_context *c, const char *msg, int n), (c, msg, n))
FWD_VOID(sqlite3_result_text, (sqlite3_context *c, const char *v, int n, void (*d)(void *)), (c, v, n, d))

/* Memory. sqlite3_free is also passed as a destructor (SQLite then calls
 * this forwarder, which calls its own). */
FWD_VOID(sqlite3_free, (void *p), (p))
FWD(void *, sqlite3_malloc, (int n), (n), NULL)
FWD(char *, sqlite3_vmprintf, (const char *fmt, va_list ap), (fmt, ap), NULL)
FWD(char *, sqlite3_vsnprintf, (int n, char *buf, const char *fmt, va_list ap), (n, buf, fmt, ap), NULL)

char *sqlite3_mprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  return s;
}

char *sqlite3_snprintf(int n, char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = sqlite3_vsnprintf(n, buf, fmt, ap);
  va_end(ap);
  return s;
}
