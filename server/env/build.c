/* Building one environment: the installer script (pip into a new venv, or
 * npm with --ignore-scripts), run in a sandbox of its own that reaches the
 * network and writes only to the environment's build folder; its output
 * read as progress. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "log.h"

/* What is kept of the installer's output for an error message. */
#define TAIL_MAX (64u << 10)
#define ERROR_TAIL 1500

/* Run by the installer before pip or npm: every requested name the index
 * (PEP 503 page) or registry (packument) answers 404 for is reported as
 * "crucible-missing: no package 'x' on the index; did you mean 'y'?" (the
 * nearest name by edit distance in the index's root listing, or the
 * registry's search), and the build stops (exit 3). Other failures to reach
 * the index are left for pip / npm to report. */
static const char PRECHECK_PY[] =
    "import re, sys, json, urllib.request, urllib.error, urllib.parse\n"
    "lang, index = sys.argv[1], sys.argv[2]\n"
    "names = [re.match(r\"@?[A-Za-z0-9._/-]+\", r).group(0) if lang == \"javascript\" else re.match(r\"[A-Za-z0-9._-]+\", r).group(0) for r in sys.argv[3:]]\n"
    "def get(url, limit):\n"
    "    try:\n"
    "        req = urllib.request.Request(url, headers={\"User-Agent\": \"crucible-env-precheck\"})\n"
    "        with urllib.request.urlopen(req, timeout=30) as f:\n"
    "            return f.status, f.read(limit).decode(\"utf-8\", \"replace\")\n"
    "    except urllib.error.HTTPError as e:\n"
    "        return e.code, \"\"\n"
    "    except Exception:\n"
    "        return 0, \"\"\n"
    "def dist(a, b):\n"
    "    prev = list(range(len(b) + 1))\n"
    "    for i, ca in enumerate(a, 1):\n"
    "        cur = [i]\n"
    "        for j, cb in enumerate(b, 1):\n"
    "            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))\n"
    "        prev = cur\n"
    "    return prev[-1]\n"
    "def nearest(name, cands):\n"
    "    best = None\n"
    "    for c in cands:\n"
    "        if abs(len(c) - len(name)) > 3 or c == name:\n"
    "            continue\n"
    "        d = dist(name, c)\n"
    "        if d <= max(2, len(name) // 3) and (best is None or d < best[0]):\n"
    "            best = (d, c)\n"
    "    return best[1] if best else None\n"
    "base = index.rstrip(\"/\") + \"/\"\n"
    "missing = 0\n"
    "for name in names:\n"
    "    if lang == \"javascript\":\n"
    "        st, _ = get(base + urllib.parse.quote(name, safe=\"@\"), 1)\n"
    "        if st != 404:\n"
    "            continue\n"
    "        _, body = get(base + \"-/v1/search?size=20&text=\" + urllib.parse.quote(name), 1 << 20)\n"
    "        try:\n"
    "            cands = [o[\"package\"][\"name\"] for o in json.loads(body)[\"objects\"]]\n"
    "        except Exception:\n"
    "            cands = []\n"
    "        where = \"registry\"\n"
    "    else:\n"
    "        key = re.sub(r\"[-_.]+\", \"-\", name).lower()\n"
    "        st, _ = get(base + key + \"/\", 1)\n"
    "        if st != 404:\n"
    "            continue\n"
    "        _, body = get(base, 64 << 20)\n"
    "        cands = sorted({re.sub(r\"[-_.]+\", \"-\", m).lower() for m in re.findall(r\"<a[^>]*>([^<]+)</a>\", body)})\n"
    "        name = key\n"
    "        where = \"index\"\n"
    "    near = nearest(name, cands)\n"
    "    print(\"crucible-missing: no package '%s' on the %s%s\" % (name, where, \"; did you mean '%s'?\" % near if near else \"\"))\n"
    "    missing += 1\n"
    "sys.exit(3 if missing else 0)\n";

char *env__shell_quote(const char *s) {
  dbuf b;
  dbuf_init(&b, 0);
  dbuf_adds(&b, "'");
  for (const char *p = s; *p; p++) {
    if (*p == '\'') dbuf_adds(&b, "'\\''");
    else dbuf_add(&b, p, 1);
  }
  dbuf_adds(&b, "'");
  return dbuf_take(&b);
}

