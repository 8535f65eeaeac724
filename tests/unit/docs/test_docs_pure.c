/* Unit tests of the docs module's pure parts: URL canonicalisation and prefix
 * checks, HTML to text, chunking, FTS5 query building, budget packing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docs.h"

#include "common.h"
#include "internal.h"

static void expect_canon(const char *base, const char *href, const char *want) {
  char *got = docs_url_canon(base, href);
  if (!want) {
    if (got) fail_msg("canon(%s, %s) = %s, expected NULL", base ? base : "NULL", href, got);
    return;
  }
  if (!got) fail_msg("canon(%s, %s) = NULL, expected %s", base ? base : "NULL", href, want);
  assert_string_equal(got, want);
  free(got);
}

static void test_url_canon(void **state) {
  expect_canon(NULL, "HTTP://Example.COM:80/a/b.html#frag", "http://example.com/a/b.html");
  expect_canon(NULL, "https://example.com:443", "https://example.com/");
  expect_canon(NULL, "http://example.com:8080/docs/", "http://example.com:8080/docs/");
  expect_canon(NULL, "http://example.com/docs/index.html", "http://example.com/docs/");
  expect_canon(NULL, "http://example.com/docs/INDEX.HTM", "http://example.com/docs/");
  expect_canon(NULL, "http://example.com/a/./b/../c.html?q=1#x", "http://example.com/a/c.html?q=1");
  expect_canon(NULL, "http://user:pw@example.com/x", "http://example.com/x");
  expect_canon("http://h/docs/guide/page.html", "../api.html", "http://h/docs/api.html");
  expect_canon("http://h/docs/guide/page.html", "other.html#s", "http://h/docs/guide/other.html");
  expect_canon("http://h/docs/guide/page.html", "/root.html", "http://h/root.html");
  expect_canon("http://h/docs/guide/page.html", "//other.org/x", "http://other.org/x");
  expect_canon("http://h/docs/", "index.html", "http://h/docs/");
  expect_canon("http://h/docs/", "mailto:someone@h", NULL);
  expect_canon("http://h/docs/", "javascript:alert(1)", NULL);
  expect_canon(NULL, "ftp://h/file", NULL);
  expect_canon(NULL, "not a url", NULL);
  expect_canon(NULL, "file:///etc/passwd", NULL);
}

static void test_url_prefix(void **state) {
  char *p = docs_url_prefix("http://h/docs/index.html");
  assert_string_equal(p, "http://h/docs/");
  free(p);
  p = docs_url_prefix("http://h/docs");
  assert_string_equal(p, "http://h/docs/");
  free(p);
  p = docs_url_prefix("http://h:8080/docs/guide/start.html?x=1");
  assert_string_equal(p, "http://h:8080/docs/guide/");
  free(p);
  p = docs_url_prefix("http://h/");
  assert_string_equal(p, "http://h/");
  free(p);
  assert_true(docs_url_in_prefix("http://h/docs/a.html", "http://h/docs/"));
  assert_true(docs_url_in_prefix("http://h/docs", "http://h/docs/"));
  assert_false(docs_url_in_prefix("http://h/docsx/a.html", "http://h/docs/"));
  assert_false(docs_url_in_prefix("http://h/other/a.html", "http://h/docs/"));
  assert_false(docs_url_in_prefix("http://h:81/docs/a.html", "http://h/docs/"));
  assert_false(docs_url_in_prefix("https://h/docs/a.html", "http://h/docs/"));
  assert_false(docs_url_in_prefix("http://h.evil/docs/a.html", "http://h/docs/"));
}

static docs_html extract(const char *html) {
  docs_html h;
  assert_int_equal(docs_html_extract(html, strlen(html), &h), 0);
  return h;
}

static void test_html_noise_dropped(void **state) {
  docs_html h = extract(
      "<html><head><title> My  Page </title><style>.x{color:red}</style><script>var SCRIPT=1;</script></head>"
      "<body><header>BANNER</header><nav><a href='a.html'>NAVTEXT</a></nav><aside>ASIDE</aside>"
      "<main><h1>Main   title</h1><p>Body <b>text</b> here.</p><noscript>NOSCRIPT</noscript>"
      "<div role='navigation'>ROLENAV</div></main><footer>FOOTER</footer></body></html>");
  assert_string_equal(h.title, "My Page");
  assert_non_null(strstr(h.text, "# Main title"));
  assert_non_null(strstr(h.text, "Body text here."));
  const char *noise[] = {"BANNER", "NAVTEXT", "ASIDE", "FOOTER", "SCRIPT", "color:red", "NOSCRIPT", "ROLENAV"};
  for (size_t i = 0; i < ARRAY_LEN(noise); i++)
    if (strstr(h.text, noise[i])) fail_msg("'%s' leaked into the text:\n%s", noise[i], h.text);
  /* navigation links are still collected for the crawl */
  assert_int_equal(h.n_links, 1);
  assert_string_equal(h.links[0], "a.html");
  docs_html_close(&h);
}

