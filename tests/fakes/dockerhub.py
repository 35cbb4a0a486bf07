"""A local Docker Hub: the token service (auth.docker.io) and the registry (registry-1.docker.io).

Both roles live on one server: the token realm is `{url}/token`, the registry API is `{url}/v2/`.
Pull-limit headers follow Docker's documented format; a manifest GET spends a pull, a HEAD does not.

`GET /v2/<name>/tags/list` follows the distribution spec (/work/notes/registry-notes.md §3): `{"name", "tags"}`
sorted lexically, `n` (page size) and `last` (start after), and a `Link: <...>; rel="next"` header while more
tags remain (relative by default, `tags_link="absolute"` for a full URL; `tags_page_size` caps pages even
without `n`). It needs a pull-scoped token like manifests and spends no pull. Unknown repository: 404
NAME_UNKNOWN; a bad `n`: 400 PAGINATION_NUMBER_INVALID.

Seeding: `add_manifest(name, tag)` (also adds the tag), `remove_tag`, `push_new_digest`; budgets with
`set_rate_limit`, `set_unlimited`, `set_exhausted`, `queue_rate_limit`. Records: `counts()`,
`token_requests()`, `tags_requests()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from tests.fakes.http import FakeHTTPServer, RecordedRequest, Response

SERVICE = "registry.docker.io"
RATELIMIT_PREVIEW = "ratelimitpreview/test"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
PULL_LIMIT_MESSAGE = (
    "You have reached your pull rate limit. You may increase the limit by authenticating "
    "and upgrading: https://www.docker.com/increase-rate-limit"
)
DEFAULT_REPOSITORIES = {
    RATELIMIT_PREVIEW: ["latest"],
    **{
        f"databricksruntime/{image}": ["15.4-LTS", "16.4-LTS", "17.3-LTS"]
        for image in ("minimal", "python", "dbfsfuse", "standard")
    },
}
DEFAULT_REPOSITORIES["databricksruntime/standard"] += ["experimental", "latest"]
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_TAGS_PATH = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


@dataclass(frozen=True)
class PullBudget:
    """What the rate-limit headers say. `limit=None` means unlimited: no ratelimit headers at all."""

    limit: int | None = 100
    remaining: int = 76
    window: int = 21600
    exhausted: bool = False  # answer 429 even to HEAD (Docker's abuse limit, or a forced exhaustion)


@dataclass
class _Manifest:
    media_type: str
    body: bytes
    digest: str
    private: bool = False


@dataclass(frozen=True)
class _Token:
    identity: str | None  # None = anonymous
    repositories: frozenset[str]
    expires_at: float


class FakeDockerHub(FakeHTTPServer):
    def __init__(
        self,
        users: dict[str, str] | None = None,
        anonymous_budget: PullBudget | None = None,
        user_budget: PullBudget | None = None,
        source_ip: str = "203.0.113.7",
    ) -> None:
        super().__init__()
        self.users = dict(users) if users is not None else {"dcsbot": "dckr_pat_test"}  # username -> token
        self.source_ip = source_ip
        self.too_many_failed_logins = False
        self.tags_page_size: int | None = None  # server-side cap on tags/list pages (None: all unless `n`)
        self.tags_link = "relative"  # or "absolute": the form of the Link header's URL
        self._default_user_budget = user_budget or PullBudget(limit=200, remaining=200)
        self._budgets: dict[str | None, PullBudget] = {None: anonymous_budget or PullBudget()}
        self._queued: deque[PullBudget] = deque()
        self._tokens: dict[str, _Token] = {}
        self._manifests: dict[str, dict[str, _Manifest]] = {}
        for name, tags in DEFAULT_REPOSITORIES.items():
            for tag in tags:
                self.add_manifest(name, tag)

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # configuration --------------------------------------------------------------------------------
    def add_manifest(
        self, name: str, ref: str = "latest", media_type: str = OCI_INDEX, private: bool = False, revision: int = 1
    ) -> str:
        """Serve `name:ref`; returns its digest (the sha256 of the manifest bytes, as a registry computes)."""
        platform = {"architecture": "amd64", "os": "linux"}
        child = "sha256:" + hashlib.sha256(f"{name}:{ref}:{revision}".encode()).hexdigest()
        if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
            doc: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": [{"mediaType": child_type, "digest": child, "size": 1234, "platform": platform}],
            }
        else:
            config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": child, "size": 2345}
            doc = {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": []}
        body = json.dumps(doc, indent=3).encode()
        manifest = _Manifest(media_type, body, "sha256:" + hashlib.sha256(body).hexdigest(), private)
        with self._lock:
            self._manifests.setdefault(name, {})[ref] = manifest
        return manifest.digest

    def remove_tag(self, name: str, ref: str) -> None:
        with self._lock:
            del self._manifests[name][ref]

    def push_new_digest(self, name: str, ref: str) -> str:
        """Simulate upstream pushing a new image under the same tag: the digest changes."""
        with self._lock:
            old = self._manifests[name][ref]
        return self.add_manifest(name, ref, old.media_type, old.private, revision=time.time_ns())

    def digest_of(self, name: str, ref: str) -> str:
        with self._lock:
            return self._manifests[name][ref].digest

    def set_rate_limit(self, limit: int, remaining: int, window: int = 21600, user: str | None = None) -> None:
        with self._lock:
            self._budgets[user] = PullBudget(limit, remaining, window)

    def set_unlimited(self, user: str | None = None) -> None:
        with self._lock:
            self._budgets[user] = PullBudget(limit=None)

    def set_exhausted(self, user: str | None = None, head_too: bool = True) -> None:
        with self._lock:
            current = self._budget(user)
            self._budgets[user] = replace(current, remaining=0, exhausted=head_too)

    def queue_rate_limit(self, budget: PullBudget) -> None:
        """Answer the next manifest request with this budget (one-shot; queued ones are used in order)."""
        with self._lock:
            self._queued.append(budget)

    def budget(self, user: str | None = None) -> PullBudget:
        with self._lock:
            return self._budget(user)

    # inspection -----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Manifest requests by method, e.g. {"HEAD": 3, "GET": 1}."""
        return dict(Counter(r.method for r in self.requests if _MANIFEST_PATH.match(r.path)))

    def token_requests(self) -> list[RecordedRequest]:
        return self.requests_matching("GET", path="/token")

    def tags_requests(self, name: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if (m := _TAGS_PATH.match(r.path)) and (name is None or m["name"] == name)]

    # HTTP -----------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        with self._lock:
            if request.path == "/token":
                return self._issue_token(request)
            if request.path in ("/v2/", "/v2"):
                if self._token(request) is None:
                    return self._unauthorized(None)
                return Response(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
            match = _MANIFEST_PATH.match(request.path)
            if match and request.method in ("GET", "HEAD"):
                return self._manifest(request, match["name"], match["ref"])
            match = _TAGS_PATH.match(request.path)
            if match and request.method == "GET":
                return self._tags(request, match["name"])
            return _registry_error(404, "NOT_FOUND", "not found")

    def _issue_token(self, request: RecordedRequest) -> Response:
        if request.query.get("service") != SERVICE:
            return Response(400, {"details": "invalid service"})
        identity = None
        auth = request.header("authorization") or ""
        if auth[:6].lower() == "basic ":
            if self.too_many_failed_logins:
                return Response(429, {"details": "too many failed login attempts for username or IP address"})
            try:
                username, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                username, password = "", ""
            if self.users.get(username) != password or not username:
                return Response(401, {"details": "incorrect username or password"})
            identity = username
        granted = set()
        for scope in request.query_multi.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            repo = self._manifests.get(name)
            if kind == "repository" and "pull" in actions.split(",") and repo is not None:
                if identity is not None or not any(m.private for m in repo.values()):
                    granted.add(name)
        token = _jwt(identity, granted)
        self._tokens[token] = _Token(identity, frozenset(granted), time.time() + 300)
        issued = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        return Response(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued})

    def _token(self, request: RecordedRequest) -> _Token | None:
        token = self._tokens.get(request.bearer_token or "")
        return token if token is not None and token.expires_at > time.time() else None

    def _unauthorized(self, name: str | None, insufficient: bool = False) -> Response:
        challenge = f'Bearer realm="{self.realm}",service="{SERVICE}"'
        detail: Any = None
        if name is not None:
            challenge += f',scope="repository:{name}:pull"'
            detail = [{"Type": "repository", "Class": "", "Name": name, "Action": "pull"}]
        if insufficient:
            challenge += ',error="insufficient_scope"'
        response = _registry_error(401, "UNAUTHORIZED", "authentication required", detail)
        response.headers.update({"WWW-Authenticate": challenge, "docker-ratelimit-source": self.source_ip})
        return response

    def _manifest(self, request: RecordedRequest, name: str, ref: str) -> Response:
        token = self._token(request)
        if token is None or name not in token.repositories:
            return self._unauthorized(name, insufficient=token is not None)
        identity = token.identity
        queued = self._queued.popleft() if self._queued else None
        budget = queued or self._budget(identity)
        source = self.source_ip if identity is None else _account_id(identity)
        refused = budget.exhausted or (request.method == "GET" and budget.limit is not None and budget.remaining <= 0)
        if refused:
            response = _registry_error(429, "TOOMANYREQUESTS", PULL_LIMIT_MESSAGE)
            response.headers.update(_limit_headers(replace(budget, remaining=0), source))
            return response
        repo = self._manifests.get(name, {})
        manifest = repo.get(ref) or next((m for m in repo.values() if m.digest == ref), None)
        if manifest is None:
            return _registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref})
        if request.method == "GET" and budget.limit is not None:
            budget = replace(budget, remaining=budget.remaining - 1)
            if queued is None:  # a queued one-shot answer leaves the running budget alone
                self._budgets[identity] = budget
        headers = {
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": manifest.digest,
            "Docker-Distribution-API-Version": "registry/2.0",
            "Etag": f'"{manifest.digest}"',
            **_limit_headers(budget, source),
        }
        return Response(200, manifest.body, headers)

    def _tags(self, request: RecordedRequest, name: str) -> Response:
        token = self._token(request)
        if token is None or name not in token.repositories:
            return self._unauthorized(name, insufficient=token is not None)
        if name not in self._manifests:
            return _registry_error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        raw_n = request.query.get("n")
        if raw_n is not None and not (raw_n.isdigit()):
            return _registry_error(
                400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": raw_n}
            )
        tags = sorted(self._manifests[name])
        last = request.query.get("last")
        if last:
            tags = [t for t in tags if t > last]
        size = int(raw_n) if raw_n is not None else self.tags_page_size
        if size is not None and self.tags_page_size is not None:
            size = min(size, self.tags_page_size)
        page = tags if size is None else tags[:size]
        headers = {"Docker-Distribution-API-Version": "registry/2.0"}
        if size is not None and page and len(tags) > len(page):
            target = f"/v2/{name}/tags/list?{urlencode({'n': size, 'last': page[-1]})}"
            headers["Link"] = f'<{self.url if self.tags_link == "absolute" else ""}{target}>; rel="next"'
        return Response(200, {"name": name, "tags": page}, headers)

    def _budget(self, identity: str | None) -> PullBudget:
        return self._budgets.get(identity) or self._budgets.setdefault(identity, self._default_user_budget)


def _limit_headers(budget: PullBudget, source: str) -> dict[str, str]:
    headers = {"docker-ratelimit-source": source}
    if budget.limit is not None:
        headers["ratelimit-limit"] = f"{budget.limit};w={budget.window}"
        headers["ratelimit-remaining"] = f"{max(budget.remaining, 0)};w={budget.window}"
    return headers


def _registry_error(status: int, code: str, message: str, detail: Any = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return Response(status, {"errors": [error]}, {"Docker-Distribution-API-Version": "registry/2.0"})


def _account_id(username: str) -> str:
    digest = hashlib.sha256(username.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _jwt(identity: str | None, repositories: set[str]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    access = [{"type": "repository", "name": name, "actions": ["pull"]} for name in sorted(repositories)]
    claims = {
        "iss": "auth.docker.io",
        "sub": identity or "",
        "aud": SERVICE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_hex(8),
        "access": access,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"
