"""The services bundle handed to the operations, the jobs and both surfaces: typed, built once per process.

Clients are created lazily: building a Services touches neither the Docker engine nor the network, so the
bot starts (and answers Slack) even while the engine is down. The composition root (bot/compose.py) fills
in what the process has (a Slack notifier, the scheduler's catalog hook); everything else keeps its default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import Config
from bot.domain.build_settings import BuildSettings, settings_from_environment
from bot.domain.catalog import ImageSpec, RegistrySpec, registry_for, registry_migration
from bot.domain.credentials import Credentials
from bot.domain.notify import Notifier, NullNotifier
from bot.domain.realms import origin
from bot.domain.redact import Redactor
from bot.domain.refs import ImageRef, same_registry_host
from bot.domain.secrets import SECRET_ENV_PREFIX
from bot.errors import ConfigError, CredentialsRefused, InvalidInput, InvalidInputs, RegistryAuthError
from bot.store import Store

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.clients.databricks import DatabricksClient
    from bot.clients.dockerhub import DockerHubClient
    from bot.clients.engine import DockerEngine
    from bot.clients.engines import EnginePool
    from bot.clients.registry import RegistryClient
    from bot.ops.approvals import Approvals
    from bot.ops.launch import Launcher, LaunchFollower
    from bot.ops.liveness import BuildHeartbeat


def check_own_host(registry: RegistrySpec, host: str) -> None:
    """A registry entry's credentials (its password, its cluster password secret) are for its own host only."""
    if not same_registry_host(registry.host, host):
        raise CredentialsRefused(
            f"Registry {registry.name!r} holds the credentials for {registry.host}, not for {host}: the bot sends "
            f"them only to the registry's own host. Use a repository on {registry.host}, or a registry entry "
            f"for {host}."
        )


