/* `crucible check`: not built yet. */
#include <stdio.h>

#include "cli.h"

int cli_check(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "crucible: 'check' is not available in this build yet\n");
  return 2;
}
