/* `crucible run`: not built yet. */
#include <stdio.h>

#include "cli.h"

int cli_run(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "crucible: 'run' is not available in this build yet\n");
  return 2;
}
