"""A fake documentation site for the docs crawler's tests: real HTTP on
127.0.0.1 (threaded), ETag/Last-Modified with 304s, and a record of every
request with its headers and the status it got.

As a module:  site = DocsSite().start(); site.url ("http://127.0.0.1:PORT/docs/");
              site.requests (list of {"method", "path", "headers", "status"}); site.clear(); site.stop()
              site.other is a second server (another port) the site links to; it records too.
As a program: python3 docs_site.py [--port 0] [--generate N] [--slow-delay S]
              prints "listening on http://127.0.0.1:PORT/docs/" (or ".../gen/" with --generate) on stdout.

The site under /docs/:
  index       links to everything below, to /other/outside.html (outside the path prefix), to the
              other server (another port), to itself via index.html and fragments, and to mailto:
  a.html, b.html  link to each other and back to the index (cycles)
  moved       301 to target.html (inside the prefix; target.html is linked from nowhere else)
  leave       302 to /other/secret.html (outside the prefix)
  missing.html    404
  huge.html   3 MiB of HTML (beyond a 1 MB per-page cap and the 2 MiB default)
  slow.html   answers after slow_delay seconds
  logo.png, manual.pdf  binary, non-HTML content types
  notes.txt   text/plain, kept (holds the word "zanzibarite")
  noise.html  script/style/nav/header/footer/aside noise around a heading and a code block
  widgets/frobnicate.html  the one page that documents frobnicate_widget(level=...)
  garden.html, cooking.html, weather.html, history.html, music.html  irrelevant pages
  deep/1.html -> deep/2.html -> ... -> deep/8.html  (deep/K is K links from the index)
With --generate N (or DocsSite(generate=N)): /gen/ links into N pages /gen/pI.html, each linking
to pages 2I+1, 2I+2 and I+1, each with about 3 KB of text.
"""
import argparse
import email.utils
import hashlib
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from local_server import LocalServer

LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
LAST_MODIFIED_TS = email.utils.parsedate_to_datetime(LAST_MODIFIED).timestamp()

NOISE_CODE = 'def gizmo(x):\n    return  x * 2   # two  spaces  kept\n\nprint(gizmo(21))\n'

IRRELEVANT = {
    "garden": ("Gardening notes", "Tomatoes prefer sunny beds and regular watering. Prune the basil often so "
               "it grows bushy. Compost enriches clay soil over several seasons. Mulch keeps weeds down. "),
    "cooking": ("Cooking notes", "Simmer the onions slowly until golden, then add garlic and paprika. A pinch of "
                "salt brightens sweet dishes. Rest bread dough overnight in the fridge for flavour. "),
    "weather": ("Weather notes", "Cumulus clouds drift on warm afternoons; a falling barometer often means rain. "
                "Coastal fog forms when moist air meets cold water. Thunderstorms bring hail in summer. "),
    "history": ("History notes", "The old bridge was rebuilt in stone after the flood. Merchants crossed the "
                "river with salt and wool. The town hall clock dates from the eighteenth century. "),
    "music": ("Music notes", "Practise scales slowly with a metronome. A minor chord sounds darker than a major "
              "one. The cello's lowest string is tuned to C. Rehearse the chorus before the verses. "),
}


def html_page(title, body, links=()):
    nav = "".join('<a href="%s">%s</a> ' % (h, h) for h in links)
    return ("<!DOCTYPE html><html><head><title>%s</title></head><body><nav>%s</nav><main>%s</main></body></html>"
            % (title, nav, body))


