"""What one build sends to the engine: the image's effective build settings, the secret and CA they name,
the rendered plan; and the failure a person can act on when pip or apt fails.

The settings come from the bot's environment, the catalog's [build] table and the image's build table (in that
order, bot.domain.build_settings). The password is read here, from the DCS_SECRET_* variable named, and goes
only into the install stage's pip.conf for the index it was declared with; the CA file is read here and only
its certificates go on.
"""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass
from pathlib import Path

from bot.clients.artifacts import ArtifactClient
from bot.domain.build_errors import explain_failure
from bot.domain.build_settings import BuildSettings, certificates_only, check_layers, effective_settings
from bot.domain.catalog import ImageSpec
from bot.domain.dockerfile import BuildPlan, render_build
from bot.domain.image_content import JARS_DIR
from bot.domain.render_content import DEFAULT_MAVEN_REPOSITORY
from bot.errors import BuildFailed, InvalidInput
from bot.ops.catalog_files import build_files
from bot.services import Services


@dataclass(frozen=True)
class PlannedBuild:
    plan: BuildPlan
    settings: BuildSettings


def image_settings(services: Services, spec: ImageSpec) -> BuildSettings:
    """The settings `spec` builds with, checked across the levels again (the environment may have changed)."""
    catalog = services.store.catalog_build_settings()
    check_layers(services.build_settings, ("build.", catalog), (f"image[{spec.name}].build.", spec.build))
    return effective_settings(services.build_settings, catalog, spec.build)


def plan_build(services: Services, spec: ImageSpec, base_digest: str | None, build_id: int) -> PlannedBuild:
    settings = image_settings(services, spec)
    password = None
    if settings.pip_password_env and (spec.pip or spec.content.requirements):
        password = services.config.secret(settings.pip_password_env)
        if not password:
            raise InvalidInput(
                "pip_password_env",
                settings.pip_password_env,
                "is not set in the bot's environment",
                f"Set {settings.pip_password_env} for the bot (and restart it), or remove pip_password_env.",
            )
    ca_pem = read_ca(settings) if settings.ca_bundle else None
    stage = f"build-{build_id}-{random.token_hex(4)}"
    sources = build_files(services, spec)
    downloads = download_content(spec, settings, ca_pem)
    plan = render_build(
        spec,
        base_digest,
        settings,
        password=password,
        ca_pem=ca_pem,
        stage_id=stage,
        sources=sources,
        downloads=downloads,
    )
    return PlannedBuild(plan, settings)


def download_content(spec: ImageSpec, settings: BuildSettings, ca_pem: bytes | None) -> dict[str, bytes]:
    """Files given by URL and jars, by destination in the image, every one checked against its checksums."""
    content = spec.content
    client = ArtifactClient(settings, ca_pem)
    out: dict[str, bytes] = {}
    for entry in content.files:
        if entry.url:
            out[entry.destination] = client.get(entry.url, f"files.{entry.destination}", sha256=entry.sha256)
    repository = settings.maven_repository or DEFAULT_MAVEN_REPOSITORY
    for i, jar in enumerate(content.jars):
        field = f"jars[{i}]"
        if jar.coordinates:
            data = client.maven_jar(repository, jar.maven_path(), field, sha256=jar.sha256)
        else:
            data = client.get(jar.url or "", field, sha256=jar.sha256)
        out[f"{JARS_DIR}/{jar.filename}"] = data
    return out


def read_ca(settings: BuildSettings) -> bytes:
    path = settings.ca_bundle or ""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(
            "ca_bundle",
            path,
            f"cannot be read on the bot's host ({exc.strerror or exc})",
            "Give the path of a readable PEM file on the host the bot runs on (DCS_PIP_CA_BUNDLE or ca_bundle).",
        ) from None
    return certificates_only(data, "ca_bundle", path)


def explained(exc: BuildFailed, log: list[str], spec: ImageSpec, services: Services | None = None) -> BuildFailed:
    """`exc` with the cause read from the log first (field, package, settings to change), when there is one.

    "Did you mean" draws on the packages people ask for most and on what the image's last good build held."""
    known = list(COMMON_PACKAGES)
    last = services.store.last_build(spec.name, status="succeeded") if services is not None else None
    inventory = services.store.inventory(last.id) if services is not None and last is not None else None
    if inventory is not None:
        known += [*inventory.python_packages, *inventory.os_packages]
    hint = explain_failure(log, pip=spec.pip, apt=(*spec.apt, *spec.content.apk), known=known)
    if hint is None:
        return exc
    return type(exc)(f"{hint}\n{exc.message}", step=exc.step, log_tail=exc.log_tail)


# Names for "did you mean" besides the image's own entries: the packages people ask for most.
COMMON_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "requests",
    "pyarrow",
    "polars",
    "xgboost",
    "lightgbm",
    "torch",
    "tensorflow",
    "transformers",
    "mlflow",
    "boto3",
    "azure-storage-blob",
    "great-expectations",
    "sqlalchemy",
    "psycopg2-binary",
    "pydantic",
    "delta-spark",
    "databricks-sdk",
    "openpyxl",
    "statsmodels",
    "curl",
    "wget",
    "git",
    "libgomp1",
    "build-essential",
    "unixodbc",
    "unixodbc-dev",
    "libpq-dev",
    "openjdk-17-jdk",
    "graphviz",
)
