/* Where Crucible keeps its files: the XDG Base Directory specification's
 * config, cache, state and runtime directories, and mkdir -p. */
#ifndef CRUCIBLE_XDG_H
#define CRUCIBLE_XDG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The application's directory name under each base. */
#define XDG_APP "crucible"

typedef enum xdg_kind {
  XDG_CONFIG,  /* $XDG_CONFIG_HOME, else ~/.config */
  XDG_CACHE,   /* $XDG_CACHE_HOME, else ~/.cache */
  XDG_STATE,   /* $XDG_STATE_HOME, else ~/.local/state */
  XDG_RUNTIME, /* $XDG_RUNTIME_DIR; no default (see xdg_app_dir) */
} xdg_kind;

/* The base directory of a kind into buf: its variable when that holds an
 * absolute path (an empty or relative value is ignored, as the spec says),
 * else the default under the home directory ($HOME when absolute, else the
 * user's passwd entry). Returns 0; -ENOENT when there is none (no home, or
 * XDG_RUNTIME_DIR unusable); -ENAMETOOLONG when it does not fit in cap. */
int xdg_base_dir(xdg_kind kind, char *buf, size_t cap);

/* Crucible's own directory of a kind: <base>/crucible. For XDG_RUNTIME
 * without a usable XDG_RUNTIME_DIR it is $TMPDIR/crucible-<euid> ($TMPDIR
 * when absolute, else /tmp): a shared parent, so the caller must check the
 * directory it finds there is its own before trusting it. Returns as
 * xdg_base_dir. Nothing is created. */
int xdg_app_dir(xdg_kind kind, char *buf, size_t cap);

/* <Crucible's directory of kind>/<name> into buf (name may hold '/').
 * Returns as xdg_base_dir. Nothing is created. */
int xdg_app_path(xdg_kind kind, const char *name, char *buf, size_t cap);

/* Where a file of Crucible's goes, ready to be created: `path`, or when it
 * is NULL <Crucible's directory of kind>/<name>, copied into buf, with the
 * directories above it made (mode 0700). Returns 0, or a negative errno with
 * a message in err that names what to set (-ENOENT: no such directory;
 * -ENAMETOOLONG; mkdir's error). */
int xdg_file_prepare(xdg_kind kind, const char *name, const char *path, char *buf, size_t cap, char *err,
                     size_t errlen);

/* mkdir -p: creates dir and its missing parents, each new one with mode
 * (before the umask); existing ones are left as they are. Returns 0 or the
 * negative errno of the first mkdir that failed for another reason than
 * EEXIST; -ENOTDIR when something other than a folder (after symlinks) is in
 * the way; -ENOENT for an empty path; -ENAMETOOLONG beyond PATH_MAX. */
int xdg_mkdir_p(const char *dir, mode_t mode);

/* xdg_mkdir_p for the directory that holds the file `path` (nothing to do
 * when path has no '/' past its first byte). */
int xdg_mkdir_parents(const char *path, mode_t mode);

/* Whether uid/gid can reach path: search permission on every existing
 * folder from / down to it (a missing tail is left to whoever makes it);
 * a negative uid: always. On false, *why (a new string) names the folder. */
bool xdg_reachable(const char *path, long uid, long gid, char **why);

#endif
