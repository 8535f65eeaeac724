/* Unit tests of the docs cache on a real SQLite file and a real folder:
 * syncing local sources on a uv loop, change detection and removed files,
 * ranking (the same with and without pruning and caches), source restriction
 * inside the ranking, budgets, "all" mode, cancellation, batched writes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "docs.h"
#include "internal.h"
#include "docs_fixture.h"
#include "tmpdir.h"

typedef tu_docs fixture;

static int setup(void **state) {
  fixture *f = xcalloc(1, sizeof *f);
  tu_docs_init(f, "docs-test");
  tu_write_file(f->docs, "guide.md",
                "# Guide\n\nGeneral words about the gizmo.\n\n## Frobnicating widgets\n"
                "Call `frobnicate_widget(level=2)` to frobnicate a widget.\n");
  tu_write_file(f->docs, "sub/api.rst", "API\n===\n\nThe sprocket API turns sprockets.\n");
  tu_write_file(f->docs, "sub/notes.txt", "Notes about gardening and tomatoes.\n");
  tu_write_file(f->docs, "page.html",
                "<html><head><title>Html page</title></head><body><nav>NAV</nav><h1>Html page</h1>"
                "<p>Pulleys and levers.</p></body></html>");
  tu_write_file(f->docs, "image.png", "\x89PNG not documentation");
  tu_write_file(f->docs, ".hidden/secret.md", "# Hidden\nhidden words\n");
  tu_write_file(f->docs, "a/b/c/deep.md", "# Deep\ndeep words\n");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_docs_close(f);
  free(f);
  return 0;
}

static void never_done(void *ud, const docs_sync_stats *st, const char *error) {
  (void)ud, (void)st, (void)error;
  fail();
}

static tu_sync_result sync_run(fixture *f, const char *const *sources, size_t n, int max_depth, bool cancel) {
  docs_sync_opts o = {.sources = sources, .n_sources = n, .max_depth = max_depth, .freshness_s = -1};
  return tu_docs_sync(f->store, NULL, &o, cancel);
}

static void test_sync_local_folder(void **state) {
  fixture *f = *state;
  const char *src[] = {f->docs};
  tu_sync_result r = sync_run(f, src, 1, 2, false);
  assert_null(r.error);
  /* guide.md, sub/api.rst, sub/notes.txt, page.html; not the image, the hidden
   * folder, or a/b/c/deep.md (depth 4 > 2) */
  assert_int_equal(r.st.fetched, 4);
  assert_int_equal(r.st.errors, 0);
  assert_true(r.progress_calls >= 4);

  /* unchanged files are not read again */
  r = sync_run(f, src, 1, 2, false);
  assert_int_equal(r.st.fetched, 0);
  assert_int_equal(r.st.cached, 4);

  /* a changed file is */
  char p[400];
  snprintf(p, sizeof p, "%s/sub/notes.txt", f->docs);
  FILE *fp = fopen(p, "a");
  fputs("More about zanzibarite.\n", fp);
  fclose(fp);
  r = sync_run(f, src, 1, 20, false);
  assert_int_equal(r.st.fetched, 2); /* notes.txt and, with depth 20, deep.md */
  assert_int_equal(r.st.cached, 3);

  cJSON *list = docs_store_list(f->store);
  assert_int_equal(cJSON_GetArraySize(list), 1);
  cJSON *it = cJSON_GetArrayItem(list, 0);
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "pages")), 5);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind")), "path");
  cJSON_Delete(list);
}

