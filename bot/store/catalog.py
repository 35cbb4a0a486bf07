"""The catalog tables: image definitions and registry entries (specs as JSON, validated when written).

Registries keep the NAME of the variable holding a password, never the password.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass, field

from bot.domain.build_settings import NO_SETTINGS, BuildSettings, settings_from_dict
from bot.domain.catalog import (
    ImageSpec,
    RegistrySpec,
    image_from_stored,
    image_to_dict,
    registry_from_dict,
    registry_to_dict,
)
from bot.domain.clock import utcnow
from bot.domain.records import Build, ImageCheck, ImageStatus
from bot.errors import AlreadyExists, NotFound
from bot.store.base import StoreBase
from bot.store.releases import release_from_row

# Every image (or the named ones) with the ids of its latest and latest successful build: two index seeks
# per image (builds_image, builds_image_status), however long the build history is.
_STATUS_IDS = (
    "SELECT i.name, json_extract(i.spec, '$.base') AS base, json_extract(i.spec, '$.repository') AS repository, "
    "json_extract(i.spec, '$.schedule') AS schedule, "
    "(SELECT MAX(b.id) FROM builds b WHERE b.image = i.name) AS last_id, "
    "(SELECT MAX(b.id) FROM builds b WHERE b.image = i.name AND b.status = 'succeeded') AS good_id "
    "FROM images i {where} ORDER BY i.name"
)
_BUILD_SUMMARY = (
    "SELECT id, image, status, requester, requested_at, started_at, finished_at, pushed_digest FROM builds "
    "WHERE id IN (SELECT value FROM json_each(?))"
)


@dataclass
class _ParsedCatalog:
    """One store's catalog as parsed in this process, as of `revision`."""

    revision: int = -1
    specs: dict[str, ImageSpec] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # sorted
    snapshot: tuple[str, tuple[ImageSpec, ...]] = ("", ())


def _fingerprint(revision: int) -> str:
    return f"revision {revision}"


_catalogs: weakref.WeakKeyDictionary[StoreBase, _ParsedCatalog] = weakref.WeakKeyDictionary()
_refresh_lock = threading.Lock()
MARKER_SECONDS = 0.05  # how long `page_marker` reuses the revisions it read (another process's writes)
_overview_cache: weakref.WeakKeyDictionary[StoreBase, tuple[tuple[int, int], tuple[ImageStatus, ...]]] = (
    weakref.WeakKeyDictionary()
)


