"""Build settings: how a build reaches package indexes and mirrors (corporate proxies, private indexes, a CA).

Three levels, each overriding the one before it field by field: the bot's environment (`DCS_PIP_*`,
`DCS_BUILD_*`, `DCS_APT_MIRROR`), the catalog's top-level `[build]` table and an image's own `build` table.

Guarantees:
- Nothing here is ever written into the final image (see bot.domain.dockerfile): these values reach only the
  discarded install stage (as files of the build context) or the engine's predefined proxy build arguments.
- A password is only ever named (`pip_password_env`, a `DCS_SECRET_*` variable, bot.domain.secrets) and goes
  only to the index it was declared with: a level that changes the index to another host without naming
  credentials of its own drops the inherited ones, so no catalog entry can redirect a secret elsewhere.
- Every URL is http(s), without credentials, query or fragment, and made of characters that need no quoting
  in pip.conf, a build argument or a shell word; host lists hold host names, IPs, ports and CIDRs only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from bot.domain.secrets import check_secret_env_name
from bot.errors import InvalidInput, InvalidInputs

NETWORKS = ("bridge", "host")
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/%+@\[\]=-]+\Z")
_HOST = re.compile(r"^(?:\*\.|\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?(?:/[0-9]{1,3})?\Z")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}\Z")
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]{1,4095}\Z")

# catalog key -> environment variable (the README's "Corporate networks" table mirrors this)
ENVIRONMENT: dict[str, str] = {
    "pip_index_url": "DCS_PIP_INDEX_URL",
    "pip_extra_index_urls": "DCS_PIP_EXTRA_INDEX_URLS",
    "pip_username": "DCS_PIP_USERNAME",
    "pip_password_env": "DCS_PIP_PASSWORD_ENV",
    "pip_trusted_hosts": "DCS_PIP_TRUSTED_HOSTS",
    "ca_bundle": "DCS_PIP_CA_BUNDLE",
    "install_ca": "DCS_BUILD_INSTALL_CA",
    "http_proxy": "DCS_BUILD_HTTP_PROXY",
    "https_proxy": "DCS_BUILD_HTTPS_PROXY",
    "no_proxy": "DCS_BUILD_NO_PROXY",
    "network": "DCS_BUILD_NETWORK",
    "apt_mirror": "DCS_APT_MIRROR",
    "cran_mirror": "DCS_CRAN_MIRROR",
    "maven_repository": "DCS_MAVEN_REPOSITORY",
}
_LISTS = ("pip_extra_index_urls", "pip_trusted_hosts")
_CREDENTIALS = ("pip_username", "pip_password_env")


@dataclass(frozen=True)
class BuildSettings:
    """One level's settings; None means "not set here, inherit"."""

    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] | None = None
    pip_username: str | None = None
    pip_password_env: str | None = None  # the NAME of a DCS_SECRET_* variable
    pip_trusted_hosts: tuple[str, ...] | None = None
    ca_bundle: str | None = None  # a PEM file on the bot's host
    install_ca: bool | None = None  # also trust the CA in the final image
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None
    network: str | None = None
    apt_mirror: str | None = None
    cran_mirror: str | None = None  # for r_packages (default https://cloud.r-project.org)
    maven_repository: str | None = None  # for jars given as coordinates (default Maven Central)

    def over(self, lower: BuildSettings) -> BuildSettings:
        """These settings on top of `lower` (self wins where set), keeping credentials with their own index."""
        merged = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in merged.items():
            if value is None:
                merged[name] = getattr(lower, name)
        own_credentials = self.pip_username is not None or self.pip_password_env is not None
        if not own_credentials and self.pip_index_url is not None:
            if not _same_origin(self.pip_index_url, lower.pip_index_url):
                merged["pip_username"] = merged["pip_password_env"] = None
        return BuildSettings(**merged)

    def to_dict(self) -> dict[str, Any]:
        """The catalog-table form: only what is set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def empty(self) -> bool:
        return not self.to_dict()

    @property
    def proxy_args(self) -> dict[str, str]:
        """The engine's predefined proxy build arguments (kept out of the image history by the engine)."""
        args: dict[str, str] = {}
        for name, value in (("http_proxy", self.http_proxy), ("https_proxy", self.https_proxy)):
            if value:
                args[name] = args[name.upper()] = value
        if self.no_proxy:
            args["no_proxy"] = args["NO_PROXY"] = self.no_proxy
        return args


