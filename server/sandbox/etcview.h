/* The sandbox's /etc: a folder of copies of the host entries interpreters
 * need, made once per state of the host's /etc and bound read-only as a
 * whole (one bind, where a bind per host folder and a copy per file cost
 * bwrap a reread of the mount table each). */
#ifndef CRUCIBLE_SANDBOX_ETCVIEW_H
#define CRUCIBLE_SANDBOX_ETCVIEW_H

#include <stdbool.h>

/* The sandbox's own passwd, group and hosts, in every view. */
#define SBX_PASSWD "sandbox:x:1000:1000:sandbox:/sandbox:/bin/sh\n" \
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
#define SBX_GROUP "sandbox:x:1000:\nnogroup:x:65534:\n"
#define SBX_HOSTS "127.0.0.1 localhost\n::1 localhost\n"

/* A view no spawn looked up for this long is removed (its mtime marks the
 * last lookup, to the hour): far longer than a run's wall time (10 minutes
 * at most) or a warm sandbox's wait, so no sandbox still has it bound. */
#define SBX_ETC_VIEW_KEEP_S (30 * 24 * 3600)

/* Where views are kept when bwrap runs as uid/gid (negative: as this
 * process), made if missing: the first folder that uid can reach (bwrap
 * opens the view as that uid) and this process can write of
 * $XDG_RUNTIME_DIR/crucible/etc (a bind's source path shows in the
 * sandbox's mount table: this one names the uid alone, which the sandbox's
 * uid_map shows anyway); Crucible's cache folder,
 * $XDG_CACHE_HOME/crucible/etc (its path may name the user); for a root
 * server, whose bwrap runs as an unprivileged uid that cannot enter /root,
 * /var/cache/crucible/etc or /run/crucible/etc; last a folder of this
 * uid's own in /tmp (xdg_app_dir), where an age-based /tmp cleaner may
 * remove files of a view in use. A new string; NULL with *err (a new
 * string) when none can be made. */
char *sbx_etc_view_base(long uid, long gid, char **err);

/* The view of root's /etc as it is now (root "" is the host's; a test
 * passes a folder of its own), with the host's resolv.conf when network
 * (an environment's installer): its path under base, a new string, made
 * when missing (and views not looked up for SBX_ETC_VIEW_KEEP_S removed
 * then). NULL with *err (a new string) when it cannot be made.
 *
 * A view holds, of the entries of sbx_bwrap_etc_default present under
 * root: regular files and folders copied (files 0444, folders 0755),
 * symlinks kept as they are; a top-level symlink that resolves under /usr
 * becomes a symlink to that target, any other one a copy of what it points
 * to. Plus SBX_PASSWD, SBX_GROUP and SBX_HOSTS. Its name is a hash of
 * what it was made from: the inode, size, mtime and ctime of every file
 * and folder, the inode of every symlink (replacing one makes a new inode
 * and moves its folder's ctime), and the format; every call hashes the
 * host's entries again (a readdir per folder, an lstat per file) and so
 * finds a new view as soon as anything changed. A view is made in a
 * temporary folder and renamed into place: another crucible sees all of
 * it or nothing. */
char *sbx_etc_view(const char *base, const char *root, bool network, char **err);

#endif
