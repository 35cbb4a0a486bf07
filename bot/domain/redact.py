"""Redaction of secrets from text that leaves the process (logs, Slack messages, the database)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
_PATTERNS = [
    (re.compile(r"xox[abeoprs]-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"xapp-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"dapi[0-9a-f]{32}(?:-\d+)?"), MASK),
    (re.compile(r"dckr_pat_[A-Za-z0-9_-]{10,}"), MASK),
    (re.compile(r"(?i)(authorization:\s*)(bearer|basic)\s+\S+"), r"\1\2 " + MASK),
    # all userinfo up to the last "@": a token alone (https://TOKEN@host) or a password holding "@" is a secret too
    (re.compile(r"(://)[^/\s]*@"), r"\1" + MASK + "@"),
    # an assignment (password=…) or a quoted value (password: "…", "token": "…") is a secret whatever it looks like
    (re.compile(r"(?i)\b(password|passwd|secret|token)(\"?\s*=\s*\"?|\"?\s*:\s*\")[^\s\"',;]+"), r"\1\2" + MASK),
]
# "password: hunter2" after a colon and unquoted: masked, unless the value is a plain word of prose, as in
# "password: add a registry entry" or "token: expired" (no digit, no symbol, at most one capital, first).
_COLON_VALUE = re.compile(r"(?i)\b(password|passwd|secret|token)(\s*:\s*)([^\s\"',;]+)")
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]{0,19}\Z")


def _mask_colon_value(match: re.Match[str]) -> str:
    key, separator, value = match.groups()
    return match.group(0) if _PLAIN_WORD.match(value) else f"{key}{separator}{MASK}"


class Redactor:
    """Replaces known secret values and secret-shaped strings with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would mask ordinary words; real secrets are longer.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def with_secrets(self, more: Iterable[str]) -> Redactor:
        return Redactor([*self._secrets, *more])

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return _COLON_VALUE.sub(_mask_colon_value, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's final message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
