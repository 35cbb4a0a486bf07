"""enableDcs approvals: who may decide (a table), and the atomic transition that makes one PATCH."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.clock import stamp as _stamp
from bot.domain.records import ApprovalRequest
from bot.ops.approvals import refusal
from bot.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADMINS = frozenset({"UADMIN1", "UADMIN2"})


def req(
    status: str = "pending",
    requester: str = "UADMIN1",
    expires: timedelta = timedelta(hours=1),
    decided_by: str | None = None,
) -> ApprovalRequest:
    return ApprovalRequest(
        1,
        "enableDcs",
        requester,
        status,
        decided_by=decided_by,
        expires_at=_stamp(NOW + expires),
        created_at=_stamp(NOW - timedelta(hours=1)),
    )


@pytest.mark.parametrize(
    ("request_", "actor", "expected"),
    [
        (req(), "UADMIN2", None),
        (req(requester="UBUILDER"), "UADMIN1", None),
        (req(), "UADMIN1", "another admin"),  # four eyes: not the requester
        (req(requester="UBUILDER"), "UBUILDER", "Only a bot admin"),  # a requester who is no admin
        (req(), "UNOBODY", "Only a bot admin"),
        (req(status="approved", decided_by="UADMIN2"), "UADMIN2", "already approved by <@UADMIN2>"),
        (req(status="denied", decided_by="UADMIN2"), "UADMIN2", "already denied"),
        (req(status="approving"), "UADMIN2", "right now"),
        (req(expires=timedelta(seconds=0)), "UADMIN2", "expired"),
        (req(expires=-timedelta(hours=1)), "UADMIN2", "expired"),
        (req(status="approved"), "UNOBODY", "Only a bot admin"),  # a non-admin learns nothing more
    ],
)
def test_refusal(request_: ApprovalRequest, actor: str, expected: str | None) -> None:
    reason = refusal(request_, actor, ADMINS, NOW)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_request_expires_after_its_deadline_not_before() -> None:
    request = req(expires=timedelta(hours=24))
    assert not request.expired(NOW + timedelta(hours=23, minutes=59))
    assert request.expired(NOW + timedelta(hours=24))


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(str(tmp_path / "dcs.db"))
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO approvals (kind, requester, status, expires_at, created_at) VALUES"
            " ('enableDcs', 'UADMIN1', 'pending', ?, ?)",
            (_stamp(NOW + timedelta(hours=24)), _stamp(NOW)),
        )
    return store


def test_only_one_of_many_concurrent_transitions_wins(store: Store) -> None:
    wins: list[str] = []
    barrier = threading.Barrier(12)

    def click(actor: str) -> None:
        barrier.wait()
        if store.transition_approval(1, to="approving", frm=("pending",), at=_stamp(NOW), actor=actor, unexpired=True):
            wins.append(actor)

    threads = [threading.Thread(target=click, args=(f"UADMIN{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.get_approval(1).decided_by == wins[0]


def test_an_expired_request_cannot_be_taken(store: Store) -> None:
    later = NOW + timedelta(hours=25)
    assert not store.transition_approval(
        1, to="approving", frm=("pending",), at=_stamp(later), actor="UADMIN2", unexpired=True
    )
    assert store.get_approval(1).status == "pending"
