"""A fake container registry (the Distribution API v2, the part a pull uses)
on 127.0.0.1, serving one image of one layer. Engines treat 127.0.0.0/8 as
an insecure registry: they pull from it over plain HTTP. The layer is big
and incompressible enough for the engine to report download progress, and
is sent in slow pieces so that progress has steps.

    reg = FakeRegistry(layer_bytes=4 << 20).start(); reg.image("name", "tag"); reg.stop()"""
import gzip
import hashlib
import http.server
import io
import json
import os
import tarfile
import time

from local_server import LocalServer


def _digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class FakeRegistry(LocalServer):
    def __init__(self, layer_bytes=4 << 20, chunk=256 << 10, delay=0.02):
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as t:
            data = os.urandom(layer_bytes)
            info = tarfile.TarInfo("payload.bin")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        raw = tar.getvalue()
        self.layer = gzip.compress(raw, compresslevel=1)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]}}).encode()
        self.config = config
        self.blobs = {_digest(self.layer): self.layer, _digest(config): config}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": _digest(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(self.layer),
                        "digest": _digest(self.layer)}]}).encode()
        self.chunk, self.delay = chunk, delay
        self.requests = []
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, status, body=b"", ctype="application/json", extra=None, head=False):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                for i in range(0, len(body), reg.chunk):
                    self.wfile.write(body[i:i + reg.chunk])
                    self.wfile.flush()
                    if len(body) > reg.chunk:
                        time.sleep(reg.delay)

            def _route(self, head):
                reg.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts == ["v2"]:
                    return self._send(200, b"{}", head=head)
                if len(parts) >= 4 and parts[0] == "v2" and parts[-2] == "manifests":
                    return self._send(200, reg.manifest, reg_manifest_type,
                                      {"Docker-Content-Digest": _digest(reg.manifest)}, head)
                if len(parts) >= 4 and parts[0] == "v2" and parts[-2] == "blobs" and parts[-1] in reg.blobs:
                    b = reg.blobs[parts[-1]]
                    return self._send(200, b, "application/octet-stream", {"Docker-Content-Digest": parts[-1]}, head)
                return self._send(404, json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "unknown"}]})
                                  .encode(), head=head)

            def do_GET(self):
                self._route(False)

            def do_HEAD(self):
                self._route(True)

        reg_manifest_type = "application/vnd.docker.distribution.manifest.v2+json"
        super().__init__(Handler)

    def image(self, name, tag):
        return "127.0.0.1:%d/%s:%s" % (self.port, name, tag)
