"""A local Socket Mode endpoint (`ws://127.0.0.1:PORT/link/?ticket=...`) for Bolt's SocketModeHandler: says
hello to each client, delivers envelopes (`socket_mode_envelope(...)`), records acks and audits their payloads.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from typing import Any, Self

from tests.fakes.blockkit import escape_characters, payload_problems
from tests.fakes.http import wait_until
from tests.fakes.slack_payloads import APP_ID


class FakeSocketModeServer:
    """`ws://127.0.0.1:PORT/link/?ticket=...`: says hello to each client, delivers envelopes, records acks."""

    def __init__(self, envelopes: Iterable[dict[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._pending = list(envelopes)
        self._acks: list[dict[str, Any]] = []
        self._received: list[Any] = []
        self._clients: list[Any] = []
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/link/?ticket=fake-ticket&app_id={APP_ID}"

    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="FakeSocketMode")
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("socket mode server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def send(self, envelope: dict[str, Any]) -> str:
        """Deliver to the first connected client now, or to the next one that connects."""
        with self._lock:
            client = self._clients[0] if self._clients else None
            if client is None:
                self._pending.append(envelope)
        if client is not None and self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(client.send(json.dumps(envelope)), self._loop)
            future.result(timeout=5)
        return envelope["envelope_id"]

    @property
    def acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._acks)

    @property
    def received(self) -> list[Any]:
        with self._lock:
            return list(self._received)

    def block_kit_problems(self) -> list[str]:
        """Block Kit problems in the payloads the bot put into its acks (options, view responses, messages)."""
        return [f"ack {a['envelope_id']}: {p}" for a in self.acks for p in payload_problems(a.get("payload"))]

    def escape_characters(self) -> list[str]:
        """Where an ESC character sits in any ack payload (empty when clean)."""
        return [f"ack {a['envelope_id']} {p}" for a in self.acks for p in escape_characters(a.get("payload"))]

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        def probe() -> list[dict[str, Any]]:
            return [a for a in self.acks if a.get("envelope_id") == envelope_id]

        return wait_until(probe, timeout, lambda: f"acks so far: {self.acks}")[0]

    def _run(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self._stopping = asyncio.Event()
            async with serve(self._session, "127.0.0.1", 0, ping_interval=None) as server:
                self._port = next(iter(server.sockets)).getsockname()[1]
                ready.set()
                await self._stopping.wait()

        assert self._loop is not None
        self._loop.run_until_complete(main())
        self._loop.close()

    async def _session(self, websocket: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            self.connections += 1
            self._clients.append(websocket)
            pending, self._pending = self._pending, []
        debug_info = {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060}
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}, "debug_info": debug_info}
        try:
            await websocket.send(json.dumps(hello))
            for envelope in pending:
                await websocket.send(json.dumps(envelope))
            async for frame in websocket:
                message = json.loads(frame) if isinstance(frame, str) and frame.startswith("{") else frame
                with self._lock:
                    self._received.append(message)
                    if isinstance(message, dict) and "envelope_id" in message:
                        self._acks.append(message)
        except ConnectionClosed:  # a client dropping the socket is normal in tests
            pass
        finally:
            with self._lock:
                self._clients.remove(websocket)
