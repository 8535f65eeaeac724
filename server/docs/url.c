/* URL canonicalisation and crawl-prefix checks for the docs crawler, on
 * libcurl's URL parser (so links resolve exactly as curl will fetch them). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "common.h"
#include "internal.h"

bool docs_is_url(const char *s) {
  return s && (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

char *docs_url_canon(const char *base, const char *href) {
  if (!href) return NULL;
  /* Links like "mailto:" or "javascript:" are not for us; curl would reject
   * them anyway, but a relative resolution must not be tried on them. */
  while (*href == ' ' || *href == '\t' || *href == '\n' || *href == '\r') href++;
  if (!*href && !base) return NULL;
  CURLU *u = curl_url();
  if (!u) abort();
  char *out = NULL, *scheme = NULL, *host = NULL, *path = NULL;
  if (base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) goto done;
  if (*href && curl_url_set(u, CURLUPART_URL, href, 0) != CURLUE_OK) goto done;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto done;
  if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) goto done;
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) goto done;
  for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
  if (curl_url_set(u, CURLUPART_HOST, host, 0) != CURLUE_OK) goto done;
  curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
  curl_url_set(u, CURLUPART_USER, NULL, 0);
  curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) goto done;
  size_t n = strlen(path);
  if (ends_with(path, n, "/index.html") || ends_with(path, n, "/index.htm")) {
    *strrchr(path, '/') = '\0';
    size_t k = strlen(path);
    char *np = xmalloc(k + 2);
    memcpy(np, path, k);
    np[k] = '/';
    np[k + 1] = '\0';
    curl_url_set(u, CURLUPART_PATH, np, 0);
    free(np);
  } else if (n == 0) {
    curl_url_set(u, CURLUPART_PATH, "/", 0);
  }
  char *s = NULL;
  if (curl_url_get(u, CURLUPART_URL, &s, CURLU_NO_DEFAULT_PORT) != CURLUE_OK) goto done;
  out = xstrdup(s);
  curl_free(s);
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(path);
  curl_url_cleanup(u);
  return out;
}

char *docs_url_prefix(const char *canon) {
  /* scheme://authority ends at the first '/' after "//" */
  const char *auth = strstr(canon, "//");
  if (!auth) return NULL;
  const char *path = strchr(auth + 2, '/');
  if (!path) return xasprintf("%s/", canon);
  size_t plen = strcspn(path, "?#");
  const char *last = path + plen;
  while (last > path && last[-1] != '/') last--;
  /* last..path+plen is the final segment */
  size_t seg = (size_t)(path + plen - last);
  if (seg > 0 && !memchr(last, '.', seg)) return xasprintf("%.*s/", (int)(path + plen - canon), canon);
  return xstrndup(canon, (size_t)(last - canon));
}

bool docs_url_in_prefix(const char *url, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) == 0) return true;
  /* "http://h/docs" is the folder "http://h/docs/" itself */
  return n > 0 && prefix[n - 1] == '/' && strlen(url) == n - 1 && strncmp(url, prefix, n - 1) == 0;
}

char *docs_source_prefix(const char *source, char **root) {
  if (root) *root = NULL;
  if (!source || !*source) return NULL;
  if (docs_is_url(source)) {
    char *canon = docs_url_canon(NULL, source);
    if (!canon) return NULL;
    char *prefix = docs_url_prefix(canon);
    if (root) *root = canon;
    else free(canon);
    return prefix;
  }
  char *real = realpath(source, NULL);
  if (!real) return NULL;
  struct stat st;
  if (stat(real, &st) != 0) {
    free(real);
    return NULL;
  }
  char *prefix = S_ISDIR(st.st_mode) ? xasprintf("%s%s", real, strcmp(real, "/") ? "/" : "") : xstrdup(real);
  if (root) *root = real;
  else free(real);
  return prefix;
}
