/* Unit tests of the check module: fixture files per language (syntax error
 * classes, import forms, optional imports, statuses), UTF-16 columns,
 * incremental edits against full parses, joining, the module index
 * and its cache. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "common.h"
#include "internal.h"
#include "tmpdir.h"

static chk_context *ctx;
static chk_modset *modsets[CHK_LANG_COUNT];

/* The file's bytes (NUL-terminated; caller frees) and their count in *len, or
 * NULL with *len = 0: set on every path, as cmocka's assert_non_null is not
 * known to the compiler to stop the test. */
static char *slurp(const char *path, size_t *len) {
  if (len) *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0) {
    fclose(f);
    return NULL;
  }
  char *buf = xmalloc((size_t)n + 1);
  size_t r = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[r] = '\0';
  if (len) *len = r;
  return buf;
}

static int group_setup(void **state) {
  char *msg = NULL;
  ctx = chk_context_new(&msg);
  if (!ctx) {
    fprintf(stderr, "chk_context_new: %s\n", msg);
    free(msg);
    return -1;
  }
  for (int l = 0; l < CHK_LANG_COUNT; l++) {
    char *path = xasprintf("%s/probe-%s.json", FIXTURES, chk_language_name(l));
    size_t len;
    char *json = slurp(path, &len);
    if (!json) return -1;
    modsets[l] = chk_modset_from_probe(chk_language_name(l), json, len, NULL, NULL);
    free(json);
    free(path);
    if (!modsets[l]) return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  for (int l = 0; l < CHK_LANG_COUNT; l++) chk_modset_free(modsets[l]);
  chk_context_free(ctx);
  chk_shutdown();
  return 0;
}

/* ---- fixture-driven checks ---- */

static const char *sev_word(chk_severity s) {
  return s == CHK_SEV_ERROR ? "error" : s == CHK_SEV_WARNING ? "warning" : "note";
}

/* Runs one fixture. Expectations live next to it in FILE.expect:
 *   expect: LINE:COL SEVERITY CODE: MESSAGE-PREFIX   (a diagnostic)
 *   import: LINE:COL MODULE STATUS [optional]        (an import, in order)
 * LINE and COL are 1-based, COL in UTF-16 code units. Every diagnostic and
 * every import must be expected: extra ones fail the test. */
static int check_fixture(chk_language lang, const char *path) {
  static const char *const deny[] = {"ctypes", "rm", NULL};
  size_t len;
  char *text = slurp(path, &len);
  assert_non_null(text);
  chk_doc *doc = chk_doc_new(ctx, lang, text, len);
  chk_report r = {0};
  chk_options opts = {.modset = modsets[lang], .deny = deny};
  chk_doc_check(ctx, doc, &opts, &r);

  if (getenv("CHK_FIXTURE_DUMP")) { /* a developer aid for writing fixtures */
    for (size_t i = 0; i < r.ndiags; i++)
      fprintf(stderr, "%s: expect: %u:%u %s %s: %s\n", path, r.diags[i].start.row + 1,
              chk_doc_point_to_lsp(doc, r.diags[i].start, LSP_ENC_UTF16) + 1,
              sev_word(r.diags[i].severity), r.diags[i].code, r.diags[i].message);
    for (size_t i = 0; i < r.nimports; i++)
      fprintf(stderr, "%s: import: %u:%u %s %s%s\n", path, r.imports[i].start.row + 1,
              chk_doc_point_to_lsp(doc, r.imports[i].start, LSP_ENC_UTF16) + 1, r.imports[i].module,
              chk_status_name(r.imports[i].status), r.imports[i].optional ? " optional" : "");
  }
  int failures = 0;
  size_t ndiag_expected = 0, nimp_expected = 0;
  bool *diag_seen = xcalloc(r.ndiags + 1, sizeof *diag_seen);
  char *epath = xasprintf("%s.expect", path);
  char *expect = slurp(epath, NULL);
  free(epath);
  assert_non_null(expect);
  for (char *line = expect; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    char *e;
    unsigned L, C;
    int used = 0;
    if ((e = strstr(line, "expect: ")) && sscanf(e + 8, "%u:%u %n", &L, &C, &used) == 2) {
      ndiag_expected++;
      char sev[16], code[64];
      int used2 = 0;
      sscanf(e + 8 + used, "%15s %63[^:]: %n", sev, code, &used2);
      const char *want = e + 8 + used + used2;
      bool found = false;
      for (size_t i = 0; i < r.ndiags && !found; i++) {
        chk_diag *d = &r.diags[i];
        if (diag_seen[i] || d->start.row + 1 != L ||
            chk_doc_point_to_lsp(doc, d->start, LSP_ENC_UTF16) + 1 != C ||
            strcmp(sev_word(d->severity), sev) || strcmp(d->code, code) ||
            strncmp(d->message, want, strlen(want)))
          continue;
        found = diag_seen[i] = true;
      }
      if (!found) {
        fprintf(stderr, "%s: expected diagnostic %u:%u %s %s: %s not found\n", path, L, C, sev,
                code, want);
        failures++;
      }
    } else if ((e = strstr(line, "import: ")) && sscanf(e + 8, "%u:%u %n", &L, &C, &used) == 2) {
      char mod[128], status[32], opt[32] = "";
      int k = sscanf(e + 8 + used, "%127s %31s %31s", mod, status, opt);
      assert_true(k >= 2);
      size_t i = nimp_expected++;
      chk_import *im = i < r.nimports ? &r.imports[i] : NULL;
      if (!im || im->start.row + 1 != L ||
          chk_doc_point_to_lsp(doc, im->start, LSP_ENC_UTF16) + 1 != C ||
          strcmp(im->module, mod) || strcmp(chk_status_name(im->status), status) ||
          im->optional != !strcmp(opt, "optional")) {
        fprintf(stderr, "%s: import #%zu: expected %u:%u %s %s %s, got %s\n", path, i, L, C, mod,
                status, opt, im ? im->module : "(none)");
        if (im)
          fprintf(stderr, "    got %u:%u %s %s%s\n", im->start.row + 1,
                  chk_doc_point_to_lsp(doc, im->start, LSP_ENC_UTF16) + 1, im->module,
                  chk_status_name(im->status), im->optional ? " optional" : "");
        failures++;
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  for (size_t i = 0; i < r.ndiags; i++) {
    if (diag_seen[i]) continue;
    chk_diag *d = &r.diags[i];
    fprintf(stderr, "%s: unexpected diagnostic %u:%u %s %s: %s\n", path, d->start.row + 1,
            chk_doc_point_to_lsp(doc, d->start, LSP_ENC_UTF16) + 1, sev_word(d->severity), d->code,
            d->message);
    failures++;
  }
  if (r.nimports != nimp_expected) {
    fprintf(stderr, "%s: %zu imports, expected %zu\n", path, r.nimports, nimp_expected);
    for (size_t i = nimp_expected; i < r.nimports; i++)
      fprintf(stderr, "    extra %u:%u %s %s\n", r.imports[i].start.row + 1,
              r.imports[i].start.column + 1, r.imports[i].module,
              chk_status_name(r.imports[i].status));
    failures++;
  }
  (void)ndiag_expected;
  free(diag_seen);
  free(expect);
  chk_report_close(&r);
  chk_doc_free(doc);
  free(text);
  return failures;
}

static void run_fixture_dir(chk_language lang, const char *prefix, int min_files) {
  char *dir = xasprintf("%s/%s", FIXTURES, chk_language_name(lang));
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int files = 0, failures = 0;
  while ((e = readdir(d)) != NULL) {
    size_t nl = strlen(e->d_name);
    if (strncmp(e->d_name, prefix, strlen(prefix)) || e->d_name[0] == '.' ||
        (nl > 7 && !strcmp(e->d_name + nl - 7, ".expect")))
      continue;
    char *path = xasprintf("%s/%s", dir, e->d_name);
    failures += check_fixture(lang, path);
    free(path);
    files++;
  }
  closedir(d);
  free(dir);
  assert_true(files >= min_files);
  assert_int_equal(failures, 0);
}

static void test_python_syntax(void **state) { run_fixture_dir(CHK_LANG_PYTHON, "syntax_", 7); }
static void test_python_imports(void **state) { run_fixture_dir(CHK_LANG_PYTHON, "imports_", 4); }
static void test_python_clean(void **state) { run_fixture_dir(CHK_LANG_PYTHON, "clean", 1); }
static void test_javascript(void **state) { run_fixture_dir(CHK_LANG_JAVASCRIPT, "", 4); }
static void test_bash(void **state) { run_fixture_dir(CHK_LANG_BASH, "", 3); }

/* ---- positions ---- */

static void test_utf16_after_astral(void **state) {
  /* U+1D11E is 4 bytes in UTF-8 and 2 units in UTF-16; 'é' is 2 bytes, 1 unit */
  const char *src = "s = '\xF0\x9D\x84\x9E\xC3\xA9'; x = = 1\n";
  cJSON *j16 = chk_check_json(ctx, CHK_LANG_PYTHON, src, strlen(src), NULL, LSP_ENC_UTF16);
  cJSON *j8 = chk_check_json(ctx, CHK_LANG_PYTHON, src, strlen(src), NULL, LSP_ENC_UTF8);
  cJSON *j32 = chk_check_json(ctx, CHK_LANG_PYTHON, src, strlen(src), NULL, LSP_ENC_UTF32);
  cJSON *d16 = cJSON_GetArrayItem(cJSON_GetObjectItem(j16, "diagnostics"), 0);
  cJSON *d8 = cJSON_GetArrayItem(cJSON_GetObjectItem(j8, "diagnostics"), 0);
  cJSON *d32 = cJSON_GetArrayItem(cJSON_GetObjectItem(j32, "diagnostics"), 0);
  assert_non_null(d16);
  assert_string_equal(cJSON_GetObjectItem(d16, "message")->valuestring, "invalid syntax");
  /* the second '=' is at character 14 of the line in UTF-16 ("s = '" 5 + 2 + 1 + "'; x = " 7) */
  int c16 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d16, "range"), "start"), "character")->valueint;
  int c8 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d8, "range"), "start"), "character")->valueint;
  int c32 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d32, "range"), "start"), "character")->valueint;
  assert_int_equal(c16, 15);
  assert_int_equal(c8, 18);
  assert_int_equal(c32, 14);
  assert_string_equal(cJSON_GetObjectItem(d16, "source")->valuestring, "crucible");
  assert_int_equal(cJSON_GetObjectItem(d16, "severity")->valueint, 1);
  cJSON_Delete(j16);
  cJSON_Delete(j8);
  cJSON_Delete(j32);
}

