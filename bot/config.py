"""Configuration: one frozen object, built once from the environment (and `.env`).

Only `bot/cli.py` and `bot/__main__.py` call `load_config`; everything else receives the object.
Secrets are kept out of `repr()` so a logged or printed config never shows them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qs, urlparse, urlsplit

from bot.errors import ConfigError, InvalidInput

# \Z, not $: "$" also matches before a trailing newline.
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}\Z")
SLACK_CHANNEL = re.compile(r"^(?:[CGD][A-Z0-9]{2,20}|#[a-z0-9][a-z0-9._-]{0,79})\Z")
# host[:port] as an operator writes it in a setting (lower case; IPv6 in brackets)
HOST_PORT = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::[0-9]{1,5})?\Z"
)
# The Databricks secret scope registry pull passwords live in unless an operator names others: a catalog entry
# must not make clusters resolve (and send to a registry host) a secret of any other scope.
DEFAULT_REGISTRY_SECRET_SCOPES = frozenset({"dcs"})
SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}\Z")  # a Databricks secret scope
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
WORKSPACE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,127}\Z")
DEFAULT_WORKSPACE = "default"
# Unified-auth variables the SDK reads from the process environment for every client it makes, over any
# profile's own values: with profile-based workspaces they would silently send one workspace's calls elsewhere.
ENV_AUTH_VARIABLES = (
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_USERNAME",
    "DATABRICKS_PASSWORD",
    "DATABRICKS_AZURE_RESOURCE_ID",
    "ARM_CLIENT_ID",
    "ARM_CLIENT_SECRET",
    "ARM_TENANT_ID",
    "GOOGLE_CREDENTIALS",
    "DATABRICKS_GOOGLE_SERVICE_ACCOUNT",
)


@dataclass(frozen=True)
class Workspace:
    """One Databricks workspace by name: a unified-auth profile, or (profile None) the environment's own auth."""

    name: str
    profile: str | None = None
    protected: bool = False


# The only variables catalog inputs may name as holding a secret (the rule and its messages live in
# bot/domain/secrets.py; the pattern is here so that Config.secret can refuse every other name too).
SECRET_ENV_PREFIX = "DCS_SECRET_"  # noqa: S105 - a variable-name prefix, not a password
SECRET_ENV_NAME = re.compile(r"^DCS_SECRET_[A-Z0-9_]{1,116}\Z")  # \Z: "$" would let a trailing newline through

