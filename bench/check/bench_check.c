/* Benchmark of the check module: a full check (parse + syntax + imports) of a
 * generated ~300-line and a 10,000-line Python program, and an incremental
 * one-character edit on the 10,000-line one; medians of many runs. The
 * baseline measured in the same run is a bare tree-sitter parse of the same
 * text, so the ratio shows what the checks add on top of parsing. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"

static int cmp_ull(const void *a, const void *b) {
  unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
  return x < y ? -1 : x > y;
}

static double median_us(unsigned long long *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_ull);
  return (double)v[n / 2] / 1000.0;
}

/* A plausible program: imports, functions, classes, loops, strings, comments. */
static char *gen_python(size_t lines) {
  size_t cap = lines * 64 + 1024, len = 0;
  char *s = xmalloc(cap);
  static const char *const head[] = {"import os\n", "import sys\n", "import json\n",
                                     "from collections import defaultdict\n",
                                     "import numpy as np\n", "from typing import List, Dict\n"};
  for (size_t i = 0; i < ARRAY_LEN(head); i++) len += (size_t)snprintf(s + len, cap - len, "%s", head[i]);
  size_t n = ARRAY_LEN(head), k = 0;
  while (n + 8 <= lines) {
    len += (size_t)snprintf(s + len, cap - len,
                            "\n\ndef func_%zu(data: List[int], scale=%zu) -> Dict[str, int]:\n"
                            "    \"\"\"Sum and count the items above a threshold.\"\"\"\n"
                            "    out = defaultdict(int)  # running totals\n"
                            "    for i, x in enumerate(data):\n"
                            "        if x * scale > %zu and not os.path.exists(str(i)):\n"
                            "            out['k%%d' %% (i %% 7)] += x\n"
                            "    return dict(out)\n",
                            k, k % 9 + 1, k * 3);
    n += 9;
    k++;
  }
  while (n < lines) {
    len += (size_t)snprintf(s + len, cap - len, "print(json.dumps(func_0([1, 2, 3])), file=sys.stderr)\n");
    n++;
  }
  return s;
}

/* 16,000 lines of statements with an import every 100 lines (160, spread
 * through the file) or, with imports false, the same lines with an
 * assignment of the same length in their place: a check must cost the same
 * whatever the imports (issue 13: the import pass was O(imports x size)). */
static char *gen_spread_imports(bool imports) {
  static const char *const mods[] = {"os", "sys", "json", "collections", "typing"};
  size_t lines = 16000, cap = lines * 48 + 64, len = 0;
  char *s = xmalloc(cap);
  for (size_t i = 0; i < lines; i++) {
    if (i % 100 == 0) {
      const char *m = mods[(i / 100) % ARRAY_LEN(mods)];
      if (imports) len += (size_t)snprintf(s + len, cap - len, "import %s\n", m);
      else len += (size_t)snprintf(s + len, cap - len, "x = %-*s\n", (int)strlen(m) + 3, "1");
    } else {
      len += (size_t)snprintf(s + len, cap - len, "value_%zu = compute(%zu, key='k%zu')\n", i, i, i % 7);
    }
  }
  return s;
}

typedef struct timing {
  double check_us, parse_us, syntax_us, imports_us;
} timing;