static void test_col_conversion_roundtrip(void **state) {
  /* The document's positions go through protocol/utf8.c; line 1 holds the
   * characters, so the line index is exercised too. */
  const char *text = "x = 1\n"
                     "a\xF0\x9D\x84\x9E" "b\xC3\xA9" "c\n";
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, text, strlen(text));
  assert_non_null(doc);
  size_t bytes[] = {0, 1, 5, 6, 8, 9};
  uint32_t u16[] = {0, 1, 3, 4, 5, 6};
  for (size_t i = 0; i < ARRAY_LEN(bytes); i++) {
    TSPoint p = {1, (uint32_t)bytes[i]};
    assert_int_equal(chk_doc_point_to_lsp(doc, p, LSP_ENC_UTF16), u16[i]);
    assert_int_equal(chk_doc_offset(doc, 1, u16[i], LSP_ENC_UTF16), 6 + bytes[i]);
    assert_int_equal(chk_doc_offset(doc, 1, (uint32_t)bytes[i], LSP_ENC_UTF8), 6 + bytes[i]);
  }
  /* a column inside a surrogate pair stays before the character; past the end clamps */
  assert_int_equal(chk_doc_offset(doc, 1, 2, LSP_ENC_UTF16), 7);
  assert_int_equal(chk_doc_offset(doc, 1, 99, LSP_ENC_UTF16), 6 + 9);
  assert_int_equal(chk_doc_offset(doc, 1, 3, LSP_ENC_UTF8), 7);
  assert_int_equal(chk_doc_offset(doc, 9, 0, LSP_ENC_UTF16), strlen(text));
  chk_doc_free(doc);
}

