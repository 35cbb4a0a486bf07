"""The files a catalog names (requirements, constraints, init scripts, local files): read next to the catalog
file at import, checked, stored by sha256, and handed to builds.

`FileReader` is how a surface gives access to the catalog's directory (the CLI reads the file system, refusing
anything that resolves outside the catalog's directory); the store keeps the checked bytes (table
`catalog_files`), so a build never reads the file system and a file changed after the import changes nothing
until it is imported again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from bot.domain.catalog import ImageSpec, replace
from bot.domain.image_content import MAX_FILE_BYTES, canonical_requirements, check_text_file, has_hashes
from bot.errors import InvalidInput, InvalidInputs
from bot.services import Services

FileReader = Callable[[str], bytes]  # relative path -> content; raises InvalidInput when it cannot


def no_files(path: str) -> bytes:
    raise InvalidInput(
        "catalog",
        path,
        "is a file next to the catalog file, and this catalog came without a directory",
        "Import the catalog from its file: `dcs catalog import path/to/catalog.toml`.",
    )


def read_sources(spec: ImageSpec, reader: FileReader, prefix: str = "") -> tuple[ImageSpec, dict[str, bytes]]:
    """`spec` with the sha256 of every file it names, and the checked bytes by sha256 (nothing stored yet)."""
    content = spec.content
    problems: list[InvalidInput] = []
    blobs: dict[str, bytes] = {}
    sources: dict[str, str] = {}
    kinds = {p: "requirements" for p in content.requirements}
    kinds |= {p: "constraints" for p in content.constraints}
    kinds |= {p: "init_scripts" for p in content.init_scripts}
    kinds |= {f.source: "files" for f in content.files if f.source}
    hashed = False
    for path in content.local_paths():
        kind = kinds[path]
        field = f"{prefix}{kind}: {path}"
        try:
            data = reader(path)
            if kind in ("requirements", "constraints"):
                data = canonical_requirements(data, field, constraints=kind == "constraints")
                hashed = hashed or (kind == "requirements" and has_hashes(data))
            elif kind == "init_scripts":
                data = check_text_file(data, field)
            elif len(data) > MAX_FILE_BYTES:
                raise InvalidInput(field, f"{len(data)} bytes", "is larger than 8 MiB", "Download it (url + sha256).")
        except InvalidInput as exc:
            problems.append(exc)
            continue
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        sources[path] = sha
    if hashed and spec.pip:
        problems.append(
            InvalidInput(
                f"{prefix}pip",
                list(spec.pip),
                "cannot go next to requirements pinned with --hash (pip then wants a hash for everything)",
                "Move these entries, with their hashes, into the requirements file.",
            )
        )
    if problems:
        raise problems[0] if len(problems) == 1 else InvalidInputs(problems)
    return replace(spec, content=content.with_sources(sources)), blobs


def store_sources(services: Services, blobs: dict[str, bytes]) -> None:
    for sha, data in blobs.items():
        services.store.put_catalog_file(sha, data)


def build_files(services: Services, spec: ImageSpec) -> dict[str, bytes]:
    """The stored bytes of every file the spec names, by relative path."""
    out: dict[str, bytes] = {}
    for path in spec.content.local_paths():
        sha = spec.content.sha256_of(path)
        data = services.store.catalog_file(sha) if sha else None
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            raise InvalidInput(
                f"image[{spec.name}]",
                path,
                "was not imported with the catalog",
                "Import the catalog again from its file (`dcs catalog import catalog.toml`).",
            )
        out[path] = data
    return out
