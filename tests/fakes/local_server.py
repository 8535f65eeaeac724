"""The lifecycle every fake shares: an HTTP server on 127.0.0.1 (port 0 =
any free port), served by a daemon thread, one thread per connection.

    class FakeThing(LocalServer):
        def __init__(self):
            super().__init__(Handler)   # Handler reaches this object as self.server.fake

start() returns the fake, stop() shuts it down and closes its socket, and a
fake is a context manager. A client that gives up and drops its connection
(a crawler leaving a slow page, a cancelled download) is not an error.
"""
import sys
import threading
from http.server import ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class LocalServer:
    def __init__(self, handler, port=0):
        self.httpd = _Server(("127.0.0.1", port), handler)
        self.httpd.fake = self
        self.port = self.httpd.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_forever(self):
        """Serves in the calling thread, for a fake run as a program."""
        self.httpd.serve_forever()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
