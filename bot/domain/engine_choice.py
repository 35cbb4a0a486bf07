"""Which build engine takes the next build: pure rules on what the pool knows about each engine.

An engine is a candidate while it answers and has a free slot (fewer builds running than its concurrency).
Among candidates, one that already has the base wins (no pull: no Docker Hub pull spent, no minutes lost),
then one that has the image's previous build (its layer cache), then the least loaded (running builds over
concurrency, then fewer running), then the order of DCS_ENGINES.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineState:
    name: str
    concurrency: int
    running: int
    reachable: bool
    has_base: bool = False
    has_previous: bool = False  # the image's moving tag is there: its layers are cached

    @property
    def free(self) -> bool:
        return self.reachable and self.running < self.concurrency

    @property
    def load(self) -> float:
        return self.running / self.concurrency


def choose_engine(states: list[EngineState]) -> EngineState | None:
    """The engine for the next build, or None while every reachable engine is full."""
    ranked = [
        (not s.has_base, not s.has_previous, s.load, s.running, index, s) for index, s in enumerate(states) if s.free
    ]
    return min(ranked, key=lambda row: row[:5])[-1] if ranked else None
