"""A local Socket Mode endpoint (`ws://127.0.0.1:PORT/link/?ticket=...`) for Bolt's SocketModeHandler: says
hello to each client, delivers envelopes (`socket_mode_envelope(...)`), records acks (with the time they arrived)
and audits their payloads.

Connection refresh as Slack does it (docs.slack.dev "Using Socket Mode"): `disconnect(reason)` sends
`{"type": "disconnect", "reason": "refresh_requested" | "warning" | "link_disabled", "debug_info": {...}}` on the
newest connection, which stays open (Slack closes it some seconds later: `close_old_after`); new envelopes go to
the newest connection, as Slack sends them to the connection the app opened last.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
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
        self.ack_times: dict[str, float] = {}  # envelope_id -> time.monotonic() when its ack arrived
        self.hello_times: list[float] = []  # time.monotonic() of each hello sent
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
        """Deliver to the newest connection now, or to the next one that connects."""
        with self._lock:
            client = self._clients[-1] if self._clients else None
            if client is None:
                self._pending.append(envelope)
        if client is not None and self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(client.send(json.dumps(envelope)), self._loop)
            future.result(timeout=5)
        return envelope["envelope_id"]

    def disconnect(self, reason: str = "refresh_requested", close_old_after: float | None = 5.0) -> None:
        """Ask the newest connection to reconnect; close it `close_old_after` seconds later (None: never)."""
        with self._lock:
            client = self._clients[-1] if self._clients else None
        if client is None or self._loop is None:
            raise AssertionError("no Socket Mode connection to disconnect")
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        asyncio.run_coroutine_threadsafe(client.send(json.dumps(message)), self._loop).result(timeout=5)
        if close_old_after is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, close_old_after, self._close_soon, client)

    def _close_soon(self, client: Any) -> None:
        assert self._loop is not None
        self._loop.create_task(client.close())

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` connections have been opened and said hello to in all."""
        wait_until(lambda: len(self.hello_times) >= count, timeout, lambda: f"{self.connections} connection(s)")

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
            with self._lock:
                self.hello_times.append(time.monotonic())
            for envelope in pending:
                await websocket.send(json.dumps(envelope))
            async for frame in websocket:
                message = json.loads(frame) if isinstance(frame, str) and frame.startswith("{") else frame
                with self._lock:
                    self._received.append(message)
                    if isinstance(message, dict) and "envelope_id" in message:
                        self._acks.append(message)
                        self.ack_times.setdefault(message["envelope_id"], time.monotonic())
        except ConnectionClosed:  # a client dropping the socket is normal in tests
            pass
        finally:
            with self._lock:
                self._clients.remove(websocket)
