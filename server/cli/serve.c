/* `crucible serve`: not built yet. */
#include <stdio.h>

#include "cli.h"

int cli_serve(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "crucible: 'serve' is not available in this build yet\n");
  return 2;
}
