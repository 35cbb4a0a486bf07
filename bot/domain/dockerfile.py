"""Dockerfile rendering: pure and deterministic.

Same spec, base digest and settings → byte-identical text. Packages are sorted, so the engine's layer cache is
reused. No timestamps: labels carry only the spec hash and the base digest. pip and every other step that
needs no shell run in exec form; apt needs `&&` chaining, so each argument is shell-quoted on top of the name
validation in bot.domain.packages.

An image with pip packages is built in two stages (bot.domain.ship): a discarded install stage FROM the same
base gets the build settings as files of the build context (pip.conf with the index and its credentials, the
CA) and runs pip; the final stage copies only what pip changed. The final stage never receives a file or an
argument of the build settings: apt there reaches the network only through the engine's predefined proxy
build arguments (`http_proxy` …, which the engine keeps out of the image history), and a CA enters it only
when `install_ca` asks for it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from bot.domain.build_settings import NO_SETTINGS, BuildSettings
from bot.domain.catalog import ImageSpec
from bot.domain.image_content import ImageContent
from bot.domain.refs import ImageRef
from bot.domain.render_content import ImageTree, content_lines, image_tree
from bot.domain.ship import APPLY_SCRIPT, INSTALL_DIR, SHIP_DIR, SHIP_SCRIPT
from bot.errors import InvalidInput

LABEL_PREFIX = "io.github.dcs-bot"
LABEL_SPEC = f"{LABEL_PREFIX}.spec-hash"
LABEL_BASE = f"{LABEL_PREFIX}.base-digest"
LABEL_IMAGE = f"{LABEL_PREFIX}.image"
LABEL_INSTALL_STAGE = f"{LABEL_PREFIX}.install-stage"  # on the install stage's images only
INSTALLED_CA = "/usr/local/share/ca-certificates/dcs-build-ca.crt"


# Bump when the rendered Dockerfile changes for the same spec, so unchanged specs get rebuilt once.
RENDERER_VERSION = 2


def spec_hash(spec: ImageSpec) -> str:
    """Hash of what changes the built image (not schedule, owner or channel) and of the renderer version."""
    canonical = json.dumps({"renderer": RENDERER_VERSION, **spec.build_inputs()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def from_line(base: ImageRef, base_digest: str | None) -> str:
    """`FROM repo:tag@digest` when the digest is known; the tag stays for people reading it."""
    if base_digest:
        return str(base.with_digest(base_digest))
    return str(base)


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build sends to the engine: the Dockerfile, the other context files, build arguments."""

    dockerfile: str
    context: dict[str, bytes] = field(default_factory=dict)  # path in the build context -> content
    buildargs: dict[str, str] = field(default_factory=dict)  # the predefined proxy arguments only
    network: str = "bridge"
    install_stage: str | None = None  # LABEL_INSTALL_STAGE value of a stage to remove after the build
    modes: dict[str, int] = field(default_factory=dict)  # context path -> file mode (default 0644)


def render_dockerfile(spec: ImageSpec, base_digest: str | None = None, settings: BuildSettings = NO_SETTINGS) -> str:
    return render_build(spec, base_digest, settings).dockerfile


