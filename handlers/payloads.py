"""The shape of what Slack sends, checked before any listener sees it.

A request with a valid signature can still carry fields of the wrong shape (a list where Slack sends an
object, a number where it sends text): forged, or from a client that is not Slack's. Bolt itself trips over
some of them (a `view` that is not an object fails inside its own request logging), so they are answered with
HTTP 400 and a plain reason before routing, never with a 500 from somewhere inside.
"""

from __future__ import annotations

from typing import Any

# field -> the JSON type Slack sends it as, for the interaction payloads the bot handles
_OBJECTS = ("user", "view", "container", "channel", "team", "message", "state")
_TEXT_IN = {"user": ("id",), "view": ("id", "callback_id"), "container": ("channel_id", "message_ts")}


def payload_problem(body: Any) -> str | None:
    """Why an interaction payload cannot be Slack's, or None when its shape is right."""
    if not isinstance(body, dict):
        return "the payload is not a JSON object"
    for key in _OBJECTS:
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            return f"'{key}' is not an object"
    for key, fields in _TEXT_IN.items():
        part = body.get(key) or {}
        for name in fields:
            if name in part and part[name] is not None and not isinstance(part[name], str):
                return f"'{key}.{name}' is not text"
    if body.get("type") in ("view_submission", "view_closed") and not isinstance(body.get("view"), dict):
        return "a view submission has no view"
    actions = body.get("actions")
    if actions is not None and (not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions)):
        return "'actions' is not a list of objects"
    for action in actions or []:
        for name in ("action_id", "value", "block_id"):
            if name in action and action[name] is not None and not isinstance(action[name], str):
                return f"'actions[].{name}' is not text"
    view = body.get("view") or {}
    if "private_metadata" in view and not isinstance(view["private_metadata"], str | type(None)):
        return "'view.private_metadata' is not text"
    values = (view.get("state") or {}).get("values") if isinstance(view.get("state"), dict) else None
    if values is not None and (not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values())):
        return "'view.state.values' is not an object of objects"
    return None
