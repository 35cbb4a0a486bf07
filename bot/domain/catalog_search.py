"""Finding images in a large catalog: `/dcs images pandas`, pure.

Every word of the query must appear (case-insensitive) in the image's name, base, repository, description,
owner, schedule or in one of its pip/apt package names: `pandas 15.4` finds the images with pandas on a 15.4
base.
"""

from __future__ import annotations

from bot.domain.catalog import ImageSpec

MAX_QUERY = 200


def search_terms(text: str) -> list[str]:
    return [t for t in text.lower()[:MAX_QUERY].split() if t]


def matches(spec: ImageSpec, terms: list[str]) -> bool:
    if not terms:
        return True
    haystack = " ".join(
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
    return all(term in haystack for term in terms)
