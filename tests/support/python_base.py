"""Real Python bases for tests: Debian bookworm with CPython 3.11 in a virtualenv at /databricks/python3.

Like Databricks' `python`/`standard` images (databricks/containers `ubuntu/minimal` + `ubuntu/python`): bash, sudo,
iproute2, coreutils, procps, acl, curl, ca-certificates, a `libraries` user, LANG/LC_ALL=C.UTF-8 and
PYSPARK_PYTHON; `dpkg-query -W` lists the OS packages. The differences a test may notice: the OS is Debian 12
underneath (the `face` layer's /etc/os-release says Ubuntu 22.04 by default, /etc/debian_version stays), and
`java` is a stub printing Zulu 8's `java -version` (a real JDK would add ~200 MB to every cold run).

Layers of the base image (docker load, so the same cached rootfs always gives the same image id):
  1. the rootfs from `mmdebstrap --variant=minbase` (cached under .dcs-test/cache/debian-<recipe hash>/),
  2. the face: /etc/os-release, the java stub, /etc/dcs-test-base (a few KB, made per `Face`).
Variants are one more thin layer (`overlay_layer` + layers.derive_image). The realistic base (~130 packages,
see realistic-requirements.txt) is built through a real `docker build` from the local package index and cached
as its own layers (.dcs-test/cache/realistic-<hash>/).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.support.layers import ImageConfig, Layer, load_image, read_saved_layers, save_layers
from tests.support.rootfs import JAVA, LayerTree, os_release
from tests.support.servers import PackageIndex
from tests.support.wheels import read_lock

RECIPE_VERSION = 1  # bump when the way the rootfs is made changes in a way the fields below do not show
DEFAULT_MIRROR = "http://deb.debian.org/debian"
VENV = "/databricks/python3"
PACKAGES = ("python3", "python3-venv", "sudo", "iproute2", "procps", "acl", "curl", "ca-certificates", "passwd")
CUSTOMIZE = (
    f'chroot "$1" python3 -m venv --system-site-packages {VENV}',
    'chroot "$1" useradd --no-create-home --shell /usr/sbin/nologin libraries',
    'chroot "$1" usermod -L libraries',
)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
# Left out of the layer: the engine provides /dev, /proc, /sys and bind-mounts these /etc files.
SKIP_CONTENTS = ("dev", "proc", "sys", "tmp", "var/lib/apt/lists", "var/cache/apt")
SKIP_FILES = ("etc/resolv.conf", "etc/hostname", "etc/hosts", "etc/machine-id")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DATABRICKS_ENV = (("LANG", "C.UTF-8"), ("LC_ALL", "C.UTF-8"), ("PYSPARK_PYTHON", f"{VENV}/bin/python3"))
LOCK = Path(__file__).with_name("realistic-requirements.txt")


class BaseUnavailable(Exception):
    """The base cannot be made on this machine (no root, no mmdebstrap, mirror unreachable)."""


def default_cache() -> Path:
    """`$DCS_TEST_CACHE` or the checkout's gitignored .dcs-test/cache."""
    given = os.environ.get("DCS_TEST_CACHE")
    return Path(given) if given else Path(__file__).resolve().parents[2] / ".dcs-test" / "cache"


@dataclass(frozen=True)
class DebianRecipe:
    """What goes into the rootfs; `key` names its cache entry (the mirror is not part of it)."""

    suite: str = "bookworm"
    packages: tuple[str, ...] = PACKAGES
    customize: tuple[str, ...] = CUSTOMIZE

    @property
    def key(self) -> str:
        fields = [RECIPE_VERSION, self.suite, sorted(self.packages), list(self.customize), DPKG_OPTIONS, SKIP_CONTENTS]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedRootfs:
    layer: Layer
    packages: dict[str, str]  # dpkg name -> version
    build_seconds: float  # how long the cold build took when it was made