static void test_context_search(void **state) {
  fixture *f = *state;
  const char *src[] = {f->docs};
  sync_run(f, src, 1, 20, false);
  cJSON *used = NULL;
  char *warning = NULL;
  char *ctx = docs_context_build(f->store, "How do I frobnicate a widget?", src, 1, "search", 100, &used, &warning);
  assert_non_null(ctx);
  assert_null(warning);
  assert_true(strlen(ctx) <= 400);
  assert_non_null(strstr(ctx, "### Guide — Frobnicating widgets\nSource: "));
  assert_non_null(strstr(ctx, "frobnicate_widget(level=2)"));
  assert_null(strstr(ctx, "tomatoes"));
  assert_int_equal(cJSON_GetArraySize(used), 1);
  const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(used, 0), "url"));
  assert_non_null(strstr(url, "/docs/guide.md"));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(used, 0), "title")), "Guide");
  free(ctx);
  cJSON_Delete(used);

  /* a budget too small for any chunk gives nothing rather than overflowing */
  ctx = docs_context_build(f->store, "frobnicate widget", NULL, 0, NULL, 10, &used, NULL);
  assert_string_equal(ctx, "");
  assert_int_equal(cJSON_GetArraySize(used), 0);
  free(ctx);
  cJSON_Delete(used);

  /* restricted to a subfolder: the guide is out of reach */
  char sub[400];
  snprintf(sub, sizeof sub, "%s/sub", f->docs);
  const char *only_sub[] = {sub};
  ctx = docs_context_build(f->store, "frobnicate sprocket", only_sub, 1, "search", 1000, NULL, NULL);
  assert_null(strstr(ctx, "frobnicate_widget"));
  assert_non_null(strstr(ctx, "sprocket API"));
  free(ctx);

  /* FTS syntax in the question is only text */
  ctx = docs_context_build(f->store, "\"unbalanced AND ( NEAR(x y) * : title:foo", NULL, 0, "search", 1000, NULL,
                           NULL);
  assert_non_null(ctx);
  free(ctx);
  assert_null(docs_context_build(f->store, "x", NULL, 0, "bogus", 100, NULL, NULL));

  /* a source that does not exist matches nothing, with a warning */
  const char *missing[] = {"/nonexistent/crucible/docs"};
  ctx = docs_context_build(f->store, "frobnicate", missing, 1, "search", 1000, NULL, &warning);
  assert_string_equal(ctx, "");
  assert_non_null(warning);
  free(warning);
  free(ctx);
}

static void test_context_all(void **state) {
  fixture *f = *state;
  const char *src[] = {f->docs};
  sync_run(f, src, 1, 20, false);
  cJSON *used = NULL;
  char *warning = NULL;
  char *ctx = docs_context_build(f->store, NULL, src, 1, "all", 100000, &used, &warning);
  assert_null(warning);
  assert_int_equal(cJSON_GetArraySize(used), 5);
  /* reverse URL order: sub/notes.txt, sub/api.rst, page.html, guide.md, a/b/c/deep.md */
  const char *order[] = {"sub/notes.txt", "sub/api.rst", "page.html", "guide.md", "a/b/c/deep.md"};
  const char *prev = ctx;
  for (size_t i = 0; i < ARRAY_LEN(order); i++) {
    const char *at = strstr(ctx, order[i]);
    assert_non_null(at);
    assert_true(at >= prev);
    prev = at;
  }
  assert_null(strstr(ctx, "NAV"));
  free(ctx);
  cJSON_Delete(used);

  ctx = docs_context_build(f->store, NULL, src, 1, "all", 30, &used, &warning);
  assert_true(strlen(ctx) <= 120);
  assert_non_null(warning);
  assert_non_null(strstr(warning, "cut"));
  assert_true(cJSON_GetArraySize(used) >= 1);
  free(warning);
  free(ctx);
  cJSON_Delete(used);
}

static void test_sync_cancel_and_bad_sources(void **state) {
  fixture *f = *state;
  const char *src[] = {f->docs};
  tu_sync_result r = sync_run(f, src, 1, 20, true);
  assert_true(r.st.cancelled);
  free(r.error);

  const char *bad[] = {"/nonexistent/crucible/docs", "http://"};
  r = sync_run(f, bad, 2, 20, false);
  assert_non_null(r.error);
  assert_int_equal(r.st.errors, 2);
  free(r.error);

  uv_loop_t loop;
  uv_loop_init(&loop);
  docs_sync_opts o = {0};
  assert_int_equal(docs_sync_start(f->store, &loop, NULL, NULL, never_done, NULL, NULL), -EINVAL);
  assert_int_equal(docs_sync_start(f->store, &loop, &o, NULL, NULL, NULL, NULL), -EINVAL);
  uv_loop_close(&loop);
}


