"""Putting fake base images into the engine, pushing them, and running shell snippets in them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

import docker

from tests.support.namespace import OWNED_REGISTRY_HOSTS
from tests.support.rootfs import EPOCH, BaseSpec, rootfs_layer

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = "2024-01-01T00:00:00Z"


def split_ref(ref: str) -> tuple[str, str]:
    """`host:5000/a/b:tag` -> (`host:5000/a/b`, `tag`); a missing tag means `latest`."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag


@dataclass(frozen=True)
class ImageArchive:
    """A `docker save`-style archive of a one-layer image; `image_id` is known before loading."""

    image_id: str
    data: bytes


def base_archive(spec: BaseSpec, busybox: bytes, *, ref: str, arch: str) -> ImageArchive:
    """The archive `docker load` turns into the base: same spec, same image id (no import timestamp)."""
    layer = rootfs_layer(spec, busybox)
    layer_hex = hashlib.sha256(layer).hexdigest()
    config: dict = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_hex}"]},
        "history": [{"created": CREATED, "created_by": "tests/conftest.py make_base"}],
    }
    if spec.cmd is not None:
        config["config"]["Cmd"] = list(spec.cmd)
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    repo, tag = split_ref(ref)
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [f"{repo}:{tag}"], "Layers": [f"{layer_hex}/layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (
            (f"{config_hex}.json", config_bytes),
            (f"{layer_hex}/layer.tar", layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            tar.addfile(info, io.BytesIO(data))
    return ImageArchive(image_id=f"sha256:{config_hex}", data=out.getvalue())


def ensure_image(engine: docker.DockerClient, archive: ImageArchive, ref: str) -> str:
    """Load the archive unless the engine already has that image, and point `ref` at it."""
    repo, tag = split_ref(ref)
    try:
        engine.images.get(archive.image_id)
    except docker.errors.ImageNotFound:
        loaded = engine.images.load(archive.data)
        ids = {image.id for image in loaded}
        if archive.image_id not in ids:
            raise AssertionError(f"docker load gave {ids}, expected {archive.image_id}") from None
    # Always re-tag: another test may have moved this tag to a base with a different marker.
    engine.api.tag(archive.image_id, repo, tag)
    return archive.image_id


def push_image(
    engine: docker.DockerClient,
    local_ref: str,
    *,
    host: str,
    username: str,
    password: str,
    repo_path: str,
    tag: str,
) -> str:
    """Push `local_ref` as `{host}/{repo_path}:{tag}` with basic auth and return the pushed digest."""
    target = f"{host}/{repo_path}"
    OWNED_REGISTRY_HOSTS.add(host)  # the local tag below is removed at session end
    engine.api.tag(local_ref, target, tag)
    digest = None
    events = engine.api.push(
        target, tag=tag, stream=True, decode=True, auth_config={"username": username, "password": password}
    )
    for event in events:
        if "error" in event:
            raise AssertionError(f"push of {target}:{tag} failed: {event['error']}")
        digest = event.get("aux", {}).get("Digest", digest)
    if digest is None:
        raise AssertionError(f"push of {target}:{tag} reported no digest")
    return digest


@dataclass(frozen=True)
class ShellResult:
    exit_code: int
    stdout: str
    stderr: str


def run_shell(engine: docker.DockerClient, image: str, script: str, *, timeout: int = 120) -> ShellResult:
    """Run `sh -c script` in a fresh container of `image`; the container is removed afterwards."""
    container = engine.containers.create(image, entrypoint=["/bin/sh"], command=["-c", script])
    try:
        container.start()
        exit_code = container.wait(timeout=timeout)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode()
        stderr = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    return ShellResult(exit_code, stdout, stderr)
