"""Promote, don't overwrite: a pushed build is a candidate until its release policy is met; then its manifest is
stored under the moving tag ("promote"), and `rollback` moves the tag back to the build promoted before.

Moving a tag is a manifest PUT of the exact manifest bytes the immutable tag serves (no rebuild, no layers),
checked afterwards with a HEAD: the moving tag's digest is always one a build produced. Every promotion and
rollback happens once under double clicks and concurrent processes (a claim keyed by the image's current
promotion) and is audited. Who may promote: the CLI operator, admins, and the policy's approvers; for an
"approval" candidate never its requester alone (bot/domain/release.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain.catalog import ImageSpec
from bot.domain.clock import stamp
from bot.domain.records import Build, Promotion, Release, ReleaseStatus
from bot.domain.refs import short_digest
from bot.domain.release import may_approve
from bot.errors import DcsError, NotAllowed, NotFound, RegistryError
from bot.services import Services

log = logging.getLogger(__name__)
CLI_ACTOR = "cli"
ANY_RELEASE_STATE: tuple[ReleaseStatus, ...] = (
    "candidate",
    "canary",
    "waiting",
    "canary_failed",
    "expired",
    "rejected",
    "superseded",
)


@dataclass(frozen=True)
class TagMove:
    """What one promote or rollback did: the moving tag, the digest before and after, the builds."""

    image: str
    tag: str
    build_id: int
    digest: str
    previous_build_id: int | None
    previous_digest: str | None
    how: str
    actor: str | None
    done: bool = True  # False: nothing to do (already there, or a double click)
    note: str = ""


# ---------------------------------------------------------------- reading


def current_promotion(services: Services, name: str) -> Promotion | None:
    return services.store.promoted(name)


def promoted_build(services: Services, name: str) -> Build | None:
    """The build the moving tag points to: the last promotion, else (history from before the gate) the newest
    pushed build that never was a candidate."""
    store = services.store
    promotion = store.promoted(name)
    if promotion is not None:
        return store.get_build(promotion.build_id)
    for build in store.builds(name, status="succeeded", limit=50):
        if build.pushed_digest and store.find_release(build.id) is None:
            return build
    return None


# ---------------------------------------------------------------- a new candidate


def open_candidate(services: Services, spec: ImageSpec, build: Build, digest: str) -> Release:
    """Record the pushed build as the image's candidate (an older open one is superseded)."""
    policy = spec.release
    expires = None
    if policy.needs_approval:
        expires = stamp(datetime.now(UTC) + timedelta(hours=policy.approval_hours))
    return services.store.add_release(
        build_id=build.id,
        image=spec.name,
        digest=digest,
        immutable_tag=build.tags[0] if build.tags else None,
        policy=policy.promote,
        requester=build.requester,
        approvals_needed=policy.approvals if policy.needs_approval else 0,
        expires_at=expires,
    )


# ---------------------------------------------------------------- moving the tag


def move_tag(services: Services, spec: ImageSpec, digest: str) -> str:
    """Store the manifest of `digest` under the image's moving tag; returns the digest the registry serves."""
    registry = services.registry
    credentials = services.credentials(services.push_registry(spec), spec.repository_ref.domain)
    repo = spec.repository_ref
    body, media_type, _ = registry.get_manifest(repo.with_digest(digest), credentials)
    registry.put_manifest(repo.with_tag(spec.tag), body, media_type, credentials)
    served = registry.head_manifest(repo.with_tag(spec.tag), credentials).digest
    if served != digest:
        raise RegistryError(
            f"{spec.repository}:{spec.tag} is served as {served} after the move, not {digest}: another push raced "
            "this one. Run the promote again."
        )
    return served


def check_promoter(services: Services, release: Release | None, spec: ImageSpec, actor: str) -> None:
    """The CLI operator and admins may promote; for an approval candidate, its approvers (never the requester
    alone: they need someone else's vote, bot/ops/gate.py)."""
    if actor == CLI_ACTOR or actor in services.config.admins:
        return
    if release is not None and release.policy == "approval":
        ok, why = may_approve(spec.release, actor, requester=release.requester, admins=services.config.admins)
        if ok:
            return
        raise NotAllowed(f"You cannot promote {spec.name}: {why}.")
    raise NotAllowed(f"Only admins (DCS_ADMINS) may promote {spec.name} by hand.")


def promote(services: Services, name: str, build_id: int, *, actor: str, how: str = "manual") -> TagMove:
    """Move `name`'s moving tag to finished build `build_id` (its pushed digest), for someone allowed to."""
    store = services.store
    spec = store.get_image(name)
    build = store.get_build(build_id)
    if build.image != name or build.status != "succeeded" or not build.pushed_digest:
        raise NotFound(f"Build #{build_id} of {name} was not pushed, so there is nothing to promote.")
    release = store.find_release(build_id)
    check_promoter(services, release, spec, actor)
    return promote_build(services, spec, build, actor=actor, how=how)