static void test_sync_removes_deleted_files(void **state) {
  fixture *f = *state;
  const char *src[] = {f->docs};
  tu_sync_result r = sync_run(f, src, 1, 20, false);
  assert_int_equal(r.st.fetched, 5);
  assert_int_equal(r.st.removed, 0);
  char *ctx = docs_context_build(f->store, "gardening tomatoes", src, 1, "search", 1000, NULL, NULL);
  assert_non_null(strstr(ctx, "tomatoes"));
  free(ctx);

  char p[400];
  snprintf(p, sizeof p, "%s/sub/notes.txt", f->docs);
  assert_int_equal(unlink(p), 0);
  r = sync_run(f, src, 1, 20, false);
  assert_int_equal(r.st.removed, 1);
  assert_int_equal(r.st.cached, 4);
  ctx = docs_context_build(f->store, "gardening tomatoes", src, 1, "search", 1000, NULL, NULL);
  assert_string_equal(ctx, "");
  free(ctx);
  cJSON *list = docs_store_list(f->store);
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "pages")), 4);
  cJSON_Delete(list);

  /* a file outside this sync's depth still exists: its page stays */
  r = sync_run(f, src, 1, 1, false);
  assert_int_equal(r.st.removed, 0);
  list = docs_store_list(f->store);
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "pages")), 4);
  cJSON_Delete(list);

  /* the sync's writes are committed: another connection sees them */
  char err[256];
  docs_store *other = docs_store_open(f->db, err, sizeof err);
  assert_non_null(other);
  ctx = docs_context_build(other, "frobnicate widget", src, 1, "search", 1000, NULL, NULL);
  assert_non_null(strstr(ctx, "frobnicate_widget(level=2)"));
  free(ctx);
  docs_store_free(other);
}

/* Pages of 8 chunks drawn from a small vocabulary, so most questions match
 * many chunks with many different scores. */
static void fill_store(docs_store *store, const char *prefix, int pages, unsigned seed) {
  static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                                      "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"};
  unsigned s = seed;
  docs_store_batch_begin(store);
  for (int p = 0; p < pages; p++) {
    docs_chunks c = {0};
    c.n = c.cap = 8;
    c.v = xcalloc(c.n, sizeof *c.v);
    for (size_t k = 0; k < c.n; k++) {
      char body[2048] = "";
      size_t len = 0;
      int n = 5 + (int)((s >> 8) % 60);
      for (int w = 0; w < n; w++) {
        s = s * 1103515245u + 12345u;
        /* skewed: low indexes are common */
        unsigned a = (s >> 8) % ARRAY_LEN(words), b = (s >> 16) % ARRAY_LEN(words);
        len += (size_t)snprintf(body + len, sizeof body - len, "%s ", words[a < b ? a : b]);
      }
      c.v[k].text = xstrdup(body);
      c.v[k].len = len;
      c.v[k].title = xstrdup(words[(s >> 4) % ARRAY_LEN(words)]);
    }
    char url[128];
    snprintf(url, sizeof url, "%sp%03d.html", prefix, p);
    assert_int_equal(docs_store_page_put(store, url, prefix, DOCS_PAGE_OK, url, NULL, NULL, NULL, 0, &c, 0), 0);
    docs_chunks_close(&c);
  }
  assert_int_equal(docs_store_batch_end(store), 0);
}

