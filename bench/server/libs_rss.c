/* Baseline for the idle-RSS figure: a program that does nothing but link the
 * same shared libraries as crucible (libuv, cJSON, libseccomp, tree-sitter;
 * libcurl, libxml2 and SQLite are loaded only on first use:
 * server/net/curl_lazy.c, server/docs/xml_lazy.c, server/util/sqlite_lazy.c,
 * whose forwarders sqlite_dep links here too) and print its RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <seccomp.h>
#include <sqlite3.h>
#include <tree_sitter/api.h>
#include <uv.h>

int main(void) {
  /* Use one symbol of each so no library is dropped at link time (never
   * taken: the environment variable is not set by the benchmark). */
  if (getenv("LIBS_RSS_PRINT_VERSIONS")) {
    printf("%s %s %s %u\n", cJSON_Version(), sqlite3_libversion(), uv_version_string(),
           seccomp_version()->major);
    ts_parser_delete(ts_parser_new());
  }
  char line[256];
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) printf("%ld\n", atol(line + 6));
  if (f) fclose(f);
  return 0;
}
