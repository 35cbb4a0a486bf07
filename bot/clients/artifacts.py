"""Downloads for builds: files given by https URL and jars (URL or Maven coordinates), checksum-verified.

Through the build settings' proxy and CA (the CA on top of the public bundle), never the bot's own environment
proxies or ~/.netrc (`trust_env = False`): a download sends no credential anywhere. Every byte is checked
against the catalog's sha256, and a Maven jar also against the checksum its repository publishes next to it
(`.sha256`, else `.sha1`); a mismatch is a clear error naming the field and both values.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import certifi
import requests

from bot.domain.build_settings import BuildSettings
from bot.errors import InvalidInput

TIMEOUT = (10, 120)  # connect, read (seconds)
MAX_BYTES = 512 * 1024 * 1024


class ChecksumMismatch(InvalidInput):
    pass


class ArtifactClient:
    def __init__(self, settings: BuildSettings, ca_pem: bytes | None = None) -> None:
        self.settings = settings
        self.ca_pem = ca_pem

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        session = requests.Session()
        session.trust_env = False
        proxies = {k: v for k, v in (("http", self.settings.http_proxy), ("https", self.settings.https_proxy)) if v}
        if proxies and self.settings.no_proxy:
            proxies["no_proxy"] = self.settings.no_proxy
        session.proxies.update(proxies)
        bundle = None
        if self.ca_pem:
            handle, bundle = tempfile.mkstemp(prefix="dcs-ca-", suffix=".pem")
            with os.fdopen(handle, "wb") as out, open(certifi.where(), "rb") as public:
                out.write(public.read().rstrip(b"\n") + b"\n" + self.ca_pem)
            session.verify = bundle
        try:
            yield session
        finally:
            session.close()
            if bundle:
                os.unlink(bundle)

    def get(self, url: str, field: str, *, sha256: str | None = None) -> bytes:
        with self._session() as session:
            data = _required(_fetch(session, url, field))
        if sha256 is not None:
            check_sha256(data, sha256, field, url)
        return data

    def maven_jar(self, repository: str, path: str, field: str, *, sha256: str | None = None) -> bytes:
        """The jar at `repository/path`, checked against the repository's published checksum (and `sha256`)."""
        url = f"{repository.rstrip('/')}/{path}"
        with self._session() as session:
            data = _required(_fetch(session, url, field))
            published, algorithm = None, "sha256"
            for algorithm in ("sha256", "sha1"):
                published = _fetch(session, f"{url}.{algorithm}", field, missing_ok=True)
                if published is not None:
                    break
        if published is None:
            raise InvalidInput(
                field, url, "has no .sha256 or .sha1 file in the repository", "Give the jar's sha256 in the catalog."
            )
        expected = published.decode("ascii", "replace").split()[0].strip().lower() if published.strip() else ""
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise ChecksumMismatch(
                field,
                url,
                f"does not match the {algorithm} the repository publishes ({expected or 'empty'} expected, "
                f"{actual} downloaded)",
                "The download or the repository is corrupt or tampered with: check the repository (or its mirror) "
                "and build again.",
            )
        if sha256 is not None:
            check_sha256(data, sha256, field, url)
        return data


def _required(data: bytes | None) -> bytes:
    assert data is not None  # only missing_ok fetches answer None
    return data


def check_sha256(data: bytes, expected: str, field: str, url: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(
            field,
            url,
            f"does not match its sha256 ({expected} expected, {actual} downloaded)",
            "Fix the sha256 in the catalog if the file changed on purpose; otherwise the download is not the file "
            "you reviewed.",
        )


def _fetch(session: requests.Session, url: str, field: str, *, missing_ok: bool = False) -> bytes | None:
    try:
        with session.get(url, timeout=TIMEOUT, stream=True, allow_redirects=True) as response:
            if missing_ok and response.status_code == 404:
                return None
            if response.status_code != 200:
                raise InvalidInput(
                    field,
                    url,
                    f"could not be downloaded (HTTP {response.status_code})",
                    "Check the URL (and that the repository needs no login).",
                )
            chunks, size = [], 0
            for chunk in response.iter_content(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise InvalidInput(field, url, "is larger than 512 MiB", "Bake smaller files.")
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.exceptions.SSLError as exc:
        raise InvalidInput(
            field,
            url,
            f"failed TLS verification ({type(exc).__name__})",
            "Set ca_bundle (DCS_PIP_CA_BUNDLE) to the CA of the server or of the TLS-intercepting proxy; see the "
            'README, "Corporate networks".',
        ) from None
    except requests.RequestException as exc:
        raise InvalidInput(
            field,
            url,
            f"could not be reached ({type(exc).__name__})",
            "Check the URL and the build settings https_proxy/no_proxy (DCS_BUILD_HTTPS_PROXY); see the README, "
            '"Corporate networks".',
        ) from None
