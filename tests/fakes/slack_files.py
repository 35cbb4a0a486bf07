"""File uploads of the fake Slack, as slack_sdk 3.48's `WebClient.files_upload_v2` performs them
(/work/notes/slack-notes.md (a)):

1. `files.getUploadURLExternal` (`filename`, `length`, optional `alt_txt`, `snippet_type`) →
   `{"ok": true, "upload_url": "<fake>/upload/v1/<ticket>", "file_id": "F…"}`.
2. `POST <upload_url>` with the raw bytes. The fake serves this URL itself; it records the request's headers
   so a test can prove the bot token never went there (`SlackFile.upload_authorization`) and answers
   `OK - <length>`. An unknown or reused ticket gets 404.
3. `files.completeUploadExternal` (`files` = JSON list of `{"id", "title"}`, `channel_id`, `channels`,
   `initial_comment`, `thread_ts`) → `{"ok": true, "files": [{"id", "title"}]}`; a file never uploaded, or
   completed twice, answers `file_not_found`.

Both API methods need the `files:write` scope: the fake answers `missing_scope` (with `needed`/`provided`)
unless it is in `FakeSlack(scopes=...)`. Completed files are recorded with their bytes: `fake.files()`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import RecordedRequest, Response


@dataclass
class SlackFile:
    file_id: str
    filename: str
    length: int  # as announced in files.getUploadURLExternal
    ticket: str
    content: bytes | None = None  # the uploaded bytes
    upload_authorization: str | None = None  # Authorization header sent to the upload URL (should stay None)
    title: str | None = None
    channel: str | None = None
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
    alt_txt: str | None = None
    snippet_type: str | None = None
    at: float = field(default_factory=time.time)


class FilesMixin:
    """`files.*` methods and the upload URL of `FakeSlack` (called with the fake's lock held)."""

    _files: dict[str, SlackFile]
    url: str

    def files(self, channel: str | None = None, thread_ts: str | None = None) -> list[SlackFile]:
        """Completed uploads (shared to `channel`/`thread_ts` if given), oldest first."""
        with self._lock:  # type: ignore[attr-defined]
            return [
                f
                for f in self._files.values()
                if f.completed
                and (channel is None or channel in (f.channel, *f.channels))
                and (thread_ts is None or f.thread_ts == thread_ts)
            ]

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        filename, length = p.get("filename"), p.get("length")
        if not filename:
            return _invalid("missing required field: filename")
        try:
            size = int(length)
        except (TypeError, ValueError):
            return _invalid("missing required field: length")
        file_id = "F" + secrets.token_hex(5).upper()
        ticket = secrets.token_urlsafe(24)
        self._files[file_id] = SlackFile(
            file_id, filename, size, ticket, alt_txt=p.get("alt_txt"), snippet_type=p.get("snippet_type")
        )
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{ticket}", "file_id": file_id}

    def _upload(self, request: RecordedRequest) -> Response:
        ticket = request.path.removeprefix("/upload/v1/")
        with self._lock:  # type: ignore[attr-defined]
            slack_file = next((f for f in self._files.values() if f.ticket == ticket), None)
            if request.method != "POST" or slack_file is None or slack_file.content is not None:
                return Response(404, "not found")
            slack_file.content = request.raw_body
            slack_file.upload_authorization = request.header("authorization")
        return Response(200, f"OK - {len(request.raw_body)}")

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            entries = json.loads(p.get("files") or "")
        except (TypeError, json.JSONDecodeError):
            entries = None
        if (
            not isinstance(entries, list)
            or not entries
            or not all(isinstance(e, dict) and e.get("id") for e in entries)
        ):
            return _invalid("files must be a JSON array of {id, title}")
        found = [self._files.get(e["id"]) for e in entries]
        if any(f is None or f.content is None or f.completed for f in found):
            return {"ok": False, "error": "file_not_found"}
        channel = p.get("channel_id") or None
        channels = [c for c in (p.get("channels") or "").split(",") if c]
        if p.get("thread_ts") and len([c for c in (channel, *channels) if c]) != 1:
            return _invalid("thread_ts needs exactly one channel")
        answer = []
        for entry, slack_file in zip(entries, found, strict=True):
            assert slack_file is not None
            slack_file.title = entry.get("title") or slack_file.filename
            slack_file.channel, slack_file.channels = channel, channels
            slack_file.thread_ts = p.get("thread_ts") or None
            slack_file.initial_comment = p.get("initial_comment") or None
            slack_file.completed = True
            answer.append({"id": slack_file.file_id, "title": slack_file.title})
        return {"ok": True, "files": answer}


def _invalid(message: str) -> dict[str, Any]:
    return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [f"[ERROR] {message}"]}}
