"""Docker Hub pull budget, read the documented way without spending a pull.

1. token: `GET {auth}/token?service=registry.docker.io&scope=repository:ratelimitpreview/test:pull`
   (anonymous, or HTTP basic auth with DOCKERHUB_USERNAME + DOCKERHUB_TOKEN);
2. `HEAD {registry}/v2/ratelimitpreview/test/manifests/latest` with the bearer token: a HEAD never
   counts as a pull, a GET would. The budget is in the `ratelimit-*` headers (bot.domain.ratelimit).
"""

from __future__ import annotations

import logging
from collections import deque

import requests

from bot.clients.registry import MANIFEST_ACCEPT
from bot.domain.credentials import Credentials
from bot.domain.ratelimit import PullBudget, format_window, parse_ratelimit_headers
from bot.errors import PullLimitReached, RegistryAuthError, RegistryError, RegistryUnreachable

log = logging.getLogger(__name__)

SERVICE = "registry.docker.io"
PREVIEW_REPOSITORY = "ratelimitpreview/test"
PREVIEW_SCOPE = f"repository:{PREVIEW_REPOSITORY}:pull"


class DockerHubClient:
    def __init__(
        self,
        auth_url: str = "https://auth.docker.io",
        registry_url: str = "https://registry-1.docker.io",
        timeout: float = 10,
        session: requests.Session | None = None,
    ) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.registry_url = registry_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        # (method, url) of recent requests, for tests and benchmarks; bounded: the bot runs for months.
        self.requests_made: deque[tuple[str, str]] = deque(maxlen=1000)

    def pull_budget(self, credentials: Credentials | None = None) -> PullBudget:
        """The current budget of the account (or of this machine's IP when anonymous)."""
        token = self._token(credentials)
        url = f"{self.registry_url}/v2/{PREVIEW_REPOSITORY}/manifests/latest"
        response = self._send("HEAD", url, headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_ACCEPT})
        who = f"as {credentials.username}" if credentials else "anonymously"
        if response.status_code == 429:
            raise _limit_reached(response, who)
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"Docker Hub refused the rate-limit check {who} (HTTP "
                f"{response.status_code}): check DOCKERHUB_USERNAME and DOCKERHUB_TOKEN."
            )
        if response.status_code != 200:
            raise RegistryError(f"Docker Hub answered HTTP {response.status_code} to the rate-limit check.")
        try:
            budget = parse_ratelimit_headers(response.headers)
        except ValueError as exc:
            raise RegistryError(f"Docker Hub sent rate-limit headers this bot cannot read ({exc}).") from None
        log.info("docker hub budget %s: %s", who, budget.describe())
        return budget

    # ------------------------------------------------------------ internals
    def _token(self, credentials: Credentials | None) -> str:
        url = f"{self.auth_url}/token"
        auth = (credentials.username, credentials.password) if credentials else None
        response = self._send("GET", url, params={"service": SERVICE, "scope": PREVIEW_SCOPE}, auth=auth)
        text = response.text.lower() if response.content else ""
        if "too many failed login" in text:
            raise RegistryAuthError(
                "Docker Hub: too many failed login attempts with DOCKERHUB_USERNAME/"
                "DOCKERHUB_TOKEN. Check them, then wait before the next try."
            )
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                "Docker Hub rejected DOCKERHUB_USERNAME/DOCKERHUB_TOKEN: create a new "
                "access token (read-only is enough) and set it."
            )
        if response.status_code == 429:
            raise _limit_reached(response, "at the token service")
        if response.status_code != 200:
            raise RegistryError(f"The Docker Hub token service answered HTTP {response.status_code}.")
        try:
            body = response.json()
        except ValueError:
            raise RegistryError("The Docker Hub token service did not answer JSON.") from None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not token:
            raise RegistryError("The Docker Hub token service returned no token.")
        return token

    def _send(self, method: str, url: str, **kwargs: object) -> requests.Response:
        self.requests_made.append((method, url))
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)  # type: ignore[arg-type]
        except requests.Timeout:
            raise RegistryUnreachable(f"{_host(url)} did not answer within {self.timeout:g} s.") from None
        except requests.ConnectionError:
            raise RegistryUnreachable(f"Cannot connect to {_host(url)}: is the network up?") from None


def _limit_reached(response: requests.Response, who: str) -> PullLimitReached:
    try:
        budget: PullBudget | None = parse_ratelimit_headers(response.headers)
    except ValueError:
        budget = None
    if budget is not None and budget.unlimited:
        budget = None
    # A 429 means nothing is left, whatever the headers say (they may be absent on a 429).
    limit = budget.limit if budget else None
    window = budget.window_seconds if budget else None
    numbers = f": 0/{limit} pulls left per {format_window(window)}" if limit else ""
    return PullLimitReached(
        f"Docker Hub pull rate limit reached (toomanyrequests) {who}{numbers}. Clusters pulling from Docker "
        "Hub will fail to start until the window resets; authenticate with an account that has a higher "
        "limit or mirror the images to your own registry.",
        limit=limit,
        remaining=0,
        window_seconds=window,
    )


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
