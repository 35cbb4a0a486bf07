"""Images from layer tarballs, loaded with `docker load` so that the same layers give the same image id.

An image here is an OCI-style config (canonical JSON, fixed `created`) plus uncompressed layer tars. The engine
names a loaded image by the sha256 of its config, so nothing about the load (time, order) changes the id.

Thin loads: `docker load` (moby 20.10 and later) does not need the file of a layer whose chain the engine already
has, so a variant of an image already in the engine is loaded as its config plus only its new layer. The archive
is streamed to the engine (chunked), never held in memory whole.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.support.images import split_ref

CREATED = "2024-01-01T00:00:00Z"
EPOCH = 1704067200
BLOCK = 512
CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    """An uncompressed layer tar, in memory or on disk, with its diff id (`sha256:` of the tar)."""

    diff_id: str
    source: bytes | Path

    @classmethod
    def of_bytes(cls, data: bytes) -> Layer:
        return cls(f"sha256:{hashlib.sha256(data).hexdigest()}", data)

    @classmethod
    def of_file(cls, path: Path, diff_id: str | None = None) -> Layer:
        if diff_id is None:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
            diff_id = f"sha256:{digest.hexdigest()}"
        return cls(diff_id, path)

    @property
    def size(self) -> int:
        return self.source.stat().st_size if isinstance(self.source, Path) else len(self.source)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            yield self.source
            return
        with self.source.open("rb") as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about itself; `to_json` is canonical so equal configs give equal image ids."""

    arch: str
    diff_ids: tuple[str, ...]
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    comment: str = "dcs-bot tests"

    def to_json(self) -> bytes:
        config: dict = {"Env": list(self.env)}
        if self.cmd is not None:
            config["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            config["Entrypoint"] = list(self.entrypoint)
        if self.working_dir:
            config["WorkingDir"] = self.working_dir
        if self.user:
            config["User"] = self.user
        if self.labels:
            config["Labels"] = dict(self.labels)
        document = {
            "architecture": self.arch,
            "os": "linux",
            "created": CREATED,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
            "history": [
                {"created": CREATED, "created_by": f"{self.comment} (layer {i})"} for i in range(len(self.diff_ids))
            ],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @property
    def image_id(self) -> str:
        return f"sha256:{hashlib.sha256(self.to_json()).hexdigest()}"


def load_image(engine: docker.DockerClient, config: bytes, layers: list[Layer | None], ref: str) -> str:
    """Load an image whose layers are `layers` (None: already in the engine, left out) and tag it `ref`.

    Returns the image id; does nothing but tag when the engine has that id already."""
    image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
    repo, tag = split_ref(ref)
    try:
        engine.images.get(image_id)
    except docker.errors.ImageNotFound:
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layers):
            raise ValueError(f"config lists {len(diff_ids)} layers, {len(layers)} given") from None
        response = engine.api.load_image(_archive(config, diff_ids, layers, f"{repo}:{tag}"))
        for event in response:
            if "error" in event:
                raise AssertionError(f"docker load of {ref} failed: {event['error']}") from None
        engine.images.get(image_id)  # raises if the engine named it differently
    engine.api.tag(image_id, repo, tag)
    return image_id


def _archive(config: bytes, diff_ids: list[str], layers: list[Layer | None], repo_tag: str) -> Iterator[bytes]:
    """A `docker save`-style tar stream: config, the given layers, manifest.json."""
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    names = [f"{diff_id.split(':', 1)[1]}/layer.tar" for diff_id in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [repo_tag], "Layers": names}]).encode()
    yield from _member(config_name, [config], len(config))
    for name, layer in zip(names, layers, strict=True):
        if layer is not None:
            yield from _member(name, layer.chunks(), layer.size)
    yield from _member("manifest.json", [manifest], len(manifest))
    yield b"\0" * (2 * BLOCK)


