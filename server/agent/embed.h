/* The docs module's embedder (docs_embedder) backed by the LLM client's
 * /embeddings: the settings' endpoint and key, docs.embeddingModel. */
#ifndef CRUCIBLE_AGENT_EMBED_H
#define CRUCIBLE_AGENT_EMBED_H

#include "client.h"
#include "docs.h"

/* How long a question's embedding may take before an ask or a search ranks
 * lexically instead: a local model answers one short text in well under a
 * second, and the ask waits on it. */
#define AGENT_QUERY_EMBED_TIMEOUT_MS 3000

typedef struct agent_embedder {
  docs_embedder base; /* hand &base to docs */
  llm_client *llm;
  const llm_config *cfg;
} agent_embedder;

/* Fills self; llm, cfg and model are borrowed and must outlive every use.
 * An empty or NULL model leaves base.start NULL: no embeddings. */
void agent_embedder_init(agent_embedder *self, llm_client *llm, const llm_config *cfg, const char *model);
/* Whether self can embed (a model and a client). */
bool agent_embedder_on(const agent_embedder *self);

#endif
