/* Benchmark of the docs module: crawl rate of a generated 1,000-page site
 * served by tests/fakes/docs_site.py (concurrency 4 against 1), indexing
 * throughput (extract + chunk + store against extraction alone), and query
 * latency over 50,000 chunks (target: median and p95 <= 5 ms) against a
 * LIKE scan of the same table.
 *
 * Usage: bench_docs [PAGES (1000)] [CHUNKS (50000)] */
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

static double crawl(const char *db, const char *url, int concurrency, int pages, docs_sync_stats *st) {
  unlink(db);
  char err[256];
  docs_store *store = docs_store_open(db, err, sizeof err);
  if (!store) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
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

/* ---- indexing ---- */

static const char *const vocab_seed[] = {"widget", "gizmo", "sprocket", "lever", "spring", "gear", "pulley",
                                         "axle", "valve", "socket", "install", "configure", "error", "timeout",
                                         "buffer", "stream", "parse", "render", "plot", "frame", "column"};

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

static const char *word(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  unsigned r = (*s >> 8) % 5000;
  *s = *s * 1103515245u + 12345u;
  /* skew: min of two draws favours low indexes */
  unsigned r2 = (*s >> 8) % 5000;
  return vocab[r < r2 ? r : r2];
}

static char *make_page(int i, unsigned *s) {
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_addf(&b, "<html><head><title>Page %d</title><script>var x=1;</script></head><body><nav>nav</nav>"
                "<main><h1>Page %d</h1>", i, i);
  for (int sec = 0; sec < 4; sec++) {
    dbuf_addf(&b, "<h2>Section %d</h2><p>", sec);
    for (int w = 0; w < 150; w++) dbuf_addf(&b, "%s ", word(s));
    dbuf_adds(&b, "</p><pre><code>x = compute(1, 2)\nprint(x)</code></pre>");
  }
  dbuf_adds(&b, "</main><footer>f</footer></body></html>");
  return dbuf_take(&b);
}

int main(int argc, char **argv) {
  int pages = argc > 1 ? atoi(argv[1]) : 1000;
  int n_chunks = argc > 2 ? atoi(argv[2]) : 50000;
  char tmpl[] = "/tmp/crucible-bench-docs-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  char db[256];
  snprintf(db, sizeof db, "%s/docs.db", tmpl);
  make_vocab();

  /* crawl */
  char url[512];
  pid_t site = start_site(pages, url, sizeof url);
  docs_sync_stats st1, st4;
  double ms1 = crawl(db, url, 1, pages, &st1);
  double ms4 = crawl(db, url, 4, pages, &st4);
  kill(site, SIGTERM);
  waitpid(site, NULL, 0);
  printf("crawl of %d generated pages (python http.server on 127.0.0.1, 2 cores shared with it):\n", pages);
  printf("  concurrency 4: %d pages in %.0f ms = %.0f pages/s (%.2f MB)\n", st4.pages, ms4, st4.pages / ms4 * 1e3,
         st4.bytes / 1e6);
  printf("  concurrency 1: %d pages in %.0f ms = %.0f pages/s\n", st1.pages, ms1, st1.pages / ms1 * 1e3);
  printf("  ratio 4 vs 1: %.2fx\n", ms1 / ms4);

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
  unlink(db);
  char err[256];
  docs_store *store = docs_store_open(db, err, sizeof err);
  t0 = now_ns();
  for (int i = 0; i < n_index; i++) {
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
  double ms_index = ms_since(t0);
  printf("indexing %d pages (%.1f MB of HTML):\n", n_index, bytes / 1e6);
  printf("  extract + chunk + store: %.0f pages/s, %.1f MB/s\n", n_index / ms_index * 1e3, bytes / ms_index / 1e3);
  printf("  extraction alone:        %.0f pages/s, %.1f MB/s (store share %.0f%%)\n", n_index / ms_extract * 1e3,
         bytes / ms_extract / 1e3, 100.0 * (ms_index - ms_extract) / ms_index);
  for (int i = 0; i < n_index; i++) free(html[i]);
  free(html);

  /* 50,000 chunks: 5,000 pages of 10 chunks of ~1,000 chars */
  docs_store_free(store);
  unlink(db);
  store = docs_store_open(db, err, sizeof err);
  int per_page = 10;
  t0 = now_ns();
  for (int p = 0; p * per_page < n_chunks; p++) {
    docs_chunks c = {0};
    c.cap = c.n = (size_t)per_page;
    c.v = xcalloc((size_t)per_page, sizeof *c.v);
    for (int k = 0; k < per_page; k++) {
      dbuf b;
      dbuf_init(&b, 0);
      for (int w = 0; w < 150; w++) dbuf_addf(&b, "%s ", word(&s));
      c.v[k].len = b.len;
      c.v[k].text = dbuf_take(&b);
      c.v[k].title = xasprintf("%s %s", word(&s), word(&s));
    }
    char u[64];
    snprintf(u, sizeof u, "http://bench/big/p%05d.html", p);
    docs_store_page_put(store, u, "http://bench/big/", DOCS_PAGE_OK, u, NULL, NULL, NULL, 0, &c, 0);
    docs_chunks_close(&c);
  }
  double ms_fill = ms_since(t0);
  printf("index of %d chunks built in %.0f ms\n", n_chunks, ms_fill);
  enum { NQ = 200 };
  double lat[NQ];
  const char *src[] = {"http://bench/big/"};
  size_t total_ctx = 0;
  for (int q = 0; q < NQ; q++) {
    char question[256];
    snprintf(question, sizeof question, "How do I %s the %s with %s? Error: %s %s failed", word(&s), word(&s),
             word(&s), word(&s), word(&s));
    t0 = now_ns();
    char *ctx = docs_context_build(store, question, src, 1, "search", 6000, NULL, NULL);
    lat[q] = ms_since(t0);
    total_ctx += strlen(ctx);
    free(ctx);
  }
  qsort(lat, NQ, sizeof lat[0], cmp_double);
  /* baseline: one LIKE scan of the same chunks for a single word */
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(store->db, "SELECT count(*) FROM chunks WHERE body LIKE '%widget%'", -1, &st, NULL);
  t0 = now_ns();
  sqlite3_step(st);
  double ms_like = ms_since(t0);
  sqlite3_finalize(st);
  printf("query over %d chunks, budget 6000 tokens (%d questions, %.0f chars of context on average):\n", n_chunks, NQ,
         (double)total_ctx / NQ);
  printf("  median %.2f ms, p95 %.2f ms, max %.2f ms (target <= 5 ms)\n", lat[NQ / 2], lat[NQ * 95 / 100],
         lat[NQ - 1]);
  printf("  baseline LIKE scan for one word: %.2f ms (ranked search median is %.2fx of it)\n", ms_like,
         lat[NQ / 2] / ms_like);
  docs_store_free(store);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
  return system(cmd) == 0 ? 0 : 1;
}
