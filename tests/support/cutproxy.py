"""A TCP proxy on 127.0.0.1 in front of a real socket (the Docker engine's unix socket), whose connections a test
can cut in the middle of a stream: the client then sees exactly what a dockerd that died or a network that
dropped gives it (a TCP reset while reading a chunked response).

    proxy = CutProxy("unix:///var/run/docker.sock").start()
    proxy.cut_on(b"/build", b"Step 2/3")  # the build's connection is reset once the engine streamed that
    ... DOCKER_HOST=proxy.url ...
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self


@dataclass
class _Rule:
    request_marker: bytes
    response_marker: bytes
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    sent: bytearray = field(default_factory=bytearray)  # client → upstream, for request markers
    armed: _Rule | None = None
    received: bytearray = field(default_factory=bytearray)  # upstream → client since the rule was armed
    closed: bool = False


class CutProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._listener: socket.socket | None = None
        self._pairs: list[_Pair] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._listener is not None
        return f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, name="cutproxy-accept", daemon=True).start()
        return self

    def cut_on(self, request_marker: bytes, response_marker: bytes) -> threading.Event:
        """Reset the connection that sent `request_marker` once the answer to it contained `response_marker`
        (that chunk is still delivered). Returns an event set when it fired."""
        rule = _Rule(request_marker, response_marker)
        with self._lock:
            self._rules.append(rule)
        return rule.fired

    def cut_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._reset(pair)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut_all()

    # ------------------------------------------------------------ plumbing
    def _connect_upstream(self) -> socket.socket:
        if self.upstream.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream.removeprefix("unix://"))
            return sock
        host, _, port = self.upstream.removeprefix("tcp://").rpartition(":")
        return socket.create_connection((host, int(port)))

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            pair = _Pair(client, self._connect_upstream())
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump_up, args=(pair,), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(pair,), daemon=True).start()

    def _pump_up(self, pair: _Pair) -> None:
        """Client → engine; a request that carries a rule's marker arms that rule for this connection."""

        def seen(data: bytes) -> bool:
            with self._lock:
                pair.sent += data
                if pair.armed is None:
                    rules = (r for r in self._rules if not r.fired.is_set() and r.request_marker in pair.sent)
                    pair.armed = next(rules, None)
            return False

        self._pump(pair, pair.client, pair.upstream, seen)

    def _pump_down(self, pair: _Pair) -> None:
        """Engine → client; once the answer holds the armed rule's marker, the connection is reset."""

        def seen(data: bytes) -> bool:
            with self._lock:
                rule = pair.armed
                if rule is None:
                    return False
                pair.received += data
                if rule.response_marker not in pair.received:
                    return False
            self._reset(pair)
            rule.fired.set()
            return True

        self._pump(pair, pair.upstream, pair.client, seen, check_after_send=True)

    def _pump(
        self,
        pair: _Pair,
        source: socket.socket,
        target: socket.socket,
        seen: Callable[[bytes], bool],
        check_after_send: bool = False,
    ) -> None:
        """Copy until either side closes; `seen(data)` True ends it (before or after the chunk is passed on)."""
        while not pair.closed:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._close(pair)
                return
            if not check_after_send and seen(data):
                return
            try:
                target.sendall(data)
            except OSError:
                self._close(pair)
                return
            if check_after_send and seen(data):
                return

    def _reset(self, pair: _Pair) -> None:
        """Close the client side with a TCP RST (SO_LINGER 0), the engine side plainly."""
        try:
            pair.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._close(pair)

    def _close(self, pair: _Pair) -> None:
        with self._lock:
            if pair.closed:
                return
            pair.closed = True
            if pair in self._pairs:
                self._pairs.remove(pair)
        # shutdown wakes the pump blocked in recv() on the other thread; SHUT_RD sends nothing to the client,
        # so its close() still goes out as the RST that _reset asked for
        for sock, how in ((pair.client, socket.SHUT_RD), (pair.upstream, socket.SHUT_RDWR)):
            try:
                sock.shutdown(how)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