def _member(name: str, chunks: Iterator[bytes] | list[bytes], size: int) -> Iterator[bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, EPOCH, 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    written = 0
    for chunk in chunks:
        written += len(chunk)
        yield chunk
    if written != size:
        raise ValueError(f"{name}: {written} bytes read, {size} expected (file changed while loading?)")
    if size % BLOCK:
        yield b"\0" * (BLOCK - size % BLOCK)


def derive_image(
    engine: docker.DockerClient,
    parent: str,
    layer: bytes,
    ref: str,
    *,
    env: dict[str, str] | None = None,
    cmd: tuple[str, ...] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """`parent` (any image in the engine) plus one layer, loaded thin; `env` entries override the parent's.

    The same parent, layer and settings always give the same image id."""
    attrs = engine.images.get(parent).attrs
    inherited = attrs.get("Config") or {}
    variables = dict(item.split("=", 1) for item in inherited.get("Env") or [])
    variables.update(env or {})
    new = Layer.of_bytes(layer)
    parent_ids = tuple(attrs["RootFS"]["Layers"])
    config = ImageConfig(
        arch=attrs["Architecture"],
        diff_ids=(*parent_ids, new.diff_id),
        env=tuple(f"{k}={v}" for k, v in variables.items()),
        cmd=cmd if cmd is not None else _tuple(inherited.get("Cmd")),
        entrypoint=_tuple(inherited.get("Entrypoint")),
        working_dir=inherited.get("WorkingDir") or "",
        user=inherited.get("User") or "",
        labels=tuple(sorted({**(inherited.get("Labels") or {}), **(labels or {})}.items())),
    )
    return load_image(engine, config.to_json(), [None] * len(parent_ids) + [new], ref)


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


@dataclass(frozen=True)
class SavedLayers:
    """The config of an image and the layers it has on top of its parent's, as files in a directory."""

    config: bytes
    parent_layers: int
    layers: tuple[Layer, ...]

    @property
    def image_id(self) -> str:
        return f"sha256:{hashlib.sha256(self.config).hexdigest()}"

    def load(self, engine: docker.DockerClient, ref: str) -> str:
        return load_image(engine, self.config, [None] * self.parent_layers + list(self.layers), ref)


def save_layers(engine: docker.DockerClient, ref: str, parent_layers: int, directory: Path) -> SavedLayers:
    """`docker save` `ref` and keep its config and its layers after the first `parent_layers` in `directory`
    (config.json, layer-N.tar, layers.json), so that `read_saved_layers(directory).load(...)` brings the very
    same image (same id) back into an engine that has the parent."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "save.tar.partial"
    with archive.open("wb") as out:
        for chunk in engine.images.get(ref).save(chunk_size=CHUNK):
            out.write(chunk)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.extractfile(manifest["Config"]).read()
        names = manifest["Layers"][parent_layers:]
        layers = []
        for index, name in enumerate(names):
            path = directory / f"layer-{index}.tar"
            with tar.extractfile(name) as source, path.open("wb") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
            layers.append(Layer.of_file(path))
    archive.unlink()
    diff_ids = json.loads(config)["rootfs"]["diff_ids"][parent_layers:]
    if [layer.diff_id for layer in layers] != diff_ids:
        raise AssertionError(f"docker save of {ref} gave layers that do not match its config")
    (directory / "config.json").write_bytes(config)
    (directory / "layers.json").write_text(json.dumps({"parent_layers": parent_layers, "diff_ids": diff_ids}))
    return SavedLayers(config, parent_layers, tuple(layers))


def read_saved_layers(directory: Path) -> SavedLayers | None:
    """What `save_layers` left in `directory`, or None when it is incomplete."""
    try:
        meta = json.loads((directory / "layers.json").read_text())
        config = (directory / "config.json").read_bytes()
    except (OSError, ValueError):
        return None
    layers = []
    for index, diff_id in enumerate(meta["diff_ids"]):
        path = directory / f"layer-{index}.tar"
        if not path.exists():
            return None
        layers.append(Layer(diff_id, path))
    return SavedLayers(config, meta["parent_layers"], tuple(layers))
