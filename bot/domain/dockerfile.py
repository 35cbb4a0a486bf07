"""Dockerfile rendering: pure and deterministic.

Same spec and base digest → byte-identical text. The apt layer comes before the pip layer and packages
are sorted, so the engine's layer cache is reused. No timestamps: labels carry only the spec hash and
the base digest. pip runs in exec form (no shell at all); apt needs `&&` chaining, so each argument is
shell-quoted on top of the name validation in bot.domain.packages.
"""

from __future__ import annotations

import hashlib
import json
import shlex

from bot.domain.catalog import ImageSpec
from bot.domain.refs import ImageRef
from bot.errors import InvalidInput

LABEL_PREFIX = "io.github.dcs-bot"
LABEL_SPEC = f"{LABEL_PREFIX}.spec-hash"
LABEL_BASE = f"{LABEL_PREFIX}.base-digest"
LABEL_IMAGE = f"{LABEL_PREFIX}.image"


# Bump when the rendered Dockerfile changes for the same spec, so unchanged specs get rebuilt once.
RENDERER_VERSION = 1


def spec_hash(spec: ImageSpec) -> str:
    """Hash of what changes the built image (not schedule, owner or channel) and of the renderer version."""
    canonical = json.dumps({"renderer": RENDERER_VERSION, **spec.build_inputs()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def from_line(base: ImageRef, base_digest: str | None) -> str:
    """`FROM repo:tag@digest` when the digest is known; the tag stays for people reading it."""
    if base_digest:
        return str(base.with_digest(base_digest))
    return str(base)


def render_dockerfile(spec: ImageSpec, base_digest: str | None = None) -> str:
    base = spec.base_ref
    info = spec.base_info
    if base.digest and base_digest and base.digest != base_digest:
        raise InvalidInput(
            "base",
            spec.base,
            f"is pinned to {base.digest} but {base_digest} was resolved",
            "Remove the digest from the base or resolve the same one.",
        )
    digest = base.digest or base_digest
    lines = [
        f"# Rendered by dcs-bot for image {spec.name}. Do not edit: change the catalog entry instead.",
        f"FROM {from_line(base.with_digest(None) if base.digest else base, digest)}",
    ]
    if spec.apt:
        packages = " ".join(shlex.quote(p) for p in sorted(spec.apt))
        lines += [
            "RUN apt-get update \\",
            f" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\",
            " && apt-get clean \\",
            " && rm -rf /var/lib/apt/lists/*",
        ]
    if spec.pip:
        pip = info.pip_path
        if pip is None:
            raise InvalidInput(
                "pip",
                ", ".join(spec.pip),
                f"cannot be installed: {spec.base} has no Python",
                "Use a Python base (databricksruntime/python or standard) or remove the pip packages.",
            )
        argv = [pip, "install", "--no-cache-dir", "--disable-pip-version-check", *sorted(spec.pip)]
        lines.append("RUN " + json.dumps(argv))
    for key, value in sorted(spec.env):
        lines.append(f'ENV {key}="{value}"')
    labels = {LABEL_IMAGE: spec.name, LABEL_SPEC: spec_hash(spec), LABEL_BASE: digest or "unknown"}
    lines.append("LABEL " + " ".join(f'{k}="{v}"' for k, v in labels.items()))
    return "\n".join(lines) + "\n"


def count_steps(dockerfile: str) -> int:
    """Instructions the legacy builder will run (it numbers them `Step n/m`)."""
    count, continued = 0, False
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not continued and stripped and not stripped.startswith("#"):
            count += 1
        continued = stripped.endswith("\\")
    return count