def ensure_rootfs(recipe: DebianRecipe, cache: Path, *, mirror: str = DEFAULT_MIRROR) -> CachedRootfs:
    """The recipe's rootfs layer from the cache, made with mmdebstrap first if missing (needs root)."""
    entry = cache / f"debian-{recipe.key}"
    with _locked(cache / f"debian-{recipe.key}.lock"):
        cached = _read_rootfs(entry)
        if cached is not None:
            return cached
        if os.geteuid() != 0:
            raise BaseUnavailable("making the Debian rootfs needs root (mmdebstrap --mode=root)")
        if shutil.which("mmdebstrap") is None:
            raise BaseUnavailable("mmdebstrap is missing: apt-get install mmdebstrap (scripts/test does)")
        started = time.monotonic()
        work = cache / f"tmp-debian-{recipe.key}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            root = work / "root"
            _mmdebstrap(recipe, root, mirror, work / "mmdebstrap.log")
            packages = _dpkg_inventory(root)
            staging = work / "entry"
            staging.mkdir()
            diff_id = pack_rootfs(root, staging / "layer.tar")
            meta = {"diff_id": diff_id, "packages": packages, "build_seconds": round(time.monotonic() - started, 1)}
            (staging / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            shutil.rmtree(entry, ignore_errors=True)
            staging.rename(entry)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(cache, "debian-", keep=entry.name)
        cached = _read_rootfs(entry)
        assert cached is not None
        return cached


def _read_rootfs(entry: Path) -> CachedRootfs | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    layer = entry / "layer.tar"
    if not layer.exists():
        return None
    return CachedRootfs(Layer(meta["diff_id"], layer), meta["packages"], meta["build_seconds"])


def _mmdebstrap(recipe: DebianRecipe, root: Path, mirror: str, log: Path) -> None:
    command = ["mmdebstrap", "--mode=root", "--variant=minbase", f"--include={','.join(recipe.packages)}"]
    command += ['--aptopt=Acquire::Languages "none"', '--aptopt=Acquire::Retries "3"']
    command += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    command += [f"--customize-hook={hook}" for hook in recipe.customize]
    command += [recipe.suite, str(root), mirror]
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise BaseUnavailable(f"mmdebstrap {recipe.suite} from {mirror} failed (exit {result.returncode}):\n{tail}")


def _dpkg_inventory(root: Path) -> dict[str, str]:
    output = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(line.split("\t", 1) for line in output.splitlines() if line)


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: io.BufferedWriter) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        return self.target.write(data)


def pack_rootfs(root: Path, out: Path) -> str:
    """Tar `root` in sorted order with numeric owners and no host names; returns the layer's diff id.

    Modification times are kept: .pyc files check their source's mtime, and clamping them would make every
    interpreter start recompile (or write) bytecode."""
    with out.open("wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path, arcname in _walk(root):
                info = tar.gettarinfo(str(path), arcname)
                if info.ischr() or info.isblk() or info.isfifo():
                    continue
                info.uname = info.gname = ""
                if info.isreg():
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return f"sha256:{writer.digest.hexdigest()}"


def _walk(root: Path, relative: str = "") -> Iterator[tuple[Path, str]]:
    directory = root / relative if relative else root
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        name = f"{relative}/{entry.name}" if relative else entry.name
        if name in SKIP_FILES:
            continue
        yield Path(entry.path), name
        if entry.is_dir(follow_symlinks=False) and name not in SKIP_CONTENTS:
            yield from _walk(root, name)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cache entry, even across concurrent test sessions of the same checkout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(cache: Path, prefix: str, keep: str) -> None:
    """Entries of an older recipe are not needed again; a rootfs is ~200 MB."""
    for old in cache.glob(f"{prefix}*"):
        if old.is_dir() and old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
            old.with_name(old.name + ".lock").unlink(missing_ok=True)


# --- the image --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Face:
    """What the base shows above Debian: `os_release` (id, version) or None for Debian's own file, the java
    stub, the environment and the marker in /etc/dcs-test-base."""

    os_release: tuple[str, str] | None = ("ubuntu", "22.04")
    java: bool = True
    env: tuple[tuple[str, str], ...] = DATABRICKS_ENV
    marker: str = "python-base"

    def layer(self) -> bytes:
        tree = LayerTree()
        if self.os_release is not None:
            tree.text("/etc/os-release", os_release(*self.os_release))
        if self.java:
            tree.script("/usr/bin/java", JAVA)
        tree.text("/etc/dcs-test-base", self.marker)
        return tree.tarball()


def load_python_base(engine: docker.DockerClient, rootfs: CachedRootfs, face: Face, ref: str) -> str:
    """Load rootfs + face as `ref` (a no-op but the tag when the engine has it); returns the image id."""
    face_layer = Layer.of_bytes(face.layer())
    config = ImageConfig(
        arch=engine.version()["Arch"],
        diff_ids=(rootfs.layer.diff_id, face_layer.diff_id),
        env=(f"PATH={PATH}", *(f"{k}={v}" for k, v in face.env)),
        cmd=("/bin/bash",),
        comment="dcs-bot tests python base",
    )
    return load_image(engine, config.to_json(), [rootfs.layer, face_layer], ref)


def overlay_layer(
    files: dict[str, str | bytes | tuple[str | bytes, int]] | None = None, remove: tuple[str, ...] | list[str] = ()
) -> bytes:
    """A layer adding `files` ({path: content} or {path: (content, mode)}) and deleting `remove` (whiteouts)."""
    tree = LayerTree()
    for path, content in (files or {}).items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        tree.file(path, data.encode() if isinstance(data, str) else data, mode=mode)
    for path in remove:
        parent, _, name = path.rstrip("/").rpartition("/")
        tree.file(f"{parent}/.wh.{name}", b"")
    return tree.tarball()


# --- the realistic base ------------------------------------------------------------------------------------

REALISTIC_DOCKERFILE = """\
FROM {base} AS install
LABEL {label}
COPY pip.conf /etc/pip.conf
COPY ca.pem /etc/dcs-test-ca.pem
COPY requirements.txt /tmp/requirements.txt
RUN {venv}/bin/pip install --no-cache-dir --progress-bar off --require-hashes -r /tmp/requirements.txt

FROM {base}
COPY --from=install {venv} {venv}
"""


@dataclass
class RealisticBuild:
    ref: str
    image_id: str
    from_cache: bool
    seconds: float
    index_requests: int = 0
    log: list[str] = field(default_factory=list)


def ensure_realistic(
    engine: docker.DockerClient,
    base_ref: str,
    ref: str,
    cache: Path,
    *,
    start_index: Callable[[], PackageIndex],
    ca_pem: bytes,
    label: tuple[str, str],
    lock: Path = LOCK,
) -> RealisticBuild:
    """The realistic base as `ref`: loaded from its cached layers, or built FROM `base_ref` and then cached.

    A build calls `start_index()` for a started index serving every wheel of `lock` (and stops it after). Only
    the discarded install stage sees the index URL, its credentials and the CA; the image has one layer on top
    of the base: the filled virtualenv."""
    started = time.monotonic()
    base = engine.images.get(base_ref)
    parent_layers = len(base.attrs["RootFS"]["Layers"])
    key = hashlib.sha256(base.id.encode() + lock.read_bytes() + REALISTIC_DOCKERFILE.encode()).hexdigest()[:16]
    entry = cache / f"realistic-{key}"
    with _locked(cache / f"realistic-{key}.lock"):
        saved = read_saved_layers(entry)
        if saved is not None:
            image_id = saved.load(engine, ref)
            return RealisticBuild(ref, image_id, True, time.monotonic() - started)
        index = start_index()
        try:
            log = build_image(
                engine,
                REALISTIC_DOCKERFILE.format(base=base_ref, venv=VENV, label=f'{label[0]}="{label[1]}"'),
                ref,
                context={
                    "pip.conf": f"[global]\nindex-url = {index.index_url_with_credentials}\n"
                    "cert = /etc/dcs-test-ca.pem\ndisable-pip-version-check = true\n",
                    "ca.pem": ca_pem,
                    "requirements.txt": lock.read_bytes(),
                },
            )
            fetched = len([r for r in index.requests if r.path.startswith("/files/")])
        finally:
            index.stop()
        engine.images.prune(filters={"label": f"{label[0]}={label[1]}", "dangling": True})  # the install stage
        staging = cache / f"tmp-realistic-{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        saved = save_layers(engine, ref, parent_layers, staging)
        shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)
        _prune(cache, "realistic-", keep=entry.name)
        return RealisticBuild(ref, saved.image_id, False, time.monotonic() - started, fetched, log)


