/* `crucible ask`: not built yet. */
#include <stdio.h>

#include "cli.h"

int cli_ask(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "crucible: 'ask' is not available in this build yet\n");
  return 2;
}
