/* `crucible docs`: add documentation sources to the cache (crawl or walk
 * them), list what is cached, and show the context the model would get for a
 * question.
 *
 * Exit status: 0 ok; 1 the sync failed or fetched nothing but errors, or the
 * search found nothing; 2 usage; 130 cancelled (SIGINT/SIGTERM). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "cli.h"
#include "config.h"
#include "common.h"
#include "core.h"
#include "docs.h"
#include "embed.h"
#include "embeddings.h"
#include "term.h"

#define MAX_CLI_SOURCES 64

static const char usage[] =
    "usage: crucible docs add [URL|PATH...] [--max-depth N] [--max-pages N] [--max-page-bytes N]\n"
    "                        [--max-total-bytes N] [--freshness SECONDS] [--concurrency N]\n"
    "                        [--timeout MS] [--json] [--db FILE]\n"
    "       crucible docs list [--json] [--db FILE]\n"
    "       crucible docs search \"QUERY\" [--budget TOKENS] [--mode search|all] [--source URL|PATH]...\n"
    "                        [--explain] [--json] [--db FILE]\n"
    "  (any of them: --raw-output writes control characters unescaped to a terminal)\n"
    "The cache lives in $XDG_CACHE_HOME/crucible/docs.db (default ~/.cache/crucible/docs.db).\n"
    "add defaults to the settings' docs.maxDepth and docs.maxPages, and with no source to docs.sources.\n"
    "search defaults to the settings' docs.sources, docs.mode and docs.budgetTokens; --explain shows why\n"
    "each chunk ranked (the score's parts per query term), on stderr (in \"explain\" with --json).\n"
    "With docs.embeddingModel set, add embeds the chunks and search ranks hybrid (bm25 fused with the\n"
    "embeddings' cosine) through the settings' LLM endpoint (/embeddings); without it, or when the\n"
    "endpoint fails, ranking is lexical and says so.\n";

typedef struct add_cli {
  docs_sync *sync;
  docs_sync_stats st;
  char *error;
  char *embed_error;
  bool done, json;
  uv_signal_t sigint, sigterm;
} add_cli;

static bool parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static void on_progress(void *ud, const docs_sync_stats *st, const char *url) {
  if (st->embedded && !strcmp(url, "embeddings")) {
    term_printf(stderr, "docs: %d chunks embedded\n", st->embedded);
    return;
  }
  term_printf(stderr, "docs: %d fetched, %d cached, %d skipped, %d errors  %s\n", st->fetched, st->cached, st->skipped,
          st->errors, url);
}

static void on_sig_closed(uv_handle_t *h) {
  (void)h;
}

static void on_done(void *ud, const docs_sync_stats *st, const char *error) {
  add_cli *c = ud;
  c->st = *st;
  c->error = error ? xstrdup(error) : NULL;
  c->embed_error = st->embed_error ? xstrdup(st->embed_error) : NULL;
  c->done = true;
  c->sync = NULL;
  uv_close((uv_handle_t *)&c->sigint, on_sig_closed);
  uv_close((uv_handle_t *)&c->sigterm, on_sig_closed);
}

static void on_signal(uv_signal_t *h, int signum) {
  add_cli *c = h->data;
  if (c->sync) docs_sync_cancel(c->sync);
}

static int cmd_add(docs_store *ds, int argc, char **argv) {
  const char *sources[MAX_CLI_SOURCES];
  size_t n = 0;
  docs_sync_opts o = {.max_depth = DOCS_DEFAULT_MAX_DEPTH, .freshness_s = -1};
  add_cli c = {0};
  int status = 2;
  /* the settings' depth and page caps, as an ask uses them (the options
   * override them); with no source named, the settings' docs.sources */
  cfg settings;
  cfg_init_cli(&settings);
  o.max_depth = settings.docs.max_depth;
  o.max_pages = settings.docs.max_pages;
  for (int i = 1; i < argc; i++) {
    long v;
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
#define OPT(name, lo, hi, field)                                                                        \
  if (!strcmp(a, name)) {                                                                               \
    if (!has_val || !parse_long(argv[++i], lo, hi, &v)) {                                               \
      fprintf(stderr, "crucible docs add: %s needs a number from %ld to %ld\n", name, (long)(lo), (long)(hi)); \
      goto out;                                                                                         \
    }                                                                                                   \
    field = v;                                                                                          \
    continue;                                                                                           \
  }
    OPT("--max-depth", 0, 1000, o.max_depth)
    OPT("--max-pages", 1, 10000000, o.max_pages)
    OPT("--max-page-bytes", 1, 1L << 30, o.max_page_bytes)
    OPT("--max-total-bytes", 1, 1L << 40, o.max_total_bytes)
    OPT("--freshness", 0, 1L << 30, o.freshness_s)
    OPT("--concurrency", 1, 64, o.concurrency)
    OPT("--timeout", 1, 3600000, o.timeout_ms)
#undef OPT
    if (!strcmp(a, "--json")) {
      c.json = true;
      continue;
    }
    if (a[0] == '-' && a[1]) {
      fprintf(stderr, "crucible docs add: unknown option %s\n%s", a, usage);
      goto out;
    }
    if (n == MAX_CLI_SOURCES) {
      fprintf(stderr, "crucible docs add: at most %d sources at once\n", MAX_CLI_SOURCES);
      goto out;
    }
    sources[n++] = a;
  }
  for (int i = 0; !n && i < settings.docs.sources.n && i < MAX_CLI_SOURCES; i++) sources[i] = settings.docs.sources.items[i];
  if (!n) n = settings.docs.sources.n < MAX_CLI_SOURCES ? (size_t)settings.docs.sources.n : MAX_CLI_SOURCES;
  if (!n) {
    fputs(usage, stderr);
    fputs("crucible docs add: name a source, or set docs.sources in the settings\n", stderr);
    goto out;
  }
  o.sources = sources;
  o.n_sources = n;
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_init(&loop, &c.sigint);
  uv_signal_init(&loop, &c.sigterm);
  c.sigint.data = c.sigterm.data = &c;
  uv_signal_start(&c.sigint, on_signal, SIGINT);
  uv_signal_start(&c.sigterm, on_signal, SIGTERM);
  /* embeddings through the settings' endpoint, when docs.embeddingModel is set */
  llm_client *llm = NULL;
  llm_config lc;
  core_llm_config(&settings, &lc);
  agent_embedder emb;
  if (settings.docs.embedding_model[0] && llm_client_new(&loop, &llm) == 0)
    agent_embedder_init(&emb, llm, &lc, settings.docs.embedding_model);
  else
    agent_embedder_init(&emb, NULL, NULL, NULL);
  if (agent_embedder_on(&emb)) o.embedder = &emb.base;
  int r = docs_sync_start(ds, &loop, &o, on_progress, on_done, &c, &c.sync);
  if (r < 0) {
    fprintf(stderr, "crucible docs add: cannot start: %s\n", strerror(-r));
    uv_close((uv_handle_t *)&c.sigint, on_sig_closed);
    uv_close((uv_handle_t *)&c.sigterm, on_sig_closed);
  }
  while (r >= 0 && !c.done && uv_run(&loop, UV_RUN_ONCE)) {
  }
  llm_client_free(llm);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  llm_config_close(&lc);
  status = 1;
  if (r < 0) goto out;
  const docs_sync_stats *st = &c.st;
  if (c.json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "fetched", st->fetched);
    cJSON_AddNumberToObject(j, "cached", st->cached);
    cJSON_AddNumberToObject(j, "skipped", st->skipped);
    cJSON_AddNumberToObject(j, "errors", st->errors);
    cJSON_AddNumberToObject(j, "pages", st->pages);
    cJSON_AddNumberToObject(j, "bytes", (double)st->bytes);
    cJSON_AddNumberToObject(j, "removed", st->removed);
    cJSON_AddBoolToObject(j, "cancelled", st->cancelled);
    cJSON_AddNumberToObject(j, "embedded", st->embedded);
    if (c.embed_error) cJSON_AddStringToObject(j, "embeddingError", c.embed_error);
    if (c.error) cJSON_AddStringToObject(j, "error", c.error);
    term_print_json(j, false);
    cJSON_Delete(j);
  } else {
    printf("%d pages (%d fetched, %d from the cache), %d skipped, %d errors, %llu bytes downloaded", st->pages,
           st->fetched, st->cached, st->skipped, st->errors, st->bytes);
    if (st->removed) printf(", %d removed (files gone)", st->removed);
    if (st->embedded) printf(", %d chunks embedded", st->embedded);
    putchar('\n');
  }
  if (c.embed_error)
    term_printf(stderr, "crucible docs add: embeddings failed, search stays lexical for the chunks without a vector: %s\n",
                c.embed_error);
  if (c.error) term_printf(stderr, "crucible docs add: %s\n", c.error);
  status = st->cancelled ? 130 : (c.error || (st->pages == 0 && st->errors > 0)) ? 1 : 0;
  free(c.error);
  free(c.embed_error);
