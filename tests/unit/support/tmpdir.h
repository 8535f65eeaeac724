/* Temporary folders for unit tests: made fresh under $TMPDIR (or /tmp) and
 * removed whole at the end, with files written into them. Failures abort
 * the test (cmocka), so callers check nothing. */
#ifndef CRUCIBLE_TESTS_TMPDIR_H
#define CRUCIBLE_TESTS_TMPDIR_H

#include <stddef.h>

/* Makes a new folder named crucible-TAG-XXXXXX and puts its canonical path
 * (symlinks resolved) in buf. */
void tu_tmpdir_make(char *buf, size_t size, const char *tag);

/* Removes dir and everything under it, without following symlinks. */
void tu_tmpdir_remove(const char *dir);

/* Writes text to dir/rel, making rel's parent folders first. */
void tu_write_file(const char *dir, const char *rel, const char *text);

#endif
