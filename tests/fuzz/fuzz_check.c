/* libFuzzer target: arbitrary bytes through parsing, syntax diagnostics,
 * import extraction and resolution, the JSON result, joining, and an
 * incremental edit, for each language. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static chk_context *ctx;
static chk_modset *modsets[CHK_LANG_COUNT];

static void setup(void) {
  ctx = chk_context_new(NULL);
  if (!ctx) abort();
  static const char *const probes[CHK_LANG_COUNT] = {
      "{\"version\":\"3.11.2\",\"modules\":[\"os\",\"sys\",\"json\",\"numpy\"]}",
      "{\"version\":\"20.1.0\",\"modules\":[\"fs\",\"path\",\"lodash\"]}",
      "{\"version\":\"5.2\",\"path\":\"/usr/bin:/bin\",\"modules\":[\"ls\",\"cat\",\"grep\"]}",
  };
  for (int l = 0; l < CHK_LANG_COUNT; l++) {
    modsets[l] = chk_modset_from_probe(chk_language_name(l), probes[l], strlen(probes[l]), NULL, NULL);
    if (!modsets[l]) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) setup();
  static const char *const deny[] = {"ctypes", "rm", NULL};
  const char *text = (const char *)data;
  for (int l = 0; l < CHK_LANG_COUNT; l++) {
    chk_options opts = {.modset = modsets[l], .deny = deny};
    chk_doc *doc = chk_doc_new(ctx, l, text, size);
    chk_report r = {0};
    chk_doc_check(ctx, doc, &opts, &r);
    cJSON *j = chk_report_json(&r, doc, (lsp_encoding)(size % 3));
    cJSON_Delete(j);
    chk_report_close(&r);
    /* an edit derived from the input: delete a middle slice, insert its head */
    if (size > 4) {
      uint32_t line = data[0] % 8, ch = data[1] % 32;
      size_t ins = size / 4 < 16 ? size / 4 : 16;
      chk_doc_change(doc, true, line, ch, line + data[2] % 3, data[3] % 40, text, ins,
                     (lsp_encoding)(data[0] % 3));
      chk_report r2 = {0};
      chk_doc_check(ctx, doc, &opts, &r2);
      chk_report_close(&r2);
    }
    chk_doc_free(doc);
    /* the text as a structured answer's imports and code, joined back */
    size_t half = size / 2;
    char *imports = strndup(text, half), *code = strndup(text + half, size - half);
    char *program = NULL;
    chk_split s;
    if (imports && code && chk_join_program(imports, code, &s, &program) == 0) {
      chk_line_origin o;
      for (uint32_t line = 0; line <= s.nlines; line++) (void)chk_split_map(&s, line, &o);
      chk_split_close(&s);
    }
    free(program);
    free(imports);
    free(code);
  }
  return 0;
}
