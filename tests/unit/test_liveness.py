"""Which queued or running builds can never finish: the owner and heartbeat rules, in a table of examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.clock import stamp
from bot.domain.liveness import UNOWNED, death_reason
from bot.domain.records import Build, ProcessOwner

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ME = ProcessOwner("bot-host", 100, "5000")
SIBLING = ProcessOwner("bot-host", 200, "6000")  # a `dcs build` in a terminal next to the bot
REUSED = ProcessOwner("bot-host", 300, "7000")  # pid 300 now belongs to a process started later
DEAD = ProcessOwner("bot-host", 400, "8000")
ELSEWHERE = ProcessOwner("ci-runner", 200, "6000")  # another host: only its heartbeat can tell
ALIVE = {SIBLING: True, REUSED: False, DEAD: False}


def ago(seconds: float) -> str:
    return stamp(NOW - timedelta(seconds=seconds))


def build(owner: ProcessOwner | None, *, heartbeat: float | None = 1, queued: float = 5, build_id: int = 7) -> Build:
    return Build(
        id=build_id,
        image="team-pandas",
        status="running",
        requested_at=ago(queued),
        started_at=ago(queued),
        heartbeat_at=ago(heartbeat) if heartbeat is not None else None,
        owner_host=owner.host if owner else None,
        owner_pid=owner.pid if owner else None,
        owner_started=owner.started if owner else None,
    )


@pytest.mark.parametrize(
    ("case", "row", "held", "unowned_limit", "words"),
    [
        ("a CLI build next to the bot, heartbeat fresh", build(SIBLING), (), None, None),
        ("a CLI build running longer than the limit, heartbeat fresh", build(SIBLING, queued=9000), (), None, None),
        ("its pid is gone", build(DEAD), (), None, "is gone"),
        ("its pid was reused by another process", build(REUSED), (), None, "is gone"),
        ("alive but silent (hung)", build(SIBLING, heartbeat=121), (), None, "stopped sending heartbeats"),
        ("another host, heartbeat fresh", build(ELSEWHERE), (), None, None),
        ("another host, heartbeat stopped", build(ELSEWHERE, heartbeat=500), (), None, "stopped sending heartbeats"),
        ("another host, never beat, queued long ago", build(ELSEWHERE, heartbeat=None, queued=500), (), None, "heart"),
        ("this process, holding it", build(ME), (7,), None, None),
        ("this process, no longer holding it (an earlier life)", build(ME), (8,), None, "no longer runs it"),
        ("no owner, at start-up", build(None, heartbeat=None), (), None, UNOWNED),
        ("no owner, queued within the legacy limit", build(None, heartbeat=None, queued=100), (), 2400, None),
        ("no owner, queued before the legacy limit", build(None, heartbeat=None, queued=3000), (), 2400, "no owner"),
    ],
)
def test_death_reason(case: str, row: Build, held: tuple[int, ...], unowned_limit: float | None, words: str | None):
    reason = death_reason(
        row,
        me=ME,
        held=held,
        alive=lambda owner: ALIVE.get(owner),
        now=NOW,
        stale_seconds=120,
        unowned_stale_seconds=unowned_limit,
    )
    if words is None:
        assert reason is None, case
    else:
        assert reason is not None and words in reason, (case, reason)


def test_the_reason_names_the_process() -> None:
    reason = death_reason(build(DEAD), me=ME, held=(), alive=lambda o: False, now=NOW, stale_seconds=120)
    assert reason == "Its process (pid 400 on bot-host) is gone."
