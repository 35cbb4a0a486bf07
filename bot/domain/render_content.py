"""The final stage's steps for an image's content beyond pip and apt (bot.domain.image_content).

Files, jars and init scripts go into the image with ONE `COPY dcs-image/ /`: the build context holds them at
their final paths with their final modes (the tar entry's mode is what COPY keeps), so no `chmod` layer copies
a file a second time. Alpine packages and R packages are exec-form RUN steps (no shell); the CRAN mirror's URL
shows in that step, never a credential (URLs with credentials are refused).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.image_content import INIT_SCRIPT_DIR, JARS_DIR, ImageContent
from bot.errors import InvalidInput

DEFAULT_CRAN_MIRROR = "https://cloud.r-project.org"
DEFAULT_MAVEN_REPOSITORY = "https://repo1.maven.org/maven2"
IMAGE_TREE = "dcs-image"


@dataclass
class ImageTree:
    """What `COPY dcs-image/ /` brings: context paths -> bytes, and their modes."""

    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)

    def add(self, destination: str, data: bytes, mode: int) -> None:
        key = f"{IMAGE_TREE}{destination}"
        self.files[key] = data
        self.modes[key] = mode


def image_tree(content: ImageContent, sources: Mapping[str, bytes], downloads: Mapping[str, bytes]) -> ImageTree:
    """Init scripts, files and jars at their places. `sources`: the catalog's files by relative path (as
    imported); `downloads`: what was fetched for URL files and jars, by destination (checksums verified)."""
    tree = ImageTree()
    for path in content.init_scripts:
        tree.add(f"{INIT_SCRIPT_DIR}/{posixpath.basename(path)}", _need(sources, path, "init_scripts"), 0o755)
    for entry in content.files:
        if entry.source:
            tree.add(entry.destination, _need(sources, entry.source, "files"), entry.mode)
        else:
            tree.add(entry.destination, _need(downloads, entry.destination, "files"), entry.mode)
    for jar in content.jars:
        destination = f"{JARS_DIR}/{jar.filename}"
        tree.add(destination, _need(downloads, destination, "jars"), 0o644)
    return tree


def _need(found: Mapping[str, bytes], key: str, field: str) -> bytes:
    if key not in found:
        raise InvalidInput(field, key, "has no content for this build", "Import the catalog again, then build.")
    return found[key]


def content_lines(content: ImageContent, tree: ImageTree, cran_mirror: str | None) -> list[str]:
    """The final stage's steps, after apt and the installed Python packages."""
    lines: list[str] = []
    if content.apk:
        lines.append("RUN " + json.dumps(["apk", "add", "--no-cache", *sorted(content.apk)]))
    if content.r_packages:
        names = sorted(content.r_packages)
        quoted = ", ".join(f"'{n}'" for n in names)
        mirror = cran_mirror or DEFAULT_CRAN_MIRROR
        # install.packages only warns when a package is missing; library() makes the step fail
        code = f"install.packages(c({quoted}), repos = '{mirror}'); " + "; ".join(f"library('{n}')" for n in names)
        lines.append("RUN " + json.dumps(["Rscript", "-e", code]))
    if tree.files:
        lines.append(f"COPY {IMAGE_TREE}/ /")
    return lines
