"""Local registries for tests: Debian's `docker-registry` (distribution 2.8) with htpasswd basic auth."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REQUIRED_BINARIES = ("docker-registry", "htpasswd")
START_TIMEOUT_S = 20


@dataclass(frozen=True)
class TestRegistry:
    """A registry the tests may push to: `host` is `127.0.0.1:PORT`, credentials for basic auth."""

    __test__ = False  # not a test class, despite the name

    host: str
    username: str
    password: str


class RegistryUnavailable(Exception):
    pass


def missing_binaries() -> list[str]:
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


def answers_401(host: str, timeout: float = 2) -> bool:
    try:
        return requests.get(f"http://{host}/v2/", timeout=timeout).status_code == 401
    except requests.RequestException:
        return False


class LocalRegistry:
    """A `docker-registry serve` process on a free 127.0.0.1 port with random credentials.

    `stop()` then `start()` brings it back on the same port with the same content and credentials, for
    tests of a registry that goes away and returns.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.username = f"dcs-{secrets.token_hex(4)}"
        self.password = secrets.token_hex(16)
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._log = workdir / "registry.log"

    @property
    def host(self) -> str:
        if self.port is None:
            raise RegistryUnavailable("the registry was never started")
        return f"127.0.0.1:{self.port}"

    def as_test_registry(self) -> TestRegistry:
        return TestRegistry(self.host, self.username, self.password)

    def start(self) -> LocalRegistry:
        if self._process is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        htpasswd = self.workdir / "htpasswd"
        if not htpasswd.exists():
            line = subprocess.run(
                ["htpasswd", "-nBi", self.username],
                input=self.password,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            htpasswd.write_text(line)
        # A fresh port can be taken between choosing it and binding it; a restart keeps its port.
        attempts = 3 if self.port is None else 1
        for _ in range(attempts):
            port = self.port or _free_port()
            if self._start_on(port):
                self.port = port
                return self
        log_tail = "\n".join(self._log.read_text(errors="replace").splitlines()[-20:])
        raise RegistryUnavailable(f"docker-registry did not answer 401 on /v2/; log tail:\n{log_tail}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _start_on(self, port: int) -> bool:
        config = self.workdir / "config.yml"
        settings = {  # JSON is YAML, the format docker-registry reads
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "dcs-test", "path": str(self.workdir / "htpasswd")}},
        }
        config.write_text(json.dumps(settings, indent=2))
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if answers_401(f"127.0.0.1:{port}", timeout=1):
                return True
            time.sleep(0.1)
        self.stop()
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
