"""New LTS tags: the scheduled check lists each -LTS base repository's tags once (registry `tags/list`, no pull
spent) and proposes moving images to a newer LTS of the same flavour; `upgrade` makes the upgraded catalog
entry (same spec, new base, a name the user chose), which then builds through the same release gate.

A proposal is made once per image and new tag (remembered in the store); the existing image is never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.domain.catalog import ImageSpec, image_to_dict
from bot.domain.lts import LtsProposal, propose
from bot.errors import DcsError, NotFound
from bot.ops.catalog import add_image
from bot.services import Services

log = logging.getLogger(__name__)


def check_new_lts(services: Services, specs: Iterable[ImageSpec]) -> list[LtsProposal]:
    """Proposals not made before, for images on -LTS bases; one tags/list per distinct base repository."""
    tags_of: dict[str, list[str]] = {}
    found = []
    for spec in specs:
        if not spec.base_info.lts:
            continue
        ref = spec.base_ref
        repo = f"{ref.domain}/{ref.path}"
        if repo not in tags_of:
            try:
                tags_of[repo] = services.registry.list_tags(ref, services.credentials_for_ref(ref))
            except DcsError as exc:
                log.warning("tags of %s not listed: %s", repo, exc.message)
                tags_of[repo] = []
        proposal = propose(spec, tags_of[repo])
        if proposal is not None and services.store.alert_state(proposal.key)[0] != proposal.new_tag:
            found.append(proposal)
    return found


def remember(services: Services, proposals: Iterable[LtsProposal]) -> None:
    """Proposals that were delivered are not made again (until a still newer tag appears)."""
    for p in proposals:
        services.store.set_alert_state(p.key, p.new_tag, p.new_base)


def pending_proposal(services: Services, image: str) -> LtsProposal:
    """The proposal made for `image` (from the store: a button only names the image)."""
    spec = services.store.get_image(image)
    new_tag, _ = services.store.alert_state(f"lts:{image}")
    proposal = propose(spec, [new_tag]) if new_tag else None
    if proposal is None:
        raise NotFound(f"No LTS upgrade is proposed for {image} (its base is {spec.base}).")
    return proposal


def upgrade(services: Services, image: str, name: str, *, actor: str) -> ImageSpec:
    """Add the upgraded entry `name`: `image`'s spec on the proposed base. Validated like any new image."""
    proposal = pending_proposal(services, image)
    data = image_to_dict(services.store.get_image(image)) | {"name": name, "base": proposal.new_base}
    spec = add_image(services, data, actor=actor)
    services.store.audit(
        actor=actor, action="lts-upgrade", target=f"{image}→{name}", outcome="ok", detail=proposal.new_base
    )
    return spec
