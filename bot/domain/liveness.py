"""Is a queued or running build still going? Its owner and its heartbeat say (pure; the process probe is passed in).

A build belongs to the process that queued or runs it (host, pid, start time) and carries a heartbeat that the
process refreshes while it holds the build. Another process (the bot at start-up, a build meeting an active
build of the same image) ends it only when one of these holds:

- the owner is this very process, which no longer holds it (an earlier life of the store in this process);
- the owner ran on this host and its pid is gone, is a zombie, or belongs to a process started at another time;
- the heartbeat is older than the staleness limit (a hung owner, or one on another host that stopped);
- the row has no owner (written before owners existed) and, when a limit is given, was queued longer ago than it.

A `dcs build` still running in a terminal next to the bot has a live pid and a fresh heartbeat: it is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from bot.domain.clock import ago, parse_time
from bot.domain.records import Build, ProcessOwner

# None: cannot tell (another host); True: alive; False: gone (or its pid now belongs to another process)
ProcessProbe = Callable[[ProcessOwner], bool | None]

UNOWNED = "The bot stopped while this build was in progress."


def death_reason(
    build: Build,
    *,
    me: ProcessOwner,
    held: Collection[int],
    alive: ProcessProbe,
    now: datetime,
    stale_seconds: float,
    unowned_stale_seconds: float | None = None,
) -> str | None:
    """Why `build` (queued or running) can never finish, or None while it may still be going."""
    owner = build.owner
    if owner is None:
        if unowned_stale_seconds is None:
            return UNOWNED
        queued = parse_time(build.requested_at)
        if queued is not None and (now - queued).total_seconds() <= unowned_stale_seconds:
            return None
        return f"It was queued {ago(build.requested_at, now)} by a version of the bot that recorded no owner."
    if owner == me:
        return None if build.id in held else f"Its process ({owner}) no longer runs it."
    if owner.host == me.host and alive(owner) is False:
        return f"Its process ({owner}) is gone."
    seen = parse_time(build.heartbeat_at or build.started_at or build.requested_at)
    if seen is None or (now - seen).total_seconds() > stale_seconds:
        return f"Its process ({owner}) stopped sending heartbeats (last one {ago(build.heartbeat_at, now)})."
    return None
