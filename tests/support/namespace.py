"""Tests and benchmarks own their tags: every local image they make lives under one per-run namespace.

`local("databricksruntime/standard:15.4-LTS")` is `dcs-test-<run>/databricksruntime/standard:15.4-LTS`, a
mirror path the product recognises as that Databricks base (bot/domain/bases.py reads the last two path
parts), so builds, doctor checks and launches behave exactly as on the real name. At the end of the session
every tag under the namespace is removed (tags only: an image another tag still names stays).

`TagGuard` proves that nothing else is touched: before the suite it records what the real Databricks names
point at on this engine, or, where the engine has no such image, plants a sentinel of its own (a tiny image
unique to this run) under that name; after the suite each name must still point at the same image, and the
sentinels it planted are removed again. On a developer machine with the real images pulled nothing is
created or changed: they are only read.

`Namespace` is the same namespace as an object for the test infrastructure (tests/support/infra.py): it names
images, labels containers with `dcs-test-run=<run>` and its `cleanup()` removes both at session end.
`<run>` is `$DCS_TEST_RUN` (scripts/test exports its run id) or, for a bare `pytest`, one made per process.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from functools import cache

import docker
import docker.errors

LABEL = "dcs-test-run"
log = logging.getLogger(__name__)


@cache
def run_id() -> str:
    given = os.environ.get("DCS_TEST_RUN", "")
    if given:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,60}", given):
            raise ValueError(f"DCS_TEST_RUN={given!r}: use lower-case letters, digits, '.', '_' or '-'")
        return given
    return f"{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"


RUN = run_id()
NAMESPACE = f"dcs-test-{RUN}"
# The names a careless test would retag: the bases the suite and the benchmarks imitate.
PROTECTED = (
    "databricksruntime/standard:15.4-LTS",
    "databricksruntime/standard:8.x",
    "databricksruntime/minimal:15.4-LTS",
)


def local(ref: str) -> str:
    """`ref` under this run's namespace (`dcs-test-<run>/<ref>`)."""
    return f"{NAMESPACE}/{ref}"


# Registries this run started (`host:port`): tags the suite gives images for them (pushes of test bases, the
# builds' own tags) are this run's too and go at session end like the namespace.
OWNED_REGISTRY_HOSTS: set[str] = set()


def remove_namespace(engine: docker.DockerClient, namespace: str = NAMESPACE) -> list[str]:
    """Remove every tag under `namespace` (never by force: an image another tag names is kept)."""
    removed = []
    # The engine's name filter globs one path segment only; the namespace has several, so filter here.
    for image in engine.images.list():
        for tag in image.tags:
            if tag.startswith(f"{namespace}/"):
                try:
                    engine.images.remove(tag, noprune=False)
                    removed.append(tag)
                except docker.errors.ImageNotFound:
                    pass
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: a container still uses it; the engine keeps it
                        raise
    return removed


def _sentinel_archive(name: str, marker: str) -> bytes:
    """A one-file image (`docker load` archive) whose id is unique to `marker`; it never runs."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as tar:
        data = f"dcs-bot test sentinel {marker}\n".encode()
        info = tarfile.TarInfo("dcs-test-sentinel")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = layer_buf.getvalue()
    layer_hex = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.github.dcs-bot.test-sentinel": marker}},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_hex}"]},
        },
        sort_keys=True,
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [name], "Layers": [f"{layer_hex}.tar"]}])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member, content in (
            (f"{config_hex}.json", config),
            (f"{layer_hex}.tar", layer),
            ("manifest.json", manifest.encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@dataclass
class TagGuard:
    engine: docker.DockerClient
    names: tuple[str, ...] = PROTECTED
    before: dict[str, str] = field(default_factory=dict)  # name -> image id at the start
    planted: list[str] = field(default_factory=list)  # names this guard tagged itself

    def arm(self) -> None:
        for name in self.names:
            try:
                self.before[name] = self.engine.images.get(name).id
            except docker.errors.ImageNotFound:
                loaded = self.engine.images.load(_sentinel_archive(name, f"{RUN}:{name}"))
                self.before[name] = loaded[0].id
                self.planted.append(name)

    def changed(self) -> list[str]:
        """The names that no longer point at the image they pointed at when the guard was armed."""
        problems = []
        for name, image_id in self.before.items():
            try:
                now = self.engine.images.get(name).id
            except docker.errors.ImageNotFound:
                now = None
            if now != image_id:
                problems.append(f"{name}: was {image_id}, now {now or 'gone'}")
        return problems

    def disarm(self) -> None:
        """Remove the sentinels this guard planted (only while they still are its own image)."""
        for name in self.planted:
            try:
                if self.engine.images.get(name).id == self.before[name]:
                    self.engine.images.remove(name, noprune=False)
            except docker.errors.ImageNotFound:
                pass


class Namespace:
    """Names images under `dcs-test-<run>/` and remembers them for `cleanup`."""

    def __init__(self, run: str | None = None) -> None:
        self.run = run or run_id()
        self.prefix = f"dcs-test-{self.run}"
        self._refs: list[str] = []

    @property
    def labels(self) -> dict[str, str]:
        """Put these on every container started for a test, so `cleanup` finds them."""
        return {LABEL: self.run}

    def ref(self, name: str, tag: str = "latest") -> str:
        if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", name):
            raise ValueError(f"image name {name!r}: use lower-case path components (docker reference rules)")
        ref = f"{self.prefix}/{name}:{tag}"
        if ref not in self._refs:
            self._refs.append(ref)
        return ref

    def owns(self, ref: str) -> bool:
        return ref.startswith(self.prefix + "/")

    def cleanup(self, engine: docker.DockerClient) -> None:
        """Remove this run's labelled containers, then its tags, newest first (variants before their bases)."""
        for container in engine.containers.list(all=True, filters={"label": f"{LABEL}={self.run}"}):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for ref in reversed(self._refs):
            try:
                engine.images.remove(ref, noprune=False)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:  # e.g. another test's image still builds on it
                log.warning("could not remove %s: %s", ref, exc.explanation)
        self._refs.clear()
