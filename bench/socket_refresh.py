"""Socket Mode: how long the first ack takes right after Slack refreshes the connection, slack-sdk's built-in
client as Bolt's SocketModeHandler runs it vs the bot's (bot/clients/slack_socket_mode.py), in the same run.

A local Socket Mode server (tests/fakes/slack_socket_mode.py: hello, envelopes, acks by envelope_id,
`disconnect` with reason refresh_requested, the old connection closed 5 s later as Slack does) and a Bolt app
whose `/dcs` listener acks at once. Each round: `disconnect`, wait for the new connection's hello, send a
slash command on it and time its ack; then one more command (an ordinary ack, the anchor).

    python bench/socket_refresh.py [--refreshes 5]        # no Docker engine needed
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_bolt import App  # noqa: E402
from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: E402
from slack_sdk import WebClient  # noqa: E402

from bot.clients.slack_socket_mode import socket_mode_handler  # noqa: E402
from tests.fakes.slack import FakeSlack, FakeSocketModeServer, slash_command_payload, socket_mode_envelope  # noqa: E402


def measure(kind: str, refreshes: int) -> dict[str, list[float]]:
    with FakeSocketModeServer() as server, FakeSlack(socket_mode_url=server.url) as fake:
        app = App(
            client=WebClient(token="xoxb-bench", base_url=fake.api_url),
            signing_secret="unused-in-socket-mode",
            token_verification_enabled=False,
        )

        @app.command("/dcs")
        def dcs(ack) -> None:  # type: ignore[no-untyped-def]
            ack("ok")

        handler = SocketModeHandler(app, "xapp-bench") if kind == "built-in" else socket_mode_handler(app, "xapp-bench")
        handler.connect()
        server.wait_for_connections(1)

        def ack_ms() -> float:
            envelope = socket_mode_envelope(slash_command_payload("help"))
            sent = time.monotonic()
            server.send(envelope)
            server.wait_for_ack(envelope["envelope_id"], timeout=15)
            return (server.ack_times[envelope["envelope_id"]] - sent) * 1000

        ack_ms()
        out: dict[str, list[float]] = {"reconnect": [], "first ack": [], "next ack": []}
        try:
            for _ in range(refreshes):
                opened = len(server.hello_times)
                asked = time.monotonic()
                server.disconnect("refresh_requested", close_old_after=5)
                server.wait_for_connections(opened + 1, timeout=15)
                out["reconnect"].append((time.monotonic() - asked) * 1000)
                out["first ack"].append(ack_ms())
                out["next ack"].append(ack_ms())
        finally:
            handler.close()
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=5)
    args = parser.parse_args(argv)
    results = {kind: measure(kind, args.refreshes) for kind in ("built-in", "dcs-bot")}
    lines = [
        f"### bench/socket_refresh.py — {time.strftime('%Y-%m-%d')}",
        "",
        f"{args.refreshes} refreshes per client; milliseconds, median (min–max).",
        "",
        "| client | reconnect | first ack after the refresh | next ack |",
        "|---|---:|---:|---:|",
    ]
    for kind, rows in results.items():
        cells = [f"{statistics.median(v):.0f} ({min(v):.0f}–{max(v):.0f})" for v in rows.values()]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    before, after = (statistics.median(results[k]["first ack"]) for k in ("built-in", "dcs-bot"))
    lines += [
        "",
        f"First ack after a refresh: dcs-bot {after:.0f} ms vs built-in {before:.0f} ms "
        f"({before / after:.0f}× faster).",
    ]
    print("\n".join(lines))
    return 0 if max(results["dcs-bot"]["first ack"]) < 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
