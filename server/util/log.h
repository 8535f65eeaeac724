/* Leveled logging to stderr or a file; never to stdout. */
#ifndef CRUCIBLE_UTIL_LOG_H
#define CRUCIBLE_UTIL_LOG_H

typedef enum log_level { LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 } log_level;

/* Sink for forwarding log lines elsewhere (window/logMessage); may be NULL. */
typedef void (*log_sink_fn)(void *ud, log_level level, const char *msg);

/* path NULL = stderr. Returns 0 or -errno when the file cannot be opened. */
int log_open(const char *path, log_level level);
void log_close(void);
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 on unknown text. */
log_level log_level_parse(const char *s);
void log_set_sink(log_sink_fn fn, void *ud);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