/* ---- incremental edits ---- */

static char *tree_string(const chk_doc *d) {
  return ts_node_string(ts_tree_root_node(chk_doc_tree(d)));
}

static char *report_string(const chk_doc *d) {
  chk_report r = {0};
  chk_options o = {.modset = modsets[chk_doc_language(d)]};
  chk_doc_check(ctx, d, &o, &r);
  cJSON *j = chk_report_json(&r, d, LSP_ENC_UTF16);
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  chk_report_close(&r);
  return s;
}

static void assert_same_as_full_parse(const chk_doc *inc) {
  size_t len;
  const char *text = chk_doc_text(inc, &len);
  chk_doc *full = chk_doc_new(ctx, chk_doc_language(inc), text, len);
  char *a = tree_string(inc), *b = tree_string(full);
  assert_string_equal(a, b);
  free(a);
  free(b);
  a = report_string(inc);
  b = report_string(full);
  assert_string_equal(a, b);
  free(a);
  free(b);
  chk_doc_free(full);
}

/* Position (UTF-16) of byte offset off in text. */
static void lsp_pos(const char *text, size_t off, uint32_t *line, uint32_t *col) {
  size_t ls = 0;
  *line = 0;
  for (size_t i = 0; i < off; i++)
    if (text[i] == '\n') {
      (*line)++;
      ls = i + 1;
    }
  const char *nl = strchr(text + ls, '\n');
  size_t ll = nl ? (size_t)(nl - (text + ls)) : strlen(text + ls);
  *col = utf8_col_to_lsp(text + ls, ll, off - ls, LSP_ENC_UTF16);
}

