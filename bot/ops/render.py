"""The Dockerfile an image renders to (`dcs render`): the build plan's settings, FROM pinned to a digest.

Apart from the catalog operations (bot/ops/catalog.py) because it needs the build plan and, to resolve the
base, the builder; listing or editing the catalog loads neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.dockerfile import render_dockerfile
from bot.domain.refs import is_sha256_digest
from bot.errors import InvalidInput
from bot.ops.build import Builder
from bot.ops.build_plan import image_settings
from bot.services import Services


@dataclass(frozen=True)
class Rendered:
    image: str
    base_digest: str | None
    dockerfile: str


def render_image(services: Services, name: str, *, base_digest: str | None = None, resolve: bool = False) -> Rendered:
    """The Dockerfile an image renders to, FROM pinned to `base_digest` or (with `resolve`) the registry's."""
    spec = services.store.get_image(name)
    if base_digest and not is_sha256_digest(base_digest):
        raise InvalidInput(
            "--base-digest", base_digest, "is not a sha256 digest", "Use sha256: followed by 64 hex digits."
        )
    if resolve:
        base_digest = Builder(services).resolve_base(spec).digest
    return Rendered(spec.name, base_digest, render_dockerfile(spec, base_digest, image_settings(services, spec)))
