"""Wire helpers shared by the Databricks fake's modules: error bodies, body checks through the SDK's dataclasses,
opaque page tokens, and the record of every write the fake applied.
"""

from __future__ import annotations

import base64
import copy
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import Response


def error(status: int, error_code: str | int, message: str, **headers: str) -> Response:
    """The REST 2.x error body: `{"error_code": ..., "message": ...}` (the SDK maps error_code to a class)."""
    return Response(status, {"error_code": error_code, "message": message}, dict(headers))


def bad(message: str) -> Response:
    return error(400, "INVALID_PARAMETER_VALUE", message)


def malformed() -> Response:
    return error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")


def first_difference(sent: Any, parsed: Any, path: str = "") -> str | None:
    """Where the SDK's dataclass round trip lost something: an unknown field or an invalid enum value."""
    if isinstance(sent, dict) and isinstance(parsed, dict):
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            if key not in parsed:
                if value in ([], {}, None):  # as_dict() drops empty values the API accepts
                    continue
                return where
            found = first_difference(value, parsed[key], where)
            if found:
                return found
        return None
    if isinstance(sent, list) and isinstance(parsed, list) and len(sent) == len(parsed):
        return next(
            (
                d
                for i, (a, b) in enumerate(zip(sent, parsed, strict=True))
                if (d := first_difference(a, b, f"{path}[{i}]"))
            ),
            None,
        )
    return None if sent == parsed else path


def roundtrip_problem(cls: type, body: Any, what: str = "request") -> str | None:
    """None when `cls.from_dict(body).as_dict()` keeps every field of `body`, else the API's complaint."""
    if not isinstance(body, dict):
        return f"Invalid JSON given in the body of the {what}"
    try:
        drift = first_difference(body, cls.from_dict(body).as_dict())  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        drift = f"{type(exc).__name__}: {exc}"
    return f"Invalid value or unknown field in {what}: {drift}" if drift else None


def method_parameters(method: Callable[..., Any]) -> set[str]:
    """The wire fields an SDK call can send: its parameter names (for APIs without a request dataclass)."""
    return {name for name in inspect.signature(method).parameters if name not in ("self", "timeout")}


def unknown_field(body: dict[str, Any], allowed: set[str]) -> str | None:
    extra = sorted(set(body) - allowed)
    return f"Invalid value or unknown field in request: {extra[0]}" if extra else None


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def page_offset(token: str | None) -> int | None:
    """The offset a token of `page_token` stands for; 0 without a token; None for a token we never issued."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdigit() else None


@dataclass(frozen=True)
class ResourceWrite:
    """One write the fake applied: `kind` cluster/job/policy/instance_pool, `action` as the API names it
    (create, edit, update, delete, permanent-delete, start, reset), the request body, and the resource before
    and after (None when it did not exist / no longer exists). Refused writes are not recorded."""

    kind: str
    resource_id: str
    action: str
    body: Any
    before: Any
    after: Any
    user: str
    at: float = field(default_factory=time.time)


class WriteLog:
    """Thread-safe list of `ResourceWrite`s, shared by every resource kind of one fake workspace."""

    def __init__(self) -> None:
        self._writes: list[ResourceWrite] = []

    def add(self, kind: str, resource_id: Any, action: str, body: Any, before: Any, after: Any, user: str) -> None:
        self._writes.append(
            ResourceWrite(
                kind, str(resource_id), action, copy.deepcopy(body), copy.deepcopy(before), copy.deepcopy(after), user
            )
        )

    def select(
        self, kind: str | None = None, resource_id: Any = None, action: str | None = None
    ) -> list[ResourceWrite]:
        return [
            w
            for w in self._writes
            if (kind is None or w.kind == kind)
            and (resource_id is None or w.resource_id == str(resource_id))
            and (action is None or w.action == action)
        ]