static void test_incremental_equals_full(void **state) {
  static const char *const inserts[] = {"(", ")", "\n", "x", "import nump\n", "\xF0\x9D\x84\x9E",
                                        ":", "  ", "'", "def g(:\n", "", "\"\"\"", "try:\n"};
  const char *files[] = {"python/imports_forms.py", "python/syntax_unclosed_paren.py",
                         "javascript/imports.js", "bash/imports.sh"};
  chk_language langs[] = {CHK_LANG_PYTHON, CHK_LANG_PYTHON, CHK_LANG_JAVASCRIPT, CHK_LANG_BASH};
  unsigned seed = 12345;
  for (size_t f = 0; f < ARRAY_LEN(files); f++) {
    char *path = xasprintf("%s/%s", FIXTURES, files[f]);
    size_t len;
    char *text = slurp(path, &len);
    chk_doc *doc = chk_doc_new(ctx, langs[f], text, len);
    for (int step = 0; step < 60; step++) {
      size_t cur_len;
      const char *cur = chk_doc_text(doc, &cur_len);
      seed = seed * 1103515245u + 12345u;
      size_t a = cur_len ? (seed >> 8) % cur_len : 0;
      seed = seed * 1103515245u + 12345u;
      size_t b = a + (seed >> 8) % 8;
      if (b > cur_len) b = cur_len;
      /* keep both ends on character boundaries, as an editor would */
      while (a > 0 && ((unsigned char)cur[a] & 0xC0) == 0x80) a--;
      while (b < cur_len && ((unsigned char)cur[b] & 0xC0) == 0x80) b++;
      uint32_t sl, sc, el, ec;
      lsp_pos(cur, a, &sl, &sc);
      lsp_pos(cur, b, &el, &ec);
      const char *ins = inserts[(seed >> 4) % ARRAY_LEN(inserts)];
      char *expect = xasprintf("%.*s%s%s", (int)a, cur, ins, cur + b);
      assert_int_equal(chk_doc_change(doc, true, sl, sc, el, ec, ins, strlen(ins), LSP_ENC_UTF16), 0);
      assert_string_equal(chk_doc_text(doc, NULL), expect);
      free(expect);
      assert_same_as_full_parse(doc);
    }
    chk_doc_free(doc);
    free(text);
    free(path);
  }
}