def build_docs(other_base):
    pages = {}

    def add(path, body, ctype="text/html; charset=utf-8", **extra):
        pages[path] = dict(body=body.encode() if isinstance(body, str) else body, ctype=ctype, **extra)

    links = ["a.html", "b.html", "index.html", "#top", "a.html#part", "moved", "leave", "missing.html",
             "huge.html", "slow.html", "logo.png", "manual.pdf", "notes.txt", "noise.html",
             "widgets/frobnicate.html", "deep/1.html", "/other/outside.html", other_base + "/docs/elsewhere.html",
             "mailto:docs@example.com"] + ["%s.html" % k for k in IRRELEVANT]
    add("/docs/", html_page("Gizmo documentation", "<h1>Gizmo documentation</h1><p>Start here.</p>", links))
    add("/docs/a.html", html_page("Page A", "<h1>Page A</h1><p>Alpha page.</p>", ["b.html", "./", "a.html"]))
    add("/docs/b.html", html_page("Page B", "<h1>Page B</h1><p>Beta page.</p>", ["a.html", "index.html"]))
    add("/docs/target.html", html_page("Redirect target", "<h1>Redirect target</h1><p>Reached by a redirect.</p>"))
    add("/docs/moved", None, status=301, location="/docs/target.html")
    add("/docs/leave", None, status=302, location="/other/secret.html")
    add("/other/outside.html", html_page("Outside", "<p>outside the prefix</p>"))
    add("/other/secret.html", html_page("Secret", "<p>outside the prefix</p>"))
    add("/docs/huge.html", html_page("Huge", "<p>" + "lorem ipsum " * (3 * 1024 * 1024 // 12) + "</p>"))
    add("/docs/slow.html", html_page("Slow", "<p>slow page</p>"), slow=True)
    add("/docs/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, ctype="image/png")
    add("/docs/manual.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", ctype="application/pdf")
    add("/docs/notes.txt", "Release notes\n=============\n\nThe zanzibarite release adds colour output.\n",
        ctype="text/plain; charset=utf-8")
    noise = ("<!DOCTYPE html><html><head><title>Noise page</title><style>body{color:red} .STYLETEXT{}</style>"
             "<script>trackingPixel('SCRIPTTEXT');</script></head><body>"
             "<header>SITEBANNER</header><nav><a href='a.html'>NAVLINKTEXT</a></nav>"
             "<aside>ASIDETEXT</aside><main><h1>Noise page</h1><h2>Installing the gizmo</h2>"
             "<p>Run <code>gizmo --install</code> once.</p><pre><code>" + NOISE_CODE.replace("<", "&lt;") +
             "</code></pre><script>alert('SCRIPTTEXT2')</script></main>"
             "<footer>COPYRIGHTFOOTER</footer></body></html>")
    add("/docs/noise.html", noise)
    answer = ("<h1>Widget API</h1><p>Widgets are the building blocks of a gizmo.</p>"
              "<h2>frobnicate_widget(level=...)</h2>"
              "<p>To frobnicate a widget, call <code>frobnicate_widget(level=N)</code> where the level is an "
              "integer from 1 to 7; higher levels frobnicate harder.</p>"
              "<pre><code>from gizmo import frobnicate_widget\nfrobnicate_widget(level=3)\n</code></pre>")
    add("/docs/widgets/frobnicate.html", html_page("Widgets", answer, ["../"]))
    for key, (title, text) in IRRELEVANT.items():
        paras = "".join("<p>%s</p>" % (text * 3) for _ in range(4))
        add("/docs/%s.html" % key, html_page(title, "<h1>%s</h1>%s" % (title, paras), ["./"]))
    for k in range(1, 9):
        nxt = ["%d.html" % (k + 1)] if k < 8 else []
        add("/docs/deep/%d.html" % k, html_page("Deep %d" % k, "<h1>Deep %d</h1><p>level %d</p>" % (k, k), nxt))
    return pages


WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega widget gizmo sprocket lever spring gear pulley axle valve socket").split()


def build_generated(n):
    rnd = random.Random(1234)
    pages = {}
    first = "".join('<a href="p%d.html">p%d</a> ' % (i, i) for i in range(min(n, 3)))
    pages["/gen/"] = dict(body=html_page("Generated", "<h1>Generated site</h1>" + first).encode(),
                          ctype="text/html")
    for i in range(n):
        kids = [j for j in (2 * i + 1, 2 * i + 2, i + 1) if j < n]
        sections = "".join("<h2>Section %d.%d</h2><p>%s</p>" % (i, s, " ".join(rnd.choice(WORDS)
                                                                             for _ in range(90)))
                           for s in range(4))
        body = "<h1>Page %d</h1>%s" % (i, sections)
        pages["/gen/p%d.html" % i] = dict(body=html_page("Page %d" % i, body,
                                                         ["p%d.html" % j for j in kids]).encode(),
                                          ctype="text/html")
    return pages


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this, Nagle plus
    # delayed ACKs add 40 ms to every keep-alive response
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        site = self.server.fake
        path = self.path.split("?", 1)[0]
        page = site.pages.get(path)
        rec = {"method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "status": None}
        with site.lock:
            site.requests.append(rec)
        if page is None:
            return self._send(rec, 404, b"<html><body><h1>Not found</h1></body></html>", "text/html")
        if page.get("status"):
            return self._send(rec, page["status"], b"", "text/html", {"Location": page["location"]})
        if page.get("slow"):
            time.sleep(site.slow_delay)
        body = page["body"]
        etag = '"%s"' % hashlib.sha1(body).hexdigest()[:16]
        hdrs = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            not_modified = etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        elif ims is not None:
            try:
                not_modified = email.utils.parsedate_to_datetime(ims).timestamp() >= LAST_MODIFIED_TS
            except (TypeError, ValueError):
                not_modified = False
        if not_modified:
            return self._send(rec, 304, b"", None, hdrs)
        return self._send(rec, 200, b"" if head else body, page["ctype"], hdrs, length=len(body))

    def _send(self, rec, status, body, ctype, headers=None, length=None):
        rec["status"] = status
        try:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class DocsSite(LocalServer):
    def __init__(self, generate=0, slow_delay=3.0, with_other=True, port=0):
        self.lock = threading.Lock()
        self.requests = []
        self.slow_delay = slow_delay
        self.other = DocsSite(with_other=False) if with_other and not generate else None
        super().__init__(_Handler, port)
        self.base = "http://127.0.0.1:%d" % self.port
        if generate:
            self.pages = build_generated(generate)
            self.url = self.base + "/gen/"
        else:
            self.pages = build_docs(self.other.base if self.other else self.base)
            self.url = self.base + "/docs/"

    def start(self):
        if self.other:
            self.other.start()
        return super().start()

    def stop(self):
        super().stop()
        if self.other:
            self.other.stop()

    def clear(self):
        with self.lock:
            self.requests.clear()
        if self.other:
            self.other.clear()

    def paths(self, method="GET"):
        with self.lock:
            return [r["path"] for r in self.requests if r["method"] == method]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--slow-delay", type=float, default=3.0)
    a = ap.parse_args()
    site = DocsSite(generate=a.generate, slow_delay=a.slow_delay, port=a.port)
    site.start()
    print("listening on " + site.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
