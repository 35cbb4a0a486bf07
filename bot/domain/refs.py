"""Docker image references, parsed by the grammar of distribution/reference.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex

A first component is a domain when it holds a "." or a ":" or is "localhost"; otherwise the image
lives on Docker Hub (`docker.io`, API host `registry-1.docker.io`) and single-segment names get the
`library/` prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.errors import InvalidInput

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|-+)"
_COMPONENT = re.compile(rf"^{_ALNUM}(?:{_SEP}{_ALNUM})*\Z")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?\Z")
# \Z, not $: "$" also matches before a trailing newline. ASCII: Docker's \w is [A-Za-z0-9_], not unicode.
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_PORT = re.compile(r":([0-9]{1,5})\Z")  # the port of a host[:port] that matched _DOMAIN

FIX = "Use host[:port]/path[:tag][@sha256:<64 hex>], e.g. databricksruntime/standard:15.4-LTS."


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised image reference."""

    domain: str  # "docker.io" for Docker Hub
    path: str  # "databricksruntime/standard", "library/ubuntu"
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The name as users write it (Docker Hub without its domain, library/ kept short)."""
        if self.domain == DOCKER_HUB:
            return self.path.removeprefix("library/")
        return f"{self.domain}/{self.path}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def on_docker_hub(self) -> bool:
        return self.domain == DOCKER_HUB

    @property
    def reference(self) -> str:
        """What a manifest request asks for: the digest if pinned, else the tag (default latest)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.domain, self.path, tag, None)

    def with_digest(self, digest: str | None) -> ImageRef:
        return ImageRef(self.domain, self.path, self.tag, digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_ref(text: str, field: str = "image") -> ImageRef:
    """Parse `text` or raise InvalidInput naming `field`."""
    if isinstance(text, str):
        return _parse_ref_cached(text, field)
    return _parse_ref(text, field)


@lru_cache(maxsize=8192)  # refs are frozen; thousands of catalog images share a handful of bases
def _parse_ref_cached(text: str, field: str) -> ImageRef:
    return _parse_ref(text, field)


def _parse_ref(text: str, field: str) -> ImageRef:
    if not isinstance(text, str) or not text:
        raise InvalidInput(field, text, "is empty", FIX)
    if text != text.strip() or any(c.isspace() or ord(c) < 32 for c in text):
        raise InvalidInput(field, text, "contains whitespace or control characters", FIX)
    if len(text) > 512:
        raise InvalidInput(field, text, "is longer than 512 characters", FIX)
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidInput(field, text, f"has an invalid digest {digest!r}", FIX)
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise InvalidInput(field, text, "has a sha256 digest that is not 64 lowercase hex digits", FIX)
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidInput(field, text, f"has an invalid tag {tag!r}", FIX)
    parts = rest.split("/")
    domain = DOCKER_HUB
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain = parts.pop(0)
        if not _DOMAIN.match(domain):
            raise InvalidInput(field, text, f"has an invalid registry host {domain!r}", FIX)
        port = _PORT.search(domain)
        if port and not 1 <= int(port.group(1)) <= 65535:
            raise InvalidInput(field, text, f"has a registry port outside 1-65535 ({port.group(1)})", FIX)
    if not parts or not all(_COMPONENT.match(p) for p in parts):
        raise InvalidInput(
            field, text, "has an invalid repository path (lowercase letters, digits, . _ - separators)", FIX
        )
    if domain.lower() in _HUB_ALIASES:
        domain = DOCKER_HUB
    path = "/".join(parts)
    if domain == DOCKER_HUB and len(parts) == 1:
        path = f"library/{path}"
    if len(path) > 255:
        raise InvalidInput(field, text, "has a repository name longer than 255 characters", FIX)
    return ImageRef(domain, path, tag, digest)


def parse_repository(text: str, field: str = "repository") -> ImageRef:
    """A push target: a reference without tag or digest."""
    ref = parse_ref(text, field)
    if ref.tag or ref.digest:
        raise InvalidInput(
            field, text, "must not carry a tag or digest", "Give the repository only; tags come from the tag scheme."
        )
    return ref


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.match(tag))


def is_sha256_digest(text: str) -> bool:
    return bool(_SHA256.match(text))


def same_registry_host(a: str, b: str) -> bool:
    """True when two registry hosts name the same registry (Docker Hub aliases included)."""

    def norm(h: str) -> str:
        h = h.lower()
        return DOCKER_HUB if h in _HUB_ALIASES else h

    return norm(a) == norm(b)


def short_digest(digest: str | None) -> str:
    """A digest people can read and compare: `sha256:0123456789ab…`; `local <id>` for a local-only base."""
    if not digest:
        return "unknown"
    if digest.startswith("local:"):
        return "local " + digest.split(":")[-1][:12]
    algorithm, _, hexdigits = digest.partition(":")
    if not hexdigits:
        return digest[:12]
    return f"{algorithm}:{hexdigits[:12]}…" if len(hexdigits) > 12 else digest
