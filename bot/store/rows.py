"""Rows to records: JSON columns decoded, 0/1 turned into booleans, log tails decompressed. The only place that
knows column shapes.

A build's log tail is stored zlib-compressed (a BLOB; build logs compress 5-10×, and they are most of what a
build row weighs); rows written before that hold plain text and are read as they are.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from bot.domain.records import Build, Launch, PushRecord


def build_from_row(row: dict[str, Any]) -> Build:
    data = dict(row)
    if "tags" in data:
        data["tags"] = tuple(json.loads(data["tags"] or "[]"))
    if "doctor" in data:
        data["doctor"] = tuple(json.loads(data["doctor"] or "[]"))
    for flag in ("push_requested", "forced"):
        if flag in data:
            data[flag] = bool(data[flag])
    if isinstance(data.get("log_tail"), bytes):
        data["log_tail"] = zlib.decompress(data["log_tail"]).decode("utf-8", "replace")
    return Build(**data)


def encode_log_tail(text: str | None) -> bytes | None:
    return zlib.compress(text.encode("utf-8"), 6) if text else None


def push_from_row(row: dict[str, Any]) -> PushRecord:
    return PushRecord(**{**row, "verified": bool(row["verified"])})


def launch_from_row(row: dict[str, Any]) -> Launch:
    data = dict(row)
    data["request"] = json.loads(data.get("request") or "{}")
    if "duplicates_terminated" in data:
        data["duplicates_terminated"] = tuple(json.loads(data["duplicates_terminated"] or "[]"))
    return Launch(**data)
