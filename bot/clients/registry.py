"""Registry HTTP API v2 client (requests): manifest HEADs for digests, without pulling.

A HEAD never counts as a Docker Hub pull. Auth follows the registry's 401 challenge: `Bearer realm=…`
(token from the realm, with basic credentials when we have them) or `Basic realm=…`.

Tokens are reused within their lifetime (`expires_in`, 60 s when the service does not say), and once a
registry has sent its challenge, a token for another repository on it is fetched before the first request:
a check run costs one manifest HEAD per base, no 401 round trip. The client keeps counters of what it sent
(`counts`), never a list of requests: it lives as long as the bot.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import requests

from bot.domain.credentials import Credentials
from bot.domain.ratelimit import parse_ratelimit_headers
from bot.domain.realms import check_token_realm, is_loopback_ip
from bot.domain.refs import DOCKER_HUB, ImageRef
from bot.errors import (
    ManifestNotFound,
    PullLimitReached,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachable,
)

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
DEFAULT_TOKEN_SECONDS = 60  # the token spec's default when a token service gives no expires_in
TOKEN_MARGIN_SECONDS = 10  # a token this close to its end is renewed before the request, not after a 401


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def classify_registry_error(text: str) -> type[RegistryError]:
    """Map an error text from a registry or the engine to the condition a user can act on."""
    low = text.lower()
    if "too many failed login" in low:
        return RegistryAuthError
    if "toomanyrequests" in low or "too many requests" in low or "rate limit" in low:
        return PullLimitReached
    if any(
        s in low
        for s in (
            "unauthorized",
            "authentication required",
            "no basic auth credentials",
            "denied",
            "incorrect username or password",
            "401",
        )
    ):
        return RegistryAuthError
    if any(
        s in low
        for s in (
            "connection refused",
            "no such host",
            "dial tcp",
            "i/o timeout",
            "connection reset",
            "network is unreachable",
            "eof",
        )
    ):
        return RegistryUnreachable
    if "manifest unknown" in low or "not found" in low:
        return ManifestNotFound
    return RegistryError


class RegistryClient:
    def __init__(
        self,
        *,
        dockerhub_registry_url: str = "https://registry-1.docker.io",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        token_realms: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.dockerhub_registry_url = dockerhub_registry_url.rstrip("/")
        # registry host -> token-service hosts it may send credentials to besides its own (bot/domain/realms.py)
        self.token_realms = {k: tuple(v) for k, v in (token_realms or {}).items()}
        self.timeout = timeout
        self.session = session or requests.Session()
        self._tokens: dict[tuple[str, str, str | None], tuple[str, float]] = {}  # → (header, valid until)
        self._challenges: dict[tuple[str, str | None], str] = {}  # (host, user) → its last Bearer challenge
        self.counts: Counter[str] = Counter()  # "HEAD"/"GET" registry requests and "token" requests

    def base_url(self, ref: ImageRef) -> str:
        if ref.domain == DOCKER_HUB:
            return self.dockerhub_registry_url
        # plain HTTP only to a loopback IP literal (parsed: "127.evil.example" is a name, and gets HTTPS)
        scheme = "http" if is_loopback_ip(ref.domain) else "https"
        return f"{scheme}://{ref.domain}"

    def head_manifest(self, ref: ImageRef, credentials: Credentials | None = None) -> ManifestHead:
        """The top-level digest of `ref` (tag or digest) by a manifest HEAD."""
        url = f"{self.base_url(ref)}/v2/{ref.path}/manifests/{ref.reference}"
        response = self._request("HEAD", url, ref, credentials)
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            # Some registries omit the header on HEAD; a digest-pinned ref is its own answer.
            if ref.digest:
                digest = ref.digest
            else:
                raise RegistryError(f"{ref}: the registry did not return a Docker-Content-Digest header.")
        return ManifestHead(
            digest=digest,
            media_type=response.headers.get("Content-Type", ""),
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    def get_manifest(self, ref: ImageRef, credentials: Credentials | None = None) -> tuple[bytes, str, str]:
        """The exact manifest bytes of `ref`, its media type and digest (a GET: on Docker Hub, a pull)."""
        url = f"{self.base_url(ref)}/v2/{ref.path}/manifests/{ref.reference}"
        response = self._request("GET", url, ref, credentials)
        digest = response.headers.get("Docker-Content-Digest") or ref.digest or ""
        return response.content, response.headers.get("Content-Type", ""), digest

    def put_manifest(self, ref: ImageRef, body: bytes, media_type: str, credentials: Credentials | None = None) -> str:
        """Store `body` under the tag of `ref` (moving a tag: the same manifest, no layers, no rebuild).

        Returns the digest the registry answered with."""
        url = f"{self.base_url(ref)}/v2/{ref.path}/manifests/{ref.reference}"
        response = self._request(
            "PUT", url, ref, credentials, actions="pull,push", body=body, content_type=media_type, ok=(200, 201)
        )
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError(f"{ref}: the registry stored the manifest but sent no Docker-Content-Digest.")
        return digest

    def list_tags(self, ref: ImageRef, credentials: Credentials | None = None, *, max_pages: int = 50) -> list[str]:
        """Every tag of `ref`'s repository (`tags/list`, following `Link: <…>; rel="next"`); no pull spent."""
        base = self.base_url(ref)
        url: str | None = f"{base}/v2/{ref.path}/tags/list?n=1000"
        tags: list[str] = []
        for _ in range(max_pages):
            if url is None:
                break
            response = self._request("GET", url, ref, credentials, accept="application/json")
            tags.extend(t for t in (response.json().get("tags") or []) if isinstance(t, str))
            url = _next_link(base, response.headers.get("Link", ""))
        return tags

    # ------------------------------------------------------------ internals
    def _request(
        self,
        method: str,
        url: str,
        ref: ImageRef,
        credentials: Credentials | None,
        *,
        actions: str = "pull",
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = MANIFEST_ACCEPT,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        scope = f"repository:{ref.path}:{actions}"
        user = credentials.username if credentials else None
        key = (ref.domain, scope, user)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            headers["Authorization"] = cached[0]
        elif (ref.domain, user) in self._challenges:
            # A known token service: ask it for this repository's token first instead of collecting a 401.
            headers["Authorization"] = self._remember(key, self._challenges[(ref.domain, user)], credentials, ref)
        response = self._send(method, url, headers, body)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            self._challenges[(ref.domain, user)] = _without_scope(challenge)
            headers["Authorization"] = self._remember(key, challenge, credentials, ref)
            response = self._send(method, url, headers, body)
        return self._check(response, ref, credentials, ok)

    def _remember(
        self, key: tuple[str, str, str | None], challenge: str, credentials: Credentials | None, ref: ImageRef
    ) -> str:
        header, lifetime = self._authorize(challenge, key[1], credentials, ref)
        self._tokens[key] = (header, time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 0))
        return header

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> requests.Response:
        self.counts[method] += 1
        try:
            return self.session.request(
                method, url, headers=headers, data=body, timeout=self.timeout, allow_redirects=True
            )
        except requests.Timeout:
            raise RegistryUnreachable(f"{_host(url)} did not answer within {self.timeout:.0f} s.") from None
        except requests.ConnectionError:
            raise RegistryUnreachable(f"Cannot connect to the registry {_host(url)}: is it up and reachable?") from None

    def _authorize(
        self, challenge: str, scope: str, credentials: Credentials | None, ref: ImageRef
    ) -> tuple[str, float]:
        """The Authorization header a challenge asks for, and how many seconds it may be used."""
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if credentials is None:
                raise RegistryAuthError(
                    f"{ref.domain} needs a username and password: add a registry entry with username and password_env."
                )
            token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
            return f"Basic {token}", float("inf")
        if scheme == "bearer":
            params = dict(_CHALLENGE_PARAM.findall(challenge))
            realm = params.get("realm")
            if not realm:
                raise RegistryError(f"{ref.domain} sent a Bearer challenge without a realm.")
            query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
            if credentials is not None:
                # the realm is what the server said: credentials go only to a token service of this registry
                check_token_realm(realm, registry=ref.domain, api_url=self.base_url(ref), extra=self.token_realms)
            auth = (credentials.username, credentials.password) if credentials else None
            self.counts["token"] += 1
            try:
                # a redirect to another host loses the credentials (requests strips Authorization from it)
                answer = self.session.get(realm, params=query, auth=auth, timeout=self.timeout)
            except requests.RequestException:
                raise RegistryUnreachable(f"Cannot reach the token service {_host(realm)}.") from None
            if "too many failed login" in answer.text.lower():
                raise RegistryAuthError(
                    f"{_host(realm)}: too many failed login attempts: check the "
                    "username and token, then wait before retrying."
                )
            if answer.status_code == 429:
                raise _pull_limit_error(ref, answer)
            if answer.status_code in (401, 403):
                raise RegistryAuthError(f"{_host(realm)} rejected the credentials for {ref.repository}.")
            if answer.status_code != 200:
                raise RegistryError(f"{_host(realm)} answered HTTP {answer.status_code} for a token.")
            body = answer.json()
            token = body.get("token") or body.get("access_token")
            if not token:
                raise RegistryError(f"{_host(realm)} returned no token.")
            return f"Bearer {token}", _lifetime(body.get("expires_in"))
        raise RegistryError(f"{ref.domain} asked for unsupported authentication {scheme or '(none)'}.")

    def _check(
        self, response: requests.Response, ref: ImageRef, credentials: Credentials | None, ok: tuple[int, ...] = (200,)
    ) -> requests.Response:
        status = response.status_code
        if status in ok:
            return response
        if status == 401 or status == 403:
            who = f" as {credentials.username}" if credentials else " anonymously"
            raise RegistryAuthError(
                f"{ref.domain} refused the credentials{who} for {ref.repository}: check the "
                "username and the password variable of its registry entry."
            )
        if status == 404:
            raise ManifestNotFound(f"{ref} does not exist in the registry (no such repository or tag).")
        if status == 429:
            if "too many failed login" in response.text.lower():
                raise RegistryAuthError(
                    f"{ref.domain}: too many failed login attempts: check the username "
                    "and token, then wait before retrying."
                )
            raise _pull_limit_error(ref, response)
        raise RegistryError(f"{ref.domain} answered HTTP {status} for {ref}.")


