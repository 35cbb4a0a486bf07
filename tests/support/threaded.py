"""The life cycle the local servers share: a ThreadingHTTPServer on a free 127.0.0.1 port in a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class OwnedServer(ThreadingHTTPServer):
    """Gives handlers `self.server.owner`, the object that started the server."""

    daemon_threads = True
    owner: Any


class ThreadedServer:
    """Subclasses set `handler` (a BaseHTTPRequestHandler) and may override `server_class` and `prepare`."""

    handler: type[BaseHTTPRequestHandler]
    server_class: type[OwnedServer] = OwnedServer

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: OwnedServer | None = None
        self._thread: threading.Thread | None = None

    def prepare(self, server: OwnedServer) -> None:
        """Called once the socket is bound, before serving (e.g. to wrap it in TLS)."""

    def start(self) -> Self:
        if self._server is None:
            server = self.server_class(("127.0.0.1", 0), self.handler)
            server.owner = self
            self.prepare(server)
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=type(self).__name__
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def started(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]
