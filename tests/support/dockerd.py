"""A second (third, ...) private Docker engine for tests of several build engines (DCS_ENGINES).

The same Debian `dockerd` that ./scripts/test starts, with its own data and exec roots under
/var/lib/dcs-test-docker/run-<run>-<name> (an `owner` file names this process, so an interrupted run's
engine is reaped by the next ./scripts/test like its own), no bridge and no firewall changes (builds and the
doctor need no network), listening on a unix socket and, with `tls=`, also on tcp://127.0.0.1:PORT with
mutual TLS (`--tlsverify`, server and client certificates from the session's test CA). Start-up takes
about a second; `stop()` removes everything the engine ever stored.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

import docker
import requests
import trustme

from tests.support.namespace import RUN

ENGINE_ROOT = Path("/var/lib/dcs-test-docker")
START_SECONDS = 60


class DockerdUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateDockerd:
    def __init__(self, name: str, *, tls: trustme.CA | None = None) -> None:
        # Short: containerd's socket lives below the exec root, and a unix socket path has at most 107 bytes.
        if len(name) > 8:
            raise ValueError(f"engine name {name!r}: at most 8 characters")
        self.name = name
        self.root = ENGINE_ROOT / f"run-{RUN}-{name}"
        self.socket = self.root / "docker.sock"
        self._ca = tls
        self.tcp_port: int | None = None
        self.certs: Path | None = None  # the client's ca.pem, cert.pem, key.pem (DCS_ENGINES certs=)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tls_url(self) -> str:
        assert self.tcp_port is not None, "started without tls="
        return f"tcp://127.0.0.1:{self.tcp_port}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.unix_url, timeout=60)

    def start(self) -> Self:
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            raise DockerdUnavailable("a private dockerd needs the dockerd binary (docker.io) and root")
        if self.root.exists():
            self._remove_root()
        self.root.mkdir(parents=True)
        (self.root / "owner").write_text(f"{os.getpid()}\n")
        (self.root / "daemon.json").write_text("{}")
        hosts = ["-H", self.unix_url]
        if self._ca is not None:
            hosts += self._tls_arguments()
        with open(self.root / "dockerd.log", "wb") as log:  # the daemon keeps its own copy of the file
            self._process = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "dockerd.pid"),
                    "--config-file",
                    str(self.root / "daemon.json"),
                    *hosts,
                    "--bridge",
                    "none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--shutdown-timeout",
                    "3",
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.root / "launched.pid").write_text(f"{self._process.pid}\n")
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise DockerdUnavailable(f"dockerd {self.name} exited during start-up:\n{tail}")
            if self.socket.exists() and self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise DockerdUnavailable(f"dockerd {self.name} did not answer within {START_SECONDS} s")

    def _tls_arguments(self) -> list[str]:
        assert self._ca is not None
        tls = self.root / "tls"
        self.certs = self.root / "client"
        tls.mkdir()
        self.certs.mkdir()
        server = self._ca.issue_cert("127.0.0.1", "localhost")
        client = self._ca.issue_cert("dcs-bot-test-client")
        self._ca.cert_pem.write_to_path(str(tls / "ca.pem"))
        server.cert_chain_pems[0].write_to_path(str(tls / "cert.pem"))
        server.private_key_pem.write_to_path(str(tls / "key.pem"))
        self._ca.cert_pem.write_to_path(str(self.certs / "ca.pem"))
        client.cert_chain_pems[0].write_to_path(str(self.certs / "cert.pem"))
        client.private_key_pem.write_to_path(str(self.certs / "key.pem"))
        self.tcp_port = _free_port()
        return [
            "-H", f"tcp://127.0.0.1:{self.tcp_port}",
            "--tlsverify",
            "--tlscacert", str(tls / "ca.pem"),
            "--tlscert", str(tls / "cert.pem"),
            "--tlskey", str(tls / "key.pem"),
        ]  # fmt: skip

    def _answers(self) -> bool:
        try:
            client = docker.DockerClient(base_url=self.unix_url, timeout=5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (docker.errors.DockerException, requests.RequestException):
            return False

    def stop(self) -> None:
        """Stop the daemon (TERM, then KILL) and remove its data: nothing it stored survives."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._remove_root()

    def _remove_root(self) -> None:
        prefix = f"{self.root}/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 1]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