static int cmp_lines(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The imports of doc as sorted text lines: scan order differs between the
 * prefiltered and the whole-tree query. */
static char *imports_string(const chk_doc *doc, bool prefilter) {
  chk_report r = {0};
  chk_options opts = {.modset = modsets[chk_doc_language(doc)]};
  chk_imports_scan(ctx, doc, &opts, prefilter, &r);
  size_t n = r.nimports + r.ndiags;
  char **lines = xcalloc(n ? n : 1, sizeof *lines);
  size_t k = 0;
  for (size_t i = 0; i < r.nimports; i++) {
    const chk_import *m = &r.imports[i];
    lines[k++] = xasprintf("import %u:%u-%u:%u %s %s%s", m->start.row, m->start.column, m->end.row,
                           m->end.column, m->module, chk_status_name(m->status),
                           m->optional ? " optional" : "");
  }
  for (size_t i = 0; i < r.ndiags; i++) {
    const chk_diag *d = &r.diags[i];
    lines[k++] = xasprintf("diag %u:%u %d %s %s", d->start.row, d->start.column, d->severity,
                           d->code, d->message);
  }
  qsort(lines, n, sizeof *lines, cmp_lines);
  size_t total = 1;
  for (size_t i = 0; i < n; i++) total += strlen(lines[i]) + 1;
  char *out = xmalloc(total), *w = out;
  for (size_t i = 0; i < n; i++) {
    w += sprintf(w, "%s\n", lines[i]);
    free(lines[i]);
  }
  *w = '\0';
  free(lines);
  chk_report_close(&r);
  return out;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void assert_prefilter_same(chk_language lang, const char *text, size_t len, size_t *found) {
  chk_doc *doc = chk_doc_new(ctx, lang, text, len);
  char *a = imports_string(doc, true), *b = imports_string(doc, false);
  assert_string_equal(a, b);
  *found += count_lines(a);
  free(a);
  free(b);
  chk_doc_free(doc);
}

/* chk_imports only queries around the words every import contains; it must
 * find exactly what a whole-tree query finds, also on broken programs. */
static void test_prefilter_equals_full_scan(void **state) {
  static const char *const py_extra =
      "import os, sys as system\n"
      "x = '''import nothing'''  # import in a comment\n"
      "def f():\n"
      "    try:\n"
      "        import numpy.linalg as la\n"
      "        from .sibling import thing\n"
      "    except ImportError:\n"
      "        la = None\n"
      "    print(len(__import__('json').dumps([importlib.import_module('csv')])))\n"
      "    return import_module(\"xml.dom\")\n"
      "class C:\n"
      "    def g(self):\n"
      "        from collections import (\n"
      "            OrderedDict,\n"
      "        )\n"
      "        return __import__(f'{self}')\n";
  static const char *const js_extra =
      "import fs from 'fs';\n"
      "export { a } from './a.js';\n"
      "export * from \"lodash\";\n"
      "const p = require('path'), q = require(`x`);\n"
      "async function f() { try { await import('node:os'); } catch (e) { require('left-pad'); } }\n"
      "// import nothing; require('not-a-call')\n";
  static const char *const files[] = {"python/imports_forms.py", "python/imports_missing.py",
                                      "python/imports_optional.py", "python/clean.py",
                                      "python/syntax_cascade.py", "javascript/imports.js",
                                      "javascript/syntax_unexpected.js"};
  static const char *const inserts[] = {"import ", "(", ")", "\n", "    ", ":", "'", "__import__(",
                                        "require(", "from . ", "try:\n", "x"};
  unsigned seed = 777;
  size_t found = 0;
  (void)state;
  for (size_t f = 0; f < ARRAY_LEN(files) + 2; f++) {
    char *text;
    chk_language lang;
    if (f < ARRAY_LEN(files)) {
      char *path = xasprintf("%s/%s", FIXTURES, files[f]);
      text = slurp(path, NULL);
      free(path);
      assert_non_null(text);
      lang = strstr(files[f], "javascript/") ? CHK_LANG_JAVASCRIPT : CHK_LANG_PYTHON;
    } else {
      lang = f == ARRAY_LEN(files) ? CHK_LANG_PYTHON : CHK_LANG_JAVASCRIPT;
      /* filler between the copies so the occurrences fall into several query ranges */
      const char *body = lang == CHK_LANG_PYTHON ? py_extra : js_extra;
      const char *pad = lang == CHK_LANG_PYTHON ? "y = [1, 2, 3]  # filler line\n" : "let y = [1, 2, 3];\n";
      size_t cap = 64 * 1024, len = 0;
      text = xmalloc(cap);
      text[0] = '\0';
      for (int rep = 0; rep < 6; rep++) {
        for (int i = 0; i < 40 * rep; i++) len += (size_t)snprintf(text + len, cap - len, "%s", pad);
        len += (size_t)snprintf(text + len, cap - len, "%s", body);
      }
    }
    size_t len = strlen(text);
    assert_prefilter_same(lang, text, len, &found);
    /* and on random damage of it */
    for (int step = 0; step < 40; step++) {
      seed = seed * 1103515245u + 12345u;
      size_t a = len ? (seed >> 8) % len : 0;
      seed = seed * 1103515245u + 12345u;
      size_t b = a + (seed >> 8) % 6;
      if (b > len) b = len;
      const char *ins = inserts[(seed >> 4) % ARRAY_LEN(inserts)];
      char *mut = xasprintf("%.*s%s%s", (int)a, text, ins, text + b);
      assert_prefilter_same(lang, mut, strlen(mut), &found);
      free(mut);
    }
    free(text);
  }
  /* the comparison means something only when imports were found */
  assert_true(found > 500);
}

static void test_change_json(void **state) {
  const char *src = "x = 1\ny = \xF0\x9D\x84\x9E\n";
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, src, strlen(src));
  /* replace the astral character (UTF-16 columns 4..6 of line 1) */
  cJSON *c = cJSON_Parse("{\"range\":{\"start\":{\"line\":1,\"character\":4},"
                         "\"end\":{\"line\":1,\"character\":6}},\"text\":\"(2\"}");
  assert_int_equal(chk_doc_change_json(doc, c, LSP_ENC_UTF16), 0);
  cJSON_Delete(c);
  assert_string_equal(chk_doc_text(doc, NULL), "x = 1\ny = (2\n");
  assert_same_as_full_parse(doc);
  chk_report r = {0};
  chk_doc_check(ctx, doc, NULL, &r);
  assert_int_equal(r.ndiags, 1);
  assert_string_equal(r.diags[0].message, "'(' was never closed");
  chk_report_close(&r);
  /* the same edit in UTF-8 columns: line 1 bytes 4..5 */
  c = cJSON_Parse("{\"range\":{\"start\":{\"line\":1,\"character\":5},"
                  "\"end\":{\"line\":1,\"character\":6}},\"text\":\")\"}");
  assert_int_equal(chk_doc_change_json(doc, c, LSP_ENC_UTF8), 0);
  cJSON_Delete(c);
  assert_string_equal(chk_doc_text(doc, NULL), "x = 1\ny = ()\n");
  /* positions past the end clamp to the end */
  c = cJSON_Parse("{\"range\":{\"start\":{\"line\":9,\"character\":0},"
                  "\"end\":{\"line\":9,\"character\":3}},\"text\":\"z = 3\\n\"}");
  assert_int_equal(chk_doc_change_json(doc, c, LSP_ENC_UTF16), 0);
  cJSON_Delete(c);
  assert_string_equal(chk_doc_text(doc, NULL), "x = 1\ny = ()\nz = 3\n");
  assert_same_as_full_parse(doc);
  /* full replacement; and a change without text is refused */
  c = cJSON_Parse("{\"text\":\"import os\\n\"}");
  assert_int_equal(chk_doc_change_json(doc, c, LSP_ENC_UTF16), 0);
  cJSON_Delete(c);
  assert_string_equal(chk_doc_text(doc, NULL), "import os\n");
  c = cJSON_Parse("{\"range\":null}");
  assert_int_equal(chk_doc_change_json(doc, c, LSP_ENC_UTF16), -EINVAL);
  cJSON_Delete(c);
  chk_doc_free(doc);
}

/* ---- join ---- */

static void test_join_maps_diagnostics(void **state) {
  const char *imports = "import os\nimport nump";
  const char *code = "x = 1\ny = (2\n";
  chk_split s;
  char *prog = NULL;
  assert_int_equal(chk_join_program(imports, code, &s, &prog), 0);
  assert_string_equal(prog, "import os\nimport nump\nx = 1\ny = (2\n");
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, prog, strlen(prog));
  chk_report r = {0};
  chk_options o = {.modset = modsets[CHK_LANG_PYTHON]};
  chk_doc_check(ctx, doc, &o, &r);
  assert_int_equal(r.ndiags, 2);
  chk_line_origin org;
  /* the missing module is on imports line 1, the syntax error on code line 1 */
  assert_true(chk_split_map(&s, r.diags[0].start.row, &org));
  assert_int_equal(org.part, 0);
  assert_int_equal(org.line, 1);
  assert_string_equal(r.diags[0].code, "missing-module");
  assert_true(chk_split_map(&s, r.diags[1].start.row, &org));
  assert_int_equal(org.part, 1);
  assert_int_equal(org.line, 1);
  assert_string_equal(r.diags[1].code, "syntax");
  chk_report_close(&r);
  chk_doc_free(doc);
  chk_split_close(&s);
  free(prog);
  /* empty imports: code lines map one to one */
  assert_int_equal(chk_join_program("", "a\nb", &s, &prog), 0);
  assert_string_equal(prog, "a\nb");
  assert_int_equal(s.nlines, 2);
  assert_true(chk_split_map(&s, 1, &org));
  assert_int_equal(org.part, 1);
  assert_int_equal(org.line, 1);
  chk_split_close(&s);
  free(prog);
}