char *env__installer_script(sbx_lang lang, const char *interp, const char *index, const char *dest,
                            const char *const *reqs, size_t n) {
  dbuf b;
  dbuf_init(&b, 0);
  char *qd = env__shell_quote(dest), *qi = env__shell_quote(index), *qp = env__shell_quote(interp);
  dbuf_addf(&b,
            "set -eu\n"
            "umask 022\n"
            "d=%s\n"
            /* Temporary files stay in the environment's own folder (on disk,
             * not in the memory-backed tmpfs) and go before it is used. */
            "export TMPDIR=\"$d/.crucible-tmp\"\n",
            qd);
  /* the names first: a misspelt one is named precisely, nothing installed */
  dbuf_addf(&b, "if [ -x %s ]; then\n%s -I - %s %s", qp, qp, lang == SBX_LANG_PYTHON ? "python" : "javascript", qi);
  for (size_t i = 0; i < n; i++) {
    char *q = env__shell_quote(reqs[i]);
    dbuf_addf(&b, " %s", q);
    free(q);
  }
  dbuf_addf(&b, " <<'CRUCIBLE_PRECHECK'\n%sCRUCIBLE_PRECHECK\nfi\n", PRECHECK_PY);
  if (lang == SBX_LANG_PYTHON) {
    dbuf_addf(&b,
              "export PIP_CONFIG_FILE=/dev/null\n"
              "echo 'crucible: creating the virtualenv'\n"
              "%s -m venv --without-pip \"$d\"\n"
              "mkdir -p \"$TMPDIR\"\n"
              "%s -m pip --python \"$d/bin/python3\" install --only-binary :all: --index-url %s --no-input "
              "--disable-pip-version-check --no-cache-dir --no-warn-script-location --progress-bar off --",
              qp, qp, qi);
  } else {
    dbuf_addf(&b,
              /* No npmrc is read: those paths do not exist (npm refuses one
               * file for both). */
              "export npm_config_cache=\"$TMPDIR/npm-cache\" npm_config_userconfig=\"$TMPDIR/no-user-npmrc\" "
              "npm_config_globalconfig=\"$TMPDIR/no-global-npmrc\" npm_config_update_notifier=false\n"
              "mkdir -p \"$npm_config_cache\"\n"
              "cd \"$d\"\n"
              "printf '{\"name\":\"crucible-env\",\"version\":\"1.0.0\",\"private\":true}\\n' > package.json\n"
              "echo 'crucible: installing with npm'\n"
              "npm install --ignore-scripts --registry %s --no-audit --no-fund --loglevel http --",
              qi);
  }
  for (size_t i = 0; i < n; i++) {
    char *q = env__shell_quote(reqs[i]);
    dbuf_addf(&b, " %s", q);
    free(q);
  }
  dbuf_adds(&b,
            "\n"
            "rm -rf \"$TMPDIR\"\n"
            "printf 'crucible-size-kb %s\\n' \"$(du -sk \"$d\" | cut -f1)\"\n");
  free(qd);
  free(qi);
  free(qp);
  return dbuf_take(&b);
}

int env__progress_line(env__progress *self, sbx_lang lang, const char *line) {
  while (*line == ' ') line++;
  if (!*line) return -1;
  int p = self->percent;
  if (!strncmp(line, "crucible: creating", 18) || !strncmp(line, "crucible: installing", 20)) {
    p = 5;
  } else if (lang == SBX_LANG_PYTHON) {
    if (!strncmp(line, "Collecting ", 11)) {
      /* The first requirements are the requested ones; dependencies follow. */
      self->collected++;
      size_t of = self->nreqs > self->collected ? self->nreqs : self->collected + 1;
      p = 10 + (int)(50 * self->collected / of);
    } else if (!strncmp(line, "Installing collected packages", 29)) {
      p = 75;
    } else if (!strncmp(line, "Successfully installed", 22)) {
      p = 95;
    }
  } else {
    if (strstr(line, "http fetch")) {
      self->collected++;
      p = 10 + (int)(60 * self->collected / (self->collected + 2));
    } else if (!strncmp(line, "added ", 6) || !strncmp(line, "up to date", 10)) {
      p = 95;
    }
  }
  if (!strncmp(line, "crucible-size-kb ", 17)) p = 100;
  if (p < self->percent) p = self->percent;
  self->percent = p;
  return p;
}

static void build_line(env__build *b, const char *line) {
  long long kb;
  if (sscanf(line, "crucible-size-kb %lld", &kb) == 1) {
    b->size_kb = kb;
    return;
  }
  int pct = env__progress_line(&b->progress, b->lang, line);
  if (pct < 0) return;
  for (env_waiter *w = b->waiters; w; w = w->next)
    if (w->cbs.progress) w->cbs.progress(w->ud, line, pct);
}

