"""The catalog tables: image definitions and registry entries (specs as JSON, validated when written).

Registries keep the NAME of the variable holding a password, never the password.
"""

from __future__ import annotations

import json
import weakref

from bot.domain.build_settings import NO_SETTINGS, BuildSettings, settings_from_dict
from bot.domain.catalog import (
    ImageSpec,
    RegistrySpec,
    image_from_dict,
    image_to_dict,
    registry_from_dict,
    registry_to_dict,
)
from bot.domain.clock import utcnow
from bot.domain.records import Build, ImageCheck, ImageStatus
from bot.errors import AlreadyExists, NotFound
from bot.store.base import StoreBase

# The latest build (and latest successful build) of every image, in one query each.
_LATEST = (
    "SELECT b.id, b.image, b.status, b.requester, b.requested_at, b.started_at, b.finished_at, "
    "b.pushed_digest FROM builds b JOIN (SELECT image, MAX(id) AS id FROM builds {where} GROUP BY image) "
    "last ON b.id = last.id"
)

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
                    "spec": json.dumps(image_to_dict(spec)),
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
        return image_from_dict(json.loads(rows[0]["spec"]))

    def image_names(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM images ORDER BY name")]

    def list_images(self) -> list[ImageSpec]:
        return [image_from_dict(json.loads(r["spec"])) for r in self.query("SELECT spec FROM images ORDER BY name")]

    def remove_image(self, name: str) -> None:
        self.get_image(name)
        with self.transaction() as conn:
            self.table("images").delete(name)
            conn.execute("DELETE FROM rebuild_queue WHERE name = ?", (name,))
            conn.execute("DELETE FROM image_checks WHERE name = ?", (name,))

    def catalog_fingerprint(self) -> str:
        """Changes whenever an image is added, changed or removed (by any process)."""
        row = self.query("SELECT COUNT(*) AS n, MAX(updated_at) AS last FROM images")[0]
        return f"{row['n']}:{row['last']}"

    def image_overview(self) -> list[ImageStatus]:
        """Every image with its latest and latest successful build: three queries whatever the catalog size.

        `/dcs images` and App Home ask for this on every request while acks must stay in milliseconds, so
        the result is cached until the database changes (`change_marker`).
        """
        marker = self.change_marker()
        cached = _overview_cache.get(self)
        if cached is not None and cached[0] == marker:
            return list(cached[1])
        # Specs were validated when stored, so plain JSON is enough here.
        latest = {r["image"]: Build(**r) for r in self.query(_LATEST.format(where=""))}
        good = {r["image"]: Build(**r) for r in self.query(_LATEST.format(where="WHERE status = 'succeeded'"))}
        checks = {r["name"]: ImageCheck(**r) for r in self.query("SELECT * FROM image_checks")}
        rows = []
        for row in self.query("SELECT name, spec FROM images ORDER BY name"):
            spec = json.loads(row["spec"])
            name = row["name"]
            rows.append(
                ImageStatus(
                    name,
                    spec.get("base", ""),
                    spec.get("repository", ""),
                    spec.get("schedule"),
                    latest.get(name),
                    good.get(name),
                    checks.get(name),
                )
            )
        _overview_cache[self] = (marker, tuple(rows))
        return rows

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
