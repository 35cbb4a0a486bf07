"""An HTTP forward proxy on 127.0.0.1 that records what went through it.

It forwards plain-HTTP requests given with an absolute URI (`GET http://host/path`, what apt and pip send to an
`http_proxy`) and tunnels `CONNECT host:port` (what pip, curl and apt send for https URLs to an `https_proxy`).
Each request is recorded as a `ProxiedRequest`: method, the `host:port` it asked for, the path (plain HTTP
only), whether a Proxy-Authorization header came and what it said, and whether the proxy let it through.

Upstream hosts are allow-listed (loopback only by default): this machine may send traffic only to itself and to
the package registries, so a test that wants apt to reach Debian's mirror through the proxy must name that host.
With `credentials`, a request without matching `Proxy-Authorization: Basic ...` gets 407.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.support.threaded import OwnedServer, ThreadedServer

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
TUNNEL_IDLE_S = 60
UPSTREAM_TIMEOUT_S = 30


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str  # host:port
    path: str  # for plain HTTP requests; "" for CONNECT
    proxy_authorization: str | None
    allowed: bool
    status: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = TUNNEL_IDLE_S
    server: OwnedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _refuse(self, target: str, path: str, status: int, allowed: bool) -> None:
        owner = self.server.owner
        owner._record(
            ProxiedRequest(self.command, target, path, self.headers.get("Proxy-Authorization"), allowed, status)
        )
        body = f"dcs-test proxy: {status} for {target}\n".encode()
        self.send_response(status)
        if status == 407:
            self.send_header("Proxy-Authenticate", 'Basic realm="dcs-test-proxy"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _admit(self, host: str, target: str, path: str) -> bool:
        owner = self.server.owner
        if not owner._authorized(self.headers.get("Proxy-Authorization")):
            self._refuse(target, path, 407, False)
            return False
        if host not in owner.allow_hosts:
            self._refuse(target, path, 403, False)
            return False
        return True

    def do_CONNECT(self) -> None:
        target = self.path
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if not self._admit(host, target, ""):
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=UPSTREAM_TIMEOUT_S)
        except (OSError, ValueError):
            self._refuse(target, "", 502, True)
            return
        self.server.owner._record(
            ProxiedRequest("CONNECT", target, "", self.headers.get("Proxy-Authorization"), True, 200)
        )
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        _pipe(self.connection, upstream)
        upstream.close()
        self.close_connection = True

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self._refuse(self.path, "", 400, False)
            return
        port = parts.port or 80
        target = f"{parts.hostname}:{port}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if not self._admit(parts.hostname, target, path):
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            connection.request(self.command, path, body=body, headers=headers)
            response = connection.getresponse()
        except OSError:
            connection.close()
            self._refuse(target, path, 502, True)
            return
        self.server.owner._record(
            ProxiedRequest(self.command, target, path, self.headers.get("Proxy-Authorization"), True, response.status)
        )
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        data = response.read()
        connection.close()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _forward


class ForwardProxy(ThreadedServer):
    """`url` is `http://127.0.0.1:PORT` (for http_proxy/https_proxy/pip --proxy); `requests` what came through."""

    handler = _Handler

    def __init__(
        self, *, allow_hosts: frozenset[str] | set[str] = LOOPBACK, credentials: tuple[str, str] | None = None
    ):
        super().__init__()
        self.allow_hosts = frozenset(allow_hosts)
        self.credentials = credentials
        self._requests: list[ProxiedRequest] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        if self.credentials is None:
            return self.url
        return f"http://{self.credentials[0]}:{self.credentials[1]}@127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._requests)

    def connects(self) -> list[str]:
        """The `host:port` of every CONNECT tunnel that was opened."""
        return [r.target for r in self.requests if r.method == "CONNECT" and r.status == 200]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header is not None and header.split(None, 1) == ["Basic", expected]


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Relay bytes both ways until either side closes or the tunnel is idle for TUNNEL_IDLE_S."""
    sockets = [client, upstream]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, TUNNEL_IDLE_S)
        if broken or not readable:
            return
        for source in readable:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            (upstream if source is client else client).sendall(data)