# Every variable the bot reads, with a one-line description (the README table mirrors this).
VARIABLES: dict[str, str] = {
    "DCS_DB": "SQLite database path (default ./dcs.db)",
    "DOCKER_HOST": "Docker engine address (standard; default the local socket)",
    "SLACK_BOT_TOKEN": "Bot token xoxb-… (secret)",
    "SLACK_SIGNING_SECRET": "Signing secret, HTTP mode (secret)",
    "SLACK_APP_TOKEN": "App-level token xapp-…, Socket Mode (secret)",
    "SLACK_API_URL": "Slack Web API base URL (default https://slack.com/api/)",
    "DATABRICKS_HOST": "Workspace URL; other Databricks unified-auth variables work too",
    "DATABRICKS_TOKEN": "Personal access token (secret)",
    "DCS_ADMINS": "Comma-separated Slack user ids allowed everything",
    "DCS_BUILDERS": "Comma-separated Slack user ids allowed to build/push/launch (empty = everyone)",
    "DCS_NOTIFY_CHANNEL": "Channel id (C…) or #name for notices and approvals",
    "DOCKERHUB_USERNAME": "Docker Hub account used to read the pull budget",
    "DOCKERHUB_TOKEN": "Docker Hub access token (secret)",
    "DOCKERHUB_AUTH_URL": "Docker Hub auth service (default https://auth.docker.io)",
    "DOCKERHUB_REGISTRY_URL": "Docker Hub registry API (default https://registry-1.docker.io)",
    "DCS_BUILD_TIMEOUT": "Seconds before a build is stopped (default 1800)",
    "DCS_DOCTOR_SIZE_BUDGET_MB": "Image size (MB) above which the doctor warns (default 6000; per image: "
    "doctor.size_budget_mb)",
    "DCS_INIT_SCRIPT_TIMEOUT": "Seconds the doctor lets an image's init scripts run (default 300)",
    "DCS_BUILD_STALE_SECONDS": "A build whose process sent no heartbeat for this long counts as dead (default 120)",
    "DCS_ENGINES": "Build engines: Docker engine URLs (unix://, tcp:// with TLS, ssh://), comma-separated, each "
    "with ?concurrency=N (default 1), &name=, &certs=DIR for tcp (default: DOCKER_HOST alone)",
    "DCS_WORKERS": "Background workers for builds and launches (default 2, or the engines' total concurrency)",
    "DCS_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "DCS_BASE_CHECK_MINUTES": "How often bases on -LTS tags are checked for a new digest (default 60)",
    "DCS_RATELIMIT_MINUTES": "How often the Docker Hub pull budget is read (default 15)",
    "DCS_PULL_WARN_PERCENT": "Warn when remaining pulls fall below this percentage (default 20)",
    "DCS_PULL_WARN_MIN": "Warn when remaining pulls fall below this number (default 10)",
    "DCS_REBUILD_MAX_AGE_DAYS": "Rebuild images older than this many days even if nothing moved (default off)",
    "DCS_KEEP_RUNS_DAYS": "Days scheduled-run records (job_runs) are kept (default 90)",
    "DCS_KEEP_CLAIMS_DAYS": "Days idempotency claims (retries, double clicks) are kept (default 30)",
    "DCS_KEEP_AUDIT_DAYS": "Days audit rows are kept (default 365)",
    "DCS_KEEP_LOGS_DAYS": "Days build log tails are kept; each image's latest build keeps its log (default 30)",
    "DCS_DATABRICKS_TIMEOUT": "Seconds one Databricks call may take, retries included (default 30)",
    "DCS_CANARY_RUNTIME": "Runtime key of canary clusters (default: the workspace's runtime matching the image)",
    "DCS_CANARY_NODE_TYPE": "Node type of canary clusters (default: the workspace's smallest suitable one)",
    "DCS_CANARY_AUTOTERMINATION": "Minutes after which an idle canary cluster stops itself (default 10)",
    "DCS_CANARY_TIMEOUT": "Seconds a canary may take from create to its smoke command's answer (default 1800)",
    "DCS_WORKSPACES": "Workspaces as name:profile pairs (~/.databrickscfg profiles); the first is the default",
    "DCS_PROTECTED_WORKSPACES": "Workspaces whose rollouts need a second person's approval (four eyes), e.g. prod",
    "DCS_MANAGED_TAGS": "Custom tags marking items another tool owns (key or key=value, comma-separated)",
    # build settings (validated by bot/domain/build_settings.py; README "Corporate networks")
    "DCS_PIP_INDEX_URL": "pip index builds install from (default PyPI), without credentials",
    "DCS_PIP_EXTRA_INDEX_URLS": "Comma-separated extra pip indexes",
    "DCS_PIP_USERNAME": "User name for DCS_PIP_INDEX_URL",
    "DCS_PIP_PASSWORD_ENV": "NAME of the DCS_SECRET_* variable holding that user's password",
    "DCS_PIP_TRUSTED_HOSTS": "Comma-separated hosts pip may reach without TLS verification (only when asked)",
    "DCS_PIP_CA_BUNDLE": "PEM file of CA certificates builds trust (TLS interception, private indexes)",
    "DCS_BUILD_INSTALL_CA": "true: also trust that CA inside the built images (default false)",
    "DCS_BUILD_HTTP_PROXY": "Proxy for http:// during builds (pip, apt)",
    "DCS_BUILD_HTTPS_PROXY": "Proxy for https:// during builds (pip, apt)",
    "DCS_BUILD_NO_PROXY": "Comma-separated hosts builds reach without the proxy",
    "DCS_BUILD_NETWORK": "bridge (default) or host: the network build steps run in",
    "DCS_APT_MIRROR": "http(s) mirror replacing the scheme and host of every apt source during builds",
    "DCS_CRAN_MIRROR": "CRAN mirror for r_packages (default https://cloud.r-project.org)",
    "DCS_MAVEN_REPOSITORY": "Maven repository for jars given as coordinates (default Maven Central)",
    "DCS_REGISTRY_SECRET_SCOPES": "Secret scopes a registry's cluster_password_secret may name (default dcs)",
    "DCS_LAUNCH_SECRET_SCOPES": "Secret scopes launches may reference in Spark conf/env values (comma-separated)",
    "DCS_TOKEN_REALMS": "Token services a registry may send credentials to besides its own host: REGISTRY=HOST[,…]",
}
SECRET_VARIABLES = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "DATABRICKS_TOKEN",
        "DOCKERHUB_TOKEN",
        "DATABRICKS_CLIENT_SECRET",
    }
)


ENGINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}\Z")
ENGINE_SCHEMES = ("unix", "tcp", "ssh")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class EngineSpec:
    """One build engine of DCS_ENGINES: a Docker engine URL as docker-py takes it, and how many builds at once."""

    name: str
    url: str  # unix:///path, tcp://host:port, ssh://user@host[:port]
    concurrency: int = 1
    certs: str | None = None  # tcp://: a directory with ca.pem, cert.pem, key.pem (Docker's DOCKER_CERT_PATH)


def parse_engines(raw: str, problems: list[str]) -> tuple[EngineSpec, ...]:
    """DCS_ENGINES: `URL[?concurrency=N&name=NAME&certs=DIR]`, separated by commas or spaces."""
    engines: list[EngineSpec] = []
    for entry in (part for part in re.split(r"[,\s]+", raw) if part):
        where = f"DCS_ENGINES entry {entry!r}"
        parts = urlsplit(entry)
        if parts.scheme not in ENGINE_SCHEMES:
            problems.append(
                f"{where}: {parts.scheme or 'no'} scheme is not a Docker engine address; use unix:///path/docker.sock, "
                "tcp://host:2376?certs=DIR or ssh://user@host"
            )
            continue
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"concurrency", "name", "certs"})
        if unknown:
            problems.append(f"{where}: unknown option {unknown[0]!r}; the options are concurrency, name and certs")
            continue
        raw_concurrency = (query.get("concurrency") or ["1"])[-1]
        if not raw_concurrency.isdigit() or not 1 <= int(raw_concurrency) <= 32:
            problems.append(f"{where}: concurrency={raw_concurrency!r} must be a whole number from 1 to 32")
            continue
        certs = (query.get("certs") or [""])[-1] or None
        url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if parts.scheme == "unix" and not parts.path:
            problems.append(f"{where}: a unix:// address needs the socket path, like unix:///var/run/docker.sock")
            continue
        if parts.scheme in ("tcp", "ssh") and not parts.hostname:
            problems.append(f"{where}: the address needs a host, like {parts.scheme}://build-1.internal")
            continue
        if parts.scheme == "tcp":
            if parts.port is None:
                problems.append(f"{where}: a tcp:// address needs the port, like tcp://build-1.internal:2376")
                continue
            if certs is None and parts.hostname not in LOOPBACK_HOSTS:
                problems.append(
                    f"{where}: a Docker engine on plain TCP lets anyone on the network run containers as root; add "
                    "certs=DIR (ca.pem, cert.pem, key.pem, as for DOCKER_CERT_PATH) or use ssh://user@host"
                )
                continue
        elif certs is not None:
            problems.append(f"{where}: certs= applies to tcp:// addresses only")
            continue
        default_name = "local" if parts.scheme == "unix" else (parts.hostname or "engine")
        name = (query.get("name") or [default_name])[-1]
        if not ENGINE_NAME.match(name):
            problems.append(f"{where}: name={name!r} must be 1-40 letters, digits, dots, dashes or underscores")
            continue
        if name in {e.name for e in engines}:
            if "name" in query:
                problems.append(f"{where}: the name {name!r} is already used; give each engine its own name=")
                continue
            name = f"{name}-{len(engines) + 1}"
        engines.append(EngineSpec(name, url, int(raw_concurrency), certs))
    if raw.strip() and not engines and not problems:
        problems.append("DCS_ENGINES lists no engine; leave it unset to build on DOCKER_HOST")
    return tuple(engines)


