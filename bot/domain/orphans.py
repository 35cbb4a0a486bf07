"""Clusters that carry one launch's tag: which one the launch keeps, and which the bot must terminate (pure).

Exactly one cluster per launch is the rule; more than one appear only when a create was sent twice (an older
version, the SDK's own retries before the bot stopped them). The launch keeps a live cluster over a stopped one,
then the oldest (it has been starting longest); the other live ones are terminated. Stopped ones cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STOPPED_STATES = frozenset({"TERMINATING", "TERMINATED", "ERROR"})


@dataclass(frozen=True)
class Survivor:
    keep: Mapping[str, Any]
    terminate: tuple[Mapping[str, Any], ...]  # live duplicates
    stopped: tuple[Mapping[str, Any], ...]  # duplicates that are already stopping or stopped

    @property
    def duplicates(self) -> int:
        return len(self.terminate) + len(self.stopped)


def keep_one(clusters: Iterable[Mapping[str, Any]]) -> Survivor:
    """The cluster to keep and what to do with the others (`clusters` must not be empty)."""

    def order(cluster: Mapping[str, Any]) -> tuple[bool, float, str]:
        started = cluster.get("start_time")
        return (
            cluster.get("state") in STOPPED_STATES,
            float(started) if isinstance(started, int | float) else math.inf,
            str(cluster.get("cluster_id", "")),
        )

    ranked = sorted(clusters, key=order)
    if not ranked:
        raise ValueError("keep_one needs at least one cluster")
    keep, rest = ranked[0], ranked[1:]
    return Survivor(
        keep,
        tuple(c for c in rest if c.get("state") not in STOPPED_STATES),
        tuple(c for c in rest if c.get("state") in STOPPED_STATES),
    )