def render_build(
    spec: ImageSpec,
    base_digest: str | None = None,
    settings: BuildSettings = NO_SETTINGS,
    *,
    password: str | None = None,
    ca_pem: bytes | None = None,
    stage_id: str = "local",
    sources: Mapping[str, bytes] | None = None,
    downloads: Mapping[str, bytes] | None = None,
) -> BuildPlan:
    """The build of `spec` with `settings` (already merged over the levels).

    `password` is the value of `settings.pip_password_env` and `ca_pem` the checked certificates of
    `settings.ca_bundle` (the caller reads them); `stage_id` names the install stage when it must be removed
    after the build (it then holds a credential). `sources` are the catalog's files by relative path and
    `downloads` the fetched files and jars by destination; without them (`dcs render`) only the text is right."""
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
    from_ = from_line(base.with_digest(None) if base.digest else base, digest)
    lines = [f"# Rendered by dcs-bot for image {spec.name}. Do not edit: change the catalog entry instead."]
    context: dict[str, bytes] = {}
    install_stage = None
    content = spec.content
    sources = sources or {}
    python = content.python or info.python_path
    if spec.pip or content.requirements:
        pip = [content.python, "-m", "pip"] if content.python else [info.pip_path]
        if python is None or pip[0] is None:
            raise InvalidInput(
                "pip",
                ", ".join(spec.pip),
                f"cannot be installed: {spec.base} has no Python",
                "Use a Python base (databricksruntime/python or standard) or remove the pip packages.",
            )
        secret = bool(password and settings.pip_username)
        # a stage that holds a credential gets its own label (removed after the build), also in `dcs render`
        install_stage = stage_id if secret or (settings.pip_username and settings.pip_password_env) else None
        context[f"{INSTALL_DIR[1:]}/pip.conf"] = pip_conf(settings, password if secret else None).encode()
        install = [*pip, "install", "--no-cache-dir", "--disable-pip-version-check"]
        if spec.pip:
            context[f"{INSTALL_DIR[1:]}/requirements.txt"] = "".join(f"{r}\n" for r in sorted(spec.pip)).encode()
            install += ["-r", f"{INSTALL_DIR}/requirements.txt"]
        for option, folder, paths in (("-r", "req", content.requirements), ("-c", "constraints", content.constraints)):
            for i, path in enumerate(paths):
                context[f"{INSTALL_DIR[1:]}/{folder}/{i}.txt"] = sources.get(path, b"")
                install += [option, f"{INSTALL_DIR}/{folder}/{i}.txt"]
        context[f"{INSTALL_DIR[1:]}/ship.py"] = SHIP_SCRIPT.encode()
        if ca_pem:
            context[f"{INSTALL_DIR[1:]}/ca.pem"] = ca_pem
        own_base = ["ENV PIP_BREAK_SYSTEM_PACKAGES=1"] if content.python else []  # Debian's python3 (PEP 668)
        lines += [
            "# Stage 1 (discarded): pip with the build settings; only what it installed is copied on.",
            f"FROM {from_} AS dcs-install",
            f'LABEL {LABEL_INSTALL_STAGE}="{install_stage or "shared"}"',
            f"COPY {INSTALL_DIR[1:]}/ {INSTALL_DIR}/",
            f"ENV PIP_CONFIG_FILE={INSTALL_DIR}/pip.conf",
            *own_base,
            "RUN " + json.dumps([python, f"{INSTALL_DIR}/ship.py", "snapshot"]),
            "RUN " + json.dumps(install),
            "RUN " + json.dumps([python, f"{INSTALL_DIR}/ship.py", "collect"]),
            "",
            "# The image: the base, apt, what stage 1 installed.",
        ]
    lines.append(f"FROM {from_}")
    if settings.install_ca and settings.ca_bundle:
        if ca_pem:
            context["dcs-ca/dcs-build-ca.crt"] = ca_pem
        lines += [f"COPY dcs-ca/dcs-build-ca.crt {INSTALLED_CA}", 'RUN ["update-ca-certificates"]']
    if spec.apt:
        lines += apt_lines(sorted(spec.apt), settings.apt_mirror)
    if spec.pip or content.requirements:
        lines += [f"COPY --from=dcs-install {SHIP_DIR}/ /", "RUN " + json.dumps([python, "-c", APPLY_SCRIPT])]
    tree = image_tree(content, sources, downloads or {}) if sources or downloads else placeholder_tree(content)
    context |= tree.files
    lines += content_lines(content, tree, settings.cran_mirror)
    for key, value in sorted(spec.env):
        lines.append(f'ENV {key}="{value}"')
    labels = {LABEL_IMAGE: spec.name, LABEL_SPEC: spec_hash(spec), LABEL_BASE: digest or "unknown"}
    lines.append("LABEL " + " ".join(f'{k}="{v}"' for k, v in labels.items()))
    return BuildPlan(
        dockerfile="\n".join(lines) + "\n",
        context=context,
        buildargs=settings.proxy_args,
        network=settings.network or "bridge",
        install_stage=install_stage,
        modes=tree.modes,
    )


def apt_lines(packages: list[str], mirror: str | None) -> list[str]:
    """The apt step. A mirror replaces every source's scheme and host for this step only: the source files
    are put back before the layer is committed (the mirror's URL, never a credential, shows in the history)."""
    quoted = " ".join(shlex.quote(p) for p in packages)
    lines = ["RUN set -e \\"]
    sources = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources"
    if mirror:
        lines += [
            f' && for f in {sources}; do [ -f "$f" ] || continue; cp -p "$f" "$f.dcs-orig"; \\',
            f"      sed -i -E 's#https?://[^/[:space:]]+/#{mirror}/#g' \"$f\"; done \\",
        ]
    lines += [
        " && apt-get update \\",
        f" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {quoted} \\",
        " && apt-get clean \\",
    ]
    if mirror:
        lines.append(f' && for f in {sources}; do if [ -f "$f.dcs-orig" ]; then mv "$f.dcs-orig" "$f"; fi; done \\')
    lines.append(" && rm -rf /var/lib/apt/lists/*")
    return lines


def pip_conf(settings: BuildSettings, password: str | None) -> str:
    """pip's configuration for the install stage; the password goes into the one index URL it belongs to."""
    # no-input: a 401 fails at once instead of asking a terminal that is not there for a user name
    lines = ["[global]", "disable-pip-version-check = true", "progress-bar = off", "no-input = true"]
    if settings.pip_index_url:
        url = settings.pip_index_url
        if password and settings.pip_username:
            scheme, rest = url.split("://", 1)
            user = quote(settings.pip_username, safe="")
            url = f"{scheme}://{user}:{quote(password, safe='')}@{rest}"
        lines.append(f"index-url = {url}")
    if settings.pip_extra_index_urls:
        lines.append("extra-index-url =")
        lines += [f"    {u}" for u in settings.pip_extra_index_urls]
    if settings.pip_trusted_hosts:
        lines.append("trusted-host =")
        lines += [f"    {h}" for h in settings.pip_trusted_hosts]
    if settings.ca_bundle:
        lines.append(f"cert = {INSTALL_DIR}/ca-bundle.pem")
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


def placeholder_tree(content: ImageContent) -> ImageTree:
    """The image tree's shape without its bytes (`dcs render`: the Dockerfile text only)."""
    tree = ImageTree()
    if content.init_scripts or content.files or content.jars:
        tree.add("/", b"", 0o644)
    return tree