def promote_build(services: Services, spec: ImageSpec, build: Build, *, actor: str, how: str) -> TagMove:
    """The move itself (the caller checked the role and the policy). Exactly once; audited."""
    store = services.store
    name, digest = spec.name, build.pushed_digest
    assert digest is not None
    release = store.find_release(build.id)
    current = store.promoted(name)
    before = promoted_build(services, name)
    if current is not None and current.build_id == build.id:
        note = f"{spec.repository}:{spec.tag} already points to build #{build.id}."
        return TagMove(name, spec.tag, build.id, digest, build.id, current.digest, how, actor, False, note)
    # one move per (image, current promotion): a double click, a retry or a second process gets "done already"
    key = f"promote:{name}:{current.id if current else 0}"
    if not store.claim(key, "promote", str(build.id)):
        note = f"Someone else moved {spec.tag} at the same moment (to build #{store.claim_ref(key)})."
        return TagMove(name, spec.tag, build.id, digest, None, None, how, actor, False, note)
    try:
        move_tag(services, spec, digest)
    except DcsError as exc:
        store.audit(actor=actor, action="promote", target=f"{name}#{build.id}", outcome="failed", detail=exc.message)
        _release_claim(services, key)
        raise
    registry = services.push_registry(spec)
    with store.transaction():
        store.add_push(
            build.id,
            registry=registry.name if registry else None,
            repository=spec.repository,
            tag=spec.tag,
            digest=digest,
            verified=True,
        )
        store.add_promotion(image=name, build_id=build.id, tag=spec.tag, digest=digest, how=how, actor=actor)
        if release is not None:
            store.move_release(build.id, to="promoted", frm=ANY_RELEASE_STATE, reason=f"promoted ({how}) by {actor}")
    old = before.pushed_digest if before else None
    store.audit(
        actor=actor,
        action="promote",
        target=f"{name}#{build.id}",
        outcome="succeeded",
        detail=f"{spec.tag}: {short_digest(old)} → {short_digest(digest)} ({how})",
    )
    return TagMove(name, spec.tag, build.id, digest, before.id if before else None, old, how, actor)


def rollback(services: Services, name: str, *, actor: str) -> TagMove:
    """Move the moving tag back to the build promoted before the current one. Exactly once; audited."""
    store = services.store
    spec = store.get_image(name)
    if actor != CLI_ACTOR and actor not in services.config.admins:
        raise NotAllowed(f"Only admins (DCS_ADMINS) may roll back {name}.")
    history = store.promotions(name, limit=50)
    if not history:
        raise NotFound(f"{name} has no promotion to roll back: its moving tag was never moved by the release gate.")
    current = history[0]
    target = next((p for p in history[1:] if p.build_id != current.build_id), None)
    if target is None:
        raise NotFound(
            f"{name} has no earlier promoted build to go back to (only build #{current.build_id} was promoted)."
        )
    key = f"rollback:{name}:{current.id}"
    if not store.claim(key, "rollback", str(target.build_id)):
        return TagMove(
            name,
            spec.tag,
            target.build_id,
            target.digest,
            current.build_id,
            current.digest,
            "rollback",
            actor,
            False,
            f"{name} was already rolled back from build #{current.build_id}.",
        )
    try:
        move_tag(services, spec, target.digest)
    except DcsError as exc:
        store.audit(actor=actor, action="rollback", target=name, outcome="failed", detail=exc.message)
        _release_claim(services, key)
        raise
    registry = services.push_registry(spec)
    with store.transaction():
        for p in history:
            if p.id == target.id:
                break
            store.undo_promotion(p.id)
        store.add_push(
            target.build_id,
            registry=registry.name if registry else None,
            repository=spec.repository,
            tag=spec.tag,
            digest=target.digest,
            verified=True,
        )
    store.audit(
        actor=actor,
        action="rollback",
        target=f"{name}#{target.build_id}",
        outcome="succeeded",
        detail=f"{spec.tag}: build #{current.build_id} {short_digest(current.digest)} → build #{target.build_id} "
        f"{short_digest(target.digest)}",
    )
    return TagMove(name, spec.tag, target.build_id, target.digest, current.build_id, current.digest, "rollback", actor)


def _release_claim(services: Services, key: str) -> None:
    """A move that failed may be tried again: its claim goes (the failure is audited)."""
    services.store.drop_claim(key)