/* ---- module index ---- */

static void test_modset_lookup_and_suggest(void **state) {
  const chk_modset *ms = modsets[CHK_LANG_PYTHON];
  assert_true(chk_modset_has(ms, "numpy"));
  assert_false(chk_modset_has(ms, "nump"));
  assert_string_equal(chk_modset_suggest(ms, "nump"), "numpy");
  assert_string_equal(chk_modset_suggest(ms, "pandsa"), "pandas");
  assert_null(chk_modset_suggest(ms, "tensorflow"));
  assert_string_equal(chk_modset_version(ms), "3.11.2");
  char *msg = NULL;
  assert_null(chk_modset_from_probe("python", "Traceback (most recent call last)", 33, NULL, &msg));
  assert_non_null(msg);
  free(msg);
  msg = NULL;
  assert_null(chk_modset_from_probe("python", "{\"language\":\"bash\",\"version\":\"5\",\"modules\":[]}",
                                    45, NULL, &msg));
  free(msg);
}

/* Runs the language's probe with the HOST interpreter and returns its output.
 * Production runs the probe inside the sandbox; the host interpreter sees the
 * same /usr, which is all this test needs. */
static char *run_host_probe(const char *interp, const char *flag, const char *script, size_t *len) {
  int fds[2];
  if (access(interp, X_OK) != 0 || pipe(fds) != 0) return NULL;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(interp, interp, flag, script, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t cap = 1 << 16, n = 0;
  char *buf = xmalloc(cap);
  ssize_t r;
  while ((r = read(fds[0], buf + n, cap - n - 1)) > 0) {
    n += (size_t)r;
    if (cap - n < 4096) buf = xrealloc(buf, cap *= 2);
  }
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  buf[n] = '\0';
  *len = n;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

static void test_probe_python_host(void **state) {
  size_t len;
  char *out = run_host_probe("/usr/bin/python3", "-c", chk_probe_script("python"), &len);
  if (!out) skip();
  chk_modset *ms = chk_modset_from_probe("python", out, len, "/usr/bin/python3", NULL);
  assert_non_null(ms);
  assert_true(chk_modset_has(ms, "json"));
  assert_true(chk_modset_has(ms, "sys"));
  assert_true(chk_modset_has(ms, "importlib"));
  assert_false(chk_modset_has(ms, "surely_not_a_module_xyz"));
  assert_true(chk_modset_count(ms) > 100);
  assert_int_equal(chk_modset_version(ms)[0], '3');
  chk_modset_free(ms);
  free(out);
}

static void test_probe_node_and_bash_host(void **state) {
  size_t len;
  char *out = run_host_probe("/usr/bin/node", "-e", chk_probe_script("javascript"), &len);
  if (out) {
    chk_modset *ms = chk_modset_from_probe("javascript", out, len, "/usr/bin/node", NULL);
    assert_non_null(ms);
    assert_true(chk_modset_has(ms, "fs"));
    assert_true(chk_modset_has(ms, "child_process"));
    chk_modset_free(ms);
    free(out);
  }
  out = run_host_probe("/bin/bash", "-c", chk_probe_script("bash"), &len);
  assert_non_null(out);
  chk_modset *ms = chk_modset_from_probe("bash", out, len, "/bin/bash", NULL);
  assert_non_null(ms);
  assert_true(chk_modset_has(ms, "sh"));
  assert_true(chk_modset_has(ms, "ls"));
  chk_modset_free(ms);
  free(out);
}

static void test_cache_roundtrip(void **state) {
  char dir[256];
  tu_tmpdir_make(dir, sizeof dir, "check-test");
  char *old = getenv("XDG_CACHE_HOME") ? xstrdup(getenv("XDG_CACHE_HOME")) : NULL;
  setenv("XDG_CACHE_HOME", dir, 1);
  /* a stand-in interpreter file: the cache keys on its path and mtime */
  char *interp = xasprintf("%s/python3", dir);
  int fd = open(interp, O_CREAT | O_WRONLY, 0755);
  assert_true(fd >= 0);
  close(fd);
  const char *probe = "{\"language\":\"python\",\"version\":\"3.11.2\",\"modules\":[\"os\",\"numpy\"]}";
  chk_modset *ms = chk_modset_from_probe("python", probe, strlen(probe), interp, NULL);
  assert_null(chk_modset_cache_load("python", interp, NULL));
  assert_int_equal(chk_modset_cache_store(ms), 0);
  chk_modset *back = chk_modset_cache_load("python", interp, NULL);
  assert_non_null(back);
  assert_true(chk_modset_has(back, "numpy"));
  assert_int_equal(chk_modset_count(back), 2);
  assert_string_equal(chk_modset_interpreter(back), interp);
  chk_modset_free(back);
  /* a different version is a miss */
  assert_null(chk_modset_cache_load("python", interp, "3.12.0"));
  back = chk_modset_cache_load("python", interp, "3.11.2");
  assert_non_null(back);
  chk_modset_free(back);
  /* the doctor lists it as valid */
  cJSON *doc = chk_doctor_report();
  cJSON *idx = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "moduleIndex"), 0);
  assert_non_null(idx);
  assert_string_equal(cJSON_GetObjectItem(idx, "interpreter")->valuestring, interp);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(idx, "valid")));
  cJSON_Delete(doc);
  /* the interpreter changes (new mtime): the entry is stale */
  struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
  assert_int_equal(utimensat(AT_FDCWD, interp, ts, 0), 0);
  assert_null(chk_modset_cache_load("python", interp, NULL));
  /* and when it is gone */
  unlink(interp);
  assert_null(chk_modset_cache_load("python", interp, NULL));
  chk_modset_free(ms);

  tu_tmpdir_remove(dir);
  free(interp);
  if (old) setenv("XDG_CACHE_HOME", old, 1);
  else unsetenv("XDG_CACHE_HOME");
  free(old);
}

