"""Running a script in a throw-away container of a test image, with host networking and files put in first."""

from __future__ import annotations

import io
import tarfile

import docker

from tests.support.images import ShellResult


def run_script(
    engine: docker.DockerClient,
    image: str,
    script: str,
    *,
    files: dict[str, str | bytes] | None = None,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    network_mode: str = "host",
    shell: str = "/bin/sh",
    timeout: int = 300,
) -> ShellResult:
    """`shell -c script` in a new container (host network by default, so 127.0.0.1 is the host's loopback and
    the test's servers answer). `files` ({absolute path: content}) are copied in before it starts. The
    container is removed afterwards; `labels` (a Namespace's) let session cleanup find it if a test dies."""
    container = engine.containers.create(
        image, entrypoint=[shell], command=["-c", script], environment=env or {}, labels=labels or {},
        network_mode=network_mode,
    )  # fmt: skip
    try:
        if files:
            container.put_archive("/", _tar(files))
        container.start()
        exit_code = container.wait(timeout=timeout)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return ShellResult(exit_code, stdout, stderr)


def _tar(files: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, 1704067200
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
