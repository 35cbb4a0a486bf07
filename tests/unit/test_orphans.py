"""Which of the clusters carrying one launch's tag the launch keeps, and which the bot terminates."""

from __future__ import annotations

import pytest

from bot.domain.orphans import keep_one


def cluster(cluster_id: str, state: str, start_time: int | None) -> dict[str, object]:
    return {"cluster_id": cluster_id, "state": state, "start_time": start_time}


@pytest.mark.parametrize(
    ("clusters", "kept", "terminated", "stopped"),
    [
        ([cluster("a", "PENDING", 5)], "a", [], []),
        ([cluster("new", "PENDING", 9), cluster("old", "RUNNING", 1)], "old", ["new"], []),
        ([cluster("dead", "TERMINATED", 1), cluster("live", "PENDING", 9)], "live", [], ["dead"]),
        ([cluster("x", "PENDING", 3), cluster("y", "PENDING", 3), cluster("z", "ERROR", 1)], "x", ["y"], ["z"]),
        ([cluster("no-time", "PENDING", None), cluster("timed", "PENDING", 7)], "timed", ["no-time"], []),
        ([cluster("t1", "TERMINATED", 2), cluster("t2", "TERMINATING", 1)], "t2", [], ["t1"]),
    ],
)
def test_keep_one(clusters: list[dict[str, object]], kept: str, terminated: list[str], stopped: list[str]) -> None:
    survivor = keep_one(clusters)
    assert survivor.keep["cluster_id"] == kept
    assert [c["cluster_id"] for c in survivor.terminate] == terminated
    assert [c["cluster_id"] for c in survivor.stopped] == stopped
    assert survivor.duplicates == len(clusters) - 1


def test_keep_one_needs_a_cluster() -> None:
    with pytest.raises(ValueError, match="at least one"):
        keep_one([])