def _pull_limit_error(ref: ImageRef, response: requests.Response) -> PullLimitReached:
    try:
        budget = parse_ratelimit_headers(response.headers)
    except ValueError:
        budget = None
    numbers = ""
    if budget is not None and not budget.unlimited:
        numbers = f" ({budget.describe()})"
    return PullLimitReached(
        f"{ref.domain} pull rate limit reached (toomanyrequests) for {ref.repository}{numbers}: pulls are "
        "refused until the window resets. Authenticate with an account that has a higher limit, or mirror "
        "the image to your own registry.",
        limit=budget.limit if budget else None,
        remaining=budget.remaining if budget else None,
        window_seconds=budget.window_seconds if budget else None,
    )


def _next_link(base: str, link: str) -> str | None:
    """The next page of a paginated answer (`Link: </v2/…?last=x&n=100>; rel="next"`), on the same host only."""
    match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    if not match:
        return None
    target = match.group(1)
    if target.startswith("/"):
        return base + target
    return target if target.startswith(base + "/") else None


def _lifetime(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_SECONDS
    return seconds if seconds > 0 else DEFAULT_TOKEN_SECONDS


def _without_scope(challenge: str) -> str:
    """A challenge with its scope left out: reused for other repositories, each asks for its own."""
    scheme = challenge.split(" ", 1)[0]
    params = [f'{k}="{v}"' for k, v in _CHALLENGE_PARAM.findall(challenge) if k not in ("scope", "error")]
    return f"{scheme} " + ",".join(params)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
