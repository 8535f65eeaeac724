/* `crucible check FILE... [--language L]`: syntax and import checks printed as
 * compiler-style diagnostics (file:line:col: severity: message). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "common.h"
#include "dbuf.h"
#include "log.h"

/* Source files and probe answers above this are refused. */
#define MAX_FILE_BYTES (64u << 20)
#define MAX_PROBE_BYTES (16u << 20)
/* The sandbox's PATH: interpreters are looked up there, as a run would. */
#define SANDBOX_PATH "/usr/bin:/bin"

static void usage(FILE *f) {
  fprintf(f,
          "usage: crucible check FILE... [--language python|javascript|bash] [--deny MODULE]... "
          "[--json]\n"
          "  Checks syntax and imports without running anything. FILE '-' reads stdin.\n"
          "  Exit status: 0 no errors, 1 errors found, 2 usage error.\n");
}

static int read_all(int fd, dbuf *out) {
  char buf[65536];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return 0;
    if (dbuf_add(out, buf, (size_t)r) != 0) return -E2BIG;
  }
}

static char *find_interpreter(chk_language lang) {
  const char *prog = lang == CHK_LANG_PYTHON ? "python3" : lang == CHK_LANG_JAVASCRIPT ? "node" : "bash";
  char *path = xstrdup(SANDBOX_PATH);
  char *save = NULL, *found = NULL;
  for (char *d = strtok_r(path, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
    char *cand = xasprintf("%s/%s", d, prog);
    if (access(cand, X_OK) == 0) found = cand;
    else free(cand);
  }
  free(path);
  return found;
}

/* TODO(sandbox): production runs the probe INSIDE the sandbox (same mounts,
 * same PATH). Until the sandbox module is connected, the CLI runs it with the
 * host interpreter directly, which sees the same /usr. */
static char *run_probe_on_host(const char *interp, chk_language lang, size_t *len) {
  const char *flag = lang == CHK_LANG_JAVASCRIPT ? "-e" : "-c";
  const char *script = chk_probe_script(chk_language_name(lang));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return NULL;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    char *const argv[] = {(char *)interp, (char *)flag, (char *)script, NULL};
    char *const envp[] = {"PATH=" SANDBOX_PATH, "LC_ALL=C.UTF-8", NULL};
    execve(interp, argv, envp);
    _exit(127);
  }
  close(fds[1]);
  dbuf out;
  dbuf_init(&out, MAX_PROBE_BYTES);
  int err = read_all(fds[0], &out);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (err || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    dbuf_close(&out);
    return NULL;
  }
  *len = out.len;
  return dbuf_take(&out);
}

static chk_modset *load_modset(chk_language lang) {
  char *interp = find_interpreter(lang);
  if (!interp) {
    log_warn("no %s interpreter on %s: imports are not resolved", chk_language_name(lang),
             SANDBOX_PATH);
    return NULL;
  }
  chk_modset *ms = chk_modset_cache_load(chk_language_name(lang), interp, NULL);
  if (!ms) {
    size_t len = 0;
    char *json = run_probe_on_host(interp, lang, &len);
    char *msg = NULL;
    if (json) ms = chk_modset_from_probe(chk_language_name(lang), json, len, interp, &msg);
    if (!ms) log_warn("%s: %s", interp, msg ? msg : "the module probe failed");
    else if (chk_modset_cache_store(ms) != 0) log_debug("could not write the module cache");
    free(msg);
    free(json);
  }
  free(interp);
  return ms;
}

static const char *severity_word(chk_severity s) {
  switch (s) {
  case CHK_SEV_ERROR: return "error";
  case CHK_SEV_WARNING: return "warning";
  default: return "note";
  }
}

int cli_check(int argc, char **argv) {
  static const struct option longopts[] = {
      {"language", required_argument, NULL, 'l'},
      {"deny", required_argument, NULL, 'd'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  chk_language forced = CHK_LANG_NONE;
  bool json = false;
  const char **deny = xcalloc((size_t)argc + 1, sizeof *deny);
  size_t ndeny = 0;
  int rc = 0, c;
  chk_context *ctx = NULL;
  chk_modset *modsets[CHK_LANG_COUNT] = {0};
  bool tried[CHK_LANG_COUNT] = {0};
  optind = 1;
  while ((c = getopt_long(argc, argv, "l:d:jh", longopts, NULL)) != -1) {
    switch (c) {
    case 'l':
      forced = chk_language_parse(optarg);
      if (forced == CHK_LANG_NONE) {
        fprintf(stderr, "crucible check: unknown language '%s' (python, javascript, bash)\n", optarg);
        rc = 2;
        goto out;
      }
      break;
    case 'd': deny[ndeny++] = optarg; break;
    case 'j': json = true; break;
    case 'h': usage(stdout); goto out;
    default: usage(stderr); rc = 2; goto out;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    rc = 2;
    goto out;
  }
  for (int i = optind; i < argc; i++) {
    if (forced == CHK_LANG_NONE && chk_language_from_path(argv[i]) == CHK_LANG_NONE) {
      fprintf(stderr, "crucible check: cannot tell the language of '%s'; pass --language\n", argv[i]);
      rc = 2;
      goto out;
    }
  }
  char *msg = NULL;
  ctx = chk_context_new(&msg);
  if (!ctx) {
    fprintf(stderr, "crucible check: %s\n", msg);
    free(msg);
    rc = 2;
    goto out;
  }
  for (int i = optind; i < argc; i++) {
    const char *file = argv[i];
    chk_language lang = forced != CHK_LANG_NONE ? forced : chk_language_from_path(file);
    dbuf text;
    dbuf_init(&text, MAX_FILE_BYTES);
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    int err = fd < 0 ? -errno : read_all(fd, &text);
    if (fd > STDIN_FILENO) close(fd);
    if (err) {
      fprintf(stderr, "%s: error: cannot read: %s\n", file, err == -E2BIG ? "file too large" : strerror(-err));
      dbuf_close(&text);
      rc = 1;
      continue;
    }
    if (!tried[lang]) {
      modsets[lang] = load_modset(lang);
      tried[lang] = true;
    }
    chk_options opts = {.modset = modsets[lang], .deny = deny};
    chk_doc *doc = chk_doc_new(ctx, lang, text.data ? text.data : "", text.len);
    chk_report r = {0};
    chk_doc_check(ctx, doc, &opts, &r);
    if (json) {
      cJSON *o = chk_report_json(&r, doc, LSP_ENC_UTF16);
      cJSON_AddStringToObject(o, "file", file);
      char *s = cJSON_PrintUnformatted(o);
      printf("%s\n", s);
      free(s);
      cJSON_Delete(o);
    } else {
      for (size_t k = 0; k < r.ndiags; k++) {
        const chk_diag *d = &r.diags[k];
        /* columns count characters (code points), 1-based, like most editors show */
        printf("%s:%u:%u: %s: %s\n", file, d->start.row + 1,
               chk_doc_point_to_lsp(doc, d->start, LSP_ENC_UTF32) + 1, severity_word(d->severity),
               d->message);
      }
    }
    if (chk_report_errors(&r) > 0) rc = 1;
    chk_report_close(&r);
    chk_doc_free(doc);
    dbuf_close(&text);
  }
out:
  for (int l = 0; l < CHK_LANG_COUNT; l++) chk_modset_free(modsets[l]);
  chk_context_free(ctx);
  free(deny);
  return rc;
}
