/* The command-line subcommands; each returns the process exit status. */
#ifndef CRUCIBLE_CLI_H
#define CRUCIBLE_CLI_H

/* argv[0] is the subcommand's name ("serve", "run", ...). */
int cli_serve(int argc, char **argv);
int cli_doctor(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_ask(int argc, char **argv);
int cli_history(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_docs(int argc, char **argv);
int cli_connect(int argc, char **argv);

#endif
