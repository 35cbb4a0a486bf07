"""Approval of release candidates: the second person's yes moves the moving tag; a no ends the candidate; the
deadline expires it. Role rules are bot/domain/release.py `may_approve` (never the requester alone).

Exactly once: one vote per person per candidate (a primary key), the candidate's state moves by guarded
UPDATEs, and the promotion itself claims the image's current promotion (bot/ops/release.py). Audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.catalog import ImageSpec
from bot.domain.clock import parse_time, stamp
from bot.domain.records import Release
from bot.domain.release import may_approve
from bot.errors import DcsError, NotAllowed
from bot.ops.release import TagMove, promote_build
from bot.services import Services


@dataclass(frozen=True)
class VoteResult:
    release: Release
    counted: bool  # False: this person had voted already (a double click)
    approvals: int  # yes votes so far
    move: TagMove | None = None  # set when this vote promoted the candidate
    note: str = ""


def _waiting(services: Services, build_id: int, user: str) -> tuple[Release, ImageSpec]:
    store = services.store
    release = store.release(build_id)
    spec = store.get_image(release.image)
    ok, why = may_approve(spec.release, user, requester=release.requester, admins=services.config.admins)
    if not ok:
        store.audit(
            actor=user, action="release-vote", target=f"{release.image}#{build_id}", outcome="refused", detail=why
        )
        raise NotAllowed(f"You cannot decide on {release.image} build #{build_id}: {why}.")
    return release, spec


def approve(services: Services, build_id: int, user: str) -> VoteResult:
    store = services.store
    release, spec = _waiting(services, build_id, user)
    if release.status != "waiting":
        return VoteResult(release, False, _yes(services, build_id), note=_decided(release))
    if _past(release):
        expire(services, build_id)
        return VoteResult(store.release(build_id), False, _yes(services, build_id), note="the deadline has passed")
    counted = store.vote(build_id, user, "approve")
    yes = _yes(services, build_id)
    if counted:
        store.audit(
            actor=user,
            action="release-vote",
            target=f"{release.image}#{build_id}",
            outcome="approve",
            detail=f"{yes}/{release.approvals_needed}",
        )
    move = None
    if counted and yes >= release.approvals_needed:  # the vote that completes the count promotes, once
        move = promote_build(services, spec, store.get_build(build_id), actor=user, how="approval")
    after = store.release(build_id)
    _tell(services, after)
    return VoteResult(after, counted, yes, move, "" if counted else "you had approved already")


def reject(services: Services, build_id: int, user: str) -> VoteResult:
    store = services.store
    release, _ = _waiting(services, build_id, user)
    counted = store.vote(build_id, user, "reject")
    if counted and store.move_release(build_id, to="rejected", frm=("waiting",), reason=f"rejected by {user}"):
        store.audit(actor=user, action="release-vote", target=f"{release.image}#{build_id}", outcome="reject")
        after = store.release(build_id)
        _tell(services, after)
        return VoteResult(after, True, _yes(services, build_id))
    return VoteResult(store.release(build_id), False, _yes(services, build_id), note=_decided(store.release(build_id)))


def expire(services: Services, build_id: int) -> bool:
    store = services.store
    release = store.release(build_id)
    if store.move_release(build_id, to="expired", frm=("waiting",), reason="no decision before the deadline"):
        store.audit(actor=None, action="release-vote", target=f"{release.image}#{build_id}", outcome="expired")
        _tell(services, store.release(build_id))
        return True
    return False


def expire_due(services: Services, now: datetime | None = None) -> list[int]:
    """Candidates whose deadline passed: expired (the moving tag stays where it was)."""
    moment = stamp(now or datetime.now(UTC))
    return [b for b in services.store.releases_expired(moment) if expire(services, b)]


def _yes(services: Services, build_id: int) -> int:
    return sum(1 for _, vote in services.store.votes(build_id) if vote == "approve")


def _past(release: Release) -> bool:
    deadline = parse_time(release.expires_at)
    return deadline is not None and datetime.now(UTC) >= deadline


def _decided(release: Release) -> str:
    return f"build #{release.build_id} is {release.status} already" + (f" ({release.reason})" if release.reason else "")


def _tell(services: Services, release: Release) -> None:
    try:
        services.notifier.release_changed(release)
    except DcsError:
        pass  # the store has the decision; the message catches up with the next change
