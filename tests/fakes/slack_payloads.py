"""Requests Slack sends *to* the bot, built as Slack builds them: slash commands, block_actions,
view_submission and block_suggestion payloads; their HTTP bodies (sign with `signed_headers`); and the Socket
Mode envelope that wraps them for `FakeSocketModeServer`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

TEAM_ID = "T0TEST001"
APP_ID = "A0TEST001"
BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"
UNSET_RESPONSE_URL = "http://127.0.0.1:9/response/unset"  # refused at once: pass fake.response_url(...)
_ids = itertools.count(1)


def _view_id() -> str:
    return "V" + secrets.token_hex(5).upper()


def signed_headers(signing_secret: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    kind = "application/json" if body.lstrip()[:1] == b"{" else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": kind}


def _trigger_id() -> str:
    return f"{next(_ids)}{int(time.time())}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def _user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "username": "alice", "name": "alice", "team_id": TEAM_ID}


def slash_command_payload(
    text: str,
    user_id: str = "U1",
    channel_id: str = "C1",
    command: str = "/dcs",
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    user_name: str = "alice",
    channel_name: str = "dcs-builds",
) -> dict[str, str]:
    return {
        "token": "verification_token",
        "team_id": TEAM_ID,
        "team_domain": "dcs-test",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(text: str, **kwargs: Any) -> bytes:
    return urlencode(slash_command_payload(text, **kwargs)).encode()


def block_actions_payload(
    action_id: str,
    value: str,
    user_id: str = "U1",
    channel_id: str = "C1",
    message_ts: str | None = None,
    block_id: str = "actions",
    response_url: str = UNSET_RESPONSE_URL,
    message_blocks: list[dict[str, Any]] | None = None,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    ts = message_ts or f"{int(time.time())}.{next(_ids):06d}"
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "type": "button",
        "text": {"type": "plain_text", "text": value, "emoji": True},
        "action_ts": f"{time.time():.6f}",
    }
    message = {
        "type": "message",
        "subtype": "bot_message",
        "ts": ts,
        "text": "",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "blocks": message_blocks or [],
    }
    container = {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False}
    return {
        "type": "block_actions",
        "token": "verification_token",
        "api_app_id": APP_ID,
        "user": _user(user_id),
        "team": {"id": TEAM_ID, "domain": "dcs-test"},
        "container": container,
        "channel": {"id": channel_id, "name": "dcs-builds"},
        "message": message,
        "state": {"values": {}},
        "trigger_id": trigger_id or _trigger_id(),
        "response_url": response_url,
        "actions": [action],
    }


def block_actions_body(action_id: str, value: str, **kwargs: Any) -> bytes:
    return urlencode({"payload": json.dumps(block_actions_payload(action_id, value, **kwargs))}).encode()


def view_submission_payload(
    callback_id: str,
    state_values: dict[str, dict[str, dict[str, Any]]],
    user_id: str = "U1",
    private_metadata: str = "",
    view_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`state_values` is Slack's `view.state.values`: {block_id: {action_id: {"type": ..., "value": ...}}}."""
    view_id = view_id or _view_id()
    view = {
        "id": view_id,
        "team_id": TEAM_ID,
        "type": "modal",
        "blocks": blocks or [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": state_values},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": {"type": "plain_text", "text": "DCS"},
        "clear_on_close": False,
        "notify_on_close": False,
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": APP_ID,
        "external_id": "",
        "app_installed_team_id": TEAM_ID,
        "bot_id": BOT_ID,
    }
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "dcs-test"},
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": "verification_token",
        "trigger_id": _trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
    }


def view_submission_body(callback_id: str, state_values: dict[str, dict[str, dict[str, Any]]], **kwargs: Any) -> bytes:
    payload = view_submission_payload(callback_id, state_values, **kwargs)
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_suggestion_payload(
    action_id: str,
    value: str,
    user_id: str = "U1",
    block_id: str = "block",
    view: dict[str, Any] | None = None,
    channel_id: str = "C1",
    message_ts: str | None = None,
) -> dict[str, Any]:
    """What Slack sends to the options load URL while someone types `value` into an external select.

    In a modal pass `view` (e.g. `view_submission_payload(...)["view"]`): the container is that view; otherwise
    the select sits in a message of `channel_id`. Shape as in bolt-python's block_suggestion scenario tests.
    """
    payload: dict[str, Any] = {
        "type": "block_suggestion",
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": "verification_token",
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": {"id": TEAM_ID, "domain": "dcs-test"},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id") or _view_id()}
        payload["view"] = view
    else:
        ts = message_ts or f"{int(time.time())}.{next(_ids):06d}"
        payload["container"] = {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False}
        payload["channel"] = {"id": channel_id, "name": "dcs-builds"}
        payload["message"] = {"type": "message", "ts": ts, "text": "", "user": BOT_USER_ID, "bot_id": BOT_ID}
    return payload


def block_suggestion_body(action_id: str, value: str, **kwargs: Any) -> bytes:
    """The form-encoded HTTP body (`payload=<json>`) of a block_suggestion; sign it with `signed_headers`."""
    return urlencode({"payload": json.dumps(block_suggestion_payload(action_id, value, **kwargs))}).encode()


def socket_mode_envelope(payload: dict[str, Any], envelope_id: str | None = None) -> dict[str, Any]:
    """Wrap a payload as Socket Mode delivers it: slash command form fields or an interactivity payload.

    `accepts_response_payload` is true where Slack expects an answer in the ack: slash commands,
    view_submission, and block_suggestion (the options travel in the ack; inferred, not observed).
    """
    if "command" in payload:
        kind, accepts = "slash_commands", True
    else:
        kind, accepts = "interactive", payload.get("type") in ("view_submission", "block_suggestion")
    return {
        "envelope_id": envelope_id or secrets.token_hex(16),
        "type": kind,
        "accepts_response_payload": accepts,
        "payload": payload,
    }
