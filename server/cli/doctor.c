/* `crucible doctor`: not built yet. */
#include <stdio.h>

#include "cli.h"

int cli_doctor(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "crucible: 'doctor' is not available in this build yet\n");
  return 2;
}