def realistic_packages(lock: Path = LOCK) -> dict[str, str]:
    """The distributions of the realistic base (normalized name -> version), besides pip and setuptools."""
    return {wheel.name: wheel.version for wheel in read_lock(lock)}


class BuildFailed(AssertionError):
    def __init__(self, ref: str, message: str, log: list[str]) -> None:
        super().__init__(f"docker build of {ref} failed: {message}\n" + "".join(log[-30:]))
        self.log = log


def build_image(
    engine: docker.DockerClient,
    dockerfile: str,
    ref: str,
    *,
    context: dict[str, str | bytes] | None = None,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    network_mode: str = "host",
    timeout: int = 900,
) -> list[str]:
    """`docker build` (the engine's classic builder, as docker-py drives it) of `dockerfile` with the given
    context files, tagged `ref`; host networking by default so RUN steps reach servers on 127.0.0.1.
    Returns the build output lines; raises BuildFailed with the last of them."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in {"Dockerfile": dockerfile, **(context or {})}.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1704067200, 0o644
            tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    # pip can stay silent for minutes while it installs; the session client's read timeout is shorter.
    client = docker.APIClient(**docker.utils.kwargs_from_env(), timeout=timeout, version=engine.api.api_version)
    log: list[str] = []
    try:
        for event in client.build(
            fileobj=archive, custom_context=True, tag=ref, rm=True, forcerm=True, network_mode=network_mode,
            buildargs=buildargs or {}, labels=labels or None, decode=True,
        ):  # fmt: skip
            if "stream" in event:
                log.append(event["stream"])
            if "error" in event:
                raise BuildFailed(ref, event["error"], log)
    finally:
        client.close()
    return log
