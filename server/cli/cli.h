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
int cli_env(int argc, char **argv);

/* ---- shared by the subcommands ---- */

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "env.h"
#include "sandbox.h"

/* The environment of a command-line run. */
typedef struct cli_env_wait {
  bool quiet;            /* no installer progress on stderr */
  bool done, cancelled;
  env_resolved *env;     /* the result */
  char *error;
  env_cache *cache;      /* made for a packages environment */
  env_waiter *wait;      /* while building */
  sbx_image_wait *image_wait; /* while pulling an image (a container engine) */
  char *image;           /* the image being pulled */
} cli_env_wait;

/* Resolves (or builds, running loop meanwhile) the environment of a run in
 * lang: packages from with[] (--with), else env_arg (--env), else the
 * user's sandbox.environment. The current folder is the workspace. On a
 * container engine (sandbox.backend docker) it is an image: --env
 * image:NAME, else sandbox.image, pulled when missing (progress on
 * stderr); a default image that cannot be pulled leaves w->env NULL (the
 * run's result then says the image is missing). Returns
 * 0 with w->env, or an exit status (2 bad spec, 125 cannot build, 130
 * cancelled) with w->error. Close w with cli_env_close either way. */
int cli_env_acquire(uv_loop_t *loop, const cfg *settings, sbx_runner *runner, sbx_lang lang, const char *env_arg,
                    const char *const *with, size_t n_with, cli_env_wait *w);
/* Stops a build in progress (from a signal handler on the loop). */
void cli_env_cancel(cli_env_wait *w);
/* Frees the environment and closes the cache (keep running the loop). */
void cli_env_close(cli_env_wait *w);

#endif