static void test_html_code_verbatim(void **state) {
  docs_html h = extract("<body><h2>Usage</h2><p>Call <code>f(x,  y)</code> now.</p>"
                        "<pre><code>if x &lt; 3:\n    print(  'a'  )\n\n\ty = 1</code></pre></body>");
  assert_non_null(strstr(h.text, "## Usage"));
  assert_non_null(strstr(h.text, "`f(x,  y)`"));
  assert_non_null(strstr(h.text, "```\nif x < 3:\n    print(  'a'  )\n\n\ty = 1\n```"));
  assert_null(h.title == NULL ? NULL : strstr(h.title, "Usage")); /* no h1: no title */
  docs_html_close(&h);
}

static void test_html_api_entries(void **state) {
  /* Sphinx API entries: each signature heads its entry's description; the
   * text after the entries is the enclosing section's again */
  docs_html h = extract("<body><h2>Functions</h2>"
                        "<dl class='py function'><dt class='sig sig-object py' id='time.sleep'>"
                        "<span>time.</span><span>sleep</span>(<em>secs</em>)</dt>"
                        "<dd><p>Suspend execution.</p></dd></dl>"
                        "<dl class='py class'><dt class='sig sig-object py'>class Timer</dt>"
                        "<dd><p>A timer.</p><dl class='py method'><dt class='sig'>start()</dt>"
                        "<dd><p>Starts it.</p></dd></dl><p>More about timers.</p></dd></dl>"
                        "<p>After the entries.</p>"
                        "<dl><dt>term</dt><dd>a plain definition list</dd></dl></body>");
  assert_non_null(strstr(h.text, "## Functions\n\n###### time.sleep(secs)\n\nSuspend execution."));
  assert_non_null(strstr(h.text, "###### class Timer\n\nA timer."));
  assert_non_null(strstr(h.text, "###### start()\n\nStarts it."));
  /* back in the class's entry, then in the section */
  assert_non_null(strstr(h.text, "###### class Timer\n\nMore about timers."));
  assert_non_null(strstr(h.text, "## Functions\n\nAfter the entries."));
  assert_null(strstr(h.text, "# term")); /* a plain <dl> is no API entry */
  docs_html_close(&h);
}

static void test_html_article_header_kept(void **state) {
  docs_html h = extract("<body><header>SITE</header><article><header><h1>Article title</h1></header>"
                        "<p>x</p></article><a href='#top'>top</a><a href=''>empty</a></body>");
  assert_non_null(strstr(h.text, "# Article title"));
  assert_null(strstr(h.text, "SITE"));
  assert_string_equal(h.title, "Article title");
  assert_int_equal(h.n_links, 0);
  docs_html_close(&h);
}

