"""Validation of what users ask to install: pip requirements, apt packages, environment variables.

Everything here returns a canonical, safe string or raises InvalidInput naming the field, the value
and the fix. The Dockerfile renderer relies on these guarantees: a value that passes contains no
whitespace outside the `name @ url` separator, no quote, no shell or Dockerfile metacharacter.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from bot.errors import InvalidInput

if TYPE_CHECKING:
    from packaging.requirements import Requirement

# Characters that may never appear in a pip entry, whatever PEP 508 allows. After the first ';' (an environment
# marker) quotes and parentheses are allowed: entries reach pip as lines of a requirements file, never a shell.
_PIP_FORBIDDEN = set(";&|`$\\\"'(){}\n\r\t#?")
_MARKER_FORBIDDEN = set(";&|`$\\{}\n\r\t#?")
_PIP_SAFE = re.compile(r"^[A-Za-z0-9._\-\[\],<>=!~*@:/+% ]+(?:; [A-Za-z0-9._\-,<>=!~*:/+% \"'()]+)?\Z")
_URL_SAFE = re.compile(r"^[A-Za-z0-9._\-/:+%=@]+\Z")  # '@' only after the host: git refs (…/pkg.git@v1.0)
_URL_SCHEMES = {"https", "git+https"}
_INJECTED_BY_DATABRICKS = {"pyspark"}

# Patterns end in \Z, not $: "$" also matches before a trailing newline, which would reach the Dockerfile.
# Debian Policy 5.6.1: lowercase letters, digits, + - . ; at least two characters; starts alphanumeric.
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+\Z")
# Debian Policy 5.6.12 (version), without the characters a shell would treat specially.
_APT_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*\Z")
_APT_ARCH = re.compile(r"^[a-z0-9-]+\Z")

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_ENV_VALUE_FORBIDDEN = set('"\\$`')
_SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY")
_RESERVED_ENV = {"PYSPARK_PYTHON", "DATABRICKS_RUNTIME_VERSION", "PATH", "JAVA_HOME", "HOME"}


def split_requirements(text: str) -> list[str]:
    """Split a comma- or newline-separated list of requirements, keeping `pandas>=2,<3` whole.

    A comma starts a new requirement only when what follows starts like a package name; a segment
    that starts with a version operator (`<`, `>`, `=`, `!`, `~`) continues the previous requirement, and so
    does a comma inside an open extras bracket (`requests[socks,security]`).
    """
    items: list[str] = []
    for line in text.splitlines():
        for index, segment in enumerate(line.split(",")):
            part = segment.strip()
            if not part:
                continue
            if items and index > 0 and (part[0] in "<>=!~" or items[-1].count("[") > items[-1].count("]")):
                items[-1] = f"{items[-1]},{part}"
            else:
                items.append(part)
    return items


def validate_pip(entry: str, field: str = "pip") -> str:
    """Return the canonical requirement string for one pip entry."""
    if not isinstance(entry, str):
        raise InvalidInput(field, entry, "is not text", "Give each requirement as a string like 'pandas==2.2.2'.")
    text = entry.strip()
    if not text:
        raise InvalidInput(field, entry, "is empty", "Remove the empty entry.")
    if text.startswith("-"):
        raise InvalidInput(
            field,
            entry,
            "is a pip option, not a requirement",
            "Options such as --index-url or -r are not allowed; give package requirements like 'pandas==2.2.2'.",
        )
    head, semicolon, marker = text.partition(";")
    bad = sorted(
        {c for c in head if c in _PIP_FORBIDDEN or ord(c) < 32 or ord(c) > 126}
        | {c for c in marker if c in _MARKER_FORBIDDEN or ord(c) < 32 or ord(c) > 126}
    )
    if bad or "&&" in text:
        shown = " ".join(repr(c) for c in bad) or "'&&'"
        raise InvalidInput(
            field,
            entry,
            f"contains characters that are not allowed ({shown})",
            "Give a plain requirement like 'pandas>=2,<3' (an environment marker after ';' is fine); "
            "shell syntax is not supported.",
        )
    # Imported here on purpose: packaging's import time, which the commands that only read the catalog (its
    # entries were validated when written: `dcs image list`) should not pay. Likewise in _requirement.
    from packaging.requirements import InvalidRequirement

    try:
        req = _requirement(text)
    except InvalidRequirement as exc:
        raise InvalidInput(
            field,
            entry,
            f"is not a valid PEP 508 requirement ({exc})",
            "Write it as name[extras]<op>version, e.g. 'scikit-learn==1.5.1' or 'requests[socks]>=2.31'.",
        ) from None
    if _canonical(req.name) in _INJECTED_BY_DATABRICKS:
        raise InvalidInput(
            field,
            entry,
            "is provided by Databricks at cluster start",
            "Remove it: Databricks injects pyspark into the container when the cluster starts.",
        )
    if req.url:
        _check_requirement_url(req.url, entry, field)
    canonical = str(req)
    if not _PIP_SAFE.match(canonical):
        raise InvalidInput(
            field, entry, "contains characters that are not allowed", "Give a plain requirement like 'pandas==2.2.2'."
        )
    return canonical


def _check_requirement_url(url: str, entry: str, field: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in _URL_SCHEMES:
        raise InvalidInput(
            field,
            entry,
            f"uses a {parsed.scheme or 'relative'!s} URL",
            "Only https:// (or git+https://) URLs are allowed for direct references.",
        )
    if parsed.username or parsed.password or "@" in parsed.netloc:
        raise InvalidInput(
            field,
            entry,
            "carries credentials in its URL",
            "Never put credentials in a requirement (they would be stored in the image history); "
            "publish the package to an index the build can reach without them.",
        )
    if parsed.query or parsed.fragment or not _URL_SAFE.match(url.split("://", 1)[1]):
        raise InvalidInput(
            field,
            entry,
            "has a URL with query, fragment or unusual characters",
            "Use a plain https://host/path/package.whl or git+https://host/org/pkg.git@v1.0 URL.",
        )


def _requirement(text: str) -> Requirement:
    """packaging's reading of a PEP 508 requirement (raises packaging's InvalidRequirement)."""
    from packaging.requirements import Requirement  # on first use, see validate_pip

    return Requirement(text)


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name  # on first use, see validate_pip

    return canonicalize_name(name)


def pip_name(requirement: str) -> str:
    """The project a validated requirement installs ("Scikit_Learn>=1" → "scikit-learn")."""
    return _canonical(_requirement(requirement).name)


def pip_key(requirement: str) -> str:
    """What makes two pip entries the same: the project and the marker (complementary markers may coexist)."""
    req = _requirement(requirement)
    return f"{_canonical(req.name)}; {req.marker}" if req.marker else _canonical(req.name)


def apt_name(entry: str) -> str:
    """The package (and architecture) a validated apt entry installs, without its version."""
    return entry.partition("=")[0]


def validate_apt(entry: str, field: str = "apt") -> str:
    """Return a safe `name[:arch][=version]` string for one apt package."""
    if not isinstance(entry, str):
        raise InvalidInput(field, entry, "is not text", "Give each package as a string like 'libgomp1'.")
    text = entry.strip()
    fix = (
        "Use a Debian package name (lowercase letters, digits, '+', '-', '.'; at least two characters), "
        "optionally '=version', e.g. 'libgomp1' or 'curl=7.81.0-1ubuntu1.16'."
    )
    name, _, version = text.partition("=")
    name, colon, arch = name.partition(":")
    if not _APT_NAME.match(name):
        raise InvalidInput(field, entry, "is not a valid Debian package name", fix)
    if colon and not _APT_ARCH.match(arch):
        raise InvalidInput(field, entry, "has an invalid architecture qualifier", fix)
    if "=" in text and not _APT_VERSION.match(version):
        raise InvalidInput(field, entry, "has an invalid version", fix)
    return text


def validate_env(key: str, value: str, field: str = "env") -> tuple[str, str]:
    """Validate one extra environment variable baked into the image."""
    if not isinstance(key, str) or not ENV_KEY.match(key):
        raise InvalidInput(
            f"{field}.{key}",
            key,
            "is not a valid variable name",
            "Use letters, digits and underscores, not starting with a digit (e.g. TZ).",
        )
    upper = key.upper()
    if any(word in upper for word in _SECRET_WORDS):
        raise InvalidInput(
            f"{field}.{key}",
            key,
            "looks like a secret, and image variables are visible in the image history",
            "Do not bake secrets into images: pass them at launch as spark_env_vars with {{secrets/scope/key}}.",
        )
    if key in _RESERVED_ENV:
        raise InvalidInput(
            f"{field}.{key}",
            key,
            "is set by the base image or by Databricks",
            "Remove it; overriding it breaks the runtime.",
        )
    if not isinstance(value, str):
        raise InvalidInput(f"{field}.{key}", value, "is not text", 'Quote the value, e.g. TZ = "UTC".')
    bad = sorted({c for c in value if c in _ENV_VALUE_FORBIDDEN or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise InvalidInput(
            f"{field}.{key}",
            value,
            f"contains characters that are not allowed ({' '.join(repr(c) for c in bad)})",
            "Use a value without quotes, backslashes, '$', backticks or line breaks.",
        )
    if len(value) > 1024:
        raise InvalidInput(f"{field}.{key}", value, "is longer than 1024 characters", "Shorten the value.")
    return key, value
