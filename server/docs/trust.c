/* Which documentation sources a client (a workspace, not the user) may name:
 * local paths inside its workspace folders, and URLs fetched from public
 * addresses only, unless the user file allows more. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "docs.h"
#include "internal.h"

#define USER_FILE "$XDG_CONFIG_HOME/crucible/config.json"

/* Whether real path p is root or below it (both real paths). */
static bool path_inside(const char *p, const char *root) {
  size_t n = strlen(root);
  while (n > 1 && root[n - 1] == '/') n--;
  if (n == 1 && root[0] == '/') return p[0] == '/';
  return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

int docs_source_vet(const char *source, const char *const *roots, size_t n_roots, bool allow_local,
                    bool allow_private, char **resolved, char **why) {
  *resolved = *why = NULL;
  if (docs_is_url(source)) {
    *resolved = xstrdup(source);
    return allow_private ? 0 : 1;
  }
  /* The real path is what gets walked, so a symlink swapped in after this
   * check cannot redirect the walk (the walk does not follow links out of
   * the folder either). */
  char *real = realpath(source, NULL);
  if (!real) {
    *why = xasprintf("documentation source '%s' refused: no such file or folder (a workspace may name "
                     "http(s) URLs and paths inside its workspace folders)", source);
    return -ENOENT;
  }
  if (allow_local) {
    *resolved = real;
    return 0;
  }
  for (size_t i = 0; i < n_roots; i++) {
    if (path_inside(real, roots[i])) {
      *resolved = real;
      return 0;
    }
  }
  *why = xasprintf("documentation source '%s' refused: %s%s%s is outside the workspace folders%s; a "
                   "workspace may only name paths inside them. To allow it, list it in docs.sources in "
                   "the user config file (%s), or set docs.allowLocal: true there",
                   source, strcmp(real, source) ? "it resolves to " : "it", strcmp(real, source) ? real : "",
                   strcmp(real, source) ? ", which" : "", n_roots ? "" : " (the client gave none)", USER_FILE);
  free(real);
  return -EACCES;
}
