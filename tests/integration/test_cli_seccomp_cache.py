"""The seccomp program cache of `crucible run` ($XDG_CACHE_HOME/crucible/seccomp.bpf),
against the real binary and real bwrap: made on the first run (mode 0600),
loaded unchanged on the next, and whatever is done to the file (garbage,
truncation, another key, a permissive program under a stale key or with a
wrong checksum, a folder or a symlink in its place) the sandboxed program's
forbidden system calls are still refused and the file is rebuilt."""
import json
import os
import pathlib
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import crucible_bin  # noqa: E402

# Denied by the filter: each must answer EPERM (socket(AF_PACKET) EAFNOSUPPORT).
PROBE = r"""
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
print("ptrace", call("ptrace", 16, 1, 0, 0))
print("mount", call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
print("unshare", call("unshare", 0x10000000))
print("keyctl", call("syscall", 250, 0, 0, 0, 0))
print("bpf", call("syscall", 321, 0, 0, 0))
try:
    socket.socket(17, socket.SOCK_RAW)
    print("packet ok")
except OSError as e:
    print("packet", errno.errorcode.get(e.errno, "?"))
print("seccomp", [l for l in open('/proc/self/status') if l.startswith('Seccomp:')][0].split()[1])
"""

WANT = {"ptrace": "EPERM", "mount": "EPERM", "unshare": "EPERM", "keyctl": "EPERM", "bpf": "EPERM",
        "packet": "EAFNOSUPPORT", "seccomp": "2"}

MAGIC = b"crucible-seccomp 1\n"
# One BPF instruction: return SECCOMP_RET_ALLOW (everything allowed).
ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)


def fnv(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def cache_file(key, prog, checksum=None):
    """A well-formed cache file (seccomp_cache.c's format)."""
    s = fnv(key.encode() + b"\n" + prog) if checksum is None else checksum
    return MAGIC + b"key %s\nlen %d\nsum %016x\n\n" % (key.encode(), len(prog), s) + prog


def parse(data):
    head, _, prog = data.partition(b"\n\n")
    fields = dict(line.split(b" ", 1) for line in head.split(b"\n")[1:])
    return fields[b"key"].decode(), prog


@pytest.fixture
def home(tmp_path):
    prog = tmp_path / "probe.py"
    prog.write_text(PROBE)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HOME": str(tmp_path)}
    return tmp_path, prog, env, tmp_path / "cache" / "crucible" / "seccomp.bpf"


def run_probe(prog, env):
    p = subprocess.run([crucible_bin(), "run", str(prog), "--json"], env=env, capture_output=True, timeout=60)
    r = json.loads(p.stdout)
    assert r["outcome"] == "ok", r
    got = dict(line.split(" ", 1) for line in r["stdout"].strip().split("\n"))
    assert got == WANT, r
    return r


def test_first_run_makes_the_cache_and_the_next_loads_it(home):
    _, prog, env, path = home
    assert not path.exists()
    run_probe(prog, env)
    st = path.stat()
    assert st.st_mode & 0o777 == 0o600
    # the cache folder stays reachable: environments live under it too
    assert path.parent.stat().st_mode & 0o711 == 0o711
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    key, bpf = parse(data)
    assert len(bpf) % 8 == 0 and len(bpf) > 8
    for part in ("rules=", "build=", "libseccomp=", "api=", "kernel=" + os.uname().release,
                 "machine=" + os.uname().machine):
        assert part in key, key
    # loaded, not rebuilt: the same file (a store renames a new one in)
    run_probe(prog, env)
    again = path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not [p for p in path.parent.iterdir() if p.name != path.name]


def damaged(good):
    key, bpf = parse(good)
    return {
        "garbage": os.urandom(len(good)),
        "empty": b"",
        "truncated by one byte": good[:-1],
        "truncated in the header": good[:40],
        "one byte appended": good + b"\0",
        "program byte flipped": good[:-3] + bytes([good[-3] ^ 0x01]) + good[-2:],
        "another key, allow-all program": cache_file(key.replace("kernel=", "kernel=0"), ALLOW_ALL),
        "right key, allow-all program, old checksum": cache_file(key, ALLOW_ALL, fnv(key.encode() + b"\n" + bpf)),
        "length not a multiple of 8": cache_file(key, bpf[:-4]),
    }


def test_damaged_cache_never_weakens_the_filter(home):
    _, prog, env, path = home
    run_probe(prog, env)
    good = path.read_bytes()
    for name, data in damaged(good).items():
        path.write_bytes(data)
        run_probe(prog, env)
        assert path.read_bytes() == good, name  # rebuilt and stored again


def test_something_else_in_place_of_the_cache(home):
    tmp, prog, env, path = home
    run_probe(prog, env)
    good = path.read_bytes()
    key, _ = parse(good)
    # a symlink to a permissive file under the right key is not followed
    bait = tmp / "bait.bpf"
    bait.write_bytes(cache_file(key, ALLOW_ALL))
    path.unlink()
    path.symlink_to(bait)
    run_probe(prog, env)
    assert path.read_bytes() == good and not path.is_symlink()
    # a folder: the run still works (the filter is built), nothing cached
    path.unlink()
    path.mkdir()
    run_probe(prog, env)
    assert path.is_dir()
    path.rmdir()
    # a cache folder that cannot be written: built every time, still refused
    path.parent.chmod(0o500)
    try:
        if os.geteuid() != 0:
            run_probe(prog, env)
            assert not path.exists()
    finally:
        path.parent.chmod(0o700)
    run_probe(prog, env)
    assert path.read_bytes() == good
