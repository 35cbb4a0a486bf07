"""A tiny real HTTP server that the service fakes build on.

Each fake subclasses `FakeHTTPServer`, implements `handle(request) -> Response`, and gets: a
`ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port in a daemon thread, `.url`, context-manager
and `start()/stop()` life cycle, and a thread-safe record of every request it received.

Transport faults a fake can answer with: `Response(reset=True)` drops the connection with a TCP RST instead
of answering (the client sees "connection reset by peer"), `Response(delay=s)` answers after `s` seconds
(read timeouts), and `go_down()`/`come_up()` close and reopen the listening port (connection refused, state
kept, same URL; open keep-alive connections are cut too).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""
    query_multi: dict[str, list[str]] = field(default_factory=dict)
    at: float = 0.0

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer ":
            return value[7:].strip()
        return None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str/bytes -> sent as is, None -> empty body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    reset: bool = False  # drop the connection with a TCP RST instead of answering

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            payload = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(self.body, str):
            payload = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = self.body or b""
        return payload, headers


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=body, headers=dict(headers or {}))


def parse_body(content_type: str, raw: bytes) -> Any:
    """JSON or form bodies become objects (a form becomes a dict of first values); others stay bytes."""
    if not raw:
        return None
    kind = content_type.split(";")[0].strip().lower()
    text = raw.decode("utf-8", errors="replace")
    if kind == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if kind == "application/json" or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


class FaultQueue:
    """One-shot (or n-shot) canned answers, matched in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [match, response, remaining]

    def add(self, match: Callable[[RecordedRequest], bool], response: Response, times: int = 1) -> None:
        with self._lock:
            self._faults.append([match, response, times])

    def take(self, request: RecordedRequest) -> Response | None:
        with self._lock:
            for fault in self._faults:
                match, response, _ = fault
                if match(request):
                    fault[2] -= 1
                    if fault[2] <= 0:
                        self._faults.remove(fault)
                    return response
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def wait_until(probe: Callable[[], Any], timeout: float, describe: Callable[[], str], interval: float = 0.02) -> Any:
    """Poll `probe` until it returns something truthy; raise AssertionError with `describe()` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"nothing matched within {timeout}s; {describe()}")
        time.sleep(interval)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection frees its thread eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        multi = parse_qs(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in multi.items()},
            headers=headers,
            body=parse_body(headers.get("content-type", ""), raw),
            raw_body=raw,
            query_multi=multi,
            at=time.time(),
        )
        fake = self.server.fake
        fake._record(request)
        try:
            response = fake.handle(request)
        except Exception as exc:  # a bug in the fake must show up in the test, not hang the client
            response = Response(500, {"fake_error": f"{type(exc).__name__}: {exc}"})
        if response.delay:
            time.sleep(response.delay)
        if response.reset:
            self._reset_connection()
            return
        payload, out_headers = response.encode()
        self.send_response(response.status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(payload)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST rather than FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeHTTPServer

    def __init__(self, address: tuple[str, int]) -> None:
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(request)

    def cut_open_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler


class FakeHTTPServer:
    """Base class: subclasses implement `handle`. Start with `with Fake() as fake:` or `fake.start()`.

    `bind_host` is the loopback address it listens on: another one (127.0.0.2) is another host to a client.
    """

    bind_host = "127.0.0.1"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._down_port: int | None = None  # set while go_down() keeps the URL reserved

    # life cycle -----------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is None:
            self._server = _Server((self.bind_host, self._down_port or 0))
            self._down_port = None
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"{type(self).__name__}-http",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._down_port = None
        self._close()

    def go_down(self) -> None:
        """Refuse connections (the host is down) until `come_up()`; the state and the URL stay."""
        port = self.port
        self._close()
        self._down_port = port

    def come_up(self) -> None:
        if self._down_port is None:
            raise RuntimeError(f"{type(self).__name__} is not down")
        self.start()

    @property
    def is_down(self) -> bool:
        return self._down_port is not None

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.cut_open_connections()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._down_port is not None:
            return self._down_port
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.bind_host}:{self.port}"

    # recording ------------------------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_matching(
        self, method: str | None = None, path: str | None = None, path_contains: str | None = None
    ) -> list[RecordedRequest]:
        """Requests filtered by method, exact path and/or a path substring."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (path_contains is None or path_contains in r.path)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def handle(self, request: RecordedRequest) -> Response:
        raise NotImplementedError