/* ---- startup, doctor, JSON ---- */

static void test_query_error_names_file_line_col(void **state) {
  chk_query q;
  char *msg = NULL;
  const char *bad = "(import_statement)\n\n  (calll function: (identifier))\n";
  assert_int_equal(chk_query_compile(&q, chk_ts_language(CHK_LANG_PYTHON), "grammars/python/x.scm",
                                     bad, &msg), -EINVAL);
  assert_string_equal(msg, "grammars/python/x.scm:3:4: invalid node type in query");
  free(msg);
  msg = NULL;
  assert_int_equal(chk_query_compile(&q, chk_ts_language(CHK_LANG_PYTHON), "q.scm",
                                     "((identifier) @a (#match? @a \"x\"))", &msg), -EINVAL);
  assert_non_null(strstr(msg, "unsupported predicate '#match?'"));
  free(msg);
  assert_int_equal(chk_query_compile(&q, chk_ts_language(CHK_LANG_PYTHON), "q.scm",
                                     "((identifier) @a (#any-of? @a \"x\" \"y\"))", &msg), 0);
  chk_query_close(&q);
}

static void test_doctor(void **state) {
  cJSON *d = chk_doctor_report();
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "ok")));
  cJSON *g = cJSON_GetObjectItem(d, "grammars");
  assert_int_equal(cJSON_GetArraySize(g), 3);
  cJSON *it;
  cJSON_ArrayForEach(it, g) {
    int abi = cJSON_GetObjectItem(it, "abi")->valueint;
    assert_true(abi >= TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION && abi <= TREE_SITTER_LANGUAGE_VERSION);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(it, "ok")));
  }
  cJSON *q = cJSON_GetObjectItem(d, "queries");
  assert_int_equal(cJSON_GetArraySize(q), 3);
  cJSON_ArrayForEach(it, q) {
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(it, "ok")));
    assert_true(cJSON_GetObjectItem(it, "patterns")->valueint > 0);
  }
  cJSON_Delete(d);
}

