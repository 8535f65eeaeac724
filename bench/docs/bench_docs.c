/* Benchmark of the docs module: crawl rate of a generated 1,000-page site
 * served by tests/fakes/docs_site.py (concurrency 4 against 1), indexing
 * throughput (extract + chunk + store, batched against a transaction per
 * page and against extraction alone), and query latency over 50,000 chunks
 * (target: median <= 5 ms) for four classes of question, against the
 * previous bm25() query on the same index.
 *
 * Usage: bench_docs [PAGES (1000; 0 = no crawl)] [CHUNKS (50000)]
 *        bench_docs --queries DB FILE [BUDGET_TOKENS (6000) [MODEL]]
 *   (the second form times docs_context_build in-process on an existing
 *   cache, once per line of FILE, and prints "<median ms>\t<line>" per
 *   line; bench/docs/retrieval/run.py uses it. With MODEL each line is
 *   "question<TAB>v1 v2 ...", the question's embedding, and the query is
 *   docs_context_build_hybrid with it (the embedding request itself not
 *   timed); the output then has "hybrid" or "lexical" (how it ranked)
 *   after the time.) */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"

extern char **environ;

static double ms_since(unsigned long long t0) {
  return (double)(now_ns() - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- crawl ---- */

typedef struct crawl_run {
  docs_sync_stats st;
  bool done;
} crawl_run;

static void on_done(void *ud, const docs_sync_stats *st, const char *error) {
  crawl_run *r = ud;
  r->st = *st;
  r->done = true;
  if (error) fprintf(stderr, "bench: sync error: %s\n", error);
}

/* A new, empty store at db (exits when it cannot be made). */
static docs_store *fresh_store(const char *db) {
  unlink(db);
  char err[256];
  docs_store *store = docs_store_open(db, err, sizeof err);
  if (!store) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
  return store;
}

static double crawl(const char *db, const char *url, int concurrency, int pages, docs_sync_stats *st) {
  docs_store *store = fresh_store(db);
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *src[] = {url};
  docs_sync_opts o = {.sources = src, .n_sources = 1, .max_depth = 100, .max_pages = pages + 10,
                      .concurrency = concurrency, .freshness_s = 0};
  crawl_run r = {0};
  unsigned long long t0 = now_ns();
  if (docs_sync_start(store, &loop, &o, NULL, on_done, &r, NULL) < 0) exit(1);
  uv_run(&loop, UV_RUN_DEFAULT);
  double ms = ms_since(t0);
  uv_loop_close(&loop);
  docs_store_free(store);
  *st = r.st;
  return ms;
}

static pid_t start_site(int pages, char *url, size_t cap) {
  int fds[2];
  if (pipe(fds) < 0) exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char n[32];
  snprintf(n, sizeof n, "%d", pages);
  char *argv[] = {"python3", DOCS_SITE_PY, "--generate", n, NULL};
  pid_t pid;
  if (posix_spawnp(&pid, "python3", &fa, NULL, argv, environ) != 0) {
    fprintf(stderr, "bench: cannot start python3 %s\n", DOCS_SITE_PY);
    exit(1);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[512];
  if (!fgets(line, sizeof line, f) || strncmp(line, "listening on ", 13) != 0) {
    fprintf(stderr, "bench: the docs site did not start\n");
    exit(1);
  }
  fclose(f);
  line[strcspn(line, "\n")] = '\0';
  snprintf(url, cap, "%s", line + 13);
  return pid;
}

/* ---- corpus ---- */

static const char *const vocab_seed[] = {"widget", "gizmo", "sprocket", "lever", "spring", "gear", "pulley",
                                         "axle", "valve", "socket", "install", "configure", "error", "timeout",
                                         "buffer", "stream", "parse", "render", "plot", "frame", "column"};

/* Words real documentation repeats everywhere, with the share of chunks
 * each appears in: the terms that make a question match most of an index. */
static const struct {
  const char *w;
  unsigned pct;
} common_words[] = {{"function", 60}, {"return", 45}, {"value", 40}, {"example", 30}, {"data", 25}, {"file", 15}};

/* A deterministic vocabulary of 5,000 words: a few real ones and made-up
 * ones, drawn with a skew so some are common and most are rare. */
static char vocab[5000][12];

static void make_vocab(void) {
  unsigned s = 42;
  for (int i = 0; i < 5000; i++) {
    if (i < (int)ARRAY_LEN(vocab_seed)) {
      snprintf(vocab[i], sizeof vocab[i], "%s", vocab_seed[i]);
      continue;
    }
    int len = 4 + i % 6;
    for (int k = 0; k < len; k++) {
      s = s * 1103515245u + 12345u;
      vocab[i][k] = (char)('a' + (s >> 16) % 26);
    }
    vocab[i][len] = '\0';
  }
}

static unsigned rnd(unsigned *s, unsigned n) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 8) % n;
}

static const char *word(unsigned *s) {
  /* skew: min of two draws favours low indexes */
  unsigned r = rnd(s, 5000), r2 = rnd(s, 5000);
  return vocab[r < r2 ? r : r2];
}

/* ~150 words of body text, common words included at their rates. */
static void add_body(dbuf *b, unsigned *s, int words) {
  for (size_t c = 0; c < ARRAY_LEN(common_words); c++)
    if (rnd(s, 100) < common_words[c].pct) dbuf_addf(b, "%s ", common_words[c].w);
  for (int w = 0; w < words; w++) dbuf_addf(b, "%s ", word(s));
}

static char *make_page(int i, unsigned *s) {
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_addf(&b, "<html><head><title>Page %d</title><script>var x=1;</script></head><body><nav>nav</nav>"
                "<main><h1>Page %d</h1>", i, i);
  for (int sec = 0; sec < 4; sec++) {
    dbuf_addf(&b, "<h2>Section %d</h2><p>", sec);
    add_body(&b, s, 150);
    dbuf_adds(&b, "</p><pre><code>x = compute(1, 2)\nprint(x)</code></pre>");
  }
  dbuf_adds(&b, "</main><footer>f</footer></body></html>");
  return dbuf_take(&b);
}

/* Indexes n pages of html into a fresh store at db; batched or one
 * transaction per page. Returns the milliseconds taken. */
static double index_pages(const char *db, char **html, int n, bool batch) {
  docs_store *store = fresh_store(db);
  unsigned long long t0 = now_ns();
  if (batch) docs_store_batch_begin(store);
  for (int i = 0; i < n; i++) {
    docs_html h;
    docs_html_extract(html[i], strlen(html[i]), &h);
    docs_chunks c = {0};
    docs_chunk_split(h.text, h.text_len, h.title, DOCS_CHUNK_CHARS, &c);
    char u[64];
    snprintf(u, sizeof u, "http://bench/docs/p%d.html", i);
    docs_store_page_put(store, u, "http://bench/docs/", DOCS_PAGE_OK, h.title, NULL, NULL, NULL, 0, &c,
                        strlen(html[i]));
    docs_chunks_close(&c);
    docs_html_close(&h);
  }
  if (batch) docs_store_batch_end(store);
  double ms = ms_since(t0);
  docs_store_free(store);
  return ms;
}

/* Adds pages of 10 chunks of ~150 words under the URL prefix `source`. */
static void fill(docs_store *store, const char *source, int n_chunks, unsigned *s) {
  int per_page = 10;
  docs_store_batch_begin(store);
  for (int p = 0; p * per_page < n_chunks; p++) {
    docs_chunks c = {0};
    c.cap = c.n = (size_t)per_page;
    c.v = xcalloc((size_t)per_page, sizeof *c.v);
    for (int k = 0; k < per_page; k++) {
      dbuf b;
      dbuf_init(&b, 0);
      add_body(&b, s, 150);
      c.v[k].len = b.len;
      c.v[k].text = dbuf_take(&b);
      c.v[k].title = xasprintf("%s %s", word(s), word(s));
    }
    char u[128];
    snprintf(u, sizeof u, "%sp%05d.html", source, p);
    docs_store_page_put(store, u, source, DOCS_PAGE_OK, u, NULL, NULL, NULL, 0, &c, 0);
    docs_chunks_close(&c);
  }
  docs_store_batch_end(store);
}

/* ---- queries ---- */

enum { NQ = 100, N_CLASSES = 4 };

static const char *const class_names[N_CLASSES] = {
    "rare words (match little)",
    "typical words (the old bench)",
    "common words (match most)",
    "one small source of many",
};

/* A question of class c. */
static void make_question(int c, unsigned *s, char *q, size_t cap) {
  switch (c) {
    case 0: /* words from the rare end of the vocabulary */
      snprintf(q, cap, "How do I %s the %s with %s?", vocab[4000 + rnd(s, 1000)], vocab[3000 + rnd(s, 2000)],
               vocab[3000 + rnd(s, 2000)]);
      break;
    case 1:
    case 3:
      snprintf(q, cap, "How do I %s the %s with %s? Error: %s %s failed", word(s), word(s), word(s), word(s),
               word(s));
      break;
    default: /* what a vague question looks like: mostly words found everywhere */
      snprintf(q, cap, "What does the function return for this value? Example with the data file and %s %s",
               word(s), vocab[rnd(s, 30)]);
      break;
  }
}

/* The previous implementation's query: bm25() over every matching row, the
 * best 200 (1,000 with a source filter) joined and filtered by URL. */
static double old_query(docs_store *store, const char *question, const char *prefix) {
  char *fts = docs_fts_query(question, 48);
  if (!fts) return 0;
  char sql[1024];
  snprintf(sql, sizeof sql,
           "SELECT c.title, c.body, p.url, p.title, f.r FROM"
           " (SELECT rowid AS id, bm25(chunks_fts, 4.0, 1.0, 0.0) AS r FROM chunks_fts WHERE chunks_fts MATCH ?1"
           "  ORDER BY r LIMIT %d) f"
           " JOIN chunks c ON c.id = f.id JOIN pages p ON p.id = c.page_id WHERE p.state = 0"
           " AND p.url >= ?2 AND p.url < ?3 ORDER BY f.r LIMIT 200",
           prefix ? 1000 : 200);
  char *m = xasprintf("{title body} : (%s)", fts);
  char *hi = xasprintf("%s\xff", prefix ? prefix : "");
  unsigned long long t0 = now_ns();
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(store->db, sql, -1, &st, NULL);
  sqlite3_bind_text(st, 1, m, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW) {
  }
  sqlite3_finalize(st);
  double ms = ms_since(t0);
  free(m), free(hi), free(fts);
  return ms;
}

/* --queries: the in-process latency of each question of a file on a real
 * index (median of 7 runs after a warm-up run). */
/* A line of a --queries FILE with a model: "question<TAB>v1 v2 ...", the
 * question's vector as its embedding request returned it. Splits the line
 * at the tab and parses the floats into *v (grown as needed); returns the
 * vector's length, 0 when the line holds none. */
static int parse_vec_line(char *line, float **v, int *cap) {
  char *tab = strchr(line, '\t');
  if (!tab) return 0;
  *tab = '\0';
  int n = 0;
  char *p = tab + 1, *end;
  for (;;) {
    float x = strtof(p, &end);
    if (end == p) break;
    if (n == *cap) {
      *cap = *cap ? *cap * 2 : 512;
      *v = xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    (*v)[n++] = x;
    p = end;
  }
  return n;
}

static int time_queries(const char *db, const char *file, int budget, const char *model) {
  char err[256];
  docs_store *store = docs_store_open(db, err, sizeof err);
  if (!store) {
    fprintf(stderr, "bench: %s\n", err);
    return 1;
  }
  FILE *f = fopen(file, "r");
  if (!f) {
    perror(file);
    docs_store_free(store);
    return 1;
  }
  static char line[1 << 16];
  float *v = NULL;
  int cap = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    int dim = model ? parse_vec_line(line, &v, &cap) : 0;
    if (!*line) continue;
    docs_query_vec qv = {.model = model, .v = v, .dim = dim};
    double t[7];
    bool hybrid = false;
    for (int i = -1; i < 7; i++) { /* a warm-up run, then 7 */
      unsigned long long t0 = now_ns();
      if (dim)
        free(docs_context_build_hybrid(store, line, &qv, NULL, 0, "search", budget, NULL, NULL, NULL, &hybrid));
      else
        free(docs_context_build(store, line, NULL, 0, "search", budget, NULL, NULL));
      if (i >= 0) t[i] = ms_since(t0);
    }
    qsort(t, 7, sizeof t[0], cmp_double);
    printf("%.3f\t%s%s\n", t[3], dim ? (hybrid ? "hybrid\t" : "lexical\t") : "", line);
  }
  free(v);
  fclose(f);
  docs_store_free(store);
  return 0;
}

/* --hybrid [CHUNKS] [DIM]: the query time of hybrid ranking (the question's
 * vector given, as after its embedding came back) against lexical ranking on
 * the same index, every chunk with a random unit vector. */
static int time_hybrid(int n_chunks, int dim) {
  char tmpl[] = "/tmp/crucible-bench-hybrid-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  char db[256], err[256];
  snprintf(db, sizeof db, "%s/docs.db", tmpl);
  make_vocab();
  docs_store *store = docs_store_open(db, err, sizeof err);
  if (!store) return 1;
  unsigned s = 11;
  fill(store, "http://bench/big/", n_chunks, &s);
  /* random vectors for every chunk, stored as a sync stores them */
  enum { BATCH = 256 };
  long long ids[BATCH];
  float *v = xcalloc((size_t)BATCH * (size_t)dim, sizeof *v);
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(store->db, "SELECT id FROM chunks ORDER BY id", -1, &st, NULL);
  size_t n = 0;
  long long total = 0;
  unsigned long long t0 = now_ns();
  for (;;) {
    bool row = sqlite3_step(st) == SQLITE_ROW;
    if (row) {
      ids[n] = sqlite3_column_int64(st, 0);
      for (int k = 0; k < dim; k++) v[n * (size_t)dim + (size_t)k] = (float)rnd(&s, 20001) / 10000.0f - 1.0f;
      n++;
    }
    if (n == BATCH || (!row && n)) {
      docs_vec_put(store, "bench", ids, n, v, dim);
      total += (long long)n;
      n = 0;
    }
    if (!row) break;
  }
  sqlite3_finalize(st);
  double ms_store = ms_since(t0);
  printf("hybrid ranking: %lld chunks x %d dims (%.1f MB of vectors) stored in %.0f ms\n", total, dim,
         total * dim * 4.0 / 1e6, ms_store);
  float *q = xcalloc((size_t)dim, sizeof *q);
  double lex[NQ], hyb[NQ];
  /* the first hybrid query after a change loads the vectors into memory */
  {
    for (int k = 0; k < dim; k++) q[k] = (float)rnd(&s, 20001) / 10000.0f - 1.0f;
    docs_query_vec qv = {.model = "bench", .v = q, .dim = dim};
    t0 = now_ns();
    free(docs_context_build_hybrid(store, "how do I read a file", &qv, NULL, 0, "search", 6000, NULL, NULL, NULL,
                                   NULL));
    printf("first hybrid query (loads the vectors into memory): %.1f ms\n", ms_since(t0));
  }
  int hybrid_runs = 0;
  const char *big[] = {"http://bench/big/"};
  for (int i = 0; i < NQ; i++) {
    char question[256];
    make_question(1, &s, question, sizeof question);
    for (int k = 0; k < dim; k++) q[k] = (float)rnd(&s, 20001) / 10000.0f - 1.0f;
    docs_query_vec qv = {.model = "bench", .v = q, .dim = dim};
    t0 = now_ns();
    free(docs_context_build(store, question, big, 1, "search", 6000, NULL, NULL));
    lex[i] = ms_since(t0);
    bool hybrid = false;
    t0 = now_ns();
    free(docs_context_build_hybrid(store, question, &qv, big, 1, "search", 6000, NULL, NULL, NULL, &hybrid));
    hyb[i] = ms_since(t0);
    hybrid_runs += hybrid;
  }
  qsort(lex, NQ, sizeof lex[0], cmp_double);
  qsort(hyb, NQ, sizeof hyb[0], cmp_double);
  printf("query latency, budget 6000 tokens, %d questions (median / p95 ms; the question's embedding request\n"
         "not included):\n", NQ);
  printf("  lexical %6.2f / %6.2f\n  hybrid  %6.2f / %6.2f   (%d of %d ran hybrid; +%.2f ms median, %.2fx)\n",
         lex[NQ / 2], lex[NQ * 95 / 100], hyb[NQ / 2], hyb[NQ * 95 / 100], hybrid_runs, NQ, hyb[NQ / 2] - lex[NQ / 2],
         hyb[NQ / 2] / lex[NQ / 2]);
  free(q);
  free(v);
  docs_store_free(store);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
  return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "--queries") == 0)
    return time_queries(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 6000, argc > 5 ? argv[5] : NULL);
  if (argc >= 2 && strcmp(argv[1], "--hybrid") == 0)
    return time_hybrid(argc > 2 ? atoi(argv[2]) : 10000, argc > 3 ? atoi(argv[3]) : 768);
  int pages = argc > 1 ? atoi(argv[1]) : 1000;
  int n_chunks = argc > 2 ? atoi(argv[2]) : 50000;
  char tmpl[] = "/tmp/crucible-bench-docs-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  char db[256];
  snprintf(db, sizeof db, "%s/docs.db", tmpl);
  make_vocab();

  /* crawl (PAGES = 0 skips it) */
  if (pages > 0) {
    char url[512];
    pid_t site = start_site(pages, url, sizeof url);
    docs_sync_stats st1, st4;
    double ms1 = crawl(db, url, 1, pages, &st1);
    double ms4 = crawl(db, url, 4, pages, &st4);
    kill(site, SIGTERM);
    waitpid(site, NULL, 0);
    printf("crawl of %d generated pages (python http.server on 127.0.0.1, 2 cores shared with it):\n", pages);
    printf("  concurrency 4: %d pages in %.0f ms = %.0f pages/s (%.2f MB)\n", st4.pages, ms4,
           st4.pages / ms4 * 1e3, st4.bytes / 1e6);
    printf("  concurrency 1: %d pages in %.0f ms = %.0f pages/s\n", st1.pages, ms1, st1.pages / ms1 * 1e3);
    printf("  ratio 4 vs 1: %.2fx\n", ms1 / ms4);
  }

  /* indexing */
  int n_index = 2000;
  unsigned s = 7;
  char **html = xcalloc((size_t)n_index, sizeof *html);
  size_t bytes = 0;
  for (int i = 0; i < n_index; i++) {
    html[i] = make_page(i, &s);
    bytes += strlen(html[i]);
  }
  unsigned long long t0 = now_ns();
  for (int i = 0; i < n_index; i++) {
    docs_html h;
    docs_html_extract(html[i], strlen(html[i]), &h);
    docs_html_close(&h);
  }
  double ms_extract = ms_since(t0);
  double ms_single = index_pages(db, html, n_index, false);
  double ms_batch = index_pages(db, html, n_index, true);
  printf("indexing %d pages (%.1f MB of HTML):\n", n_index, bytes / 1e6);
  printf("  extract + chunk + store, batched:       %.0f pages/s, %.1f MB/s\n", n_index / ms_batch * 1e3,
         bytes / ms_batch / 1e3);
  printf("  extract + chunk + store, page per txn:  %.0f pages/s, %.1f MB/s (batched is %.1fx)\n",
         n_index / ms_single * 1e3, bytes / ms_single / 1e3, ms_single / ms_batch);
  printf("  extraction alone:                       %.0f pages/s, %.1f MB/s (store share batched %.0f%%)\n",
         n_index / ms_extract * 1e3, bytes / ms_extract / 1e3, 100.0 * (ms_batch - ms_extract) / ms_batch);
  for (int i = 0; i < n_index; i++) free(html[i]);
  free(html);

  /* n_chunks in one big source, plus 20 small sources of 200 chunks each */
  unlink(db);
  char err[256];
  docs_store *store = docs_store_open(db, err, sizeof err);
  if (!store) return 1;
  t0 = now_ns();
  fill(store, "http://bench/big/", n_chunks, &s);
  for (int k = 0; k < 20; k++) {
    char src[64];
    snprintf(src, sizeof src, "http://bench/small%02d/", k);
    fill(store, src, 200, &s);
  }
  double ms_fill = ms_since(t0);
  printf("index of %d + 20 x 200 chunks built in %.0f ms\n", n_chunks, ms_fill);
  printf("query latency, budget 6000 tokens, %d questions per class (median / p95 ms; old = bm25() over every\n"
         "matching row, as before this change, measured on the same index):\n", NQ);
  bool all_ok = true;
  for (int c = 0; c < N_CLASSES; c++) {
    double lat[NQ], old[NQ];
    size_t total_ctx = 0;
    const char *big[] = {"http://bench/big/"}, *small[] = {"http://bench/small07/"};
    const char *const *src = c == 3 ? small : big;
    for (int q = 0; q < NQ; q++) {
      char question[256];
      make_question(c, &s, question, sizeof question);
      t0 = now_ns();
      char *ctx = docs_context_build(store, question, src, 1, "search", 6000, NULL, NULL);
      lat[q] = ms_since(t0);
      total_ctx += strlen(ctx);
      free(ctx);
      old[q] = old_query(store, question, src[0]);
    }
    qsort(lat, NQ, sizeof lat[0], cmp_double);
    qsort(old, NQ, sizeof old[0], cmp_double);
    printf("  %-30s new %6.2f / %6.2f   old %6.2f / %6.2f   (%.1fx faster; %.0f chars of context)\n",
           class_names[c], lat[NQ / 2], lat[NQ * 95 / 100], old[NQ / 2], old[NQ * 95 / 100],
           old[NQ / 2] / lat[NQ / 2], (double)total_ctx / NQ);
    all_ok &= lat[NQ / 2] <= 5.0;
  }
  printf("  target median <= 5 ms: %s\n", all_ok ? "met in every class" : "NOT met");
  /* baseline: one LIKE scan of the same chunks for a single word */
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(store->db, "SELECT count(*) FROM chunks WHERE body LIKE '%widget%'", -1, &st, NULL);
  t0 = now_ns();
  sqlite3_step(st);
  double ms_like = ms_since(t0);
  sqlite3_finalize(st);
  printf("  baseline LIKE scan for one word: %.2f ms\n", ms_like);
  docs_store_free(store);
  /* BENCH_DOCS_KEEP=FILE keeps the query index there for inspection */
  const char *keep = getenv("BENCH_DOCS_KEEP");
  if (keep && rename(db, keep) != 0) perror("bench: keeping the index");
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
  return system(cmd) == 0 ? 0 : 1;
}
