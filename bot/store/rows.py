"""Rows to records: JSON columns decoded, 0/1 turned into booleans. The only place that knows column shapes."""

from __future__ import annotations

import json
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
    return Build(**data)


def push_from_row(row: dict[str, Any]) -> PushRecord:
    return PushRecord(**{**row, "verified": bool(row["verified"])})


def launch_from_row(row: dict[str, Any]) -> Launch:
    data = dict(row)
    data["request"] = json.loads(data.get("request") or "{}")
    if "duplicates_terminated" in data:
        data["duplicates_terminated"] = tuple(json.loads(data["duplicates_terminated"] or "[]"))
    return Launch(**data)
