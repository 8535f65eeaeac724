/* The language registry: names, aliases, extensions, interpreters. */
#include "lang.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static const lang_info langs[LANG_COUNT] = {
    [LANG_PYTHON] = {
        .name = "python",
        .aliases = {"py", "python3", NULL},
        .lsp_ids = {NULL},
        .exts = {".py", NULL},
        .script = "main.py",
        .interpreter = "/usr/bin/python3",
        .candidates = {"/usr/local/bin/python3", "/usr/bin/python3", NULL},
        .program = "python3",
        .package = "python3",
    },
    [LANG_JAVASCRIPT] = {
        .name = "javascript",
        .aliases = {"js", "node", NULL},
        .lsp_ids = {NULL},
        .exts = {".js", ".cjs", ".mjs", NULL},
        .script = "main.js",
        .interpreter = "/usr/bin/node",
        .candidates = {"/usr/local/bin/node", "/usr/bin/node", "/usr/bin/nodejs", NULL},
        .program = "node",
        .package = "nodejs",
    },
    [LANG_BASH] = {
        .name = "bash",
        .aliases = {"sh", "shell", NULL},
        .lsp_ids = {"shellscript", NULL}, /* VS Code's id for shell scripts */
        .exts = {".sh", ".bash", NULL},
        .script = "main.sh",
        .interpreter = "/usr/bin/bash",
        .candidates = {"/usr/bin/bash", "/bin/bash", NULL},
        .program = "bash",
        .package = "bash",
    },
};

#define NAMES(a) (sizeof(a) / sizeof((a)[0]))

static bool in(const char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n && list[i]; i++)
    if (!strcmp(list[i], s)) return true;
  return false;
}

const lang_info *lang_get(lang_id id) {
  return id >= 0 && id < LANG_COUNT ? &langs[id] : NULL;
}

const char *lang_name(lang_id id) {
  return id >= 0 && id < LANG_COUNT ? langs[id].name : "none";
}

lang_id lang_parse(const char *name) {
  if (!name) return LANG_NONE;
  for (int l = 0; l < LANG_COUNT; l++)
    if (!strcmp(name, langs[l].name) || in(langs[l].aliases, NAMES(langs[l].aliases), name)) return (lang_id)l;
  return LANG_NONE;
}

lang_id lang_from_lsp_id(const char *language_id) {
  lang_id id = lang_parse(language_id);
  if (id != LANG_NONE || !language_id) return id;
  for (int l = 0; l < LANG_COUNT; l++)
    if (in(langs[l].lsp_ids, NAMES(langs[l].lsp_ids), language_id)) return (lang_id)l;
  return LANG_NONE;
}

lang_id lang_from_path(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  if (!dot || strchr(dot, '/')) return LANG_NONE;
  for (int l = 0; l < LANG_COUNT; l++)
    if (in(langs[l].exts, NAMES(langs[l].exts), dot)) return (lang_id)l;
  return LANG_NONE;
}
