/* A shared library loaded on first use. crucible's build links a file of
 * forwarders (server/net/curl_lazy.c, server/docs/xml_lazy.c) in place of a
 * heavy library: each forwarder has the library's own name and signature
 * and calls the real function, found with dlsym in the library dlopen'ed
 * the first time any of them is called. A process that never calls the
 * library never maps it (nor what it pulls in). */
#ifndef CRUCIBLE_LAZYLIB_H
#define CRUCIBLE_LAZYLIB_H

#include <stdbool.h>

typedef struct util_lazylib {
  const char *const *sonames; /* tried in order, NULL-terminated */
  const char *install;        /* what to install, said when none loads */
  bool tried;                 /* under lazylib.c's lock */
  void *handle;               /* NULL until loaded, or when none loaded */
} util_lazylib;

#define UTIL_LAZYLIB_INIT(sonames_, install_) {.sonames = (sonames_), .install = (install_)}

/* The address of `name` in the library, loading it (once per process, from
 * any thread) on the first call; NULL when the library cannot be loaded (said
 * once on stderr: "cannot load <soname> (...): install <install>") or lacks
 * the symbol. */
void *util_lazylib_sym(util_lazylib *self, const char *name);

/* A forwarder of the library `lib` (a util_lazylib): function `name` with
 * parameter list `params` (in parentheses) called with `args`; `fail` is
 * returned when the library or the symbol is missing. The symbol is looked
 * up once. */
#define UTIL_LAZY_FWD(lib, ret, name, params, args, fail) \
  ret name params {                                       \
    static ret(*f) params;                                \
    if (!f) *(void **)&f = util_lazylib_sym(&(lib), #name); \
    return f ? f args : fail;                             \
  }
#define UTIL_LAZY_FWD_VOID(lib, name, params, args)       \
  void name params {                                      \
    static void(*f) params;                               \
    if (!f) *(void **)&f = util_lazylib_sym(&(lib), #name); \
    if (f) f args;                                        \
  }

#endif