class CatalogTables(StoreBase):
    def add_image(self, spec: ImageSpec, *, replace: bool = False) -> None:
        now = utcnow()
        with self.transaction() as conn:
            exists = conn.execute("SELECT created_at FROM images WHERE name = ?", (spec.name,)).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"Image {spec.name!r} already exists. Use `update` to change it.")
            self.table("images").upsert(
                {
                    "name": spec.name,
                    "spec": json.dumps(image_to_dict(spec, record=True)),
                    "created_at": exists[0] if exists else now,
                    "updated_at": now,
                },
                pk="name",
            )

    def get_image(self, name: str) -> ImageSpec:
        rows = self.query("SELECT spec FROM images WHERE name = ?", (name,))
        if not rows:
            known = self.image_names()
            hint = f" Known images: {', '.join(known)}." if known else " The catalog is empty: add one first."
            raise NotFound(f"No image named {name!r}.{hint}")
        return image_from_stored(json.loads(rows[0]["spec"]))

    def image_names(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM images ORDER BY name")]

    def list_images(self) -> list[ImageSpec]:
        """Every image, as stored: specs are validated when written (add, update, import), not on every read.

        The parsed catalog is kept per store and brought up to date from the rows whose `revision` moved (see
        `catalog_snapshot`), so a long-running bot parses only what changed since it last looked.
        """
        return list(self.catalog_snapshot()[1])

    def catalog_snapshot(self) -> tuple[str, tuple[ImageSpec, ...]]:
        """(fingerprint, every image in name order): the same tuple for as long as the catalog does not change.

        Every write to `images`, by any process, moves the catalog's revision (triggers, migration 15) and
        stamps the rows it wrote with it. A reader compares one number (a primary-key read); when it moved,
        one thread reads the rows stamped since and merges them, the others then find its result. The cost
        of a change is the change, not the catalog.
        """
        if self.db.conn.in_transaction:  # it may hold writes that are rolled back later: read them, keep nothing
            rows = self.query("SELECT spec FROM images ORDER BY name")
            return self.catalog_fingerprint(), tuple(image_from_stored(json.loads(r["spec"])) for r in rows)
        fingerprint = self.catalog_fingerprint()
        known = _catalogs.get(self)
        if known is not None and known.snapshot[0] == fingerprint:
            return known.snapshot
        with _refresh_lock:
            known = _catalogs.get(self)
            if known is None:
                known = _catalogs[self] = _ParsedCatalog()
            if known.snapshot[0] != fingerprint:
                self._catch_up(known)
            return known.snapshot

    def _catch_up(self, known: _ParsedCatalog) -> None:
        with self.read_snapshot() as read:
            revision = read("SELECT n FROM revisions WHERE name = 'catalog'")[0]["n"]
            changed = read("SELECT name, spec FROM images WHERE revision > ? ORDER BY revision", (known.revision,))
            count = read("SELECT COUNT(*) AS n FROM images")[0]["n"]
            added = False
            for row in changed:
                added |= row["name"] not in known.specs
                known.specs[row["name"]] = image_from_stored(json.loads(row["spec"]))
            names = known.names
            if len(known.specs) != count:  # images were removed (or renamed): keep the ones still there
                present = {r["name"] for r in read("SELECT name FROM images")}
                for gone in [n for n in known.specs if n not in present]:
                    del known.specs[gone]
                added = True
            if added:
                names = known.names = sorted(known.specs)
        known.revision = revision
        known.snapshot = (_fingerprint(revision), tuple(known.specs[n] for n in names))

    def remove_image(self, name: str) -> None:
        self.get_image(name)
        with self.transaction() as conn:
            self.table("images").delete(name)
            conn.execute("DELETE FROM rebuild_queue WHERE name = ?", (name,))
            conn.execute("DELETE FROM image_checks WHERE name = ?", (name,))

    def catalog_fingerprint(self) -> str:
        """Changes whenever an image is added, changed or removed (by any process)."""
        return _fingerprint(self.read_query("SELECT n FROM revisions WHERE name = 'catalog'")[0]["n"])

    def page_marker(self) -> tuple[int, int] | None:
        """(catalog, statuses) revisions: a page of `/dcs images` shows something else only once one of them moved.
        None inside a transaction (what it reads may still be rolled back: nothing should be kept on it).

        The revisions read are reused for MARKER_SECONDS: under load most `/dcs images` acks then make no
        database call at all (each one lets go of the GIL and waits to get it back behind the other busy
        threads, a good part of the ack's tail). This process's own writes (builds, checks, the catalog)
        make it read again (a commit counter), so they show on the next page at once; another process's
        (the CLI next to the bot) shows within MARKER_SECONDS.
        """
        if self.db.conn.in_transaction:
            return None
        now, commits = time.monotonic(), self.commits
        known = self._marker
        if known is not None and known[2] == commits and now - known[1] < MARKER_SECONDS:
            return known[0]
        revisions = {r["name"]: r["n"] for r in self.read_query("SELECT name, n FROM revisions")}
        marker = revisions["catalog"], revisions["statuses"]
        self._marker = (marker, now, commits)
        return marker

    def image_overview(self) -> list[ImageStatus]:
        """Every image with its latest and latest successful build: three queries whatever the history size.

        `/dcs images` and App Home ask for this on every request while acks must stay in milliseconds, so
        the result is cached until the database changes (`change_marker`).
        """
        marker = self.change_marker()
        cached = _overview_cache.get(self)
        if cached is not None and cached[0] == marker:
            return list(cached[1])
        checks = {r["name"]: ImageCheck(**r) for r in self.query("SELECT * FROM image_checks")}
        rows = self._statuses(self.query_rows(_STATUS_IDS.format(where="")), checks)
        _overview_cache[self] = (marker, tuple(rows))
        return rows

    def image_statuses(self, names: list[str]) -> list[ImageStatus]:
        """`image_overview` for the named images only (a page of `/dcs images`): cost grows with the page."""
        if not names:
            return []
        rows = self.read_rows(
            _STATUS_IDS.format(where="WHERE i.name IN (SELECT value FROM json_each(?))"), (json.dumps(names),)
        )
        checks = {
            r["name"]: ImageCheck(**r)
            for r in self.read_query(
                "SELECT * FROM image_checks WHERE name IN (SELECT value FROM json_each(?))", (json.dumps(names),)
            )
        }
        return self._statuses(rows, checks)

    def _statuses(self, rows: list[tuple], checks: dict[str, ImageCheck]) -> list[ImageStatus]:
        """`rows`: _STATUS_IDS's, as tuples (a dict per row is a good part of the time at 5,000 images)."""
        ids = sorted({i for row in rows for i in row[4:6] if i is not None})  # last_id, good_id
        builds = {
            id_: Build(
                id=id_,
                image=image,
                status=status,
                requester=requester,
                requested_at=requested_at,
                started_at=started_at,
                finished_at=finished_at,
                pushed_digest=pushed_digest,
            )
            for id_, image, status, requester, requested_at, started_at, finished_at, pushed_digest in (
                self.read_rows(_BUILD_SUMMARY, (json.dumps(ids),)) if ids else []
            )
        }
        # open release candidates (few at any time: one per image at most), by image
        candidates = {
            r["image"]: release_from_row(r)
            for r in self.read_query(
                "SELECT * FROM releases WHERE status IN ('candidate', 'canary', 'waiting') ORDER BY build_id"
            )
        }
        out = []
        # the specs were validated when stored: their JSON fields are enough here
        for name, base, repository, schedule, last_id, good_id in rows:
            out.append(
                ImageStatus(
                    name,
                    base or "",
                    repository or "",
                    schedule,
                    builds.get(last_id),
                    builds.get(good_id),
                    checks.get(name),
                    candidates.get(name),
                )
            )
        return out

    # ------------------------------------------------------------ catalog-wide settings
    def catalog_build_settings(self) -> BuildSettings:
        """The catalog's top-level [build] table (validated when written)."""
        rows = self.query("SELECT value FROM catalog_settings WHERE name = 'build'")
        return settings_from_dict(json.loads(rows[0]["value"])) if rows else NO_SETTINGS

    def set_catalog_build_settings(self, settings: BuildSettings) -> None:
        with self.transaction():
            self.table("catalog_settings").upsert(
                {"name": "build", "value": json.dumps(settings.to_dict()), "updated_at": utcnow()}, pk="name"
            )

    # ------------------------------------------------------------ the catalog's files, by sha256
    def put_catalog_file(self, sha256: str, content: bytes) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO catalog_files (sha256, content, size, added_at) VALUES (?, ?, ?, ?)",
                (sha256, content, len(content), utcnow()),
            )

    def prune_catalog_files(self) -> int:
        """Remove the files no stored image names any more (a catalog import replaced them)."""
        keep: set[str] = set()
        for row in self.query("SELECT spec FROM images"):
            keep.update(json.loads(row["spec"]).get("sources", {}).values())
        with self.transaction() as conn:
            stale = [r[0] for r in conn.execute("SELECT sha256 FROM catalog_files") if r[0] not in keep]
            conn.executemany("DELETE FROM catalog_files WHERE sha256 = ?", [(sha,) for sha in stale])
        return len(stale)

    def catalog_file(self, sha256: str) -> bytes | None:
        rows = self.query("SELECT content FROM catalog_files WHERE sha256 = ?", (sha256,))
        return bytes(rows[0]["content"]) if rows else None

    # ------------------------------------------------------------ registries
    def add_registry(self, spec: RegistrySpec, *, replace: bool = False) -> None:
        now = utcnow()
        with self.transaction() as conn:
            exists = conn.execute("SELECT created_at FROM registries WHERE name = ?", (spec.name,)).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"Registry {spec.name!r} already exists.")
            self.table("registries").upsert(
                {
                    "name": spec.name,
                    "spec": json.dumps(registry_to_dict(spec)),
                    "created_at": exists[0] if exists else now,
                    "updated_at": now,
                },
                pk="name",
            )

    def list_registries(self) -> list[RegistrySpec]:
        rows = self.query("SELECT spec FROM registries ORDER BY name")
        return [registry_from_dict(json.loads(r["spec"]), stored=True) for r in rows]

    def get_registry(self, name: str) -> RegistrySpec:
        for reg in self.list_registries():
            if reg.name == name:
                return reg
        raise NotFound(f"No registry named {name!r}. Add it with `dcs registry add`.")

    def remove_registry(self, name: str) -> None:
        self.get_registry(name)
        users = [s.name for s in self.list_images() if s.registry == name]
        if users:
            raise AlreadyExists(f"Registry {name!r} is used by {', '.join(users)}; change those images first.")
        with self.transaction():
            self.table("registries").delete(name)