out:
  cfg_close(&settings);
  return status;
}

static void fmt_time(double t, char *buf, size_t cap) {
  if (t <= 0) {
    snprintf(buf, cap, "never");
    return;
  }
  time_t tt = (time_t)t;
  struct tm tm;
  localtime_r(&tt, &tm);
  strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static int cmd_list(docs_store *ds, int argc, char **argv) {
  bool json = argc > 1 && !strcmp(argv[1], "--json");
  cJSON *list = docs_store_list(ds);
  if (json) {
    term_print_json(list, false);
  } else if (cJSON_GetArraySize(list) == 0) {
    puts("no documentation sources yet: add one with 'crucible docs add URL|PATH'");
  } else {
    cJSON *it;
    cJSON_ArrayForEach(it, list) {
      char synced[32], oldest[32];
      fmt_time(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "syncedAt")), synced, sizeof synced);
      fmt_time(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "oldestFetch")), oldest, sizeof oldest);
      term_printf(stdout, "%s\n  %d pages, %d chunks; synced %s; oldest page fetched %s\n",
             cJSON_GetStringValue(cJSON_GetObjectItem(it, "source")),
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "pages")),
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "chunks")), synced, oldest);
    }
  }
  cJSON_Delete(list);
  return 0;
}

static double num(const cJSON *o, const char *k) {
  return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static const char *str(const cJSON *o, const char *k) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
  return s ? s : "";
}

