"""The build engines (DCS_ENGINES): several Docker engines, each with a number of builds it runs at once.

A build takes a lease on one engine for its whole life (pull, build, doctor, push all happen where its layers
are). `lease()` picks the engine by `bot/domain/engine_choice.py`: reachable, a free slot, the base already
there, the previous build's layers there, the least loaded. Until a slot frees up the build waits (and says so);
the engine is chosen only when the build starts, so builds that were waiting never stick to an engine that went
away meanwhile: they go to one that answers.

An engine that does not answer (its first contact or a ping fails) is skipped and shown as unreachable by
`health()` (the bot's /healthz); it is tried again after `recheck_seconds`. A build that lost its connection
makes the pool ping that engine afresh before the next build goes there. Without DCS_ENGINES there is one
engine, DOCKER_HOST, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from bot.clients.engine import DockerEngine, engine_kwargs
from bot.config import Config, EngineSpec
from bot.domain.engine_choice import EngineState, choose_engine
from bot.errors import EngineUnavailable

log = logging.getLogger(__name__)

RECHECK_SECONDS = 15.0
PING_TIMEOUT = 3.0
Affinity = Callable[[DockerEngine], tuple[bool, bool]]  # (has the base, has the previous build)


@dataclass
class _Slot:
    spec: EngineSpec
    engine: DockerEngine | None = None
    running: int = 0
    down: str | None = "not contacted yet"  # why it does not answer; None while it does
    checked: float | None = None
    check_lock: threading.Lock = field(default_factory=threading.Lock)


class EnginePool:
    def __init__(
        self,
        specs: Sequence[EngineSpec],
        connect: Callable[[EngineSpec], DockerEngine],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        ping_timeout: float = PING_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not specs:
            raise ValueError("an engine pool needs at least one engine")
        self._slots = [_Slot(spec) for spec in specs]
        self._connect = connect
        self.recheck_seconds = recheck_seconds
        self.ping_timeout = ping_timeout
        self._clock = clock
        self._cond = threading.Condition()

    @classmethod
    def from_config(cls, config: Config) -> EnginePool:
        """DCS_ENGINES, or else one engine from the environment (DOCKER_HOST and Docker's TLS variables)."""
        if config.engines:
            return cls(
                config.engines,
                lambda spec: DockerEngine(connection=engine_kwargs(spec.url, spec.certs), name=spec.name),
            )
        env = dict(config.environ)
        if config.docker_host:
            env["DOCKER_HOST"] = config.docker_host
        url = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        # One engine: the worker pool alone bounds how many builds run at once, as before DCS_ENGINES.
        return cls([EngineSpec("default", url, concurrency=32)], lambda _: DockerEngine(env))

    @property
    def names(self) -> list[str]:
        return [slot.spec.name for slot in self._slots]

    # ------------------------------------------------------------ reachability
    def _check(self, slot: _Slot, *, fresh: bool = False) -> bool:
        """Whether the engine answers (cached for `recheck_seconds`); connects on first use."""
        with slot.check_lock:
            now = self._clock()
            if not fresh and slot.checked is not None and now - slot.checked < self.recheck_seconds:
                return slot.down is None
            try:
                if slot.engine is None:
                    slot.engine = self._connect(slot.spec)
                    answered = True
                else:
                    answered = slot.engine.ping(timeout=self.ping_timeout)
                reason = None if answered else f"no answer within {self.ping_timeout:g} s"
            except EngineUnavailable as exc:
                reason = exc.message
            first, was_down = slot.checked is None, slot.down is not None
            slot.down, slot.checked = reason, self._clock()
        if reason and (first or not was_down):
            log.warning("build engine %s is unreachable: %s", slot.spec.name, reason)
        elif not reason and was_down and not first:
            log.info("build engine %s answers again", slot.spec.name)
        return reason is None

    def suspect(self, name: str, reason: str) -> None:
        """A call on this engine lost its connection: ping it afresh before the next build goes there (one
        broken connection does not make an engine unreachable; a failed ping does)."""
        for slot in self._slots:
            if slot.spec.name == name:
                with slot.check_lock:
                    slot.checked = None
                log.info("build engine %s lost a connection (%s); checking it again", name, reason)

    def default(self) -> DockerEngine:
        """The first engine that answers (commands that need just an engine: doctor, a local base)."""
        for slot in self._slots:
            if self._check(slot) and slot.engine is not None:
                return slot.engine
        raise self._none_answers()

    def answering(self) -> Iterator[DockerEngine]:
        """The engines that answer, in DCS_ENGINES order (connected on first use; the first may raise none)."""
        for slot in self._slots:
            if self._check(slot) and slot.engine is not None:
                yield slot.engine

    def _none_answers(self) -> EngineUnavailable:
        if len(self._slots) == 1:
            return EngineUnavailable(self._slots[0].down or "The Docker engine does not answer.")
        reasons = "; ".join(f"{s.spec.name}: {s.down}" for s in self._slots)
        return EngineUnavailable(f"No build engine answers ({reasons}). Check DCS_ENGINES and that dockerd runs there.")

    # ------------------------------------------------------------ leases
    @contextmanager
    def lease(
        self,
        affinity: Affinity | None = None,
        *,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[DockerEngine]:
        """Hold a slot on the best engine for the duration of the block (waiting up to `timeout` s for one)."""
        slot = self._acquire(affinity, timeout, on_wait)
        assert slot.engine is not None
        try:
            yield slot.engine
        except EngineUnavailable as exc:
            self.suspect(slot.spec.name, exc.message)
            raise
        finally:
            with self._cond:
                slot.running -= 1
                self._cond.notify_all()

    def _acquire(self, affinity: Affinity | None, timeout: float, on_wait: Callable[[str], None] | None) -> _Slot:
        deadline = self._clock() + timeout
        told = False
        while True:
            with self._cond:
                free = [slot for slot in self._slots if slot.running < slot.spec.concurrency]
            states = {slot.spec.name: self._state(slot, slot in free, affinity) for slot in self._slots}
            with self._cond:
                current = [replace(states[s.spec.name], running=s.running) for s in self._slots]
                choice = choose_engine(current)
                if choice is not None:
                    slot = next(s for s in self._slots if s.spec.name == choice.name)
                    slot.running += 1
                    return slot
                if not any(state.reachable for state in current):
                    raise self._none_answers()
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise EngineUnavailable(
                        f"Every build engine stayed busy for {timeout:g} s ({self._load_text(current)}). "
                        "Try again later, or add engines or concurrency to DCS_ENGINES."
                    )
                if on_wait is not None and not told:
                    on_wait(f"waiting for a free build engine ({self._load_text(current)})")
                    told = True
                self._cond.wait(min(remaining, self.recheck_seconds))

    def _state(self, slot: _Slot, free: bool, affinity: Affinity | None) -> EngineState:
        spec = slot.spec
        reachable = self._check(slot) if free else slot.down is None
        has_base = has_previous = False
        if reachable and free and affinity is not None and len(self._slots) > 1 and slot.engine is not None:
            try:
                has_base, has_previous = affinity(slot.engine)
            except EngineUnavailable as exc:
                self.suspect(spec.name, exc.message)
                reachable = self._check(slot)
        return EngineState(spec.name, spec.concurrency, slot.running, reachable, has_base, has_previous)

    @staticmethod
    def _load_text(states: list[EngineState]) -> str:
        return ", ".join(
            f"{s.name} {s.running}/{s.concurrency}" if s.reachable else f"{s.name} unreachable" for s in states
        )

    # ------------------------------------------------------------ health
    def health(self) -> list[dict[str, Any]]:
        """Per engine: name, url, reachable, running builds, concurrency, and why it is unreachable."""
        rows = []
        for slot in self._slots:
            reachable = self._check(slot)
            with self._cond:
                running = slot.running
            row: dict[str, Any] = {
                "name": slot.spec.name,
                "url": slot.spec.url,
                "reachable": reachable,
                "running": running,
                "concurrency": slot.spec.concurrency,
            }
            if not reachable:
                row["error"] = slot.down
            rows.append(row)
        return rows
