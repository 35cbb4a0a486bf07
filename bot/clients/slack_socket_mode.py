"""Socket Mode whose acks stay fast when Slack refreshes the connection.

Slack rotates Socket Mode connections: it sends `{"type": "disconnect", "reason": "refresh_requested"}` (or
"warning") on the old connection, the app opens a new one, and Slack closes the old one a few seconds later.
slack_sdk's built-in client (what Bolt's `SocketModeHandler` runs) handles that in `connect()`: it opens the new
connection and then closes the old one. Closing takes the old connection's receive lock, and the old
connection's reader thread holds that lock for as long as it waits in `recv()`: up to the socket's receive
timeout of 3 s. Until then the new connection is not read either (one thread reads whichever connection is
current, and it is still in the old one's `recv()`), and the message thread that handles `disconnect` is blocked
too. The first envelope on the new connection is therefore acked about 3 s late: at Slack's deadline.

`prompt_refresh(client)` makes that close immediate: the old socket is shut down for reading first, so the
blocked `recv()` returns at once with end of stream; the reader, whose session `connect()` has just marked
terminated, stops and lets go of the lock; the close goes through and the reader thread moves on to the new
connection within its 0.1 s polling interval. The new connection is already open at that point, so nothing that
Slack sends after the refresh is missed. Stopping the bot closes its connection the same way (no 3 s wait). A
shorter receive timeout would also end the wait, but the built-in reader drops a frame whose bytes arrive across
a timeout, so it is left at its default.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.builtin.connection import Connection

log = logging.getLogger(__name__)


def _close_at_once(session: Connection) -> None:
    sock = session.sock
    if sock is not None:
        try:
            # The plain socket's shutdown (not SSLSocket's, which would tear the TLS object down under the reader).
            socket.socket.shutdown(sock, socket.SHUT_RD)
        except OSError:
            pass  # already closed or never connected: nothing is waiting in recv()
    Connection.close(session)


def prompt_refresh(client: SocketModeClient) -> SocketModeClient:
    """Make `client` close a replaced connection without waiting out the old reader's receive timeout."""
    replace_session = client.connect

    def prompt(session: Connection | None) -> None:
        if session is not None:
            session.close = lambda: _close_at_once(session)  # type: ignore[method-assign]

    def connect() -> None:
        prompt(client.current_session)  # the one being replaced
        replace_session()
        prompt(client.current_session)  # the new one, for the next refresh and for shutting down

    client.connect = connect  # type: ignore[method-assign]
    return client


def socket_mode_handler(app: App, app_token: str | None, **options: Any) -> SocketModeHandler:
    """Bolt's Socket Mode handler (slack_sdk's built-in client) with prompt connection refreshes."""
    handler = SocketModeHandler(app, app_token, **options)
    prompt_refresh(handler.client)
    return handler
