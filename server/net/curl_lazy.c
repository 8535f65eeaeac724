/* libcurl loaded on first use: the libcurl functions crucible calls,
 * defined here as forwarders to a libcurl opened with dlopen the first time
 * one of them is called. A server that never makes an HTTP request (no
 * LLM, docs crawl or docker engine asked for) and a one-shot `crucible run`
 * never map libcurl and its TLS, LDAP, SSH and Kerberos dependencies
 * (~10 MiB of RSS and several ms of start-up on Debian). The rest of the
 * code calls libcurl as usual; only the build links this file instead of
 * libcurl. When libcurl cannot be loaded, the calls fail the way libcurl
 * reports failures (NULL handles, CURLE_FAILED_INIT). */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>

#include "lazylib.h"

static const char *const g_sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so", NULL};
static util_lazylib g_lib = UTIL_LAZYLIB_INIT(g_sonames, "libcurl4");

#define FWD(ret, name, params, args, fail) UTIL_LAZY_FWD(g_lib, ret, name, params, args, fail)
#define FWD_VOID(name, params, args) UTIL_LAZY_FWD_VOID(g_lib, name, params, args)

FWD(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
FWD(CURL *, curl_easy_init, (void), (), NULL)
FWD_VOID(curl_easy_cleanup, (CURL *h), (h))
FWD(CURLcode, curl_easy_perform, (CURL *h), (h), CURLE_FAILED_INIT)
FWD(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl could not be loaded")
FWD(char *, curl_easy_escape, (CURL *h, const char *s, int n), (h, s, n), NULL)
FWD_VOID(curl_free, (void *p), (p))
FWD(time_t, curl_getdate, (const char *s, const time_t *unused), (s, unused), -1)
FWD(struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s), NULL)
FWD_VOID(curl_slist_free_all, (struct curl_slist *l), (l))
FWD(CURLM *, curl_multi_init, (void), (), NULL)
FWD(CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_BAD_HANDLE)
FWD(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h), CURLM_BAD_HANDLE)
FWD(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h), CURLM_BAD_HANDLE)
FWD(CURLMcode, curl_multi_assign, (CURLM *m, curl_socket_t s, void *p), (m, s, p), CURLM_BAD_HANDLE)
FWD(CURLMcode, curl_multi_socket_action, (CURLM *m, curl_socket_t s, int ev, int *running),
    (m, s, ev, running), CURLM_BAD_HANDLE)
FWD(CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left), NULL)
FWD(CURLU *, curl_url, (void), (), NULL)
FWD_VOID(curl_url_cleanup, (CURLU *u), (u))
FWD(CURLUcode, curl_url_set, (CURLU *u, CURLUPart w, const char *p, unsigned int fl), (u, w, p, fl),
    CURLUE_OUT_OF_MEMORY)
FWD(CURLUcode, curl_url_get, (CURLU *u, CURLUPart w, char **p, unsigned int fl), (u, w, p, fl),
    CURLUE_OUT_OF_MEMORY)

/* The variadic ones take exactly one argument after the option, whose type
 * the option's number range tells (curl.h: CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
  static CURLcode (*f)(CURL *, CURLoption, ...);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "curl_easy_setopt");
  if (!f) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, opt);
  CURLcode r;
  if (opt < CURLOPTTYPE_OBJECTPOINT) r = f(h, opt, va_arg(ap, long));
  else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) r = f(h, opt, va_arg(ap, curl_off_t));
  else r = f(h, opt, va_arg(ap, void *)); /* object, function (same size on every Linux ABI), blob */
  va_end(ap);
  return r;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...) {
  static CURLMcode (*f)(CURLM *, CURLMoption, ...);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "curl_multi_setopt");
  if (!f) return CURLM_BAD_HANDLE;
  va_list ap;
  va_start(ap, opt);
  CURLMcode r;
  if (opt < CURLOPTTYPE_OBJECTPOINT) r = f(m, opt, va_arg(ap, long));
  else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) r = f(m, opt, va_arg(ap, curl_off_t));
  else r = f(m, opt, va_arg(ap, void *));
  va_end(ap);
  return r;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
  static CURLcode (*f)(CURL *, CURLINFO, ...);
  if (!f) *(void **)&f = util_lazylib_sym(&g_lib, "curl_easy_getinfo");
  if (!f) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  CURLcode r = f(h, info, va_arg(ap, void *)); /* always a pointer to the result */
  va_end(ap);
  return r;
}