static void test_ranking_same_without_shortcuts(void **state) {
  fixture *f = *state;
  fill_store(f->store, "http://a.test/docs/", 60, 1);
  fill_store(f->store, "http://b.test/docs/", 20, 2);
  const char *questions[] = {"alpha bravo", "how to use kilo with lima and mike", "papa oscar", "november",
                             "echo foxtrot golf hotel india juliet"};
  const char *a[] = {"http://a.test/docs/"}, *b[] = {"http://b.test/docs/"};
  const char *const *filters[] = {NULL, a, b};
  int budgets[] = {60, 400, 3000};
  for (size_t q = 0; q < ARRAY_LEN(questions); q++)
    for (size_t fi = 0; fi < ARRAY_LEN(filters); fi++)
      for (size_t bi = 0; bi < ARRAY_LEN(budgets); bi++) {
        f->store->no_prune = f->store->no_length_cache = false;
        char *fast = docs_context_build(f->store, questions[q], filters[fi], filters[fi] ? 1 : 0, "search",
                                        budgets[bi], NULL, NULL);
        f->store->no_prune = f->store->no_length_cache = true;
        char *full = docs_context_build(f->store, questions[q], filters[fi], filters[fi] ? 1 : 0, "search",
                                        budgets[bi], NULL, NULL);
        assert_string_equal(fast, full);
        if (budgets[bi] >= 400) assert_true(strlen(fast) > 0);
        if (fi == 2) assert_null(strstr(fast, "a.test"));
        free(fast);
        free(full);
      }
  f->store->no_prune = f->store->no_length_cache = false;
}

static void test_source_filter_inside_ranking(void **state) {
  fixture *f = *state;
  /* 1,500 chunks elsewhere that all match better than the one page under
   * the source asked for: ranking first and filtering after would find
   * nothing */
  docs_store_batch_begin(f->store);
  for (int p = 0; p < 150; p++) {
    docs_chunks c = {0};
    c.n = c.cap = 10;
    c.v = xcalloc(c.n, sizeof *c.v);
    for (size_t k = 0; k < c.n; k++) {
      c.v[k].title = xstrdup("Frobnicate widgets");
      c.v[k].text = xstrdup("frobnicate the widget; frobnicate widgets");
      c.v[k].len = strlen(c.v[k].text);
    }
    char url[128];
    snprintf(url, sizeof url, "http://big.test/docs/p%03d.html", p);
    assert_int_equal(docs_store_page_put(f->store, url, "http://big.test/docs/", DOCS_PAGE_OK, "Big", NULL, NULL,
                                         NULL, 0, &c, 0),
                     0);
    docs_chunks_close(&c);
  }
  assert_int_equal(docs_store_batch_end(f->store), 0);
  const char *src[] = {f->docs};
  sync_run(f, src, 1, 20, false);
  char *ctx = docs_context_build(f->store, "frobnicate widget", src, 1, "search", 1000, NULL, NULL);
  assert_non_null(strstr(ctx, "frobnicate_widget(level=2)"));
  assert_null(strstr(ctx, "big.test"));
  free(ctx);
  /* unrestricted, the big source wins */
  ctx = docs_context_build(f->store, "frobnicate widget", NULL, 0, "search", 1000, NULL, NULL);
  const char *first = strstr(ctx, "Source: ");
  assert_non_null(first);
  assert_true(strncmp(first, "Source: http://big.test/", 24) == 0);
  free(ctx);
}

static void test_loc_tokens(void **state) {
  (void)state;
  char *t = docs_loc_tokens("http://h.test/docs/a/b.html");
  char want[DOCS_LOC_TOKEN_SIZE];
  /* http://h.test/, .../docs/, .../docs/a/, the URL: 4 tokens */
  const char *prefixes[] = {"http://h.test/", "http://h.test/docs/", "http://h.test/docs/a/",
                            "http://h.test/docs/a/b.html"};
  for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
    docs_loc_token(prefixes[i], strlen(prefixes[i]), want);
    assert_non_null(strstr(t, want));
  }
  docs_loc_token("http://h.test/docs", 18, want);
  assert_null(strstr(t, want));
  size_t spaces = 0;
  for (const char *p = t; *p; p++) spaces += *p == ' ';
  assert_int_equal(spaces, 3);
  free(t);
}

/* The first "Source: " of a prompt section, a new string. */
static char *first_source(const char *ctx) {
  const char *p = strstr(ctx, "Source: ");
  if (!p) return xstrdup("");
  p += strlen("Source: ");
  return xstrndup(p, strcspn(p, "\n"));
}

/* Writes filler pages from..to-1 into dir: "# Filler i" over the line
 * "<words> topic<i><tail>", words no question of these tests asks for,
 * which keep the words under test rare or common as each test needs. */