/* --explain on a terminal: the query, then each ranked chunk's score and
 * its parts, on stderr (stdout holds the context). Titles and URLs are the
 * pages' text: escaped by term_printf. */
static void print_explain(const cJSON *why) {
  const cJSON *it;
  term_printf(stderr, "ranking: %s; FTS5 query: %s\n", str(why, "ranking"), str(why, "match"));
  if (!strcmp(str(why, "ranking"), "hybrid"))
    term_printf(stderr, "hybrid: %s, %.0f vectors scanned in %.1f ms; score = sum of 1/(%.0f + rank) + page evidence\n",
                str(why, "embeddingModel"), num(why, "vectorsScanned"), num(why, "vectorScanMs"), num(why, "rrfK"));
  term_printf(stderr, "terms (rows that hold them, idf):");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(why, "terms")) {
    if (num(it, "idf") > 0) term_printf(stderr, " %s=%s (%.0f, %.2f)", str(it, "word"), str(it, "term"), num(it, "rows"), num(it, "idf"));
  }
  term_printf(stderr, "\nheadings weigh %.1f; score = bm25 x URL weight + page evidence; rows scored: %.0f\n",
              num(why, "titleWeight"), num(why, "rowsScored"));
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(why, "hits")) {
    term_printf(stderr, "#%.0f %7.3f %s%s\n    %s\n", num(it, "rank"), num(it, "score"),
                cJSON_IsTrue(cJSON_GetObjectItem(it, "inPrompt")) ? "[in prompt] " : "", str(it, "title"),
                str(it, "url"));
    if (cJSON_GetObjectItem(it, "rrf"))
      term_printf(stderr, "    lexical rank %.0f, vector rank %.0f (cosine %.3f), rrf %.4f\n", num(it, "lexicalRank"),
                  num(it, "vectorRank"), num(it, "cosine"), num(it, "rrf"));
    term_printf(stderr, "    bm25 %.3f x %.2f + page evidence %.3f; %.0f tokens (length norm %.2f):", num(it, "bm25"),
                num(it, "urlWeight"), num(it, "pageEvidence"), num(it, "length"), num(it, "lengthNorm"));
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(it, "parts")) {
      term_printf(stderr, " %s tf %.0f -> %.3f;", str(p, "term"), num(p, "tf"), num(p, "score"));
    }
    term_printf(stderr, "\n");
  }
}

