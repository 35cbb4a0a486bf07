"""The services bundle handed to the CLI, the Slack app and the jobs.

Clients are created lazily: building a Services touches neither the Docker engine nor the network,
so the bot starts (and answers Slack) even while the engine is down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bot.catalog import ImageSpec, RegistrySpec, registry_for
from bot.clients.registry import Credentials, RegistryClient
from bot.config import Config
from bot.errors import RegistryAuthError
from bot.redact import Redactor
from bot.refs import ImageRef, same_registry_host
from bot.store import Store


@dataclass
class Services:
    config: Config
    store: Store
    _engine: object | None = field(default=None, repr=False)
    _registry: RegistryClient | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    extras: dict[str, object] = field(default_factory=dict, repr=False)  # clients later features add lazily

    @classmethod
    def from_config(cls, config: Config) -> Services:
        store = Store(config.db_path)
        return cls(config=config, store=store)

    @property
    def engine(self):  # noqa: ANN201 - DockerEngine, imported lazily (docker SDK import cost)
        with self._lock:
            if self._engine is None:
                from bot.clients.engine import DockerEngine

                env = dict(self.config.environ)
                if self.config.docker_host:
                    env["DOCKER_HOST"] = self.config.docker_host
                self._engine = DockerEngine(env)
            return self._engine

    @property
    def registry(self) -> RegistryClient:
        with self._lock:
            if self._registry is None:
                self._registry = RegistryClient(dockerhub_registry_url=self.config.dockerhub_registry_url)
            return self._registry

    @property
    def dockerhub(self):  # noqa: ANN201 - DockerHubClient, imported lazily like the engine
        with self._lock:
            client = self.extras.get("dockerhub")
            if client is None:
                from bot.clients.dockerhub import DockerHubClient

                client = DockerHubClient(self.config.dockerhub_auth_url, self.config.dockerhub_registry_url)
                self.extras["dockerhub"] = client
            return client

    @property
    def databricks(self):  # noqa: ANN201 - DatabricksClient; the SDK itself is imported on its first call
        with self._lock:
            client = self.extras.get("databricks")
            if client is None:
                from bot.clients.databricks import DatabricksClient

                client = DatabricksClient(self.config)
                self.extras["databricks"] = client
            return client

    @property
    def redactor(self) -> Redactor:
        secrets = list(self.config.secret_values())
        for reg in self.store.list_registries():
            if reg.password_env and self.config.secret(reg.password_env):
                secrets.append(self.config.secret(reg.password_env) or "")
        return Redactor(secrets)

    def credentials(self, registry: RegistrySpec | None) -> Credentials | None:
        """Credentials of a registry entry; the password comes from the variable it names."""
        if registry is None or not registry.username:
            return None
        if not registry.password_env:
            return None
        password = self.config.secret(registry.password_env)
        if not password:
            raise RegistryAuthError(
                f"Registry {registry.name!r} names the password variable {registry.password_env}, "
                "but it is not set in the bot's environment. Set it and restart."
            )
        return Credentials(registry.username, password)

    def credentials_for_host(self, host: str) -> Credentials | None:
        """Credentials for pulling or checking any image on `host` (bases included)."""
        for reg in self.store.list_registries():
            if same_registry_host(reg.host, host):
                return self.credentials(reg)
        if same_registry_host(host, "docker.io") and self.config.dockerhub_username and self.config.dockerhub_token:
            return Credentials(self.config.dockerhub_username, self.config.dockerhub_token)
        return None

    def credentials_for_ref(self, ref: ImageRef) -> Credentials | None:
        return self.credentials_for_host(ref.domain)

    def push_registry(self, spec: ImageSpec) -> RegistrySpec | None:
        return registry_for(spec, self.store.list_registries())
