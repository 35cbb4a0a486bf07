"""Catalog operations: images and registries, the catalog file (the Dockerfile an image renders to is
bot/ops/render.py: it needs the build plan and the builder, which these operations do not).

Each one validates (every problem named with its field), writes, audits with the actor, and tells the
catalog listeners (the scheduler) when images changed. Results are the domain's own dataclasses.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.bases import BaseInfo
from bot.domain.build_settings import BuildSettings, check_layers
from bot.domain.catalog import (
    Catalog,
    ImageSpec,
    RegistrySpec,
    check_registry_known,
    check_registry_users,
    dump_catalog,
    image_from_dict,
    parse_catalog,
    registry_from_dict,
    registry_migration,
)
from bot.domain.catalog import update_image as apply_changes
from bot.domain.catalog_search import IMAGES_PER_PAGE, ImagePage, SearchIndex, search_terms
from bot.domain.cron import upcoming
from bot.domain.inventory import PackageInventory
from bot.domain.records import Build, ImageCheck, ImageStatus, Release
from bot.domain.secret_refs import check_registry_secret
from bot.errors import InvalidInput, InvalidInputs
from bot.ops.catalog_files import FileReader, no_files, read_sources, store_sources
from bot.ops.release import promoted_build
from bot.services import Services

log = logging.getLogger(__name__)


def add_image(services: Services, data: Mapping[str, Any], *, actor: str) -> ImageSpec:
    """Validate and store a new image; every problem is raised with the field it belongs to."""
    store = services.store
    try:
        spec = image_from_dict(data)
        if spec.content.local_paths():
            raise InvalidInput(
                "requirements",
                spec.content.local_paths(),
                "are files next to a catalog file",
                "Name them in the catalog file and import it: `dcs catalog import catalog.toml`.",
            )
        check_registry_known(spec, store.list_registries())
        check_build_layers(services, store.catalog_build_settings(), spec)
        store.add_image(spec)
    except (InvalidInput, InvalidInputs) as exc:
        store.audit(
            actor=actor,
            action="image.add",
            target=str(data.get("name") or ""),
            outcome="invalid",
            detail=services.redactor(exc.message)[:500],
        )
        raise
    store.audit(actor=actor, action="image.add", target=spec.name, outcome="ok", detail=spec.base)
    log.info("image %s added by %s", spec.name, actor)
    services.catalog_changed()
    return spec


def update_image(services: Services, name: str, changes: Mapping[str, Any], *, actor: str) -> ImageSpec:
    """Change fields of an image (given lists replace the old ones) and re-validate the whole definition."""
    if not changes:
        raise InvalidInput(
            "options", "", "are empty", "Give at least one option to change, e.g. --pip 'pandas==2.2.3'."
        )
    store = services.store
    spec = apply_changes(store.get_image(name), changes)
    check_registry_known(spec, store.list_registries())
    check_build_layers(services, store.catalog_build_settings(), spec)
    store.add_image(spec, replace=True)
    store.audit(actor=actor, action="image.update", target=spec.name, outcome="ok", detail=",".join(sorted(changes)))
    services.catalog_changed()
    return spec


def check_build_layers(services: Services, catalog_build: BuildSettings, spec: ImageSpec) -> None:
    """The rules across levels (a password needs its index, `host` needs the operator's opt-in)."""
    check_layers(services.build_settings, ("build.", catalog_build), (f"image[{spec.name}].build.", spec.build))


def remove_image(services: Services, name: str, *, actor: str) -> None:
    """Remove a definition; its builds stay in the history."""
    services.store.remove_image(name)
    services.store.audit(actor=actor, action="image.remove", target=name, outcome="ok")
    services.catalog_changed()


@dataclass(frozen=True)
class ImageDetails:
    """`image show`: the definition, what its base is, the registry it pushes with, recent builds."""

    spec: ImageSpec
    base: BaseInfo
    registry: RegistrySpec | None
    builds: list[Build]
    inventory: PackageInventory | None = None  # what the last successful build contains
    inventory_build: int | None = None
    check: ImageCheck | None = None  # the last time a rebuild run looked at it
    next_runs: list[datetime] = field(default_factory=list)  # its own cron's next three fire times
    promoted: Build | None = None  # what the moving tag points to
    candidate: Release | None = None  # a pushed build on its way there (bot/ops/release.py)


def image_details(services: Services, name: str, *, builds: int = 5) -> ImageDetails:
    store = services.store
    spec = store.get_image(name)
    last = store.last_build(name, status="succeeded")
    inventory = store.inventory(last.id) if last is not None else None
    return ImageDetails(
        spec,
        spec.base_info,
        services.push_registry(spec),
        store.builds(name, limit=builds),
        inventory,
        last.id if inventory is not None and last is not None else None,
        store.image_check(name),
        upcoming(spec.schedule, datetime.now(UTC)),
        promoted_build(services, name),
        store.open_release(name),
    )


def image_overview(services: Services) -> list[ImageStatus]:
    """Every image with its last build and its last successful build (cached until the database changes)."""
    return services.store.image_overview()


_indexes: weakref.WeakKeyDictionary[object, tuple[str, SearchIndex]] = weakref.WeakKeyDictionary()  # by store


def _search_index(services: Services) -> SearchIndex:
    """The search index of the catalog's current version (rebuilt when an image is added, changed or removed)."""
    fingerprint, specs = services.store.catalog_snapshot()
    known = _indexes.get(services.store)
    if known is None or known[0] != fingerprint:
        known = (fingerprint, SearchIndex(specs, known[1] if known is not None else None))
        _indexes[services.store] = known
    return known[1]


def image_page(services: Services, query: str = "", offset: int = 0, size: int = IMAGES_PER_PAGE) -> ImagePage:
    """The images matching `query` (every word, see bot/domain/catalog_search.py), `size` from `offset`.

    The catalog is read from the store's spec cache and filtered in memory; build states are looked up for
    the page only, so the cost does not grow with the build history. A page is kept until the catalog or
    what the page shows of builds, checks and releases changes (the store's revisions, moved by every
    writer): while nothing changed, a request costs at most one read of two counters, and none while the
    last read is under `MARKER_SECONDS` old (see `page_marker`).
    """
    terms = search_terms(query)
    store = services.store
    marker = store.page_marker()  # before the reads: a write in between shows on the next request
    if marker is None:
        return _image_page(services, terms, offset, size)
    key = (" ".join(terms), offset, size)
    known = _pages.get(store)
    if known is not None and known.marker == marker and key in known.pages:
        known.confirmed = time.monotonic()
        return known.pages[key]
    if not _page_lock.acquire(blocking=False):
        # Another request is reading the changed catalog right now. Rather than queue behind it, answer with
        # the page as it was when last confirmed current, if that was under STALE_SECONDS ago.
        if known is not None and key in known.pages and time.monotonic() - known.confirmed < STALE_SECONDS:
            return known.pages[key]
        _page_lock.acquire()
    try:
        known = _pages.get(store)
        if known is not None and known.marker == marker and key in known.pages:
            return known.pages[key]
        page = _image_page(services, terms, offset, size)
        if known is None or known.marker != marker:
            known = _pages[store] = _Pages(marker)
        if len(known.pages) < MAX_KEPT_PAGES:
            known.pages[key] = page
        known.confirmed = time.monotonic()
        return page
    finally:
        _page_lock.release()


@dataclass
class _Pages:
    """The pages read at one state of the store (its revisions), and when that state was last seen current."""

    marker: tuple[int, int]
    pages: dict[tuple[str, int, int], ImagePage] = field(default_factory=dict)  # by (query, offset, size)
    confirmed: float = 0.0  # time.monotonic()


STALE_SECONDS = 1.0
_page_lock = threading.Lock()
MAX_KEPT_PAGES = 256  # per catalog state: distinct (query, page) pairs asked for since it last changed
_pages: weakref.WeakKeyDictionary[object, _Pages] = weakref.WeakKeyDictionary()


def _image_page(services: Services, terms: list[str], offset: int, size: int) -> ImagePage:
    if terms:
        names = _search_index(services).find(terms)
    else:  # the whole catalog (the common `/dcs images`): no search index to bring up to date
        names = [spec.name for spec in services.store.catalog_snapshot()[1]]
    offset = min(max(offset, 0), max(len(names) - 1, 0))
    offset -= offset % size  # pages start at multiples of the page size
    rows = services.store.image_statuses(names[offset : offset + size])
    return ImagePage(rows, len(names), offset, " ".join(terms), size)


# ---------------------------------------------------------------- registries


@dataclass(frozen=True)
class RegistryEntry:
    spec: RegistrySpec
    password_set: bool  # the variable the entry names holds a value in the bot's environment
    migration: str | None = None  # stored before the DCS_SECRET_ rule: what to rename (its secret is not read)


def add_registry(services: Services, data: Mapping[str, Any], *, actor: str) -> RegistryEntry:
    """Add or replace a registry entry (it names the password variable; the password is never stored)."""
    spec = registry_from_dict(data)
    _check_cluster_secret(services, spec, "cluster_password_secret")
    check_registry_users(spec, services.store.list_images())
    services.store.add_registry(spec, replace=True)
    services.store.audit(actor=actor, action="registry.add", target=spec.name, outcome="ok")
    return _entry(services, spec)


def _check_cluster_secret(services: Services, spec: RegistrySpec, field: str) -> None:
    if spec.cluster_password_secret:
        check_registry_secret(spec.cluster_password_secret, field, services.config.registry_secret_scopes)


def list_registries(services: Services) -> list[RegistryEntry]:
    return [_entry(services, r) for r in services.store.list_registries()]


def remove_registry(services: Services, name: str, *, actor: str) -> None:
    services.store.remove_registry(name)
    services.store.audit(actor=actor, action="registry.remove", target=name, outcome="ok")


def _entry(services: Services, spec: RegistrySpec) -> RegistryEntry:
    if spec.legacy_password_env:
        return RegistryEntry(spec, False, registry_migration(spec))
    return RegistryEntry(spec, bool(spec.password_env and services.config.secret(spec.password_env)))


def registry_migrations(services: Services) -> list[str]:
    """One message per stored registry entry that names a password variable the bot no longer reads."""
    return [registry_migration(r) for r in services.store.list_registries() if r.legacy_password_env]


# ---------------------------------------------------------------- the catalog file


@dataclass(frozen=True)
class ImportResult:
    added: list[str]
    updated: list[str]
    removed: list[str]
    registries: list[str]


def import_catalog(
    services: Services, text: str, *, source: str, prune: bool, actor: str, files: FileReader = no_files
) -> ImportResult:
    """Apply a TOML catalog: everything is validated before anything is written, and everything is written in
    one transaction (with its audit row): a process killed half-way leaves the catalog as it was.

    `files` reads the files the catalog names (requirements, init scripts, …) next to the catalog file."""
    catalog = parse_catalog(text, source=source)
    store = services.store
    catalog_build = catalog.build if (prune or not catalog.build.empty) else store.catalog_build_settings()
    problems: list[InvalidInput] = []
    images: list[ImageSpec] = []
    blobs: dict[str, bytes] = {}
    for spec in catalog.images:
        try:
            check_build_layers(services, catalog_build, spec)
            spec, read = read_sources(spec, files, f"image[{spec.name}].")
            blobs |= read
        except InvalidInputs as exc:
            problems.extend(exc.problems)
        except InvalidInput as exc:
            problems.append(exc)
        images.append(spec)
    catalog = replace(catalog, images=tuple(images))
    if problems:
        raise problems[0] if len(problems) == 1 else InvalidInputs(problems)
    removed: list[str] = []
    with store.write_transaction():
        known = set(store.image_names())
        in_file = {s.name for s in catalog.images}
        kept = [s for s in store.list_images() if s.name not in in_file and not prune]
        for i, reg in enumerate(catalog.registries):  # images already stored that name it stay on its host
            _check_cluster_secret(services, reg, f"registry[{i}].cluster_password_secret")
            check_registry_users(reg, kept)
        if prune or not catalog.build.empty:
            store.set_catalog_build_settings(catalog.build)
        for reg in catalog.registries:
            store.add_registry(reg, replace=True)
        store_sources(services, blobs)
        for spec in catalog.images:
            store.add_image(spec, replace=True)
        if prune:
            names = {s.name for s in catalog.images}
            for name in sorted(known - names):
                store.remove_image(name)
                removed.append(name)
            reg_names = {r.name for r in catalog.registries}
            for reg in store.list_registries():
                if reg.name not in reg_names:
                    store.remove_registry(reg.name)
                    removed.append(f"registry {reg.name}")
        store.prune_catalog_files()
        added = [s.name for s in catalog.images if s.name not in known]
        updated = [s.name for s in catalog.images if s.name in known]
        store.audit(
            actor=actor,
            action="catalog.import",
            target=source,
            outcome="ok",
            detail=f"added={len(added)} updated={len(updated)} removed={len(removed)}",
        )
    services.catalog_changed()
    return ImportResult(added, updated, removed, [r.name for r in catalog.registries])


def export_catalog(services: Services) -> str:
    """The canonical TOML text of the whole catalog (export → import → export is byte-identical)."""
    store = services.store
    return dump_catalog(
        Catalog(
            images=tuple(store.list_images()),
            registries=tuple(store.list_registries()),
            build=store.catalog_build_settings(),
        )
    )
