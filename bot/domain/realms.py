"""Where a registry's credentials may go: its own host, over HTTPS, and the token services allowed for it.

A registry answers an anonymous request with `WWW-Authenticate: Bearer realm="…"`, and a client sends its Basic
credentials to that realm for a token. The realm is whatever the server says, so a registry (or anything in the
way) could name another host. The bot sends credentials to a realm only when

- the realm is HTTPS, or plain HTTP to a loopback IP literal (decided by parsing the address: `127.evil.example`
  is a name, not a loopback address), and
- the realm's host is the registry's own API host, or one the operator allowed for that registry
  (`DCS_TOKEN_REALMS`), or Docker Hub's own token service for Docker Hub.

Docker Hub's realm is `https://auth.docker.io/token` (service `registry.docker.io`); Azure Container Registry's
is `https://<name>.azurecr.io/oauth2/token`, its own host, so both work without configuration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from bot.domain.refs import DOCKER_HUB, same_registry_host
from bot.errors import CredentialsRefused

# Token services that belong to a registry although they live on another host.
BUILTIN_REALMS: dict[str, tuple[str, ...]] = {DOCKER_HUB: ("auth.docker.io",)}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_name(host: str) -> str:
    """The name or address of `host[:port]` (IPv6 brackets removed)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.rsplit(":", 1)[0]


def is_loopback_ip(host: str) -> bool:
    """True only for an IP literal in a loopback range (127.0.0.0/8, ::1): never for a name."""
    try:
        return ipaddress.ip_address(host_name(host)).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) of a URL, lower-cased, default ports left out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    name = (parts.hostname or "").lower()
    if ":" in name:
        name = f"[{name}]"
    try:
        port = parts.port
    except ValueError:
        port = -1
    netloc = name if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
    return scheme, netloc


def allowed_realm_hosts(registry: str, extra: Mapping[str, Iterable[str]]) -> set[str]:
    """The token-service hosts allowed for a registry besides its own: built in, then the operator's."""
    hosts: set[str] = set()
    for key, values in (*BUILTIN_REALMS.items(), *extra.items()):
        if same_registry_host(key, registry):
            hosts.update(v.lower() for v in values)
    return hosts


def check_token_realm(realm: str, *, registry: str, api_url: str, extra: Mapping[str, Iterable[str]]) -> None:
    """Raise CredentialsRefused unless credentials for `registry` (reached at `api_url`) may go to `realm`."""
    scheme, netloc = origin(realm)
    if scheme not in ("http", "https") or not netloc:
        raise CredentialsRefused(
            f"{registry} named the token service {realm!r}, which is not an http(s) URL: its credentials were not sent."
        )
    if scheme == "http" and not is_loopback_ip(netloc):
        raise CredentialsRefused(
            f"{registry} named the token service {realm}, which is plain HTTP: the bot sends credentials to a token "
            "service over HTTPS only (plain HTTP only to a loopback address such as 127.0.0.1). Its credentials were "
            "not sent."
        )
    own = origin(api_url)[1]
    allowed = allowed_realm_hosts(registry, extra)
    if netloc != own and netloc not in allowed:
        raise CredentialsRefused(
            f"{registry} named the token service {realm}, on {netloc}, which is neither the registry's own host "
            f"({own}) nor a token service allowed for it: its credentials were not sent. If {netloc} really is "
            f"{registry}'s token service, an operator can allow it with DCS_TOKEN_REALMS={registry}={netloc}."
        )
