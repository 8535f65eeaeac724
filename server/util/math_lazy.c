/* libm loaded on first use: the three functions of it crucible calls (log
 * in the docs' BM25 weights, sqrt in the embedding vectors, ceil in the LLM
 * client's Retry-After) are defined here as forwarders to a libm opened with
 * dlopen the first time one of them is called, as sqlite_lazy.c does for
 * SQLite. A one-shot `crucible run` never calls them and never maps libm:
 * its load and its IFUNC relocations were ~0.4 ms of every start of
 * crucible here (bench/README.md, issue 15). libm comes with the C library;
 * if it could not be loaded, the functions return NaN.
 *
 * A libm function not listed here is an undefined reference at link time:
 * add its forwarder below. */
#include <math.h>
#include <stddef.h>

#include "lazylib.h"

static const char *const g_sonames[] = {"libm.so.6", "libm.so", NULL};
static util_lazylib g_lib = UTIL_LAZYLIB_INIT(g_sonames, "libc6");

UTIL_LAZY_FWD(g_lib, double, log, (double x), (x), NAN)
UTIL_LAZY_FWD(g_lib, double, sqrt, (double x), (x), NAN)
UTIL_LAZY_FWD(g_lib, double, ceil, (double x), (x), NAN)