static void test_html_garbage(void **state) {
  const char *inputs[] = {"", "<", "<<<>>>", "<html><body><pre>", "\xff\xfe<p>\x80\x81 text</p>",
                          "<h1><h2><h3>x</h1>", "<table><tr><td>a<td>b</table>"};
  for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
    docs_html h;
    assert_int_equal(docs_html_extract(inputs[i], strlen(inputs[i]), &h), 0);
    assert_non_null(h.text);
    assert_int_equal(strlen(h.text), h.text_len);
    docs_html_close(&h);
  }
  /* deep nesting must not exhaust the stack */
  size_t n = 200000;
  char *deep = malloc(n * 5 + 1);
  for (size_t i = 0; i < n; i++) memcpy(deep + i * 5, "<div>", 5);
  deep[n * 5] = '\0';
  docs_html h;
  assert_int_equal(docs_html_extract(deep, n * 5, &h), 0);
  docs_html_close(&h);
  free(deep);
}

static void test_chunk_split_headings(void **state) {
  const char *t = "Intro text.\n\n# First\nalpha\n\n## Second ##\nbeta\n```\n# not a heading\n```\n# Empty\n";
  docs_chunks c = {0};
  docs_chunk_split(t, strlen(t), "Page", 1500, &c);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.v[0].title, "Page");
  assert_string_equal(c.v[0].text, "Intro text.");
  assert_string_equal(c.v[1].title, "First");
  assert_string_equal(c.v[1].text, "alpha");
  assert_string_equal(c.v[2].title, "Second");
  assert_string_equal(c.v[2].text, "beta\n```\n# not a heading\n```");
  docs_chunks_close(&c);
}

static void test_chunk_split_caps(void **state) {
  /* 40 paragraphs of 99 bytes, one long code block, one long line */
  char *t = malloc(20000);
  size_t n = 0;
  n += (size_t)sprintf(t + n, "# Big\n");
  for (int i = 0; i < 40; i++) {
    memset(t + n, 'a' + i % 26, 97);
    n += 97;
    n += (size_t)sprintf(t + n, "\n\n");
  }
  n += (size_t)sprintf(t + n, "```\n");
  for (int i = 0; i < 100; i++) n += (size_t)sprintf(t + n, "line %03d of code\n", i);
  n += (size_t)sprintf(t + n, "```\n");
  for (int i = 0; i < 3000; i++) t[n++] = (i % 3 == 0) ? '\xc3' : (i % 3 == 1) ? '\xa9' : 'x';
  t[n] = '\0';
  docs_chunks c = {0};
  docs_chunk_split(t, n, "P", 500, &c);
  assert_true(c.n >= 10);
  size_t total = 0;
  int open_fences = 0;
  for (size_t i = 0; i < c.n; i++) {
    assert_true(c.v[i].len <= 500);
    assert_string_equal(c.v[i].title, "Big");
    total += c.v[i].len;
    /* every chunk keeps its fences balanced */
    int f = 0;
    for (const char *p = c.v[i].text; (p = strstr(p, "```")); p += 3) f++;
    open_fences += f % 2;
    /* never cut inside a UTF-8 sequence */
    assert_true(((unsigned char)c.v[i].text[0] & 0xC0) != 0x80);
  }
  assert_int_equal(open_fences, 0);
  assert_true(total >= n * 9 / 10);
  docs_chunks_close(&c);
  free(t);
}

static void test_rst_and_utf8(void **state) {
  const char *r = "=====\nTitle\n=====\n\nSection\n-------\ntext\n\nshort\n---\n";
  size_t n;
  char *md = docs_rst_to_md(r, strlen(r), &n);
  assert_string_equal(md, "# Title\n\n## Section\ntext\n\nshort\n---\n");
  free(md);
  char *c = docs_utf8_clean("ok \xc3\xa9 \xff \xed\xa0\x80 \xc3", 13);
  assert_string_equal(c, "ok \xc3\xa9 ? ??? ?");
  free(c);
  char *h = docs_first_heading("```\n# no\n```\n## Yes #\n", 22);
  assert_string_equal(h, "Yes");
  free(h);
}

