"""Block Kit validation as Slack's API applies it, for the fake Slack and for tests that check ack bodies.

Limits follow slack_sdk 3.48's model validators (Slack's documented limits as coded; see
/work/notes/slack-notes.md (c)): blocks ≤ 50 per message and ≤ 100 per view; section text ≤ 3000 and ≤ 10
fields of ≤ 2000; header ≤ 150; context ≤ 10 elements; actions ≤ 25 elements; button text ≤ 75, value ≤ 2000,
url ≤ 3000, style primary|danger; action_id and block_id ≤ 255 (block_id unique per message/view); placeholder
≤ 150; option text ≤ 75, value ≤ 150, description ≤ 75; static selects ≤ 100 options (or ≤ 100 option groups);
overflow 1..5 options; checkboxes and radio buttons ≤ 10; confirm objects need title (plain_text ≤ 100), text
(≤ 300), confirm and deny (plain_text ≤ 30), style primary|danger; input label and hint ≤ 2000; modal title,
submit and close ≤ 24, private_metadata ≤ 3000. Text objects are `plain_text` or `mrkdwn` with a non-empty
`text`; `emoji` is not allowed on mrkdwn.

Each problem reads like Slack's: `must be less than 3001 characters [json-pointer:/blocks/0/text/text]`; the
error answer is `{"ok": false, "error": "invalid_blocks", "errors": [...]}` (shape as in slack-go's fixtures)
plus `response_metadata.messages` with an `[ERROR] ` prefix. The exact wording per rule is modelled, not copied.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
_SELECTS_WITH_OPTIONS = ("static_select", "multi_static_select")
_PLACEHOLDER_ELEMENTS = (
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "plain_text_input",
    "datepicker",
    "timepicker",
    "email_text_input",
    "url_text_input",
    "number_input",
)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.problems.append(f"{message} [json-pointer:{pointer}]")

    def length(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def count(self, items: Any, limit: int, pointer: str, minimum: int = 0) -> list[Any]:
        if not isinstance(items, list):
            self.fail("must be an array", pointer)
            return []
        if len(items) > limit:
            self.fail(f"no more than {limit} items allowed", pointer)
        if len(items) < minimum:
            self.fail(f"must provide at least {minimum} items", pointer)
        return items

    def text(self, obj: Any, limit: int, pointer: str, plain: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail("missing required field", pointer)
            return
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.fail("must be a text object of type plain_text or mrkdwn", pointer)
            return
        if plain and obj["type"] != "plain_text":
            self.fail("must be a plain_text object", pointer + "/type")
        if obj["type"] == "mrkdwn" and "emoji" in obj:
            self.fail("invalid additional property: emoji", pointer)
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.fail("must be more than 0 characters", pointer + "/text")
        self.length(value, limit, pointer + "/text")

    def style(self, obj: dict[str, Any], pointer: str) -> None:
        if "style" in obj and obj["style"] not in ("primary", "danger"):
            self.fail("must be one of: primary, danger", pointer + "/style")

    def confirm(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.fail("must be a confirm object", pointer)
            return
        self.text(obj.get("title"), 100, pointer + "/title", plain=True)
        self.text(obj.get("text"), 300, pointer + "/text")
        self.text(obj.get("confirm"), 30, pointer + "/confirm", plain=True)
        self.text(obj.get("deny"), 30, pointer + "/deny", plain=True)
        self.style(obj, pointer)

    def option(self, obj: Any, pointer: str, plain: bool = True) -> None:
        if not isinstance(obj, dict):
            self.fail("must be an option object", pointer)
            return
        self.text(obj.get("text"), 75, pointer + "/text", plain=plain)
        value = obj.get("value")
        if not isinstance(value, str) or not value:
            self.fail("must be more than 0 characters", pointer + "/value")
        self.length(value, 150, pointer + "/value")
        self.text(obj.get("description"), 75, pointer + "/description", plain=plain, required=False)

    def options(self, body: dict[str, Any], pointer: str, limit: int = 100, minimum: int = 0) -> None:
        if "option_groups" in body:
            for g, group in enumerate(self.count(body["option_groups"], 100, f"{pointer}/option_groups", 1)):
                where = f"{pointer}/option_groups/{g}"
                self.text((group or {}).get("label"), 75, where + "/label", plain=True)
                for i, item in enumerate(self.count((group or {}).get("options"), limit, where + "/options", 1)):
                    self.option(item, f"{where}/options/{i}")
        elif "options" in body or minimum:
            for i, item in enumerate(self.count(body.get("options"), limit, f"{pointer}/options", minimum)):
                self.option(item, f"{pointer}/options/{i}")

    def element(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            self.fail("must be an element object with a type", pointer)
            return
        kind = obj["type"]
        self.length(obj.get("action_id"), 255, pointer + "/action_id")
        if "confirm" in obj:
            self.confirm(obj["confirm"], pointer + "/confirm")
        if kind in _PLACEHOLDER_ELEMENTS:
            self.text(obj.get("placeholder"), 150, pointer + "/placeholder", plain=True, required=False)
        if kind == "button":
            self.text(obj.get("text"), 75, pointer + "/text", plain=True)
            self.length(obj.get("value"), 2000, pointer + "/value")
            self.length(obj.get("url"), 3000, pointer + "/url")
            self.style(obj, pointer)
        elif kind in _SELECTS_WITH_OPTIONS:
            if "options" not in obj and "option_groups" not in obj:
                self.fail("must provide either options or option_groups", pointer)
            self.options(obj, pointer)
        elif kind == "overflow":
            self.options(obj, pointer, limit=5, minimum=1)
        elif kind in ("checkboxes", "radio_buttons"):
            items = self.count(obj.get("options"), 10, pointer + "/options", 1)
            for i, item in enumerate(items):
                self.option(item, f"{pointer}/options/{i}", plain=False)
        elif kind in ("external_select", "multi_external_select"):
            if not isinstance(obj.get("min_query_length", 0), int) or obj.get("min_query_length", 0) < 0:
                self.fail("must be a non-negative integer", pointer + "/min_query_length")
        elif kind == "image":
            self.length(obj.get("image_url"), 3000, pointer + "/image_url")
            self.length(obj.get("alt_text"), 2000, pointer + "/alt_text")

    def block(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            self.fail("must be a block object with a type", pointer)
            return
        kind = obj["type"]
        self.length(obj.get("block_id"), 255, pointer + "/block_id")
        if kind == "section":
            if "text" not in obj and "fields" not in obj:
                self.fail("must provide either text or fields", pointer)
            if "text" in obj:
                self.text(obj["text"], 3000, pointer + "/text")
            if "fields" in obj:
                for i, item in enumerate(self.count(obj["fields"], 10, pointer + "/fields", 1)):
                    self.text(item, 2000, f"{pointer}/fields/{i}")
            if "accessory" in obj:
                self.element(obj["accessory"], pointer + "/accessory")
        elif kind == "header":
            self.text(obj.get("text"), 150, pointer + "/text", plain=True)
        elif kind == "context":
            for i, item in enumerate(self.count(obj.get("elements"), 10, pointer + "/elements", 1)):
                if isinstance(item, dict) and item.get("type") == "image":
                    self.element(item, f"{pointer}/elements/{i}")
                else:
                    self.text(item, 10**6, f"{pointer}/elements/{i}")  # no documented limit
        elif kind == "actions":
            for i, item in enumerate(self.count(obj.get("elements"), 25, pointer + "/elements", 1)):
                self.element(item, f"{pointer}/elements/{i}")
        elif kind == "input":
            self.text(obj.get("label"), 2000, pointer + "/label", plain=True)
            self.text(obj.get("hint"), 2000, pointer + "/hint", plain=True, required=False)
            if "element" not in obj:
                self.fail("missing required field", pointer + "/element")
            else:
                self.element(obj["element"], pointer + "/element")
        elif kind == "image":
            self.length(obj.get("image_url"), 3000, pointer + "/image_url")
            self.length(obj.get("alt_text"), 2000, pointer + "/alt_text")
            self.text(obj.get("title"), 2000, pointer + "/title", plain=True, required=False)

    def blocks(self, blocks: Any, limit: int, pointer: str = "/blocks") -> None:
        seen: set[str] = set()
        for i, block in enumerate(self.count(blocks, limit, pointer)):
            self.block(block, f"{pointer}/{i}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if block_id is not None:
                if block_id in seen:
                    self.fail(f"duplicate block_id {block_id!r}", f"{pointer}/{i}/block_id")
                seen.add(block_id)


def blocks_problems(blocks: Any, limit: int = MAX_MESSAGE_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Problems of a message's (or, with limit=100, a view's) `blocks`; empty when Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, limit, pointer)
    return checker.problems


def view_problems(view: Any) -> list[str]:
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("must be an object", "/view")
        return checker.problems
    if view.get("type") == "modal":
        checker.text(view.get("title"), 24, "/view/title", plain=True)
        checker.text(view.get("submit"), 24, "/view/submit", plain=True, required=False)
        checker.text(view.get("close"), 24, "/view/close", plain=True, required=False)
    checker.length(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.length(view.get("callback_id"), 255, "/view/callback_id")
    checker.length(view.get("external_id"), 255, "/view/external_id")
    checker.blocks(view.get("blocks") or [], MAX_VIEW_BLOCKS, "/view/blocks")
    return checker.problems


def options_problems(body: Any) -> list[str]:
    """Problems of an options-load answer (the ack body for a `block_suggestion`)."""
    checker = _Checker()
    if not isinstance(body, dict) or ("options" not in body and "option_groups" not in body):
        checker.fail("must provide either options or option_groups", "")
        return checker.problems
    checker.options(body, "")
    return checker.problems


def payload_problems(payload: Any) -> list[str]:
    """Block Kit problems anywhere in a Slack-bound body: message `blocks`, a `view`, or an options answer."""
    if not isinstance(payload, dict):
        return []
    problems: list[str] = []
    if "blocks" in payload:
        problems += blocks_problems(payload["blocks"])
    if isinstance(payload.get("view"), dict):
        problems += view_problems(payload["view"])
    if "options" in payload or "option_groups" in payload:
        problems += options_problems(payload)
    for key in ("attachments",):
        for i, attachment in enumerate(payload.get(key) or []):
            if isinstance(attachment, dict) and "blocks" in attachment:
                problems += blocks_problems(attachment["blocks"], pointer=f"/attachments/{i}/blocks")
    return problems


def invalid_blocks(problems: list[str]) -> dict[str, Any]:
    """Slack's answer to a message whose blocks it refuses."""
    return {
        "ok": False,
        "error": "invalid_blocks",
        "errors": list(problems),
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }


def escape_characters(value: Any, where: str = "") -> list[str]:
    """JSON-ish paths of every string (or bytes) in `value` that holds an ESC (\\x1b) character."""
    if isinstance(value, str):
        return [where or "/"] if "\x1b" in value else []
    if isinstance(value, bytes | bytearray):
        return [where or "/"] if b"\x1b" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in escape_characters(v, f"{where}/{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in escape_characters(v, f"{where}/{i}")]
    return []
