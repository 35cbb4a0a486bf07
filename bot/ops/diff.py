"""`dcs diff NAME [BUILD_A BUILD_B]`: what changed inside an image between two builds (their package inventories).

Without builds: the promoted build against the open candidate; with no candidate, the build promoted before
against the promoted one (what the last promotion changed).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.inventory_diff import InventoryDiff, diff_inventories
from bot.errors import InvalidInput, NotFound
from bot.ops.release import promoted_build
from bot.services import Services


@dataclass(frozen=True)
class BuildChanges:
    image: str
    old_build: int
    new_build: int
    diff: InventoryDiff


def default_pair(services: Services, name: str) -> tuple[int, int]:
    store = services.store
    promoted = promoted_build(services, name)
    candidate = store.open_release(name)
    if promoted is not None and candidate is not None and candidate.build_id != promoted.id:
        return promoted.id, candidate.build_id
    history = store.promotions(name, limit=10)
    if promoted is not None:
        earlier = next((p.build_id for p in history if p.build_id != promoted.id), None)
        if earlier is None:
            earlier = next((b.id for b in store.builds(name, status="succeeded", limit=20) if b.id < promoted.id), None)
        if earlier is not None:
            return earlier, promoted.id
    raise NotFound(
        f"{name} has no two builds to compare yet (a promoted build and a candidate, or two promoted builds). "
        f"Give two build ids: `dcs diff {name} BUILD_A BUILD_B`."
    )


def build_changes(services: Services, name: str, old: int | None = None, new: int | None = None) -> BuildChanges:
    store = services.store
    store.get_image(name)  # NotFound with the known names
    if (old is None) != (new is None):
        raise InvalidInput("BUILD_B", None, "is missing", "Give two build ids, or none for promoted vs candidate.")
    if old is None or new is None:
        old, new = default_pair(services, name)
    inventories = []
    for build_id in (old, new):
        build = store.get_build(build_id)
        if build.image != name:
            raise InvalidInput(
                "BUILD", build_id, f"is a build of {build.image}, not {name}", "Give builds of one image."
            )
        inventory = store.inventory(build_id)
        if inventory is None:
            raise NotFound(
                f"Build #{build_id} of {name} has no package inventory (it failed, or it was built before "
                "inventories were recorded); rebuild it to compare."
            )
        inventories.append(inventory)
    return BuildChanges(name, old, new, diff_inventories(inventories[0], inventories[1]))


def changes_since(services: Services, previous: int | None, build_id: int) -> InventoryDiff | None:
    """What `build_id` changed against `previous` (None when either has no inventory): for notices."""
    if previous is None or previous == build_id:
        return None
    old, new = services.store.inventory(previous), services.store.inventory(build_id)
    return diff_inventories(old, new) if old is not None and new is not None else None
