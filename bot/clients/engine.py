"""The Docker engine, through the docker SDK. Translates its events and exceptions into DcsErrors.

docker-py does not raise on a failed build or push: every event of the stream is scanned for `error`. A
connection to the engine lost in the middle of a call (dockerd stopped or restarted, a proxy or socket cut:
requests' and urllib3's connection and protocol errors, a reset or broken pipe) is an EngineUnavailable that
says "lost the connection to the Docker engine", never an exception of the HTTP libraries.
"""

from __future__ import annotations

import http.client
import io
import logging
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import requests
import urllib3
from docker.utils import kwargs_from_env

from bot.clients.registry import classify_registry_error
from bot.domain.ansi import plain
from bot.domain.credentials import Credentials
from bot.domain.refs import ImageRef
from bot.errors import (
    BuildFailed,
    BuildTimedOut,
    DcsError,
    EngineUnavailable,
    PullLimitReached,
    PushFailed,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachable,
)

log = logging.getLogger(__name__)

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
# What a connection to the engine that broke (or never opened) raises somewhere below docker-py.
CONNECTION_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
)
BuildEvent = Callable[[int, int, str], None]  # (step, total, line)


@dataclass
class BuildResult:
    image_id: str
    log: list[str] = field(default_factory=list)


def _context_tar(
    dockerfile: str, files: Mapping[str, bytes] | None = None, modes: Mapping[str, int] | None = None
) -> io.BytesIO:
    """A build context: the Dockerfile and `files` (relative paths; `modes` or 0644), with fixed metadata
    (deterministic; COPY keeps the mode)."""
    buffer = io.BytesIO()
    modes = modes or {}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted({"Dockerfile": dockerfile.encode(), **(files or {})}.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, modes.get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def lost_engine(during: str, exc: BaseException) -> EngineUnavailable:
    detail = str(exc).strip() or type(exc).__name__
    return EngineUnavailable(
        f"Lost the connection to the Docker engine during {during} ({detail[:200]}). Check that dockerd is running "
        "(and DOCKER_HOST), then try again."
    )


@contextmanager
def _engine_call(during: str) -> Iterator[None]:
    """Connection errors of one engine call, as EngineUnavailable."""
    try:
        yield
    except docker.errors.APIError:
        raise  # the engine answered (404 no such image, 409, 500): not a lost connection, although an HTTPError
    except CONNECTION_ERRORS as exc:
        raise lost_engine(during, exc) from None


def _auth(credentials: Credentials | None) -> dict[str, str] | None:
    if credentials is None:
        return None
    return {"username": credentials.username, "password": credentials.password}


CONNECT_TIMEOUT = 10  # seconds for the first contact (docker-py asks the engine's API version at once)
OLDEST_API = "1.24"  # the oldest Docker API docker-py 7 speaks; only used to ask the engine for its own


def _api_client(kwargs: dict[str, Any], *, timeout: float, version: str) -> docker.APIClient:
    """An APIClient that, on TLS, verifies with the engine's own CA: requests would otherwise let the
    environment's REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace `ca.pem` (and route the engine through proxies)."""
    api = docker.APIClient(**kwargs, timeout=timeout, version=version)
    if kwargs.get("tls"):
        api.trust_env = False
    return api


def _connect(kwargs: dict[str, Any], timeout: int) -> docker.DockerClient:
    """A DockerClient on the engine's own API version, with the first contact bounded by CONNECT_TIMEOUT."""
    first = _api_client(kwargs, timeout=min(timeout, CONNECT_TIMEOUT), version=OLDEST_API)
    try:
        version = str(first.version(api_version=False)["ApiVersion"])
    finally:
        first.close()
    client = docker.DockerClient(**kwargs, timeout=timeout, version=version)
    if kwargs.get("tls"):
        client.api.trust_env = False
    return client


def engine_kwargs(url: str, certs: str | None = None) -> dict[str, Any]:
    """docker-py connection arguments for one engine URL: unix://, tcp:// (TLS with `certs`: ca.pem, cert.pem,
    key.pem, verified), ssh:// (the system's ssh client, so ~/.ssh/config and agents work)."""
    kwargs: dict[str, Any] = {"base_url": url}
    if certs:
        folder = Path(certs)
        kwargs["tls"] = docker.tls.TLSConfig(
            client_cert=(str(folder / "cert.pem"), str(folder / "key.pem")),
            ca_cert=str(folder / "ca.pem"),
            verify=True,
        )
    if url.startswith("ssh://"):
        kwargs["use_ssh_client"] = True
    return kwargs


class DockerEngine:
    def __init__(
        self,
        environment: Mapping[str, str] | None = None,
        timeout: int = 120,
        *,
        connection: dict[str, Any] | None = None,
        name: str = "default",
    ) -> None:
        """An engine from the environment (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or from explicit
        docker-py `connection` arguments (`engine_kwargs`, for DCS_ENGINES)."""
        self._environment = dict(environment or {})
        self._timeout = timeout
        self.name = name
        label = "" if name == "default" else f" {name}"
        try:
            self._kwargs = connection if connection is not None else kwargs_from_env(environment=self._environment)
            self.client = _connect(self._kwargs, timeout)
        except (docker.errors.DockerException, *CONNECTION_ERRORS, OSError) as exc:
            detail = str(exc).strip() or type(exc).__name__
            raise EngineUnavailable(
                f"Cannot reach the Docker engine{label}: {detail[:300]}. Is dockerd running? Set DOCKER_HOST "
                "(or DCS_ENGINES) if it listens elsewhere."
            ) from None
        self.build_calls = 0  # engine build API calls made: benchmarks check "no build at all"

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def ping(self, timeout: float | None = None) -> bool:
        """Whether the engine answers; with `timeout`, a dead host cannot hold the caller longer than that."""
        try:
            if timeout is None:
                return bool(self.client.ping())
            quick = _api_client(self._kwargs, timeout=timeout, version=self.api.api_version)
            try:
                return bool(quick.ping())
            finally:
                quick.close()
        except (docker.errors.DockerException, *CONNECTION_ERRORS, OSError):  # OSError: e.g. its certs are gone
            return False

    # ------------------------------------------------------------ images
    def inspect(self, image: str) -> dict[str, Any] | None:
        try:
            with _engine_call(f"a look at {image}"):
                return self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"Docker engine error: {exc}") from None

    def local_digest(self, ref: ImageRef) -> str | None:
        """The registry digest of the local copy of `ref`, if the engine knows one."""
        info = self.inspect(str(ref))
        if not info:
            return None
        for repo_digest in info.get("RepoDigests") or []:
            name, _, digest = repo_digest.partition("@")
            if name in (ref.repository, f"{ref.domain}/{ref.path}", ref.path):
                return digest
        return None

    def has_repo_digest(self, ref: ImageRef, digest: str) -> bool:
        return self.inspect(f"{ref.repository}@{digest}") is not None

    def tag(self, image: str, repository: str, tag: str) -> None:
        with _engine_call(f"tagging {repository}:{tag}"):
            self.api.tag(image, repository, tag=tag)

    # ------------------------------------------------------------ build
    def build(
        self,
        dockerfile: str,
        *,
        tag: str,
        timeout: int,
        on_step: BuildEvent | None = None,
        on_line: Callable[[str], None] | None = None,
        nocache: bool = False,
        context: Mapping[str, bytes] | None = None,
        buildargs: Mapping[str, str] | None = None,
        network_mode: str = "bridge",
        modes: Mapping[str, int] | None = None,
    ) -> BuildResult:
        """Build from a Dockerfile text and context files. Raises BuildFailed/BuildTimedOut with the failing step.

        `buildargs` are for the engine's predefined proxy arguments, which it keeps out of the image history."""
        deadline = time.monotonic() + timeout
        # A dedicated client whose socket read timeout is the build timeout: a silent step cannot hang us.
        api = _api_client(self._kwargs, timeout=timeout, version=self.api.api_version)
        lines: list[str] = []
        step_line, image_id = "", None
        self.build_calls += 1
        try:
            stream = api.build(
                fileobj=_context_tar(dockerfile, context, modes),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                nocache=nocache,
                platform="linux/amd64",
                timeout=timeout,
                buildargs=dict(buildargs or {}),
                network_mode=network_mode,
            )
            for event in _events(stream, deadline, timeout):
                if "stream" in event:
                    # Terminal codes stop here: the log, Slack and `dcs build > file` get plain text.
                    for line in plain(event["stream"]).splitlines():
                        if not line.strip():
                            continue
                        lines.append(line)
                        if on_line:
                            on_line(line)
                        match = STEP.match(line)
                        if match:
                            step_line = line
                            if on_step:
                                on_step(int(match.group(1)), int(match.group(2)), match.group(3))
                elif "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                    image_id = event["aux"]["ID"]
                elif "error" in event:
                    message = plain((event.get("errorDetail") or {}).get("message") or event["error"])
                    lines.append(f"ERROR: {message}")
                    raise BuildFailed(
                        f"Build failed at {step_line or 'start'}: {message.strip()}",
                        step=step_line,
                        log_tail="\n".join(lines[-40:]),
                    )
        except BuildTimedOut as exc:
            raise BuildTimedOut(str(exc), step=step_line, log_tail="\n".join(lines[-40:])) from None
        except docker.errors.APIError as exc:
            raise BuildFailed(
                f"The engine refused the build: {exc.explanation or exc}",
                step=step_line,
                log_tail="\n".join(lines[-40:]),
            ) from None
        except CONNECTION_ERRORS as exc:
            raise lost_engine("the build", exc) from None
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"The Docker engine failed during the build: {exc}") from None
        finally:
            api.close()  # closing the connection makes the engine cancel an unfinished build
        if not image_id:
            found = next((line for line in reversed(lines) if line.startswith("Successfully built ")), None)
            if not found:
                raise BuildFailed(
                    "The build ended without an image id.", step=step_line, log_tail="\n".join(lines[-40:])
                )
            image_id = found.split()[-1]
        return BuildResult(image_id=image_id, log=lines)

    def remove_stage(self, label: str, value: str) -> None:
        """Remove the untagged images of a build stage labelled `label=value` (an install stage that held a
        credential): only dangling images carry it, so no tagged image or other build is touched."""
        try:
            with _engine_call("removing the install stage"):
                self.api.prune_images(filters={"label": f"{label}={value}", "dangling": True})
        except docker.errors.APIError as exc:
            log.warning("could not remove the install stage %s: %s", value, exc.explanation or exc)

    # ------------------------------------------------------------ registry traffic
    def push(
        self, repository: str, tag: str, credentials: Credentials | None, on_line: Callable[[str], None] | None = None
    ) -> str:
        """Push one tag; returns the manifest digest the registry reported."""
        digest = None
        try:
            for event in self.api.push(repository, tag=tag, stream=True, decode=True, auth_config=_auth(credentials)):
                if "error" in event:
                    message = plain((event.get("errorDetail") or {}).get("message") or event["error"])
                    kind = classify_registry_error(message)
                    raise (kind if kind is not RegistryError else PushFailed)(
                        f"Push of {repository}:{tag} failed: {_explain(kind, message)}"
                    )
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
                if on_line and event.get("status"):
                    on_line(plain(f"{event.get('id', '')} {event['status']}").strip())
        except docker.errors.APIError as exc:
            kind = classify_registry_error(str(exc))
            raise (kind if kind is not RegistryError else PushFailed)(
                f"Push of {repository}:{tag} failed: {_explain(kind, exc.explanation or str(exc))}"
            ) from None
        except CONNECTION_ERRORS as exc:
            raise lost_engine(f"the push of {repository}:{tag}", exc) from None
        if not digest:
            raise PushFailed(f"Push of {repository}:{tag} ended without a digest from the registry.")
        return digest

    def pull(self, ref: ImageRef, credentials: Credentials | None) -> None:
        """Pull `ref` (tag or digest). Only call after a HEAD showed the image is needed."""
        try:
            for event in self.api.pull(
                ref.repository if ref.domain == "docker.io" else f"{ref.domain}/{ref.path}",
                tag=ref.digest or ref.tag or "latest",
                stream=True,
                decode=True,
                auth_config=_auth(credentials),
            ):
                if "error" in event:
                    message = plain(event["error"])
                    kind = classify_registry_error(message)
                    raise kind(f"Pull of {ref} failed: {_explain(kind, message)}")
        except docker.errors.APIError as exc:
            kind = classify_registry_error(str(exc))
            raise kind(f"Pull of {ref} failed: {_explain(kind, exc.explanation or str(exc))}") from None
        except CONNECTION_ERRORS as exc:
            raise lost_engine(f"the pull of {ref}", exc) from None

    # ------------------------------------------------------------ doctor
    def run_init_scripts(
        self, image: str, runner: str, scripts: list[str], timeout: int, environment: Mapping[str, str]
    ) -> str | None:
        """Run `sh -c runner dcs-init SCRIPT...` as root in a throw-away container (entrypoint overridden).

        Returns the output, or None when it did not finish within `timeout` seconds (the container is removed).
        """
        container = None
        try:
            container = self.client.containers.create(
                image,
                entrypoint=["/bin/sh", "-c", runner, "dcs-init"],
                command=list(scripts),
                user="0:0",
                environment=dict(environment),
                labels={"io.github.dcs-bot.domain.doctor": "1"},
            )
            container.start()
            try:
                container.wait(timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if "timed out" not in str(exc).lower():
                    raise lost_engine(f"the init scripts of {image}", exc) from None
                return None
            return _container_output(container)
        except docker.errors.APIError as exc:
            raise DcsError(f"Could not run the init scripts of {image}: {exc.explanation or exc}") from None
        except CONNECTION_ERRORS as exc:
            raise lost_engine(f"the init scripts of {image}", exc) from None
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except (docker.errors.DockerException, *CONNECTION_ERRORS):
                    log.warning("could not remove init-script container %s", container.id[:12])

    def run_probe(
        self,
        image: str,
        script: str,
        timeout: int = 60,
        *,
        environment: Mapping[str, str] | None = None,
        user: str | None = "0:0",
    ) -> str | None:
        """Run `script` with /bin/sh in a throw-away container (entrypoint overridden, no network), as `user`
        (None: the image's default user), with `environment` added to the image's.

        Returns its output, or None when the container could not even start a shell.
        """
        container = None
        try:
            container = self.client.containers.create(
                image,
                entrypoint=["/bin/sh", "-c"],
                command=[script],
                user=user,
                environment=dict(environment or {}),
                network_disabled=True,
                labels={"io.github.dcs-bot.domain.doctor": "1"},
            )
            container.start()
            container.wait(timeout=timeout)
            return container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except docker.errors.APIError as exc:
            text = str(exc).lower()
            if "no such file" in text or "executable file not found" in text or "exec format" in text:
                return None
            raise DcsError(f"Could not run the doctor on {image}: {exc.explanation or exc}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            if "timed out" not in str(exc).lower():
                raise lost_engine(f"the doctor of {image}", exc) from None
            raise DcsError(f"The doctor timed out after {timeout} s on {image}.") from None
        except CONNECTION_ERRORS as exc:
            raise lost_engine(f"the doctor of {image}", exc) from None
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except (docker.errors.DockerException, *CONNECTION_ERRORS):
                    log.warning("could not remove doctor container %s", container.id[:12])


def _container_output(container: Any) -> str:
    return container.logs(stdout=True, stderr=True).decode("utf-8", "replace")


def _events(stream: Iterator[dict[str, Any]], deadline: float, timeout: int) -> Iterator[dict[str, Any]]:
    try:
        for event in stream:
            yield event
            if time.monotonic() > deadline:
                raise BuildTimedOut(f"Build timed out after {timeout} s.")
    except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        # The socket read timeout equals the build timeout: a step stayed silent that long.
        raise BuildTimedOut(f"Build timed out after {timeout} s.") from None


def _explain(kind: type[DcsError], message: str) -> str:
    hints: dict[type[DcsError], str] = {
        RegistryAuthError: "the registry refused the credentials; check the username and the password variable.",
        RegistryUnreachable: "the registry cannot be reached; is it up, and is the host right?",
        PullLimitReached: "the registry's rate limit was reached (toomanyrequests); wait for the window to "
        "reset or authenticate with an account that has a higher limit.",
    }
    hint = hints.get(kind)
    return f"{hint} ({message.strip()})" if hint else message.strip()