def _loopback_ip(host: str) -> bool:
    """An IP literal in a loopback range, parsed (never a name: "127.evil.example" is not one)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Config:
    db_path: str = "./dcs.db"
    docker_host: str | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    databricks_host: str | None = None
    databricks_token: str | None = field(default=None, repr=False)
    admins: frozenset[str] = frozenset()
    builders: frozenset[str] = frozenset()
    notify_channel: str | None = None
    dockerhub_username: str | None = None
    dockerhub_token: str | None = field(default=None, repr=False)
    dockerhub_auth_url: str = "https://auth.docker.io"
    dockerhub_registry_url: str = "https://registry-1.docker.io"
    build_timeout: int = 1800
    doctor_size_budget_mb: int = 6000
    init_script_timeout: int = 300
    build_stale_seconds: int = 120
    workers: int = 2
    engines: tuple[EngineSpec, ...] = ()  # empty: one engine, DOCKER_HOST (or the default socket)
    log_level: str = "INFO"
    base_check_minutes: int = 60
    ratelimit_minutes: int = 15
    pull_warn_percent: int = 20
    pull_warn_min: int = 10
    rebuild_max_age_days: int | None = None
    keep_runs_days: int = 90
    keep_claims_days: int = 30
    keep_audit_days: int = 365
    keep_logs_days: int = 30
    databricks_timeout: int = 30
    # the canary cluster spec (bot/ops/canary.py): single node, dedicated to the bot's own identity
    canary_runtime: str | None = None
    canary_node_type: str | None = None
    canary_autotermination: int = 10
    canary_timeout: int = 1800
    # registry host -> token-service hosts it may send credentials to besides its own (DCS_TOKEN_REALMS)
    token_realms: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # Databricks secret scopes users may reference in launch Spark conf / env values (DCS_LAUNCH_SECRET_SCOPES)
    launch_secret_scopes: frozenset[str] = frozenset()
    # scopes a registry entry's cluster_password_secret may name (DCS_REGISTRY_SECRET_SCOPES, default "dcs")
    registry_secret_scopes: frozenset[str] = DEFAULT_REGISTRY_SECRET_SCOPES
    # Named workspaces (DCS_WORKSPACES); empty: one workspace, "default", from the environment's unified auth.
    workspaces: tuple[Workspace, ...] = ()
    # Custom tags (key, value or None for any value) that mark an item as owned by another tool.
    managed_tags: tuple[tuple[str, str | None], ...] = ()
    # The whole environment, for values named at run time (a registry's password variable).
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def workspace_list(self) -> tuple[Workspace, ...]:
        """Every workspace, the default first (a single unnamed one without DCS_WORKSPACES)."""
        return self.workspaces or (Workspace(DEFAULT_WORKSPACE),)

    @property
    def default_workspace(self) -> str:
        return self.workspace_list[0].name

    def workspace(self, name: str | None) -> Workspace:
        """The named workspace (None or empty: the default); an unknown name raises InvalidInput."""
        if name is None or name == "":
            return self.workspace_list[0]
        for ws in self.workspace_list:
            if ws.name == name:
                return ws
        names = ", ".join(w.name for w in self.workspace_list)
        raise InvalidInput("workspace", name, "is not a configured workspace", f"Use one of: {names} (DCS_WORKSPACES).")

    def secret(self, env_name: str) -> str | None:
        """The value of a `DCS_SECRET_*` variable named by the catalog (registry passwords).

        Any other name is refused, whatever the caller checked before: the bot's own tokens can never be
        read through a name that came from a catalog entry.
        """
        if not isinstance(env_name, str) or not SECRET_ENV_NAME.match(env_name):
            raise InvalidInput(
                "password variable",
                env_name,
                f"is not a {SECRET_ENV_PREFIX}* variable, so the bot does not read it for a catalog entry",
                f"Put the secret in a variable named {SECRET_ENV_PREFIX}<NAME> and name that one.",
            )
        return self.environ.get(env_name) or None

    def secret_values(self) -> list[str]:
        """Every secret this process knows, so logs can be redacted of them."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.databricks_token,
            self.dockerhub_token,
            self.environ.get("DATABRICKS_CLIENT_SECRET"),
        ]
        return [v for v in values if v]

    def missing_for(self, mode: str) -> list[str]:
        """What a mode ("socket", "http", "databricks") needs and does not have."""
        need = {
            "socket": ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"],
            "http": ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"],
        }.get(mode, [])
        have = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_APP_TOKEN": self.slack_app_token,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
        }
        return [f"{name} is required for {mode} mode" for name in need if not have[name]]