static void test_fts_query(void **state) {
  char *q = docs_fts_query("How do I frobnicate_widget(level=3) in the \"gizmo\" API? AND OR NEAR* -x", 48);
  assert_string_equal(q, "\"frobnicate\" OR \"widget\" OR \"level\" OR \"gizmo\" OR \"api\" OR \"near\"");
  free(q);
  q = docs_fts_query("Traceback (most recent call last): NameError: name 'pd' is not defined", 48);
  assert_string_equal(q, "\"nameerror\" OR \"name\" OR \"pd\" OR \"defined\"");
  free(q);
  assert_null(docs_fts_query("the a of ? !! ''", 48));
  assert_null(docs_fts_query("", 48));
  q = docs_fts_query("one two three four", 2);
  assert_string_equal(q, "\"one\" OR \"two\"");
  free(q);
  q = docs_fts_query("caf\xc3\xa9 na\xc3\xafve", 8);
  assert_string_equal(q, "\"caf\xc3\xa9\" OR \"na\xc3\xafve\"");
  free(q);
}

static void test_pack(void **state) {
  size_t costs[] = {50, 60, 30, 10, 100, 5};
  bool chosen[6];
  assert_int_equal(docs_pack(costs, 6, 100, 10, chosen), 95);
  bool want[] = {true, false, true, true, false, true};
  for (int i = 0; i < 6; i++) assert_int_equal(chosen[i], want[i]);
  /* stops after max_misses consecutive misses */
  size_t c2[] = {90, 50, 50, 5};
  assert_int_equal(docs_pack(c2, 4, 100, 2, chosen), 90);
  assert_false(chosen[3]);
  assert_int_equal(docs_pack(c2, 4, 0, 2, chosen), 0);
  assert_int_equal(docs_tokens(0), 0);
  assert_int_equal(docs_tokens(1), 1);
  assert_int_equal(docs_tokens(8), 2);
}


/* A client's local source must really be inside a workspace folder: a
 * sibling whose name merely starts like the root is outside, and so is a
 * symlink out of it; URLs are fetched from public addresses only unless
 * allowed. */
static void test_page_kind(void **state) {
  (void)state;
  assert_int_equal(docs_kind_from_name("/d/a.HTML"), DOCS_KIND_HTML);
  assert_int_equal(docs_kind_from_name("/d/a.md"), DOCS_KIND_TEXT);
  assert_int_equal(docs_kind_from_name("/d/a.rst"), DOCS_KIND_RST);
  assert_int_equal(docs_kind_from_name("/d/a.png"), DOCS_KIND_SKIP);
  assert_int_equal(docs_kind_from_name("/d.v2/README"), DOCS_KIND_SKIP); /* a dot in a folder is no extension */
  assert_int_equal(docs_kind_from_type("text/html; charset=utf-8", "https://x/a.md"), DOCS_KIND_HTML);
  assert_int_equal(docs_kind_from_type("text/plain", "https://x/a.rst"), DOCS_KIND_RST);
  assert_int_equal(docs_kind_from_type("text/plain", "https://x/a.txt"), DOCS_KIND_TEXT);
  assert_int_equal(docs_kind_from_type("text/htmlx", "https://x/a"), DOCS_KIND_SKIP);
  assert_int_equal(docs_kind_from_type("image/png", "https://x/a.html"), DOCS_KIND_SKIP);
  assert_int_equal(docs_kind_from_type(NULL, "https://x/guide"), DOCS_KIND_HTML); /* no type: a web page */
  assert_int_equal(docs_kind_from_type("", "https://x/notes.md"), DOCS_KIND_TEXT);
}

