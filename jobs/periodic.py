"""A sweep run every N seconds on a daemon thread until stopped (failures logged, the loop goes on)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def every(seconds: float, name: str, sweep: Callable[[], Any]) -> Callable[[], None]:
    """Start `sweep` every `seconds`; returns the stop function."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                sweep()
            except Exception:
                log.exception("%s failed", name)

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop.set
