/* Embeddings from an OpenAI-compatible endpoint: POST {base_url}/embeddings
 * ({"model", "input": [...]} -> data[i].embedding), as Ollama, llama.cpp's
 * llama-server and OpenAI serve it, over the LLM client's HTTP client. */
#ifndef CRUCIBLE_LLM_EMBEDDINGS_H
#define CRUCIBLE_LLM_EMBEDDINGS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct llm_client llm_client;
typedef struct llm_config llm_config;
typedef struct llm_embed llm_embed;

/* At most this many inputs per request. */
#define LLM_EMBED_MAX_INPUTS 256
/* A vector longer than this is refused as garbage. */
#define LLM_EMBED_MAX_DIM 8192

typedef struct llm_embed_result {
  bool ok;
  const char *error;  /* NULL when ok; says what failed and where; never contains the API key */
  long http_status;   /* 0 when no answer came */
  bool cancelled;
  const float *vecs;  /* ok: n x dim floats, input i at vecs[i * dim]; borrowed for the callback */
  size_t n;
  int dim;
  double ms;
} llm_embed_result;

/* Exactly once per started request, from the loop. */
typedef void (*llm_embed_fn)(void *ud, const llm_embed_result *res);

/* Starts embedding texts[0..n) with `model` at cfg's endpoint (base URL, API
 * key and user agent of cfg, copied; cfg's model is not used). timeout_ms
 * bounds the whole request (<= 0: cfg's timeout_ms). Returns 0 and sets *out
 * (may be NULL; valid until cb returns), or a negative errno and nothing is
 * called back: -EINVAL for no text, too many or no callback, -ECANCELED when
 * self is NULL or being freed. */
int llm_embed_start(llm_client *self, const llm_config *cfg, const char *model, const char *const *texts, size_t n,
                    long timeout_ms, llm_embed_fn cb, void *ud, llm_embed **out);
/* Aborts the request; cb follows from the loop with cancelled set. Must not
 * be called after cb. */
void llm_embed_cancel(llm_embed *self);

/* Parses an embeddings answer for n inputs into a new array of n x *dim
 * floats (data[i].index orders them when present). NULL and *why (a static
 * string) when it is not one: a test seam for the wire format. */
float *llm_embed_parse(const char *body, size_t len, size_t n, int *dim, const char **why);

#endif
