"""Real servers on 127.0.0.1 for builds to fetch from: static files, a PEP 503 package index, a Maven repository.

`StaticServer` serves fixed paths (bytes or files on disk) over HTTP or HTTPS (a `TestCA` certificate for
127.0.0.1/localhost), optionally behind HTTP basic auth, and records every request: method, path, the
Authorization header as it arrived, the user it named, whether it was accepted, the User-Agent and the status.
Failed TLS handshakes (a client that does not trust the CA) are recorded in `tls_failures`.

`PackageIndex` is a "simple" index (PEP 503) of wheels with `#sha256=` fragments, so `--require-hashes` works;
`MavenRepository` lays out group/artifact/version paths with .sha1/.sha256/.md5 files and maven-metadata.xml, and
can publish a deliberately wrong checksum.

All servers bind 127.0.0.1 on a free port and run in daemon threads; `stop()` (or the fixture) ends them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import secrets
import shutil
import ssl
import sys
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.threaded import OwnedServer, ThreadedServer
from tests.support.tls import TestCA
from tests.support.wheels import ZIP_DATE, make_wheel, normalize, sha256_file

CHUNK = 1 << 20
HTML = "text/html; charset=utf-8"
CONTENT_TYPES = {".html": HTML, ".xml": "application/xml", ".whl": "application/zip"}


@dataclass(frozen=True)
class ServedRequest:
    method: str
    path: str
    authorization: str | None  # the header exactly as it arrived
    username: str | None  # the user named by Basic credentials
    authorized: bool  # True when no auth is required or the credentials matched
    user_agent: str
    status: int


@dataclass(frozen=True)
class ServedFile:
    url: str
    sha256: str
    size: int


class _Server(OwnedServer):
    owner: StaticServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError):
            with self.owner._lock:
                self.owner.tls_failures.append(f"{type(error).__name__}: {error}")
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        header = self.headers.get("Authorization")
        username, authorized = owner._check_auth(header)
        route = owner._route(path) if authorized else None
        status = 401 if not authorized else 200 if route else 404
        owner._record(
            ServedRequest(self.command, path, header, username, authorized, self.headers.get("User-Agent", ""), status)
        )
        if status != 200:
            body = b"401 Unauthorized\n" if status == 401 else b"404 Not Found\n"
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="dcs-test"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        content, kind = route
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        if isinstance(content, Path):
            with content.open("rb") as handle:
                shutil.copyfileobj(handle, self.wfile, CHUNK)
        else:
            self.wfile.write(content)

    do_HEAD = do_GET


class StaticServer(ThreadedServer):
    """Serves `add`ed paths; anything else is a 404. Use as a context manager or `start()`/`stop()`."""

    handler = _Handler
    server_class = _Server

    def __init__(self, *, ca: TestCA | None = None, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.ca = ca
        self.auth = auth
        self._routes: dict[str, tuple[bytes | Path, str]] = {}
        self._requests: list[ServedRequest] = []
        self.tls_failures: list[str] = []

    def prepare(self, server: OwnedServer) -> None:
        if self.ca is not None:
            # The handshake happens on the first read, in the request's thread, not in accept().
            server.socket = self.ca.server_context().wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        if self.auth is None:
            return self.url
        user, password = self.auth
        return f"{'https' if self.ca else 'http'}://{user}:{password}@127.0.0.1:{self.port}"

    # content --------------------------------------------------------------------------------------
    def add(self, path: str, content: bytes | Path, content_type: str | None = None) -> str:
        """Serve `content` (bytes, or a file read at request time) at `path`; returns its URL."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        kind = content_type or CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")
        with self._lock:
            self._routes[path] = (content, kind)
        return self.url + path if self.started else path

    def serve(self, path: str, data: bytes) -> ServedFile:
        """Serve `data` at `path`; returns its URL and sha256 (for catalog `files`/`jars` entries)."""
        self.add(path, data)
        return ServedFile(self.url + path, hashlib.sha256(data).hexdigest(), len(data))

    def _route(self, path: str) -> tuple[bytes | Path, str] | None:
        with self._lock:
            return self._routes.get(path)

    # recording ------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[ServedRequest]:
        with self._lock:
            return list(self._requests)

    def paths(self, method: str = "GET") -> list[str]:
        return [r.path for r in self.requests if r.method == method]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.tls_failures.clear()

    def _record(self, request: ServedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _check_auth(self, header: str | None) -> tuple[str | None, bool]:
        username = None
        if header and header[:6].lower() == "basic ":
            try:
                username, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, self.auth is None
            if self.auth is not None:
                ok = secrets.compare_digest(username, self.auth[0]) and secrets.compare_digest(password, self.auth[1])
                return username, ok
        return username, self.auth is None


# --- a PEP 503 package index ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexedWheel:
    path: Path
    filename: str
    project: str  # normalized name
    sha256: str
    url: str  # just the path when the index was not started yet


class PackageIndex(StaticServer):
    """A "simple" index: `/simple/` lists projects, `/simple/<project>/` links `/files/<wheel>#sha256=...`.

    `index_url` is the URL for `pip --index-url` without credentials, `index_url_with_credentials` with them.
    `make_wheel(...)` builds a tiny wheel (see tests/support/wheels.py) into `workdir` and publishes it.
    """

    def __init__(self, workdir: Path, *, ca: TestCA | None = None, auth: tuple[str, str] | None = None) -> None:
        super().__init__(ca=ca, auth=auth)
        self.workdir = workdir
        self._projects: dict[str, dict[str, str]] = {}  # project -> {filename: sha256}
        self.add("/simple/", self._root_page(), HTML)

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    @property
    def index_url_with_credentials(self) -> str:
        return f"{self.url_with_credentials}/simple/"

    def add_wheel(self, path: Path, sha256: str | None = None) -> IndexedWheel:
        project = normalize(path.name.split("-")[0])
        digest = sha256 or sha256_file(path)
        url = self.add(f"/files/{path.name}", path)
        with self._lock:
            self._projects.setdefault(project, {})[path.name] = digest
            files = dict(self._projects[project])
        self.add(f"/simple/{project}/", _page(f"Links for {project}", _links(files)), HTML)
        self.add("/simple/", self._root_page(), HTML)
        return IndexedWheel(path, path.name, project, digest, url)

    def make_wheel(self, name: str, version: str, **options: Any) -> IndexedWheel:
        """Build `make_wheel(workdir, name, version, **options)` and publish it."""
        return self.add_wheel(make_wheel(self.workdir, name, version, **options))

    def _root_page(self) -> bytes:
        with self._lock:
            names = sorted(self._projects)
        return _page("Simple index", [f'<a href="/simple/{name}/">{name}</a>' for name in names])


def _links(files: dict[str, str]) -> list[str]:
    return [
        f'<a href="/files/{html.escape(name)}#sha256={digest}">{html.escape(name)}</a>'
        for name, digest in sorted(files.items())
    ]


def _page(title: str, lines: list[str]) -> bytes:
    body = "<br/>\n".join(lines)
    return f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n{body}\n</body></html>\n".encode()


# --- a Maven repository ------------------------------------------------------------------------------------

CHECKSUMS = ("sha1", "sha256", "md5")


@dataclass(frozen=True)
class MavenArtifact:
    coordinates: str  # group:artifact:version
    path: str  # /com/example/lib/1.0/lib-1.0.jar
    url: str
    data: bytes
    sha1: str
    sha256: str
    md5: str


class MavenRepository(StaticServer):
    """Maven 2 layout: `/<group as dirs>/<artifact>/<version>/<artifact>-<version>.jar` (+ .pom), every file
    with .sha1/.sha256/.md5 next to it, and `/<group>/<artifact>/maven-metadata.xml` listing the versions.
    `url` is the repository root to configure (like https://repo1.maven.org/maven2)."""

    def __init__(self, *, ca: TestCA | None = None, auth: tuple[str, str] | None = None) -> None:
        super().__init__(ca=ca, auth=auth)
        self._versions: dict[tuple[str, str], list[str]] = {}

    def add_artifact(
        self, coordinates: str, *, data: bytes | None = None, wrong_checksums: tuple[str, ...] = ()
    ) -> MavenArtifact:
        """Publish `group:artifact:version` (a small real jar unless `data` is given). The checksum files named
        in `wrong_checksums` ("sha1", "sha256", "md5") are published with a digest of other bytes."""
        group, artifact, version = coordinates.split(":")
        if unknown := set(wrong_checksums) - set(CHECKSUMS):
            raise ValueError(f"unknown checksum kinds {sorted(unknown)}; use {CHECKSUMS}")
        base = f"/{group.replace('.', '/')}/{artifact}"
        jar = data if data is not None else _jar(coordinates)
        stem = f"{base}/{version}/{artifact}-{version}"
        self._publish(f"{stem}.jar", jar, wrong_checksums)
        self._publish(f"{stem}.pom", _pom(group, artifact, version), ())
        with self._lock:
            versions = self._versions.setdefault((group, artifact), [])
            if version not in versions:
                versions.append(version)
            listed = list(versions)
        self._publish(f"{base}/maven-metadata.xml", _metadata(group, artifact, listed), ())
        digests = {kind: hashlib.new(kind, jar).hexdigest() for kind in CHECKSUMS}
        return MavenArtifact(coordinates, f"{stem}.jar", f"{self.url}{stem}.jar", jar, **digests)

    def _publish(self, path: str, data: bytes, wrong: tuple[str, ...]) -> None:
        self.add(path, data, "application/java-archive" if path.endswith(".jar") else None)
        for kind in CHECKSUMS:
            source = data + b"\0tampered" if kind in wrong else data
            self.add(f"{path}.{kind}", hashlib.new(kind, source).hexdigest().encode(), "text/plain")


def _jar(coordinates: str) -> bytes:
    """A tiny real jar (a zip with a manifest and one resource), the same bytes for the same coordinates."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as jar:
        for name, text in (
            ("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: dcs-bot tests\r\n\r\n"),
            ("dcs-test/coordinates.txt", coordinates + "\n"),
        ):
            jar.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), text)
    return out.getvalue()


def _pom(group: str, artifact: str, version: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        f"  <modelVersion>4.0.0</modelVersion>\n  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n"
        f"  <version>{version}</version>\n  <packaging>jar</packaging>\n</project>\n"
    ).encode()


def _metadata(group: str, artifact: str, versions: list[str]) -> bytes:
    listed = "".join(f"      <version>{v}</version>\n" for v in versions)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n  <groupId>{group}</groupId>\n'
        f"  <artifactId>{artifact}</artifactId>\n  <versioning>\n    <latest>{versions[-1]}</latest>\n"
        f"    <release>{versions[-1]}</release>\n    <versions>\n{listed}    </versions>\n"
        "    <lastUpdated>20240101000000</lastUpdated>\n  </versioning>\n</metadata>\n"
    ).encode()
