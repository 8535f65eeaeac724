/* Entry points of the tree-sitter grammars compiled from the pinned npm packages. */
#ifndef CRUCIBLE_GRAMMARS_H
#define CRUCIBLE_GRAMMARS_H

#include <tree_sitter/api.h>

const TSLanguage *tree_sitter_python(void);
const TSLanguage *tree_sitter_javascript(void);
const TSLanguage *tree_sitter_bash(void);

#endif