static void on_output(void *ud, int stream, const char *bytes, size_t len) {
  env__build *b = ud;
  (void)stream;
  /* Keep the end of the output for the error: drop the older half when full. */
  if (b->tail.len + len > TAIL_MAX && b->tail.len > TAIL_MAX / 2) {
    size_t drop = b->tail.len - TAIL_MAX / 2;
    memmove(b->tail.data, b->tail.data + drop, b->tail.len - drop + 1);
    b->tail.len -= drop;
  }
  dbuf_add_head(&b->tail, bytes, len);
  for (size_t i = 0; i < len; i++) {
    char c = bytes[i];
    if (c == '\n' || c == '\r') {
      b->line[b->line_len] = '\0';
      if (b->line_len) build_line(b, b->line);
      b->line_len = 0;
    } else if (b->line_len + 1 < sizeof b->line) {
      b->line[b->line_len++] = c;
    }
  }
}

static void on_done(void *ud, const sbx_result *r) {
  env__build *b = ud;
  b->run = NULL;
  if (b->line_len) {
    b->line[b->line_len] = '\0';
    build_line(b, b->line);
    b->line_len = 0;
  }
  if (r->outcome == SBX_OK) {
    env__cache_built(b->cache, b, true, NULL);
    return;
  }
  /* The last lines say why (pip: "No matching distribution found for ..."). */
  const char *t = b->tail.data ? b->tail.data : "";
  size_t tl = b->tail.len;
  while (tl && (t[tl - 1] == '\n' || t[tl - 1] == ' ')) tl--;
  size_t from = tl > ERROR_TAIL ? tl - ERROR_TAIL : 0;
  dbuf reqs;
  dbuf_init(&reqs, 0);
  for (size_t i = 0; i < b->n; i++) dbuf_addf(&reqs, "%s%s", i ? " " : "", b->reqs[i]);
  /* The precheck's words, when it found names the index does not have. */
  dbuf missing;
  dbuf_init(&missing, 0);
  for (const char *m = t; (m = strstr(m, "crucible-missing: ")) != NULL;) {
    m += 18;
    size_t k = strcspn(m, "\n");
    dbuf_addf(&missing, "%s%.*s", missing.len ? "\n" : "", (int)k, m);
    m += k;
  }
  char *err;
  if (r->outcome == SBX_CANCELLED) err = xstrdup("the installation was cancelled");
  else if (missing.len) err = dbuf_take(&missing);
  else
    err = xasprintf("installing %s failed (%s%s%s, exit %d)%s%s%.*s", reqs.data, sbx_outcome_name(r->outcome),
                    r->error ? ": " : "", r->error ? r->error : "", r->exit_code, tl ? ":\n" : "",
                    from ? "..." : "", (int)(tl - from), t + from);
  dbuf_close(&reqs);
  dbuf_close(&missing);
  env__cache_built(b->cache, b, false, err);
  free(err);
}

/* The installer's limits: minutes and gigabytes, where a program gets
 * seconds and megabytes. */
static void installer_limits(sbx_limits *l) {
  *l = (sbx_limits){.timeout_ms = 600000, .memory_mb = 2048, .cpu_seconds = 600, .pids = 256,
                    .output_bytes = 4 << 20, .disk_mb = 4096};
}

int env__installer_runner(env_cache *cache, char **err) {
  if (!cache->runner_open) {
    sbx_config sc = cache->sbx_cfg;
    /* The installer's sandbox is bwrap's, whatever runs programs: its one
     * writable bind and host network are sbx_env's, which bwrap makes. */
    sc.backend = SBX_BACKEND_BWRAP;
    sc.max_concurrent = 2;
    sc.warm = false;
    installer_limits(&sc.defaults);
    sc.max = sc.defaults;
    int e = sbx_runner_init(&cache->runner, cache->loop, &sc);
    if (e) {
      *err = xasprintf("cannot set up the installer's sandbox: %s", strerror(-e));
      return e;
    }
    cache->runner_open = true;
  }
  return 0;
}

int env__build_start(env_cache *cache, env__build *b, char **err) {
  const char *interp = cache->interp[SBX_LANG_PYTHON] ? cache->interp[SBX_LANG_PYTHON] : "/usr/bin/python3";
  const char *index = b->lang == SBX_LANG_PYTHON ? cache->index : cache->registry;
  char *script = env__installer_script(b->lang, interp, index, b->final_dir, (const char *const *)b->reqs, b->n);
  sbx_env env = {.network = true, .write_src = b->tmp_dir, .write_dest = b->final_dir};
  sbx_request req = {0};
  req.language = "bash";
  req.code = script;
  req.code_len = strlen(script);
  req.env = &env;
  req.owner = cache;
  dbuf_init(&b->tail, 0);
  b->progress.nreqs = b->n;
  sbx_callbacks cbs = {.on_output = on_output, .on_done = on_done};
  int e = sbx_run_start(&cache->runner, &req, &cbs, b, &b->run);
  free(script);
  if (e) *err = xasprintf("cannot start the installer: %s", strerror(-e));
  return e;
}

void env__build_cancel(env__build *b) {
  if (b->run) sbx_run_cancel(b->run); /* on_done follows */
}
