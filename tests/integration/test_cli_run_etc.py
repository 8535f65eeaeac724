"""What a program sees of the host's /etc through `crucible run` (real binary,
real bwrap): a view of it (server/sandbox/etcview.h), bound read-only. The
regular files the sandbox offers hold the host's bytes and mtime, mode 0444,
and cannot be written, changed or removed (the generated passwd, group and
hosts likewise); a symlink into /usr is the same symlink; nothing else of
/etc shows, and no host path of the view shows either. The view follows the
host: a file added, rewritten in place or removed is seen by the next run."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import crucible_bin  # noqa: E402

FILES = ["/etc/ld.so.cache", "/etc/nsswitch.conf", "/etc/mime.types"]
PROG = r"""
import errno, hashlib, json, os
out = {}
for p in %r:
    if not os.path.exists(p):
        continue
    r = {"sha": hashlib.sha256(open(p, "rb").read()).hexdigest(), "link": os.path.islink(p),
         "mtime": os.stat(p).st_mtime_ns}
    for name, f in [("append", lambda: open(p, "ab")), ("chmod", lambda: os.chmod(p, 0o666)),
                    ("unlink", lambda: os.unlink(p)), ("rename", lambda: os.rename(p, p + ".x"))]:
        try:
            f()
            r[name] = "ok"
        except OSError as e:
            r[name] = errno.errorcode[e.errno]
    out[p] = r
out["localtime"] = os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None
try:
    open("/etc/newfile", "w")
    out["create"] = "ok"
except OSError as e:
    out["create"] = errno.errorcode[e.errno]
out["etc"] = sorted(os.listdir("/etc"))
out["init"] = open("/proc/1/cmdline", "rb").read().decode(errors="replace")
out["mounts"] = open("/proc/self/mountinfo").read()
out["modes"] = {p: oct(os.stat(p).st_mode & 0o777) for p in %r + ["/etc/passwd", "/etc/group", "/etc/hosts"]
                if os.path.exists(p) and not os.path.islink(p)}
print(json.dumps(out))
"""


def test_etc_files_are_host_copies_and_read_only(tmp_path):
    prog = tmp_path / "etc.py"
    prog.write_text(PROG % (FILES, FILES))
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s"),
           "XDG_CACHE_HOME": str(tmp_path / "k"), "HOME": str(tmp_path)}
    p = subprocess.run([crucible_bin(), "run", str(prog), "--json"], env=env, capture_output=True, timeout=60)
    r = json.loads(p.stdout)
    assert r["outcome"] == "ok", r
    got = json.loads(r["stdout"])
    seen = 0
    for f in FILES:
        if not os.path.isfile(f):
            continue
        seen += 1
        g = got[f]
        assert g["sha"] == hashlib.sha256(open(f, "rb").read()).hexdigest(), f
        # the host's mtime: a newer copy would make Python recompile cached
        # bytecode of /etc files at every start
        assert g["mtime"] == os.stat(f).st_mtime_ns, f
        assert not g["link"]
        for op in ("append", "chmod", "unlink", "rename"):
            assert g[op] in ("EROFS", "EACCES", "EPERM"), (f, op, g)
    assert seen, "none of the /etc files exists on this host"
    if os.path.islink("/etc/localtime") and os.path.realpath("/etc/localtime").startswith("/usr/"):
        assert got["localtime"] == os.path.realpath("/etc/localtime")
    assert got["create"] in ("EROFS", "EACCES")
    # only what the sandbox offers: no shadow, no host identity files
    for secret in ("shadow", "gshadow", "hostname", "machine-id", "ssh", "sudoers"):
        assert secret not in got["etc"], got["etc"]
    for own in ("passwd", "group", "hosts"):
        assert own in got["etc"]
    # where the view lives on the host does not show on bwrap's command line
    # (the sandbox's /proc/1/cmdline); the mount table shows a bind's source
    # path, never the user's cache folder when the runtime folder or (root)
    # /var/cache can hold the view
    assert str(tmp_path) not in got["init"] and "crucible/etc" not in got["init"], got["init"]
    assert str(tmp_path) not in got["mounts"], got["mounts"]
    # every file offered is read-only by its mode too, not only by the mount
    assert {"/etc/passwd", "/etc/group", "/etc/hosts"} <= set(got["modes"]), got["modes"]
    assert all(m == "0o444" for m in got["modes"].values()), got["modes"]


VIEW_PROG = r"""
import os
p = "/etc/python3.13/probe.txt"
print(open(p).read() if os.path.exists(p) else "absent")
"""


def test_etc_view_follows_the_host(tmp_path):
    """A folder of the list (/etc/python3.13, absent on Debian 12) made,
    its file rewritten in place (same inode, a folder unchanged), then
    removed: each next run sees the host as it is."""
    d = "/etc/python3.13"
    if os.geteuid() != 0:
        pytest.skip("needs root to change /etc")
    if os.path.lexists(d):
        pytest.skip("%s exists on this host" % d)
    prog = tmp_path / "view.py"
    prog.write_text(VIEW_PROG)
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s"),
           "XDG_CACHE_HOME": str(tmp_path / "k"), "HOME": str(tmp_path)}

    def seen():
        p = subprocess.run([crucible_bin(), "run", str(prog), "--json"], env=env, capture_output=True, timeout=60)
        r = json.loads(p.stdout)
        assert r["outcome"] == "ok", r
        return r["stdout"].strip()

    assert seen() == "absent"
    try:
        os.mkdir(d)
        with open(d + "/probe.txt", "w") as f:
            f.write("one")
        assert seen() == "one"
        ino = os.stat(d + "/probe.txt").st_ino
        with open(d + "/probe.txt", "r+") as f:
            f.write("two")
        assert os.stat(d + "/probe.txt").st_ino == ino
        assert seen() == "two"
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert seen() == "absent"
