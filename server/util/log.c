/* Leveled logging to stderr or a file; never to stdout. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static FILE *log_file;
static log_level log_lvl = LOG_WARN;
static log_sink_fn log_sink;
static void *log_sink_ud;

int log_open(const char *path, log_level level) {
  log_lvl = level;
  if (!path) return 0;
  FILE *f = fopen(path, "ae");
  if (!f) return -errno;
  setvbuf(f, NULL, _IOLBF, 0);
  log_file = f;
  return 0;
}

void log_close(void) {
  if (log_file) fclose(log_file);
  log_file = NULL;
}

void log_set_level(log_level level) { log_lvl = level; }
log_level log_get_level(void) { return log_lvl; }

log_level log_level_parse(const char *s) {
  if (!strcmp(s, "error")) return LOG_ERROR;
  if (!strcmp(s, "warn") || !strcmp(s, "warning")) return LOG_WARN;
  if (!strcmp(s, "info")) return LOG_INFO;
  if (!strcmp(s, "debug")) return LOG_DEBUG;
  return 0;
}

void log_set_sink(log_sink_fn fn, void *ud) {
  log_sink = fn;
  log_sink_ud = ud;
}

void log_msg(log_level level, const char *fmt, ...) {
  if (level > log_lvl) return;
  static const char *names[] = {"", "error", "warn", "info", "debug"};
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  FILE *out = log_file ? log_file : stderr;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  fprintf(out, "%02d:%02d:%02d.%03ld crucible %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
          ts.tv_nsec / 1000000, names[level], msg);
  if (log_sink) log_sink(log_sink_ud, level, msg);
}
