"""The per-run namespace: every image the test infrastructure creates is `dcs-test-<run>/<name>:<tag>`, every
container it starts carries the label `dcs-test-run=<run>`, and `cleanup()` removes both at session end.

`<run>` is `$DCS_TEST_RUN` (scripts/test exports its run id) or, for a bare `pytest`, one made per process.
"""

from __future__ import annotations

import logging
import os
import re
import time
from functools import cache

import docker

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
