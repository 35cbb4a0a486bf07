"""Finding images in a large catalog: `/dcs images pandas`, pure.

Every word of the query must appear (case-insensitive) in the image's name, base, repository, description,
owner, schedule or in one of its pip/apt package names: `pandas 15.4` finds the images with pandas on a 15.4
base.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.catalog import ImageSpec
from bot.domain.records import ImageStatus

MAX_QUERY = 200
IMAGES_PER_PAGE = 20


def search_terms(text: str) -> list[str]:
    return [t for t in text.lower()[:MAX_QUERY].split() if t]


def search_text(spec: ImageSpec) -> str:
    """What `/dcs images WORD` looks in, lower-cased."""
    return " ".join(
        (
            spec.name,
            spec.base,
            spec.repository,
            spec.description,
            spec.owner or "",
            spec.schedule or "",
            *spec.pip,
            *spec.apt,
        )
    ).lower()


class SearchIndex:
    """The search texts of one version of the catalog, in catalog order: a query is one pass per word."""

    def __init__(self, specs: tuple[ImageSpec, ...], previous: SearchIndex | None = None) -> None:
        """`previous`: the index of an earlier version; the texts of the specs it already had are reused."""
        known: dict[str, tuple[ImageSpec, str]] = previous._texts if previous is not None else {}
        texts: dict[str, tuple[ImageSpec, str]] = {}
        for spec in specs:
            old = known.get(spec.name)
            texts[spec.name] = old if old is not None and old[0] is spec else (spec, search_text(spec))
        self._texts: dict[str, tuple[ImageSpec, str]] = texts
        self.rows = [(name, text) for name, (_, text) in texts.items()]

    def find(self, terms: list[str]) -> list[str]:
        rows = self.rows
        for term in terms:
            rows = [row for row in rows if term in row[1]]
        return [name for name, _ in rows]


@dataclass(frozen=True)
class ImagePage:
    """One page of the catalog, optionally filtered (`/dcs images pandas`)."""

    rows: list[ImageStatus]
    total: int  # images matching the query
    offset: int  # of the first row, 0-based
    query: str = ""
    size: int = IMAGES_PER_PAGE

    @property
    def next_offset(self) -> int | None:
        after = self.offset + len(self.rows)
        return after if after < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.offset - self.size, 0) if self.offset > 0 else None