typedef struct query_embed {
  float *v;
  int dim;
  char *error;
  bool done;
} query_embed;

static void on_query_embedded(void *ud, const float *vecs, size_t n, int dim, const char *error) {
  query_embed *q = ud;
  q->done = true;
  if (error || !vecs || n != 1 || dim <= 0) {
    q->error = xstrdup(error ? error : "no vector in the answer");
    return;
  }
  q->v = xcalloc((size_t)dim, sizeof *q->v);
  memcpy(q->v, vecs, (size_t)dim * sizeof *q->v);
  q->dim = dim;
}

/* The question's embedding through the settings' endpoint, on a loop of
 * the command's own (the ask does the same on the server's loop). */
static void embed_query(const cfg *settings, const char *query, query_embed *q) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  llm_client *llm = NULL;
  llm_config lc;
  core_llm_config(settings, &lc);
  agent_embedder emb;
  int err = llm_client_new(&loop, &llm);
  if (!err) {
    agent_embedder_init(&emb, llm, &lc, settings->docs.embedding_model);
    err = emb.base.start(&emb.base, &query, 1, AGENT_QUERY_EMBED_TIMEOUT_MS, on_query_embedded, q, NULL);
  }
  if (err) {
    q->done = true;
    q->error = xasprintf("the request could not start: %s", strerror(-err));
  }
  while (!q->done && uv_run(&loop, UV_RUN_ONCE)) {
  }
  llm_client_free(llm);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  llm_config_close(&lc);
}