static void write_fillers(const char *dir, int from, int to, const char *words, const char *tail) {
  for (int i = from; i < to; i++) {
    char name[32], text[256];
    snprintf(name, sizeof name, "filler%02d.md", i);
    snprintf(text, sizeof text, "# Filler %d\n\n%s topic%d%s\n", i, words, i, tail);
    tu_write_file(dir, name, text);
  }
}

static void test_ranking_fixes(void **state) {
  fixture *f = *state;
  char dir[400], path[500];
  snprintf(dir, sizeof dir, "%s/rank", f->dir);
  mkdir(dir, 0700);
  /* filler: "objects" in over 20 % of the chunks (and under half), so it
   * is a common word that still has weight */
  write_fillers(dir, 0, 4, "Objects and more objects about", ".");
  write_fillers(dir, 4, 12, "Words about", ".");
  /* the same section twice: reference and release notes (not the same
   * page's text: that would be indexed once) */
  tu_write_file(dir, "library/archive.md", "# archive\n\n## Archive members\n\nArchive.unpackall(path) unpacks members.\n");
  tu_write_file(dir, "whatsnew/3.2.md",
             "# archive\n\n## Archive members\n\nArchive.unpackall(path) unpacks members.\n\nNew in 3.2.\n");
  /* a common word still scores: both match the rare word */
  tu_write_file(dir, "gizmo_plain.md", "# Gizmo plain\n\nA gizmo turns.\n");
  tu_write_file(dir, "gizmo_objects.md", "# Gizmo objs\n\nA gizmo turns objects.\n");
  /* bare section headings: the page's title tells them apart */
  tu_write_file(dir, "sprockets.md", "# Sprockets\n\n## Examples\n\nTurning it twice is fine.\n");
  tu_write_file(dir, "pulleys.md", "# Pulleys\n\n## Examples\n\nTurning it twice is fine.\n");
  const char *src[] = {dir};
  tu_sync_result r = sync_run(f, src, 1, 20, false);
  free(r.error);

  /* words spelling an identifier find it */
  char *ctx = docs_context_build(f->store, "How do I unpack all the members?", src, 1, "search", 2000, NULL, NULL);
  assert_non_null(strstr(ctx, "Archive.unpackall(path)"));
  /* release notes rank below the reference page with the same text */
  char *top = first_source(ctx);
  snprintf(path, sizeof path, "%s/library/archive.md", dir);
  char *want = realpath(path, NULL);
  assert_string_equal(top, want);
  free(want), free(top), free(ctx);

  ctx = docs_context_build(f->store, "gizmo objects", src, 1, "search", 2000, NULL, NULL);
  top = first_source(ctx);
  assert_non_null(strstr(top, "gizmo_objects.md"));
  free(top), free(ctx);

  ctx = docs_context_build(f->store, "pulleys examples turning", src, 1, "search", 2000, NULL, NULL);
  top = first_source(ctx);
  assert_non_null(strstr(top, "pulleys.md"));
  /* the prompt's heading reads "page — section", as before */
  assert_non_null(strstr(ctx, "### Pulleys — Examples\nSource: "));
  free(top), free(ctx);
}

/* A long page whose many sections each hold one common question word does
 * not outrank the page that holds the rare word too: page evidence counts
 * a page's best few other chunks, not all of them. */
static void test_page_evidence_capped(void **state) {
  fixture *f = *state;
  char dir[400], name[64], text[256];
  snprintf(dir, sizeof dir, "%s/evidence", f->dir);
  mkdir(dir, 0700);
  /* filler keeps "widget" under the share of chunks that makes a word common */
  write_fillers(dir, 0, 60, "Plain words about", " here.");
  /* "frob" in a few pages, so it is rare but not unique */
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof name, "frob%02d.md", i);
    snprintf(text, sizeof text, "# Other %d\n\nA frob of kind%d here.\n", i, i);
    tu_write_file(dir, name, text);
  }
  char long_page[1024] = "# Handbook\n\n";
  for (int i = 0; i < 12; i++) {
    size_t at = strlen(long_page);
    snprintf(long_page + at, sizeof long_page - at, "## Part %d\n\nThe widget of part%d here.\n\n", i, i);
  }
  tu_write_file(dir, "handbook.md", long_page);
  tu_write_file(dir, "answer.md", "# Answer\n\nThe frob widget here.\n");
  const char *src[] = {dir};
  tu_sync_result r = sync_run(f, src, 1, 20, false);
  free(r.error);
  char *ctx = docs_context_build(f->store, "frob widget", src, 1, "search", 20000, NULL, NULL);
  char *top = first_source(ctx);
  assert_non_null(top);
  assert_non_null(strstr(top, "answer.md"));
  free(top), free(ctx);
}

