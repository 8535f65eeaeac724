/* Libraries loaded on first use (lazylib.h). */
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void *util_lazylib_sym(util_lazylib *self, const char *name) {
  pthread_mutex_lock(&g_mu);
  if (!self->tried) {
    self->tried = true;
    for (const char *const *n = self->sonames; *n && !self->handle; n++)
      self->handle = dlopen(*n, RTLD_LAZY | RTLD_LOCAL);
    if (!self->handle)
      fprintf(stderr, "crucible: cannot load %s (%s): install %s\n", self->sonames[0], dlerror(), self->install);
  }
  void *h = self->handle;
  pthread_mutex_unlock(&g_mu);
  return h ? dlsym(h, name) : NULL;
}