static int cmd_search(docs_store *ds, int argc, char **argv) {
  /* Defaults come from the user's settings, so the search shows what an
   * ask would put in the prompt. */
  cfg settings;
  cfg_init_cli(&settings);
  const char *query = NULL, *mode_arg = NULL;
  cfg_docs_mode mode = settings.docs.mode;
  const char *sources[MAX_CLI_SOURCES];
  size_t n = 0;
  long budget = settings.docs.budget_tokens;
  bool json = false, explain = false;
  int status = 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--budget") && i + 1 < argc) {
      if (!parse_long(argv[++i], 0, 10000000, &budget)) {
        fputs("crucible docs search: --budget needs a number of tokens\n", stderr);
        goto out;
      }
    } else if (!strcmp(a, "--mode") && i + 1 < argc) {
      mode_arg = argv[++i];
    } else if (!strcmp(a, "--source") && i + 1 < argc) {
      if (n < MAX_CLI_SOURCES) sources[n++] = argv[++i];
    } else if (!strcmp(a, "--json")) {
      json = true;
    } else if (!strcmp(a, "--explain")) {
      explain = true;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "crucible docs search: unknown option %s\n%s", a, usage);
      goto out;
    } else if (!query) {
      query = a;
    } else {
      fputs("crucible docs search: give the query as one argument (quote it)\n", stderr);
      goto out;
    }
  }
  if (mode_arg && cfg_docs_mode_parse(mode_arg, &mode)) {
    fputs("crucible docs search: --mode is search or all\n", stderr);
    goto out;
  }
  if (!query && mode == CFG_DOCS_SEARCH) {
    fputs(usage, stderr);
    goto out;
  }
  if (!n)
    for (int i = 0; i < settings.docs.sources.n && n < MAX_CLI_SOURCES; i++) sources[n++] = settings.docs.sources.items[i];
  if (explain && mode != CFG_DOCS_SEARCH) {
    fputs("crucible docs search: --explain needs --mode search\n", stderr);
    goto out;
  }
  cJSON *used = NULL, *why = NULL;
  char *warning = NULL;
  /* hybrid ranking when docs.embeddingModel is set and the question can be
   * embedded; else lexical, and the reason is said */
  query_embed qe = {0};
  char *lexical_why = NULL;
  const char *model = settings.docs.embedding_model;
  if (*model && mode == CFG_DOCS_SEARCH && query && *query) embed_query(&settings, query, &qe);
  docs_query_vec qv = {.model = model, .v = qe.v, .dim = qe.dim};
  bool hybrid = false;
  char *ctx = docs_context_build_hybrid(ds, query ? query : "", qe.v ? &qv : NULL, n ? sources : NULL, n,
                                        cfg_docs_mode_name(mode), (int)budget, &used, &warning,
                                        explain ? &why : NULL, &hybrid);
  if (!*model) lexical_why = xstrdup("docs.embeddingModel is not set");
  else if (qe.error) lexical_why = xasprintf("the question could not be embedded: %s", qe.error);
  else if (qe.v && !hybrid)
    lexical_why = xasprintf("no chunk of these sources has a vector of model '%s' (run crucible docs add)", model);
  if (why && lexical_why) cJSON_AddStringToObject(why, "lexicalBecause", lexical_why);
  if (lexical_why && *model && !json) term_printf(stderr, "ranking: lexical: %s\n", lexical_why);
  if (json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "ranking", hybrid ? "hybrid" : "lexical");
    cJSON_AddStringToObject(j, "context", ctx);
    cJSON_AddNumberToObject(j, "chars", (double)strlen(ctx));
    cJSON_AddNumberToObject(j, "tokens", (double)((strlen(ctx) + 3) / 4));
    cJSON_AddItemToObject(j, "sources", used);
    used = NULL;
    if (warning) cJSON_AddStringToObject(j, "warning", warning);
    else cJSON_AddNullToObject(j, "warning");
    if (why) cJSON_AddItemToObject(j, "explain", why);
    why = NULL;
    term_print_json(j, false);
    cJSON_Delete(j);
  } else {
    /* crawled pages are someone else's text: shown, not obeyed, on a terminal */
    term_puts(stdout, ctx);
    term_end(stdout);
    if (why) print_explain(why);
  }
  if (warning) term_printf(stderr, "warning: %s\n", warning);
  status = *ctx ? 0 : 1;
  if (!*ctx && !json) fputs("no documentation matched the query\n", stderr);
  cJSON_Delete(used);
  cJSON_Delete(why);
  free(warning);
  free(ctx);
  free(qe.v);
  free(qe.error);
  free(lexical_why);
out:
  cfg_close(&settings);
  return status;
}

int cli_docs(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  /* --db FILE anywhere after the verb picks another cache file */
  const char *db = NULL;
  char **args = xcalloc((size_t)argc + 1, sizeof *args);
  int na = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
    else args[na++] = argv[i];
  }
  char err[512];
  docs_store *ds = docs_store_open(db, err, sizeof err);
  if (!ds) {
    fprintf(stderr, "crucible docs: %s\n", err);
    free(args);
    return 1;
  }
  int status;
  if (!strcmp(args[0], "add")) status = cmd_add(ds, na, args);
  else if (!strcmp(args[0], "list")) status = cmd_list(ds, na, args);
  else if (!strcmp(args[0], "search")) status = cmd_search(ds, na, args);
  else {
    fprintf(stderr, "crucible docs: unknown command '%s'\n%s", args[0], usage);
    status = 2;
  }
  docs_store_free(ds);
  free(args);
  return status;
}
