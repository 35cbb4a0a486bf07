"""New LTS tags of a base, pure: `15.4-LTS` → `16.4-LTS` in the same repository (the same flavour).

Databricks publishes each LTS runtime under `<major>.<minor>-LTS` (GPU flavours add their own suffixes, kept
as they are: `15.4-LTS-gpu` only moves to `16.4-LTS-gpu`). The tags come from the registry's `tags/list` (no
pull spent); an upgrade is proposed, never applied: nothing changes for the existing image until someone acts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.catalog import ImageSpec

_LTS = re.compile(r"^(\d+)\.(\d+)-LTS(.*)\Z")


@dataclass(frozen=True)
class LtsProposal:
    image: str
    base: str  # the image's base now
    current_tag: str
    new_tag: str
    new_base: str  # the same reference with the new tag (digest pins dropped)

    @property
    def key(self) -> str:
        """What remembers that this proposal was made (once per image and new tag)."""
        return f"lts:{self.image}"


def lts_version(tag: str) -> tuple[int, int, str] | None:
    match = _LTS.match(tag)
    return (int(match.group(1)), int(match.group(2)), match.group(3)) if match else None


def newest_lts(current: str, tags: list[str]) -> str | None:
    """The highest LTS tag newer than `current` with the same suffix, or None."""
    mine = lts_version(current)
    if mine is None:
        return None
    best: tuple[tuple[int, int], str] | None = None
    for tag in tags:
        version = lts_version(tag)
        if version is None or version[2] != mine[2] or version[:2] <= mine[:2]:
            continue
        if best is None or version[:2] > best[0]:
            best = (version[:2], tag)
    return best[1] if best else None


def propose(spec: ImageSpec, tags: list[str]) -> LtsProposal | None:
    ref = spec.base_ref
    if not spec.base_info.lts or not ref.tag:
        return None
    newer = newest_lts(ref.tag, tags)
    if newer is None:
        return None
    new_base = str(ref.with_digest(None).with_tag(newer))
    return LtsProposal(spec.name, spec.base, ref.tag, newer, new_base)


def upgraded_name(image: str, new_tag: str) -> str:
    """A default name for the upgraded entry: `team-pandas` + `16.4-LTS` → `team-pandas-16-4`."""
    version = lts_version(new_tag)
    suffix = f"{version[0]}-{version[1]}" if version else "next"
    return f"{image[: 62 - len(suffix)]}-{suffix}"
