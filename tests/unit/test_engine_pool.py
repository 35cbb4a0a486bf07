"""The engine pool's slots, waits and reachability, with stand-in engines (the real engines are in
tests/integration/test_engines.py): a build waits for a free slot and says so, gives up with a clear message,
skips an engine that cannot be reached, and pings an engine again after a build lost its connection."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bot.clients.engines import EnginePool
from bot.config import EngineSpec
from bot.errors import EngineUnavailable


class StandIn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pings = 0
        self.answers = True

    def ping(self, timeout: float | None = None) -> bool:
        self.pings += 1
        return self.answers


def pool(*specs: EngineSpec, down: tuple[str, ...] = (), recheck: float = 60.0) -> tuple[EnginePool, dict]:
    made: dict[str, StandIn] = {}

    def connect(spec: EngineSpec) -> Any:
        if spec.name in down:
            raise EngineUnavailable(f"Cannot reach the Docker engine {spec.name}: connection refused")
        made[spec.name] = StandIn(spec.name)
        return made[spec.name]

    return EnginePool(list(specs), connect, recheck_seconds=recheck), made


def test_a_build_waits_for_a_free_slot_says_so_and_then_runs() -> None:
    engines, _ = pool(EngineSpec("a", "unix:///a.sock", 1), EngineSpec("b", "unix:///b.sock", 1))
    told: list[str] = []
    got: list[str] = []
    with engines.lease(timeout=5) as first, engines.lease(timeout=5) as second:
        assert {first.name, second.name} == {"a", "b"}  # one each: least loaded
        waiter = threading.Thread(
            target=lambda: got.append(_lease_name(engines, told)),
        )
        waiter.start()
        time.sleep(0.3)
        assert got == [] and told == ["waiting for a free build engine (a 1/1, b 1/1)"]
    waiter.join(5)
    assert got and got[0] in ("a", "b")


def _lease_name(engines: EnginePool, told: list[str]) -> str:
    with engines.lease(timeout=5, on_wait=told.append) as engine:
        return engine.name


def test_every_slot_busy_for_too_long_is_a_clear_error() -> None:
    engines, _ = pool(EngineSpec("a", "unix:///a.sock", 1))
    with engines.lease(timeout=5), pytest.raises(EngineUnavailable, match="stayed busy for 0.2 s .a 1/1."):
        with engines.lease(timeout=0.2):
            pass


def test_an_engine_that_cannot_be_reached_is_skipped_and_reported() -> None:
    engines, _ = pool(EngineSpec("gone", "unix:///gone.sock", 4), EngineSpec("a", "unix:///a.sock", 1), down=("gone",))
    with engines.lease(timeout=5) as engine:
        assert engine.name == "a"
    rows = {row["name"]: row for row in engines.health()}
    assert rows["a"]["reachable"] and not rows["gone"]["reachable"]
    assert "connection refused" in rows["gone"]["error"]


def test_a_lost_connection_makes_the_next_build_ping_the_engine_again() -> None:
    engines, made = pool(EngineSpec("a", "unix:///a.sock", 1))
    with pytest.raises(EngineUnavailable), engines.lease(timeout=5):
        raise EngineUnavailable("Lost the connection to the Docker engine during the build")
    made["a"].answers = False  # it really is gone now: the fresh ping says so
    with pytest.raises(EngineUnavailable, match="no answer"), engines.lease(timeout=5):
        pass
    assert made["a"].pings == 1