static timing bench_full(chk_context *ctx, const chk_options *opts, const char *src, int runs) {
  unsigned long long *v = xcalloc((size_t)runs, sizeof *v);
  unsigned long long *p = xcalloc((size_t)runs, sizeof *p);
  size_t len = strlen(src);
  TSParser *parser = ts_parser_new();
  chk_doc *empty = chk_doc_new(ctx, CHK_LANG_PYTHON, "", 0);
  ts_parser_set_language(parser, ts_tree_language(chk_doc_tree(empty)));
  chk_doc_free(empty);
  for (int i = 0; i < runs; i++) {
    unsigned long long t0 = now_ns();
    chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, src, len);
    chk_report r = {0};
    chk_doc_check(ctx, doc, opts, &r);
    v[i] = now_ns() - t0;
    chk_report_close(&r);
    chk_doc_free(doc);
    t0 = now_ns();
    TSTree *t = ts_parser_parse_string(parser, NULL, src, (uint32_t)len);
    p[i] = now_ns() - t0;
    ts_tree_delete(t);
  }
  timing out = {median_us(v, (size_t)runs), median_us(p, (size_t)runs), 0, 0};
  /* the two checks alone, on an already parsed document */
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, src, len);
  for (int i = 0; i < runs; i++) {
    chk_report r = {0};
    unsigned long long t0 = now_ns();
    chk_syntax(doc, &r);
    v[i] = now_ns() - t0;
    t0 = now_ns();
    chk_imports(ctx, doc, opts, &r);
    p[i] = now_ns() - t0;
    chk_report_close(&r);
  }
  chk_doc_free(doc);
  out.syntax_us = median_us(v, (size_t)runs);
  out.imports_us = median_us(p, (size_t)runs);
  ts_parser_delete(parser);
  free(v);
  free(p);
  return out;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 200;
  if (runs < 5) runs = 5;
  char *msg = NULL;
  chk_context *ctx = chk_context_new(&msg);
  if (!ctx) {
    fprintf(stderr, "bench_check: %s\n", msg);
    return 1;
  }
  const char *probe = "{\"version\":\"3.11.2\",\"modules\":[\"os\",\"sys\",\"json\",\"collections\","
                      "\"numpy\",\"typing\"]}";
  chk_modset *ms = chk_modset_from_probe("python", probe, strlen(probe), NULL, NULL);
  chk_options opts = {.modset = ms};

  char *small = gen_python(300), *big = gen_python(10000);
  timing ts = bench_full(ctx, &opts, small, runs);
  timing tb = bench_full(ctx, &opts, big, runs / 4 > 20 ? runs / 4 : 20);

  char *spread = gen_spread_imports(true), *flat = gen_spread_imports(false);
  int sruns = runs / 10 > 10 ? runs / 10 : 10;
  timing ti = bench_full(ctx, &opts, spread, sruns);
  timing tn = bench_full(ctx, &opts, flat, sruns);

  /* incremental: type one character in the middle of the big file, check, undo */
  size_t len = strlen(big);
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, big, len);
  int eruns = runs;
  unsigned long long *v = xcalloc((size_t)eruns, sizeof *v);
  uint32_t line = 5000;
  for (int i = 0; i < eruns; i++) {
    unsigned long long t0 = now_ns();
    chk_doc_change(doc, true, line, 4, line, 4, "x", 1, LSP_ENC_UTF16);
    chk_report r = {0};
    chk_doc_check(ctx, doc, &opts, &r);
    v[i] = now_ns() - t0;
    chk_report_close(&r);
    chk_doc_change(doc, true, line, 4, line, 5, "", 0, LSP_ENC_UTF16);
  }
  double edit_us = median_us(v, (size_t)eruns);
  /* the edit alone (ts_tree_edit + incremental reparse), without the checks */
  for (int i = 0; i < eruns; i++) {
    unsigned long long t0 = now_ns();
    chk_doc_change(doc, true, line, 4, line, 4, "x", 1, LSP_ENC_UTF16);
    v[i] = now_ns() - t0;
    chk_doc_change(doc, true, line, 4, line, 5, "", 0, LSP_ENC_UTF16);
  }
  double reparse_us = median_us(v, (size_t)eruns);
  free(v);
  chk_doc_free(doc);

  printf("check  300 lines (%6zu bytes): median %8.1f us  (bare parse %8.1f us, ratio %.2f)  goal <= 1000 us\n",
         strlen(small), ts.check_us, ts.parse_us, ts.check_us / ts.parse_us);
  printf("check 10k lines (%6zu bytes): median %8.1f us  (bare parse %8.1f us, ratio %.2f)  goal <= 10000 us\n",
         len, tb.check_us, tb.parse_us, tb.check_us / tb.parse_us);
  printf("  of which on a parsed doc: syntax %.1f us + imports %.1f us (300 lines); "
         "syntax %.1f us + imports %.1f us (10k lines)\n",
         ts.syntax_us, ts.imports_us, tb.syntax_us, tb.imports_us);
  printf("check 16k lines, 160 imports spread: median %8.1f us (bare parse %8.1f us, ratio %.2f); "
         "without imports: %8.1f us (bare parse %8.1f us, ratio %.2f)  goal: ratio <= 1.10 either way\n",
         ti.check_us, ti.parse_us, ti.check_us / ti.parse_us, tn.check_us, tn.parse_us,
         tn.check_us / tn.parse_us);
  printf("edit+check 1 char on 10k lines: median %8.1f us  (vs full check: ratio %.3f; "
         "edit+reparse alone %.1f us)\n", edit_us, edit_us / tb.check_us, reparse_us);
  free(small);
  free(big);
  free(spread);
  free(flat);
  chk_modset_free(ms);
  chk_context_free(ctx);
  chk_shutdown();
  return 0;
}
