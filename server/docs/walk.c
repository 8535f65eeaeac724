/* The local side of a sync: walking folders and files (real paths, so a
 * symlink out of a folder lands outside its prefix), reading files that
 * changed, and dropping the pages of files that are gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"
#include "log.h"

static int read_file(const char *path, size_t max, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  dbuf b;
  dbuf_init(&b, max);
  char buf[65536];
  int err = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = -errno;
      break;
    }
    if (r == 0) break;
    if (dbuf_add(&b, buf, (size_t)r) < 0) {
      err = -EFBIG;
      break;
    }
  }
  close(fd);
  if (err) {
    dbuf_close(&b);
    return err;
  }
  *len = b.len;
  *out = dbuf_take(&b);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void visit_dir(docs_sync *s, docs_item *it) {
  DIR *d = opendir(it->url);
  if (!d) {
    s->st.errors++;
    log_info("docs: cannot read the folder %s: %s", it->url, strerror(errno));
    return;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue; /* ., .., and hidden files such as .git */
    names = xrealloc(names, (n + 1) * sizeof *names);
    names[n++] = xstrdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    char *p = xasprintf("%s/%s", strcmp(it->url, "/") ? it->url : "", names[i]);
    /* real paths: a symlink out of the folder lands outside its prefix */
    char *real = realpath(p, NULL);
    if (real) docs_sync_enqueue(s, real, it->depth + 1, it->src);
    free(real);
    free(p);
    free(names[i]);
  }
  free(names);
}

void docs_walk_visit(docs_sync *s, docs_item *it) {
  struct stat st;
  if (stat(it->url, &st) != 0) {
    s->st.errors++;
    log_info("docs: %s: %s", it->url, strerror(errno));
    docs_sync_report(s, it->url);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    visit_dir(s, it);
    return;
  }
  docs_kind kind = S_ISREG(st.st_mode) ? docs_kind_from_name(it->url) : DOCS_KIND_SKIP;
  if (kind == DOCS_KIND_SKIP) return; /* images, sources, build files: not documentation */
  if (kind != DOCS_KIND_HTML) {
    /* a Sphinx source copy of a page rendered beside it: indexing it would
     * put every page in the index twice */
    char *rendered = docs_sphinx_rendered(it->url);
    bool dup = rendered && access(rendered, R_OK) == 0;
    free(rendered);
    if (dup) return;
  }
  if (docs_sync_caps_reached(s) || (size_t)st.st_size > s->o.max_page_bytes) {
    s->st.skipped++;
    docs_sync_report(s, it->url);
    return;
  }
  s->visits++;
  char etag[64];
  snprintf(etag, sizeof etag, "%lld.%09ld-%lld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long long)st.st_size);
  docs_page_info info;
  int known = docs_store_page_get(s->store, it->url, &info);
  if (known == 1 && info.state == DOCS_PAGE_OK && info.etag && strcmp(info.etag, etag) == 0) {
    docs_store_page_touch(s->store, info.id);
    s->st.cached++;
  } else {
    char *body = NULL;
    size_t len = 0;
    int r = read_file(it->url, s->o.max_page_bytes, &body, &len);
    if (r < 0) {
      s->st.errors++;
      log_info("docs: cannot read %s: %s", it->url, strerror(-r));
    } else if (kind != DOCS_KIND_HTML && memchr(body, '\0', len)) {
      s->st.skipped++;
    } else {
      char **links = NULL;
      size_t n = 0;
      s->st.bytes += len;
      r = docs_index_page(s->store, &s->srcs[it->src], it->url, kind, body, len, etag, NULL, &links, &n);
      if (r == 0) s->st.fetched++;
      else if (r > 0) s->st.skipped++;
      else s->st.errors++;
      docs_links_free(links, n);
    }
    free(body);
  }
  if (known == 1) docs_page_info_close(&info);
  docs_sync_report(s, it->url);
}

/* Only a missing file (or a Sphinx source copy of a page rendered beside it)
 * counts: a file left out by this sync's depth or page caps keeps its pages. */
static bool file_gone(void *ud, const char *path) {
  (void)ud;
  struct stat sb;
  if (lstat(path, &sb) != 0) return errno == ENOENT || errno == ENOTDIR;
  /* stored by an earlier version, which indexed Sphinx source copies too */
  char *rendered = docs_sphinx_rendered(path);
  bool dup = rendered && access(rendered, R_OK) == 0;
  free(rendered);
  return dup;
}

int docs_walk_prune(docs_sync *s, const docs_src *sr) {
  /* runs once at the end of a sync; a stat per page */
  return docs_store_prune(s->store, sr->prefix, file_gone, NULL);
}
