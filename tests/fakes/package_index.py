"""Fakes of the two package indexes environments are built from, on
127.0.0.1, serving what the test built itself (nothing comes from the
network), and recording every request.

PEP 503 "simple" index (pip):
    idx = SimpleIndex().start(); idx.add_wheel(path); idx.url  ->  "http://127.0.0.1:PORT/simple"
    GET /simple/ and /simple/<normalised name>/ list the files (with #sha256=...);
    GET /files/<filename> serves one. idx.downloads[filename] counts the file
    downloads; idx.requests holds {"path", "headers", "status"} of each request.

npm registry:
    reg = NpmRegistry().start(); reg.add_tarball(path); reg.url  ->  "http://127.0.0.1:PORT/"
    GET /-/v1/search?text=T lists the packages whose names share a letter with T;
    GET /<name> (or /@scope%2fname) answers the packument (every version added,
    dist.tarball, dist.integrity sha512, dist.shasum); GET /<name>/-/<file>.tgz
    serves a tarball. reg.downloads and reg.requests as above.

Helpers that build the packages offline:
    make_wheel(dir, name, version, files)  ->  path of a pure-python wheel zipped by hand
    npm_pack(src_dir, out_dir)             ->  path of the tarball `npm pack` made
"""
import base64
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler

from local_server import LocalServer


def pep503(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def make_wheel(outdir, name, version, files):
    """A py3-none-any wheel of `files` ({path in the wheel: text}), with
    METADATA, WHEEL and RECORD as pip checks them."""
    dist = "%s-%s" % (name.replace("-", "_"), version)
    files = dict(files)
    files["%s.dist-info/METADATA" % dist] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)
    files["%s.dist-info/WHEEL" % dist] = ("Wheel-Version: 1.0\nGenerator: crucible-tests\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n")
    record = []
    for p, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (p, digest, len(data)))
    record.append("%s.dist-info/RECORD,," % dist)
    files["%s.dist-info/RECORD" % dist] = "\n".join(record) + "\n"
    path = os.path.join(outdir, "%s-py3-none-any.whl" % dist)
    with zipfile.ZipFile(path, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return path


def npm_pack(src, outdir):
    """`npm pack` of the package folder src (offline; no script runs)."""
    out = subprocess.run(["npm", "pack", "--ignore-scripts", "--json", "--pack-destination", outdir],
                         cwd=src, capture_output=True, text=True, timeout=120,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": outdir,
                              "npm_config_cache": os.path.join(outdir, ".npm-cache"),
                              "npm_config_update_notifier": "false"})
    if out.returncode:
        raise RuntimeError("npm pack failed: " + out.stderr)
    return os.path.join(outdir, json.loads(out.stdout)[0]["filename"])


class _Server(LocalServer):
    def __init__(self):
        self.requests = []
        self.downloads = {}
        self.lock = threading.Lock()
        self.delay = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                status, ctype, body = fake.answer(self.path, self.headers)
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "status": status})
                if fake.delay:
                    threading.Event().wait(fake.delay)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        super().__init__(Handler)

    def count(self, name):
        with self.lock:
            self.downloads[name] = self.downloads.get(name, 0) + 1


class SimpleIndex(_Server):
    def __init__(self):
        super().__init__()
        self.files = {}     # filename -> bytes
        self.projects = {}  # normalised name -> [filename]
        self.url = "http://127.0.0.1:%d/simple" % self.port

    def add_wheel(self, path):
        name = os.path.basename(path)
        with open(path, "rb") as f:
            self.files[name] = f.read()
        self.projects.setdefault(pep503(name.split("-")[0]), []).append(name)
        return self

    def answer(self, path, headers):
        path = urllib.parse.urlsplit(path).path
        if path in ("/simple", "/simple/"):
            links = "".join('<a href="%s/">%s</a>\n' % (p, p) for p in sorted(self.projects))
            return 200, "text/html", ("<!DOCTYPE html><html><body>%s</body></html>" % links).encode()
        m = re.fullmatch(r"/simple/([^/]+)/?", path)
        if m:
            files = self.projects.get(pep503(m.group(1)))
            if not files:
                return 404, "text/plain", b"not found"
            links = "".join('<a href="../../files/%s#sha256=%s">%s</a>\n'
                            % (f, hashlib.sha256(self.files[f]).hexdigest(), f) for f in files)
            return 200, "text/html", ("<!DOCTYPE html><html><body>%s</body></html>" % links).encode()
        m = re.fullmatch(r"/files/([^/]+)", path)
        if m and m.group(1) in self.files:
            self.count(m.group(1))
            return 200, "application/octet-stream", self.files[m.group(1)]
        return 404, "text/plain", b"not found"


class NpmRegistry(_Server):
    def __init__(self):
        super().__init__()
        self.packages = {}  # name -> {version: (filename, bytes)}
        self.url = "http://127.0.0.1:%d/" % self.port

    def add_tarball(self, path):
        data = open(path, "rb").read()
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            meta = json.load(t.extractfile("package/package.json"))
        fname = "%s-%s.tgz" % (meta["name"].split("/")[-1], meta["version"])
        self.packages.setdefault(meta["name"], {})[meta["version"]] = (fname, data, meta)
        return self

    def packument(self, name):
        versions = {}
        for ver, (fname, data, meta) in self.packages[name].items():
            v = dict(meta)
            v["dist"] = {
                "tarball": "%s%s/-/%s" % (self.url, name, fname),
                "shasum": hashlib.sha1(data).hexdigest(),
                "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
            }
            versions[ver] = v
        latest = sorted(versions, key=lambda s: [int(x) for x in s.split(".")])[-1]
        return {"name": name, "dist-tags": {"latest": latest}, "versions": versions}

    def answer(self, path, headers):
        parts = urllib.parse.urlsplit(path)
        path = urllib.parse.unquote(parts.path)
        if path == "/-/v1/search":
            # the registry's search: every package whose name shares a
            # character with the text (enough for a did-you-mean)
            text = urllib.parse.parse_qs(parts.query).get("text", [""])[0]
            objs = [{"package": {"name": n}} for n in sorted(self.packages) if set(n) & set(text)]
            return 200, "application/json", json.dumps({"objects": objs, "total": len(objs)}).encode()
        m = re.fullmatch(r"/(.+)/-/([^/]+\.tgz)", path)
        if m and m.group(1) in self.packages:
            for fname, data, _ in self.packages[m.group(1)].values():
                if fname == m.group(2):
                    self.count(fname)
                    return 200, "application/octet-stream", data
        name = path.lstrip("/")
        if name in self.packages:
            return 200, "application/json", json.dumps(self.packument(name)).encode()
        return 404, "application/json", b'{"error":"not found"}'
