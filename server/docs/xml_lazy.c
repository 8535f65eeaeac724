/* libxml2 loaded on first use: the libxml2 functions crucible calls (only
 * server/docs/html.c parses HTML), defined here as forwarders to a libxml2
 * opened with dlopen the first time one of them is called. A one-shot
 * `crucible run`, `crucible check` and a server that never reads a page do
 * not map libxml2 and what it pulls in on Debian (ICU with its 30 MiB data
 * library, libstdc++ and its static constructors, liblzma, libz): ~10 ms of
 * start-up each time crucible starts. The rest of the code calls libxml2 as
 * usual; only the build links this file instead of libxml2. When libxml2
 * cannot be loaded, the calls fail the way libxml2 reports failures (NULL
 * documents and strings), which html.c already handles. */
#include <libxml/HTMLparser.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>

#include "lazylib.h"

static const char *const g_sonames[] = {"libxml2.so.2", "libxml2.so", NULL};
static util_lazylib g_lib = UTIL_LAZYLIB_INIT(g_sonames, "libxml2");

#define FWD(ret, name, params, args, fail) UTIL_LAZY_FWD(g_lib, ret, name, params, args, fail)
#define FWD_VOID(name, params, args) UTIL_LAZY_FWD_VOID(g_lib, name, params, args)

FWD_VOID(xmlInitParser, (void), ())
FWD(htmlDocPtr, htmlReadMemory, (const char *buf, int size, const char *url, const char *enc, int opts),
    (buf, size, url, enc, opts), NULL)
FWD(xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *doc), (doc), NULL)
FWD_VOID(xmlFreeDoc, (xmlDocPtr doc), (doc))
FWD(xmlChar *, xmlGetProp, (const xmlNode *node, const xmlChar *name), (node, name), NULL)
FWD(xmlChar *, xmlNodeGetContent, (const xmlNode *node), (node), NULL)

/* xmlFree is a variable in libxml2 (a function pointer, free unless
 * xmlMemSetup changed it): ours calls libxml2's. crucible is not linked with
 * --export-dynamic, so libxml2's own uses of xmlFree keep libxml2's. */
static void lazy_free(void *p) {
  static xmlFreeFunc *real;
  if (!real) *(void **)&real = util_lazylib_sym(&g_lib, "xmlFree");
  if (real && *real) (*real)(p);
  else free(p);
}
xmlFreeFunc xmlFree = lazy_free;