static void test_check_json_shape(void **state) {
  const char *src = "import nump\nimport os\n";
  chk_options o = {.modset = modsets[CHK_LANG_PYTHON]};
  cJSON *j = chk_check_json(ctx, CHK_LANG_PYTHON, src, strlen(src), &o, LSP_ENC_UTF16);
  cJSON *imps = cJSON_GetObjectItem(j, "imports");
  assert_int_equal(cJSON_GetArraySize(imps), 2);
  cJSON *a = cJSON_GetArrayItem(imps, 0), *b = cJSON_GetArrayItem(imps, 1);
  assert_string_equal(cJSON_GetObjectItem(a, "module")->valuestring, "nump");
  assert_string_equal(cJSON_GetObjectItem(a, "status")->valuestring, "missing");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(a, "optional")));
  assert_string_equal(cJSON_GetObjectItem(b, "status")->valuestring, "ok");
  cJSON *r = cJSON_GetObjectItem(b, "range");
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "start"), "line")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "start"), "character")->valueint, 7);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "end"), "character")->valueint, 9);
  cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "diagnostics"), 0);
  assert_string_equal(cJSON_GetObjectItem(d, "code")->valuestring, "missing-module");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "diagnostics")), 1);
  cJSON_Delete(j);
  /* without a module index, statuses are unknown and nothing is reported */
  j = chk_check_json(ctx, CHK_LANG_PYTHON, src, strlen(src), NULL, LSP_ENC_UTF16);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "imports"), 0), "status")->valuestring, "unknown");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "diagnostics")), 0);
  cJSON_Delete(j);
}

static void test_language_names(void **state) {
  /* the names are the registry's (tests/unit/util/test_lang.c) */
  assert_int_equal(chk_language_parse("node"), CHK_LANG_JAVASCRIPT);
  assert_int_equal(chk_language_from_path("a/b.mjs"), CHK_LANG_JAVASCRIPT);
  assert_null(chk_doc_new(ctx, CHK_LANG_NONE, "", 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_python_syntax),
      cmocka_unit_test(test_python_imports),
      cmocka_unit_test(test_python_clean),
      cmocka_unit_test(test_javascript),
      cmocka_unit_test(test_bash),
      cmocka_unit_test(test_utf16_after_astral),
      cmocka_unit_test(test_col_conversion_roundtrip),
      cmocka_unit_test(test_incremental_equals_full),
      cmocka_unit_test(test_prefilter_equals_full_scan),
      cmocka_unit_test(test_change_json),
      cmocka_unit_test(test_join_maps_diagnostics),
      cmocka_unit_test(test_modset_lookup_and_suggest),
      cmocka_unit_test(test_probe_python_host),
      cmocka_unit_test(test_probe_node_and_bash_host),
      cmocka_unit_test(test_cache_roundtrip),
      cmocka_unit_test(test_query_error_names_file_line_col),
      cmocka_unit_test(test_doctor),
      cmocka_unit_test(test_check_json_shape),
      cmocka_unit_test(test_language_names),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