static void test_source_vet(void **state) {
  (void)state;
  char tmpl[] = "/tmp/crucible-vet-XXXXXX";
  char *dir = mkdtemp(tmpl);
  assert_non_null(dir);
  char *ws = xasprintf("%s/ws", dir), *ws2 = xasprintf("%s/ws2", dir), *in = xasprintf("%s/ws/a.md", dir);
  char *sib = xasprintf("%s/ws2/b.md", dir), *link = xasprintf("%s/ws/link.md", dir);
  assert_int_equal(mkdir(ws, 0700), 0);
  assert_int_equal(mkdir(ws2, 0700), 0);
  fclose(fopen(in, "w"));
  fclose(fopen(sib, "w"));
  assert_int_equal(symlink(sib, link), 0);
  const char *roots[] = {ws};
  char *res, *why;
  assert_int_equal(docs_source_vet(in, roots, 1, false, false, &res, &why), 0);
  assert_string_equal(res, in);
  assert_null(why);
  free(res);
  assert_int_equal(docs_source_vet(sib, roots, 1, false, false, &res, &why), -EACCES);
  assert_null(res);
  assert_non_null(strstr(why, "docs.allowLocal"));
  free(why);
  assert_int_equal(docs_source_vet(link, roots, 1, false, false, &res, &why), -EACCES);
  assert_non_null(strstr(why, sib)); /* names where it really leads */
  free(why);
  assert_int_equal(docs_source_vet(link, roots, 1, true, false, &res, &why), 0);
  assert_string_equal(res, sib);
  free(res);
  assert_int_equal(docs_source_vet(in, NULL, 0, false, false, &res, &why), -EACCES);
  free(why);
  assert_int_equal(docs_source_vet("/no/such/file", roots, 1, true, false, &res, &why), -ENOENT);
  free(why);
  assert_int_equal(docs_source_vet("https://docs.python.org/3/", NULL, 0, false, false, &res, &why), 1);
  free(res);
  assert_int_equal(docs_source_vet("http://127.0.0.1/", NULL, 0, false, true, &res, &why), 0);
  free(res);
  unlink(link), unlink(sib), unlink(in), rmdir(ws2), rmdir(ws), rmdir(dir);
  free(ws), free(ws2), free(in), free(sib), free(link);
}

static void test_sphinx_rendered(void **state) {
  (void)state;
  char *r = docs_sphinx_rendered("/d/html/_sources/library/zipfile.rst.txt");
  assert_string_equal(r, "/d/html/library/zipfile.html");
  free(r);
  r = docs_sphinx_rendered("http://h/docs/_sources/intro.txt");
  assert_string_equal(r, "http://h/docs/intro.html");
  free(r);
  r = docs_sphinx_rendered("/d/_sources/guide.md.txt");
  assert_string_equal(r, "/d/guide.html");
  free(r);
  assert_null(docs_sphinx_rendered("/d/html/notes.txt"));
  assert_null(docs_sphinx_rendered("/d/html/_sources/page.html"));
  assert_null(docs_sphinx_rendered("/d/my_sources/page.txt"));
}

static bool has(char **v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0) return true;
  return false;
}