def read_environment(environ: Mapping[str, str], dotenv_path: str | None = ".env") -> dict[str, str]:
    """The process environment over the values of a `.env` file (the environment wins)."""
    merged: dict[str, str] = {}
    if dotenv_path:
        from pathlib import Path

        if Path(dotenv_path).is_file():
            from dotenv import dotenv_values

            merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(environ)
    return merged


def load_config(environ: Mapping[str, str]) -> Config:
    """Build the config or raise ConfigError listing every problem (secrets never quoted)."""
    problems: list[str] = []
    env = {k: v.strip() for k, v in environ.items() if isinstance(v, str)}

    def get(name: str) -> str | None:
        value = env.get(name, "")
        return value or None

    def integer(name: str, default: int, low: int, high: int) -> int:
        raw = get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{name}={raw!r} is not a whole number; set it to a number from {low} to {high}")
            return default
        if not low <= value <= high:
            problems.append(f"{name}={value} is out of range; set it to a number from {low} to {high}")
            return default
        return value

    def url(name: str, default: str | None) -> str | None:
        raw = get(name)
        if raw is None:
            return default
        parsed = urlparse(raw)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            # a malformed URL may still carry user:password@ (or a token@): never quote that part
            shown = re.sub(r"[^/@]*@", "***@", raw)
            problems.append(f"{name}={shown!r} is not an http(s) URL; set it like https://host/path")
            return default
        if parsed.username or parsed.password:
            problems.append(f"{name} must not carry credentials in the URL; use the token variables instead")
            return default
        if parsed.scheme == "http" and not _loopback_ip(parsed.hostname or ""):
            # every one of these URLs receives a token: plain HTTP only where it cannot leave the machine
            problems.append(
                f"{name}={raw!r} is plain HTTP to a host that is not a loopback address: the bot sends a token "
                "there; use https:// (plain http only to 127.0.0.1 or ::1)"
            )
            return default
        return raw

    def token(name: str, prefix: str) -> str | None:
        raw = get(name)
        if raw is not None and not raw.startswith(prefix):
            problems.append(f"{name} does not look like a Slack token (it should start with {prefix!r})")
        return raw

    def listed(name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
        """A comma-separated list of names matching `pattern`; the others are named in one problem."""
        items = [part.strip() for part in (get(name) or "").split(",") if part.strip()]
        bad = [i for i in items if not pattern.match(i)]
        if bad:
            problems.append(f"{name} has {', '.join(repr(b) for b in bad)}: list {what}")
        return frozenset(i for i in items if pattern.match(i))

    def user_ids(name: str) -> frozenset[str]:
        what = "Slack user ids (like U012ABCDEF), comma-separated; names and emails are not accepted"
        return listed(name, SLACK_USER_ID, what)

    def secret_scopes(name: str) -> frozenset[str]:
        return listed(
            name, SCOPE_NAME, "Databricks secret scope names (letters, digits, '_', '-', '.'), comma-separated"
        )

    def host_pairs(name: str, what: str) -> dict[str, tuple[str, ...]]:
        pairs: dict[str, list[str]] = {}
        for item in (get(name) or "").split(","):
            if not item.strip():
                continue
            key, sep, value = (part.strip().lower() for part in item.partition("="))
            if not sep or not HOST_PORT.match(key) or not HOST_PORT.match(value):
                problems.append(
                    f"{name} has {item.strip()!r}: list {what} as REGISTRY_HOST=HOST[:PORT] pairs, comma-separated, "
                    "e.g. registry.gitlab.com=gitlab.com"
                )
                continue
            pairs.setdefault(key, []).append(value)
        return {k: tuple(v) for k, v in pairs.items()}

    notify = get("DCS_NOTIFY_CHANNEL")
    if notify and not SLACK_CHANNEL.match(notify):
        problems.append(f"DCS_NOTIFY_CHANNEL={notify!r} is not a channel id (C…) or #channel-name")
        notify = None
    level = (get("DCS_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"DCS_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        level = "INFO"
    api_url = url("SLACK_API_URL", "https://slack.com/api/") or "https://slack.com/api/"
    if not api_url.endswith("/"):
        api_url += "/"
    max_age = integer("DCS_REBUILD_MAX_AGE_DAYS", 0, 0, 3650)
    engines = parse_engines(get("DCS_ENGINES") or "", problems)
    # Builds wait for a free engine inside a worker: by default there are enough workers to fill every engine.
    default_workers = min(32, max(2, sum(e.concurrency for e in engines)))
    workspaces = _workspaces(get("DCS_WORKSPACES"), get("DCS_PROTECTED_WORKSPACES"), env, problems)
    managed_tags = _managed_tags(get("DCS_MANAGED_TAGS"), problems)
    config = Config(
        db_path=get("DCS_DB") or "./dcs.db",
        docker_host=get("DOCKER_HOST"),
        slack_bot_token=token("SLACK_BOT_TOKEN", "xoxb-"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=token("SLACK_APP_TOKEN", "xapp-"),
        slack_api_url=api_url,
        databricks_host=url("DATABRICKS_HOST", None),
        databricks_token=get("DATABRICKS_TOKEN"),
        admins=user_ids("DCS_ADMINS"),
        builders=user_ids("DCS_BUILDERS"),
        notify_channel=notify,
        dockerhub_username=get("DOCKERHUB_USERNAME"),
        dockerhub_token=get("DOCKERHUB_TOKEN"),
        dockerhub_auth_url=(url("DOCKERHUB_AUTH_URL", "https://auth.docker.io") or "").rstrip("/"),
        dockerhub_registry_url=(url("DOCKERHUB_REGISTRY_URL", "https://registry-1.docker.io") or "").rstrip("/"),
        build_timeout=integer("DCS_BUILD_TIMEOUT", 1800, 1, 86400),
        doctor_size_budget_mb=integer("DCS_DOCTOR_SIZE_BUDGET_MB", 6000, 1, 1_000_000),
        init_script_timeout=integer("DCS_INIT_SCRIPT_TIMEOUT", 300, 5, 3600),
        build_stale_seconds=integer("DCS_BUILD_STALE_SECONDS", 120, 2, 86400),
        workers=integer("DCS_WORKERS", default_workers, 1, 32),
        engines=engines,
        log_level=level,
        base_check_minutes=integer("DCS_BASE_CHECK_MINUTES", 60, 1, 10080),
        ratelimit_minutes=integer("DCS_RATELIMIT_MINUTES", 15, 1, 1440),
        pull_warn_percent=integer("DCS_PULL_WARN_PERCENT", 20, 0, 100),
        pull_warn_min=integer("DCS_PULL_WARN_MIN", 10, 0, 100000),
        rebuild_max_age_days=max_age or None,
        keep_runs_days=integer("DCS_KEEP_RUNS_DAYS", 90, 1, 36500),
        keep_claims_days=integer("DCS_KEEP_CLAIMS_DAYS", 30, 1, 36500),
        keep_audit_days=integer("DCS_KEEP_AUDIT_DAYS", 365, 1, 36500),
        keep_logs_days=integer("DCS_KEEP_LOGS_DAYS", 30, 1, 36500),
        databricks_timeout=integer("DCS_DATABRICKS_TIMEOUT", 30, 1, 600),
        canary_runtime=get("DCS_CANARY_RUNTIME"),
        canary_node_type=get("DCS_CANARY_NODE_TYPE"),
        canary_autotermination=integer("DCS_CANARY_AUTOTERMINATION", 10, 10, 10000),
        canary_timeout=integer("DCS_CANARY_TIMEOUT", 1800, 10, 86400),
        token_realms=MappingProxyType(host_pairs("DCS_TOKEN_REALMS", "token services")),
        launch_secret_scopes=secret_scopes("DCS_LAUNCH_SECRET_SCOPES"),
        registry_secret_scopes=secret_scopes("DCS_REGISTRY_SECRET_SCOPES") or DEFAULT_REGISTRY_SECRET_SCOPES,
        workspaces=workspaces,
        managed_tags=managed_tags,
        environ=MappingProxyType(dict(environ)),
    )
    if bool(config.dockerhub_username) != bool(config.dockerhub_token):
        problems.append("DOCKERHUB_USERNAME and DOCKERHUB_TOKEN go together: set both or neither")
    if problems:
        raise ConfigError(problems)
    return config


def _workspaces(
    raw: str | None, protected_raw: str | None, env: Mapping[str, str], problems: list[str]
) -> tuple[Workspace, ...]:
    """`dev:profile-dev,prod:profile-prod` (profiles), or one bare `name` naming the environment's own auth."""
    entries: list[tuple[str, str | None]] = []
    for part in [p.strip() for p in (raw or "").split(",") if p.strip()]:
        name, sep, profile = (x.strip() for x in part.partition(":"))
        if not WORKSPACE_NAME.match(name):
            problems.append(
                f"DCS_WORKSPACES has the workspace name {name!r}: use lower-case letters, digits, - or _ "
                "(up to 32, starting with a letter), e.g. DCS_WORKSPACES=dev:dev-profile,prod:prod-profile"
            )
            continue
        if sep and not PROFILE_NAME.match(profile):
            problems.append(
                f"DCS_WORKSPACES gives {name!r} the profile {profile!r}: name a profile of ~/.databrickscfg "
                "(letters, digits, ., - or _), e.g. prod:prod-profile"
            )
            continue
        if any(name == n for n, _ in entries):
            problems.append(f"DCS_WORKSPACES names {name!r} twice: give each workspace once")
            continue
        entries.append((name, profile if sep else None))
    bare = [n for n, p in entries if p is None]
    if bare and len(entries) > 1:
        problems.append(
            f"DCS_WORKSPACES gives {bare[0]!r} no profile: with several workspaces each one needs its own "
            f"~/.databrickscfg profile, e.g. {bare[0]}:{bare[0]}-profile"
        )
    if any(p is not None for _, p in entries):
        clash = [v for v in ENV_AUTH_VARIABLES if env.get(v)]
        if clash:
            problems.append(
                f"{', '.join(clash)} set while DCS_WORKSPACES names profiles: the Databricks SDK lets these "
                "variables override every profile, so each workspace's calls could reach the wrong one. "
                "Unset them and keep each workspace's host and credentials in its ~/.databrickscfg profile "
                "(DATABRICKS_CONFIG_FILE may point at another file)"
            )
    names = [n for n, _ in entries] or [DEFAULT_WORKSPACE]
    protected = {p.strip() for p in (protected_raw or "").split(",") if p.strip()}
    unknown = sorted(protected - set(names))
    if unknown:
        problems.append(
            f"DCS_PROTECTED_WORKSPACES names {', '.join(repr(u) for u in unknown)}, which DCS_WORKSPACES does not "
            f"define: use one of {', '.join(names)}"
        )
    if not entries:
        return (Workspace(DEFAULT_WORKSPACE, None, DEFAULT_WORKSPACE in protected),) if protected else ()
    return tuple(Workspace(n, p, n in protected) for n, p in entries)


def _managed_tags(raw: str | None, problems: list[str]) -> tuple[tuple[str, str | None], ...]:
    """`managed_by=terraform,owner`: a tag key (any value) or key=value marks an item another tool owns."""
    tags: list[tuple[str, str | None]] = []
    for part in [p.strip() for p in (raw or "").split(",") if p.strip()]:
        key, sep, value = (x.strip() for x in part.partition("="))
        if not TAG_KEY.match(key) or (sep and not value):
            problems.append(
                f"DCS_MANAGED_TAGS has {part!r}: give a custom tag key or key=value, comma-separated, "
                "e.g. DCS_MANAGED_TAGS=managed_by=terraform,owner"
            )
            continue
        tags.append((key, value if sep else None))
    return tuple(tags)