NO_SETTINGS = BuildSettings()
# What changes the built image (a proxy, the network or a credential does not): part of the spec hash.
_CONTENT = ("pip_index_url", "pip_extra_index_urls", "install_ca", "apt_mirror", "cran_mirror", "maven_repository")


def content_inputs(settings: BuildSettings) -> dict[str, Any]:
    out = {k: v for k, v in settings.to_dict().items() if k in _CONTENT}
    if settings.install_ca and settings.ca_bundle:
        out["ca_bundle"] = settings.ca_bundle
    return out


def _same_origin(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, (x.hostname or "").lower(), x.port) == (y.scheme, (y.hostname or "").lower(), y.port)


# ---------------------------------------------------------------- validation


def check_url(value: object, field: str, what: str = "URL") -> str:
    fix = f"Give an http(s) {what} without credentials, query or spaces, e.g. https://pypi.corp.example/simple/."
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, value, "is not text", fix)
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(
            field,
            re.sub(r"//[^/]*@", "//***@", value),
            "carries credentials in the URL",
            "Never put credentials in a URL (they would be stored and logged); set pip_username and "
            "pip_password_env (the NAME of a DCS_SECRET_* variable) instead.",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field, value, f"is not an http(s) {what}", fix)
    if parts.query or parts.fragment or not _URL_CHARS.match(value):
        raise InvalidInput(field, value, "has a query, a fragment or characters that are not allowed", fix)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise InvalidInput(field, value, "has an invalid port", fix) from None
    return value


def check_hosts(value: object, field: str) -> tuple[str, ...]:
    items = _list(value, field)
    for item in items:
        if not _HOST.match(item):
            raise InvalidInput(
                field, item, "is not a host name", "Give host names, IPs (with an optional :port) or CIDRs."
            )
    return tuple(items)