static void free_words(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static void test_query_compounds(void **state) {
  (void)state;
  size_t n = 0;
  char **v = docs_query_compounds("How do I extract all files? Use a thread pool executor", 48, &n);
  assert_true(has(v, n, "extractall"));        /* a stopword may be part of one */
  assert_true(has(v, n, "threadpoolexecutor")); /* three words */
  assert_true(has(v, n, "poolexecutor"));
  assert_false(has(v, n, "howdo"));             /* stopwords alone make none */
  assert_false(has(v, n, "doi"));
  free_words(v, n);
  v = docs_query_compounds("how to check is file", 48, &n);
  assert_false(has(v, n, "howto"));
  assert_true(has(v, n, "isfile"));
  free_words(v, n);
  /* a determiner starts a phrase, not an identifier: examples' myprogram */
  v = docs_query_compounds("pause my program", 48, &n);
  assert_false(has(v, n, "myprogram"));
  free_words(v, n);
  v = docs_query_compounds("open the file with all its bytes", 48, &n);
  assert_false(has(v, n, "thefile"));
  assert_false(has(v, n, "itsbytes"));
  assert_true(has(v, n, "filewith")); /* a stopword may still be a part */
  free_words(v, n);
  v = docs_query_compounds("how do I sort them", 48, &n); /* nor a pronoun */
  assert_false(has(v, n, "isort"));
  free_words(v, n);
  v = docs_query_compounds("single", 48, &n);
  assert_int_equal(n, 0);
  free_words(v, n);
  v = docs_query_compounds("a b c d e f g h", 3, &n);
  assert_true(n <= 3);
  free_words(v, n);
}

static void test_text_deprecated(void **state) {
  (void)state;
  const char *t = "# asyncore — Asynchronous socket handler\n\nSource code: Lib/asyncore.py\n\n"
                  "Deprecated since version 3.6, will be removed in version 3.12: The asyncore module is deprecated.\n";
  assert_true(docs_text_deprecated(t, strlen(t)));
  t = "# Old API\n\nNote\n\nThis whole package is deprecated; use newpkg.\n";
  assert_true(docs_text_deprecated(t, strlen(t))); /* after an admonition label */
  t = "# Old\n\n> **Deprecated:** use the new client.\n";
  assert_true(docs_text_deprecated(t, strlen(t))); /* markdown emphasis and quoting */
  /* a deprecation further down is one function's, not the page's */
  t = "# xml.etree.ElementTree\n\nThe module implements an API for XML.\n\n"
      "Deprecated since version 3.3: The cElementTree module is deprecated.\n";
  assert_false(docs_text_deprecated(t, strlen(t)));
  t = "# json\n\n```\nDeprecated = 1\n```\n\nEncode and decode JSON.\n";
  assert_false(docs_text_deprecated(t, strlen(t)));
  assert_false(docs_text_deprecated("", 0));
}

static void test_changelog_url(void **state) {
  (void)state;
  assert_true(docs_url_is_changelog("/usr/share/doc/python3/html/whatsnew/3.2.html"));
  assert_true(docs_url_is_changelog("https://example.org/docs/CHANGELOG.md"));
  assert_true(docs_url_is_changelog("https://example.org/release-notes/v2/index"));
  assert_true(docs_url_is_changelog("/p/NEWS.rst"));
  assert_false(docs_url_is_changelog("/usr/share/doc/python3/html/library/zipfile.html"));
  assert_false(docs_url_is_changelog("https://news.example.org/docs/api.html")); /* a host, not a path */
  assert_false(docs_url_is_changelog("/docs/newsletter.html"));
  assert_true(docs_url_is_generated_index("/usr/share/doc/python3/html/genindex-all.html"));
  assert_true(docs_url_is_generated_index("https://docs.python.org/3/py-modindex.html"));
  assert_true(docs_url_is_generated_index("https://example.org/docs/genindex"));
  assert_false(docs_url_is_generated_index("/usr/share/doc/python3/html/library/index.html"));
  assert_false(docs_url_is_generated_index("/docs/searching.html"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_canon),          cmocka_unit_test(test_url_prefix),
      cmocka_unit_test(test_html_noise_dropped), cmocka_unit_test(test_html_code_verbatim),
      cmocka_unit_test(test_html_api_entries),
      cmocka_unit_test(test_html_article_header_kept), cmocka_unit_test(test_html_garbage),
      cmocka_unit_test(test_chunk_split_headings), cmocka_unit_test(test_chunk_split_caps),
      cmocka_unit_test(test_rst_and_utf8),       cmocka_unit_test(test_fts_query),
      cmocka_unit_test(test_pack),              cmocka_unit_test(test_source_vet),
      cmocka_unit_test(test_page_kind),         cmocka_unit_test(test_sphinx_rendered),
      cmocka_unit_test(test_query_compounds),   cmocka_unit_test(test_changelog_url),
      cmocka_unit_test(test_text_deprecated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
