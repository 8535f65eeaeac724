/* Joins the two parts of a structured answer (imports, code) into one
 * program, keeping a line map so that diagnostics on the program can be
 * placed on the part they came from. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

static uint32_t count_newlines(const char *s) {
  uint32_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

int chk_join_program(const char *imports, const char *code, chk_split *out, char **program) {
  memset(out, 0, sizeof *out);
  if (!imports) imports = "";
  if (!code) code = "";
  size_t il = strlen(imports);
  bool add_nl = il > 0 && imports[il - 1] != '\n';
  *program = xasprintf("%s%s%s", imports, add_nl ? "\n" : "", code);
  out->imports = xstrdup(imports);
  out->code = xstrdup(code);
  uint32_t ni = count_newlines(imports) + (add_nl ? 1 : 0);
  uint32_t nc = count_newlines(code) + 1;
  out->nlines = (size_t)ni + nc;
  out->lines = xcalloc(out->nlines, sizeof *out->lines);
  for (uint32_t i = 0; i < ni; i++) out->lines[i] = (chk_line_origin){0, i};
  for (uint32_t i = 0; i < nc; i++) out->lines[ni + i] = (chk_line_origin){1, i};
  return 0;
}

bool chk_split_map(const chk_split *self, uint32_t line, chk_line_origin *origin) {
  if (line >= self->nlines) return false;
  *origin = self->lines[line];
  return true;
}

void chk_split_close(chk_split *self) {
  free(self->imports);
  free(self->code);
  free(self->lines);
  memset(self, 0, sizeof *self);
}