@dataclass
class Services:
    config: Config
    store: Store
    notifier: Notifier = field(default_factory=NullNotifier)
    # Created on first use by bot.ops.launch.launcher_for / bot.ops.approvals.approvals_for; tests put ones
    # with short intervals or a fixed clock here.
    launcher: Launcher | None = field(default=None, repr=False)
    approvals: Approvals | None = field(default=None, repr=False)
    scheduler: BackgroundScheduler | None = field(default=None, repr=False)
    tracker: LaunchFollower | None = field(default=None, repr=False)  # follows launches (jobs/clusters.py)
    # The heartbeat of the builds this process owns (bot.ops.liveness.heartbeat_for creates it).
    build_heartbeat: BuildHeartbeat | None = field(default=None, repr=False)
    # Called after an image is added, changed or removed (the scheduler re-reads its schedules).
    catalog_listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)
    # The bot-wide build settings (DCS_PIP_*, DCS_BUILD_*, DCS_APT_MIRROR), read once by from_config.
    build_settings: BuildSettings = field(default_factory=BuildSettings)
    _engines: EnginePool | None = field(default=None, repr=False)
    _registry: RegistryClient | None = field(default=None, repr=False)
    _dockerhub: DockerHubClient | None = field(default=None, repr=False)
    _databricks: dict[str, DatabricksClient] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> Services:
        try:
            build_settings = settings_from_environment(config.environ)
        except InvalidInputs as exc:
            raise ConfigError([p.message for p in exc.problems]) from None
        except InvalidInput as exc:
            raise ConfigError([exc.message]) from None
        return cls(config=config, store=Store(config.db_path), build_settings=build_settings)

    @property
    def engines(self) -> EnginePool:
        """The build engines (DCS_ENGINES, or DOCKER_HOST alone); builds lease one (bot/clients/engines.py)."""
        with self._lock:
            if self._engines is None:
                # Imported here on purpose: the docker SDK costs a noticeable import time that commands
                # without a build (most of them) should not pay.
                from bot.clients.engines import EnginePool

                self._engines = EnginePool.from_config(self.config)
            return self._engines

    @property
    def engine(self) -> DockerEngine:
        """The first engine that answers, for work that needs just one (doctor, inspecting a local image)."""
        return self.engines.default()

    @property
    def registry(self) -> RegistryClient:
        with self._lock:
            if self._registry is None:
                # Imported here on purpose: requests' import time, which the commands that only read the
                # catalog (`dcs image list`) should not pay.
                from bot.clients.registry import RegistryClient

                self._registry = RegistryClient(
                    dockerhub_registry_url=self.config.dockerhub_registry_url,
                    token_realms=self.token_realms(),
                )
            return self._registry

    def token_realms(self) -> dict[str, tuple[str, ...]]:
        """Token services allowed per registry besides its own host: the operator's DCS_TOKEN_REALMS, and for
        Docker Hub the configured DOCKERHUB_AUTH_URL (auth.docker.io is built in, bot/domain/realms.py)."""
        realms = {k: tuple(v) for k, v in self.config.token_realms.items()}
        hub_auth = origin(self.config.dockerhub_auth_url)[1]
        realms["docker.io"] = (*realms.get("docker.io", ()), hub_auth)
        return realms

    @property
    def dockerhub(self) -> DockerHubClient:
        with self._lock:
            if self._dockerhub is None:
                # Imported here on purpose: requests, for the commands that ask Docker Hub only.
                from bot.clients.dockerhub import DockerHubClient

                self._dockerhub = DockerHubClient(self.config.dockerhub_auth_url, self.config.dockerhub_registry_url)
            return self._dockerhub

    @property
    def databricks(self) -> DatabricksClient:
        """The default workspace's client; the SDK itself is imported on its first call."""
        return self.workspace(None)

    def workspace(self, name: str | None) -> DatabricksClient:
        """The client of a named workspace (None: the default). Unknown names raise InvalidInput."""
        ws = self.config.workspace(name)
        with self._lock:
            if ws.name not in self._databricks:
                # Imported here on purpose: the Databricks client module, for the commands that ask a workspace.
                from bot.clients.databricks import DatabricksClient

                self._databricks[ws.name] = DatabricksClient(self.config, workspace=ws)
            return self._databricks[ws.name]

    @property
    def workspace_names(self) -> list[str]:
        return [ws.name for ws in self.config.workspace_list]

    def catalog_changed(self) -> None:
        for listener in list(self.catalog_listeners):
            listener()

    @property
    def redactor(self) -> Redactor:
        secrets = list(self.config.secret_values())
        # every value a catalog may name (pip passwords, registry passwords): never in a log or a message
        secrets += [v for k, v in self.config.environ.items() if k.startswith(SECRET_ENV_PREFIX) and v]
        for reg in self.store.list_registries():
            if reg.password_env and not reg.legacy_password_env and self.config.secret(reg.password_env):
                secrets.append(self.config.secret(reg.password_env) or "")
        return Redactor(secrets)

    def credentials(self, registry: RegistrySpec | None, host: str) -> Credentials | None:
        """Credentials of a registry entry, for `host` only; the password comes from the variable it names.

        Checked again here, whatever was checked when the entry was written: `host` must be the entry's own
        host (Docker Hub aliases count as one), and the variable must be a DCS_SECRET_ one (`Config.secret`).
        """
        if registry is None or not registry.username:
            return None
        check_own_host(registry, host)
        if not registry.password_env:
            return None
        if registry.legacy_password_env:
            raise CredentialsRefused(registry_migration(registry))
        password = self.config.secret(registry.password_env)
        if not password:
            raise RegistryAuthError(
                f"Registry {registry.name!r} names the password variable {registry.password_env}, "
                "but it is not set in the bot's environment. Set it and restart."
            )
        return Credentials(registry.username, password)

    def credentials_for_host(self, host: str) -> Credentials | None:
        """Credentials for pulling or checking any image on `host` (bases included): the registry entry for that
        host, else (Docker Hub's hosts only) DOCKERHUB_USERNAME/DOCKERHUB_TOKEN."""
        for reg in self.store.list_registries():
            if same_registry_host(reg.host, host):
                return self.credentials(reg, host)
        if same_registry_host(host, "docker.io") and self.config.dockerhub_username and self.config.dockerhub_token:
            return Credentials(self.config.dockerhub_username, self.config.dockerhub_token)
        return None

    def credentials_for_ref(self, ref: ImageRef) -> Credentials | None:
        return self.credentials_for_host(ref.domain)

    def push_registry(self, spec: ImageSpec) -> RegistrySpec | None:
        return registry_for(spec, self.store.list_registries())