/* A chunk shorter than the average is scored as one of the average length:
 * a one-line entry that names the word once does not outrank the section
 * that is about it. */
static void test_short_chunk_no_bonus(void **state) {
  fixture *f = *state;
  char dir[400];
  snprintf(dir, sizeof dir, "%s/short", f->dir);
  mkdir(dir, 0700);
  write_fillers(dir, 0, 30, "Some plain words about", ", and more of them here.");
  tu_write_file(dir, "entry.md", "# Entry\n\nGizmo.\n");
  tu_write_file(dir, "about.md", "# About\n\nThe gizmo turns, and a gizmo stops when it is told to.\n");
  const char *src[] = {dir};
  tu_sync_result r = sync_run(f, src, 1, 20, false);
  free(r.error);
  char *ctx = docs_context_build(f->store, "gizmo", src, 1, "search", 2000, NULL, NULL);
  char *top = first_source(ctx);
  assert_non_null(top);
  assert_non_null(strstr(top, "about.md"));
  free(top), free(ctx);
}

/* A page that opens by saying it is deprecated (a legacy module) ranks
 * below the current page about the same thing, though it matches the
 * question's words more often. */
static void test_legacy_page_weighs_less(void **state) {
  fixture *f = *state;
  char dir[400];
  snprintf(dir, sizeof dir, "%s/legacy", f->dir);
  mkdir(dir, 0700);
  write_fillers(dir, 0, 20, "Some plain words about", ".");
  tu_write_file(dir, "oldmail.md",
             "# oldmail\n\nDeprecated since version 3.6: use newmail.\n\n## Sending\n\n"
             "Send a mail message through a mail relay; the relay sends the message on.\n");
  tu_write_file(dir, "newmail.md", "# newmail\n\nMail for everyone.\n\n## Sending\n\nSend a mail message through a relay.\n");
  const char *src[] = {dir};
  tu_sync_result r = sync_run(f, src, 1, 20, false);
  free(r.error);
  char *ctx = docs_context_build(f->store, "send a mail message through a relay", src, 1, "search", 2000, NULL, NULL);
  char *top = first_source(ctx);
  assert_non_null(top);
  assert_non_null(strstr(top, "newmail.md"));
  free(top), free(ctx);
  /* --explain says why */
  cJSON *ex = NULL;
  ctx = docs_context_explain(f->store, "send a mail message through a relay", src, 1, 2000, NULL, NULL, &ex);
  bool seen = false;
  cJSON *h;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(ex, "hits")) {
    const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(h, "url"));
    if (!u || !strstr(u, "oldmail.md")) continue;
    seen = true;
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(h, "legacy")));
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(h, "urlWeight")) < 1.0);
  }
  assert_true(seen);
  cJSON_Delete(ex);
  free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sync_local_folder, setup, teardown),
      cmocka_unit_test_setup_teardown(test_context_search, setup, teardown),
      cmocka_unit_test_setup_teardown(test_context_all, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_cancel_and_bad_sources, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_removes_deleted_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ranking_same_without_shortcuts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_source_filter_inside_ranking, setup, teardown),
      cmocka_unit_test(test_loc_tokens),
      cmocka_unit_test_setup_teardown(test_ranking_fixes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_page_evidence_capped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_short_chunk_no_bonus, setup, teardown),
      cmocka_unit_test_setup_teardown(test_legacy_page_weighs_less, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
