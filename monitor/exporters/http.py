"""The HTTP server: ``/metrics``, ``/-/healthy`` and ``/-/ready``; every other path is 404."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)


IDLE_TIMEOUT_SECONDS = 10.0
"""How long the HTTP server waits for a client's request (or its next one) before closing the connection."""


class MetricsServer:
    """Serves a registry and the health endpoints on one address, in a background thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool]) -> None:
        self.registry = registry
        self.ready = ready
        handler = _handler(self)
        family = ThreadingHTTPServer.address_family
        if ":" in host:
            import socket

            family = socket.AF_INET6

        class _Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = _Server((host, port), handler)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.thread is not None:  # shutdown() waits for serve_forever, which never ran otherwise
            self.httpd.shutdown()
            self.thread = None
        self.httpd.server_close()


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Routes the three paths."""

        # A connection that sends nothing (or keeps an idle keep-alive) is closed after this many
        # seconds: 300 silent clients held 300 threads for ever (issue 7).
        timeout = IDLE_TIMEOUT_SECONDS

        server_version = "replywatch"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept") or "")
                try:
                    body = encoder(server.registry)
                except Exception:
                    log.exception("scrape failed")
                    self._send(500, b"scrape failed\n", "text/plain; charset=utf-8")
                    return
                self._send(200, body, content_type)
            elif path == "/-/healthy":
                self._send(200, b"OK\n", "text/plain; charset=utf-8")
            elif path == "/-/ready":
                if server.ready():
                    self._send(200, b"OK\n", "text/plain; charset=utf-8")
                else:
                    self._send(503, b"not ready\n", "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # A probe that stops reading after the status line (a 503 from /-/ready) is not an error.
                log.debug("http client went away before the answer was written")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http " + format, *args)

    return Handler
