"""Databricks secret references (`{{secrets/scope/key}}`) in what a person types for a launch.

Databricks resolves such a reference in a cluster's Spark conf and environment variables with the rights of the
cluster's creator — the bot's own identity, a workspace admin — and the cluster's user can read the resolved
value. So a builder who could write `spark.x={{secrets/any/key}}` could read any secret of the workspace.

Launch values therefore refuse every secret reference, except a whole value that is one reference to a scope the
operator allowed for launches (`DCS_LAUNCH_SECRET_SCOPES`), and only where Databricks resolves it (Spark conf and
environment variable values). The only reference the bot writes on its own is the registry entry's
`cluster_password_secret` (from the catalog, in `docker_image.basic_auth`). `check_body` looks over a finished
`clusters/create` body once more, so a field added later cannot carry one either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from bot.errors import InvalidInput

# Anything Databricks might read as a reference: "{{", optional spaces, "secrets", "/" (any case).
_LOOSE = re.compile(r"\{\{\s*secrets\s*/", re.IGNORECASE)
_EXACT = re.compile(r"^\{\{secrets/([A-Za-z0-9_.-]{1,128})/([A-Za-z0-9_.-]{1,128})\}\}\Z")


def mentions_secret(value: object) -> bool:
    return isinstance(value, str) and bool(_LOOSE.search(value))


def allowed_reference(value: str, scopes: Iterable[str]) -> bool:
    """A whole value that is exactly one reference to an allowed scope."""
    match = _EXACT.match(value)
    return match is not None and match.group(1) in set(scopes)


def check_registry_secret(reference: str, field: str, scopes: frozenset[str]) -> None:
    """A registry entry's cluster_password_secret may only name a scope the operator set aside for registry
    passwords (DCS_REGISTRY_SECRET_SCOPES): clusters resolve it with the bot's rights and send it to the
    registry's host, which the catalog names."""
    match = _EXACT.match(reference)
    if match is None or match.group(1) not in scopes:
        raise InvalidInput(
            field,
            reference,
            f"names a secret scope registry passwords may not come from (allowed: {', '.join(sorted(scopes))})",
            "Put the registry's pull password in one of those scopes, or ask an operator to add the scope to "
            "DCS_REGISTRY_SECRET_SCOPES.",
        )


def check_launch_value(value: str, field: str, scopes: frozenset[str], *, resolved: bool) -> None:
    """Refuse a secret reference in a launch value. `resolved`: Databricks resolves references there (Spark conf
    and environment variable values), so an allowed scope may be referenced."""
    if not mentions_secret(value):
        return
    if resolved and allowed_reference(value, scopes):
        return
    allowed = ", ".join(sorted(scopes)) or "none"
    if resolved:
        fix = (
            "Remove it: the cluster would resolve it with the bot's own rights. An operator can allow scopes "
            f"users may reference as a whole value with DCS_LAUNCH_SECRET_SCOPES (allowed now: {allowed})."
        )
    else:
        fix = "Remove it: secret references are only for Spark conf and environment variable values."
    raise InvalidInput(field, value, "references a Databricks secret ({{secrets/…}})", fix)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, bool]]:
    """(path, text, is_key) for every string in a JSON-like value, dictionary keys included."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            yield here, str(key), True
            yield from _strings(item, here)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def check_body(body: dict[str, Any], scopes: frozenset[str], own: str | None) -> None:
    """Every secret reference in a `clusters/create` body is the registry's own (`own`, in basic_auth) or an
    allowed whole-value reference in spark_conf / spark_env_vars; anything else is refused."""
    for path, text, is_key in _strings(body, ""):
        if not mentions_secret(text):
            continue
        if path == "docker_image.basic_auth.password" and own is not None and text == own and not is_key:
            continue
        resolved = not is_key and path.startswith(("spark_conf.", "spark_env_vars.")) and path.count(".") >= 1
        check_launch_value(text, path, scopes, resolved=resolved)