def _list(value: object, field: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise InvalidInput(field, value, "is not a list of text", f'Give {field} as a list, e.g. ["a", "b"].')


def _check_bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes")
    raise InvalidInput(field, value, "is not true or false", "Use true or false.")


def _check_field(key: str, value: Any, field: str) -> Any:
    if key == "pip_index_url":
        return check_url(value, field, "index URL")
    if key == "pip_extra_index_urls":
        return tuple(check_url(v, field, "index URL") for v in _list(value, field))
    if key in ("http_proxy", "https_proxy"):
        return check_url(value, field, "proxy URL")
    if key in ("apt_mirror", "cran_mirror", "maven_repository"):
        return check_url(value, field, "mirror URL").rstrip("/")
    if key in ("pip_trusted_hosts",):
        return check_hosts(value, field)
    if key == "no_proxy":
        return ",".join(check_hosts(value, field))
    if key == "pip_username":
        if not isinstance(value, str) or not _USERNAME.match(value):
            raise InvalidInput(field, value, "is not a user name", "Use letters, digits and . _ @ + - only.")
        return value
    if key == "pip_password_env":
        return check_secret_env_name(value, field)
    if key == "ca_bundle":
        if not isinstance(value, str) or not _PATH.match(value) or "/../" in f"{value}/":
            raise InvalidInput(
                field, value, "is not an absolute file path", "Give the PEM file's path, e.g. /etc/ssl/corp-ca.pem."
            )
        return value
    if key == "install_ca":
        return _check_bool(value, field)
    if key == "network":
        if value not in NETWORKS:
            raise InvalidInput(field, value, "is not a build network", f"Use one of: {', '.join(NETWORKS)}.")
        return value
    raise AssertionError(key)


def settings_from_dict(data: object, field_prefix: str = "build.") -> BuildSettings:
    """Validate a `[build]` or image `build` table; every problem is reported, each under its field."""
    if not isinstance(data, Mapping):
        raise InvalidInput(
            field_prefix.rstrip("."),
            data,
            "is not a table",
            'Give build settings as a table, e.g. build = { pip_index_url = "https://…/simple/" }.',
        )
    p: list[InvalidInput] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        field = f"{field_prefix}{key}"
        if key not in ENVIRONMENT:
            if key in ("pip_password", "password", "token"):
                p.append(
                    InvalidInput(
                        field, "***", "would store a secret in the catalog", "Set pip_password_env to a variable NAME."
                    )
                )
            else:
                known = ", ".join(ENVIRONMENT)
                p.append(InvalidInput(field, key, "is not a known build setting", f"Use one of: {known}."))
            continue
        try:
            values[key] = _check_field(key, value, field)
        except InvalidInput as exc:
            p.append(exc)
    if values.get("pip_password_env") and not values.get("pip_username"):
        p.append(InvalidInput(f"{field_prefix}pip_username", None, "is missing", "A password needs a username."))
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    return BuildSettings(**values)


def settings_from_environment(environ: Mapping[str, str]) -> BuildSettings:
    """The bot-wide settings from `DCS_PIP_*`/`DCS_BUILD_*`/`DCS_APT_MIRROR`; errors name the variable."""
    p: list[InvalidInput] = []
    values: dict[str, Any] = {}
    for key, name in ENVIRONMENT.items():
        raw = (environ.get(name) or "").strip()
        if not raw:
            continue
        try:
            values[key] = _check_field(key, raw, name)
        except InvalidInput as exc:
            p.append(exc)
    if values.get("pip_password_env") and not values.get("pip_username"):
        p.append(InvalidInput("DCS_PIP_USERNAME", None, "is missing", "Set it next to DCS_PIP_PASSWORD_ENV."))
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    return BuildSettings(**values)


def check_layers(environment: BuildSettings, *levels: tuple[str, BuildSettings]) -> None:
    """Rules that need more than one level: credentials need an index; `host` needs the operator's opt-in."""
    merged = environment
    for prefix, level in levels:
        if level.network == "host" and environment.network != "host":
            raise InvalidInput(
                f"{prefix}network",
                "host",
                "needs the bot's operator to allow host networking",
                "Set DCS_BUILD_NETWORK=host in the bot's environment, or leave network out.",
            )
        merged = level.over(merged)
        if level.pip_password_env and not merged.pip_index_url:
            raise InvalidInput(
                f"{prefix}pip_password_env",
                level.pip_password_env,
                "has no index to go to",
                "Set pip_index_url in the same table: a password goes only to the index it is declared with.",
            )


def effective_settings(environment: BuildSettings, catalog: BuildSettings, image: BuildSettings) -> BuildSettings:
    """What one image builds with: environment, then the catalog's [build], then the image's build table."""
    return image.over(catalog.over(environment))


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----")
MAX_CA_BYTES = 1024 * 1024


def certificates_only(data: bytes, field: str, path: str) -> bytes:
    """The PEM certificates of a CA bundle file, and nothing else from it (a key or other text never goes on)."""
    fix = "Give a PEM file of CA certificates only (-----BEGIN CERTIFICATE----- blocks)."
    if len(data) > MAX_CA_BYTES:
        raise InvalidInput(field, path, "is larger than 1 MiB", fix)
    blocks = _PEM_BLOCK.findall(data)
    others = sorted({kind.decode() for kind, _ in blocks if kind != b"CERTIFICATE"})
    if others or b"PRIVATE KEY" in data:
        raise InvalidInput(field, path, f"holds more than certificates ({', '.join(others) or 'a key'})", fix)
    certificates = [body for kind, body in blocks if kind == b"CERTIFICATE"]
    if not certificates:
        raise InvalidInput(field, path, "holds no PEM certificate", fix)
    return b"".join(
        b"-----BEGIN CERTIFICATE-----\n" + body.replace(b"\r", b"") + b"-----END CERTIFICATE-----\n"
        for body in certificates
    )
