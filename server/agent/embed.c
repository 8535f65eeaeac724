/* docs_embedder over llm_embed_start: the LLM client's long-lived HTTP
 * client, on the loop. */
#include "embed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "embeddings.h"

typedef struct call {
  docs_embed_fn done;
  void *ud;
} call;

static void on_done(void *ud, const llm_embed_result *res) {
  call *c = ud;
  c->done(c->ud, res->ok ? res->vecs : NULL, res->n, res->dim, res->ok ? NULL : res->error ? res->error : "failed");
  free(c);
}

static int start(const docs_embedder *base, const char *const *texts, size_t n, long timeout_ms,
                 docs_embed_fn done, void *ud, void **req) {
  const agent_embedder *self = container_of(base, const agent_embedder, base);
  call *c = xcalloc(1, sizeof *c);
  c->done = done;
  c->ud = ud;
  llm_embed *e = NULL;
  int err = llm_embed_start(self->llm, self->cfg, base->model, texts, n, timeout_ms, on_done, c, &e);
  if (err) {
    free(c);
    return err;
  }
  if (req) *req = e;
  return 0;
}

static void cancel(void *req) {
  llm_embed_cancel(req);
}

void agent_embedder_init(agent_embedder *self, llm_client *llm, const llm_config *cfg, const char *model) {
  memset(self, 0, sizeof *self);
  self->llm = llm;
  self->cfg = cfg;
  self->base.model = model;
  if (llm && cfg && model && *model) {
    self->base.start = start;
    self->base.cancel = cancel;
  }
}

bool agent_embedder_on(const agent_embedder *self) {
  return self->base.start != NULL;
}
