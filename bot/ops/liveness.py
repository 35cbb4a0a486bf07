"""Build ownership across processes: who this process is, whether another one still lives, the heartbeat.

Every build row names the process that queued or runs it (bot/domain/liveness.py has the rules). This module
is the side-effecting half: `this_process()` (host, pid, start time from /proc), `process_alive()` for a pid on
this host, `BuildHeartbeat` (one daemon thread per process refreshing the heartbeat of the builds it holds,
queued ones included, every quarter of DCS_BUILD_STALE_SECONDS) and `sweep_interrupted_builds()`, the bot's
start-up sweep.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from bot.domain import liveness
from bot.domain.records import Build, ProcessOwner
from bot.services import Services
from bot.store import Store

log = logging.getLogger(__name__)

_me: ProcessOwner | None = None
_heartbeat_lock = threading.Lock()


def process_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (Linux /proc), None when unknown."""
    stat = _stat(pid)
    if stat is None:
        return None
    fields = stat.split()
    return fields[19] if len(fields) > 19 else None  # field 22 of stat, counted after "pid (comm)"


def _stat(pid: int) -> str | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2]
    except OSError:
        return None


def this_process() -> ProcessOwner:
    """This process as a build owner (recomputed after a fork: the child has another pid)."""
    global _me
    if _me is None or _me.pid != os.getpid():
        _me = ProcessOwner(socket.gethostname(), os.getpid(), process_start(os.getpid()))
    return _me


def process_alive(owner: ProcessOwner) -> bool | None:
    """Whether the owner process still runs: None for another host (its heartbeat has to tell)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _stat(owner.pid)
    if stat is not None and stat.split()[:1] == ["Z"]:
        return False  # exited, not yet reaped by its parent
    started = process_start(owner.pid)
    if owner.started and started and owner.started != started:
        return False  # the pid was reused by a later process
    return True


class BuildHeartbeat:
    """Holds the builds this process owns and keeps their heartbeat fresh while it holds any.

    A daemon thread runs only while something is held; it writes one UPDATE per interval for all of them.
    """

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def hold(self, build_id: int) -> None:
        with self._lock:
            self._held.add(build_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="dcs-build-heartbeat", daemon=True)
                self._thread.start()

    def release(self, build_id: int) -> None:
        with self._lock:
            self._held.discard(build_id)
            self._wake.notify_all()

    def held(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._held)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
                ids = sorted(self._held)
            try:
                self.store.beat(ids)
            except Exception:  # a locked or closed database must not end the heartbeat for good
                log.exception("could not refresh the heartbeat of builds %s", ids)
            with self._lock:
                self._wake.wait_for(lambda: not self._held, timeout=self.interval)


def heartbeat_for(services: Services) -> BuildHeartbeat:
    """The process's heartbeat for this store (created once, kept in `services.build_heartbeat`)."""
    with _heartbeat_lock:
        if services.build_heartbeat is None:
            interval = min(30.0, max(0.5, services.config.build_stale_seconds / 4))
            services.build_heartbeat = BuildHeartbeat(services.store, interval)
        return services.build_heartbeat


def death_reason_for(services: Services, *, unowned_stale_seconds: float | None) -> Callable[[Build], str | None]:
    """The rule of bot/domain/liveness.py with this process's identity, its held builds and the /proc probe."""
    heartbeat = heartbeat_for(services)
    stale = services.config.build_stale_seconds

    def reason(build: Build) -> str | None:
        return liveness.death_reason(
            build,
            me=this_process(),
            held=heartbeat.held(),
            alive=process_alive,
            now=datetime.now(UTC),
            stale_seconds=stale,
            unowned_stale_seconds=unowned_stale_seconds,
        )

    return reason


def sweep_interrupted_builds(services: Services) -> list[int]:
    """At the bot's start-up: end the builds whose process is gone or silent; a running `dcs build` is kept."""
    ended = services.store.mark_interrupted(death_reason_for(services, unowned_stale_seconds=None))
    for build_id in ended:
        build = services.store.get_build(build_id)
        services.store.audit(
            actor=None, action="build", target=f"{build.image}#{build.id}", outcome="interrupted", detail=build.error
        )
    return ended
