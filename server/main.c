/* The crucible command: dispatches to the subcommands in server/cli/. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "crucible_config.h"
#include "term.h"

static const char usage[] =
    "usage: crucible <command> [options]\n"
    "\n"
    "Ask an LLM for code, check it with tree-sitter, run it in a sandbox.\n"
    "\n"
    "commands:\n"
    "  serve [--listen unix:PATH|tcp:127.0.0.1:PORT] [--log FILE] [--log-level LEVEL]\n"
    "        [--max-message BYTES] [--max-queued BYTES]\n"
    "                         speak JSON-RPC 2.0 / LSP (stdio by default)\n"
    "  connect tcp:HOST:PORT|unix:PATH\n"
    "                         bridge stdio to a socket server, adding the tcp token:\n"
    "                         the server command for editors\n"
    "  run FILE|- [--language L] [--timeout MS] [--memory MB] [--cpu S] [--pids N]\n"
    "             [--output BYTES] [--disk MB] [--stdin FILE|-] [--json]\n"
    "             [--with PKG]... [--env system|workspace|venv:PATH]\n"
    "                         run a program in the sandbox; exits with its status\n"
    "                         (124 time limit, 128+N signal N, 125 sandbox failure)\n"
    "  check FILE... [--language L] [--json]\n"
    "                         syntax and import checks, compiler-style output\n"
    "  ask \"QUESTION\" [--language L] [--max-iterations N] [--context FILE]\n"
    "      [--docs URL|PATH]... [--json]\n"
    "                         generate, check, run and repair code with an LLM\n"
    "  docs add URL|PATH [--max-depth N] [--max-pages N] | list | search \"QUERY\" [--budget N]\n"
    "        [--mode search|all] [--json]\n"
    "                         crawl, cache and search documentation sources\n"
    "  env list | build REQ... [--language L] | remove ID | prune [--all]\n"
    "                         environments built from packages (the cache)\n"
    "  history [--limit N]    past tasks;  show TASK: one task with its attempts\n"
    "  doctor [--json]        what works on this machine\n"
    "\n"
    "  crucible --version | --help\n"
    "\n"
    "On a terminal, control characters in program output, model text, transcripts and\n"
    "documentation are shown escaped (\\u001b, \\x9b); --raw-output (with any command)\n"
    "writes them as they are. Pipes and files always get the bytes unchanged.\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  /* --raw-output, anywhere after the command, applies to every command. */
  bool raw = false;
  int n = 1;
  for (int i = 1; i < argc; i++) {
    if (i > 1 && !strcmp(argv[i], "--raw-output")) raw = true;
    else argv[n++] = argv[i];
  }
  argv[n] = NULL;
  argc = n;
  term_init(raw);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("crucible %s\n", CRUCIBLE_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {
      {"serve", cli_serve}, {"doctor", cli_doctor}, {"run", cli_run},
      {"check", cli_check}, {"ask", cli_ask}, {"history", cli_history}, {"show", cli_show},
      {"docs", cli_docs}, {"connect", cli_connect}, {"env", cli_env},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "crucible: unknown command '%s' (try 'crucible --help')\n", cmd);
  return 2;
}
