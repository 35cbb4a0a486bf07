"""A local Slack: the Web API over real HTTP, a response_url sink, signed request bodies, Socket Mode.

Point the real client at it: `WebClient(token="xoxb-...", base_url=fake.api_url)`.

Web API methods: auth.test, apps.connections.open, chat.postMessage (incl. `thread_ts`, `reply_broadcast`),
chat.update, chat.postEphemeral, conversations.replies, conversations.info, users.info, views.open/push/update/
publish, files.getUploadURLExternal + the upload URL + files.completeUploadExternal (slack_files.py).
Every message and view is checked as Slack checks Block Kit (blockkit.py): a refused message answers
`invalid_blocks` with `errors`, a refused view `invalid_arguments` with `response_metadata.messages`.

Seeding: `FakeSlack(users=, channels=, scopes=, valid_tokens=)`; `scopes` (default `SCOPES`) is what the app
was granted: `x-oauth-scopes` shows it, files.* need `files:write`, conversations.replies the channel type's
`*:history` scope, else `missing_scope`.
Faults: `fail_next(method, error)`, `rate_limit_next(method, retry_after)`; `FakeSlack(rate_limits={method: (n,
window)})` enforces a limit like Slack (429 + Retry-After past n calls in any window), `busiest_window()`
says how close the bot came.
Records: `calls()`, `messages()`, `replies(channel, ts)`, `mentions(user_id, threaded=)`,
`ephemeral_messages()`, `views()`, `home_view()`, `response_posts()`, `files()`; waits: `wait_for(...)`,
`wait_for_mention(...)`, `wait_for_response_post(...)`; checks over everything recorded:
`block_kit_problems()`, `assert_no_escape_characters()`, `assert_no_token_outside_api()`.
Payload builders for requests *to* the bot (slack_payloads.py, re-exported here): slash commands,
block_actions, view_submission, block_suggestion — HTTP bodies signed with `signed_headers`, or wrapped by
`socket_mode_envelope` for `FakeSocketModeServer` (slack_socket_mode.py, re-exported here).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from tests.fakes.blockkit import (
    blocks_problems,
    escape_characters,
    invalid_blocks,
    payload_problems,
    view_problems,
)
from tests.fakes.http import FakeHTTPServer, FaultQueue, RecordedRequest, Response, wait_until
from tests.fakes.slack_files import FilesMixin, SlackFile
from tests.fakes.slack_payloads import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    UNSET_RESPONSE_URL,
    _view_id,
    block_actions_body,
    block_actions_payload,
    block_suggestion_body,
    block_suggestion_payload,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    socket_mode_envelope,
    view_submission_body,
    view_submission_payload,
)
from tests.fakes.slack_socket_mode import FakeSocketModeServer

__all__ = [  # the builders and the Socket Mode server live in their own modules; import them from here
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "UNSET_RESPONSE_URL",
    "FakeSocketModeServer",
    "SlackFile",
    "block_actions_body",
    "block_actions_payload",
    "block_suggestion_body",
    "block_suggestion_payload",
    "signed_headers",
    "slash_command_body",
    "slash_command_payload",
    "socket_mode_envelope",
    "view_submission_body",
    "view_submission_payload",
]

SCOPES = "commands,chat:write,chat:write.public,users:read,users:read.email,im:write"
METHOD_SCOPES = {"files.getUploadURLExternal": "files:write", "files.completeUploadExternal": "files:write"}
HISTORY_SCOPES = {"C": "channels:history", "G": "groups:history", "D": "im:history"}
_JSON_FORM_FIELDS = ("blocks", "attachments", "view", "metadata")


@dataclass(frozen=True)
class SlackCall:
    """One Web API call: params are the JSON body or form fields (JSON-string fields decoded), minus token."""

    method: str
    params: dict[str, Any]
    token: str | None
    response: dict[str, Any] | None = None
    status: int = 200
    at: float = 0.0  # time.monotonic() when the fake answered


@dataclass(frozen=True)
class SlackMessage:
    """Current state of a message the bot posted (after any chat.update)."""

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    updates: int = 0
    user: str | None = None  # set for ephemeral messages: who can see it
    reply_broadcast: bool = False

    def mentions(self, user_id: str) -> bool:
        """Whether the text or any text in the blocks mentions `<@user_id>` (what makes Slack notify them)."""
        return f"<@{user_id}>" in json.dumps([self.text, self.blocks])


@dataclass(frozen=True)
class ResponseUrlPost:
    name: str
    body: Any
    headers: dict[str, str]


class FakeSlack(FilesMixin, FakeHTTPServer):
    def __init__(
        self,
        users: dict[str, dict[str, Any]] | None = None,
        channels: dict[str, dict[str, Any]] | None = None,
        socket_mode_url: str = "ws://127.0.0.1:9/link/?ticket=unset",
        valid_tokens: Iterable[str] | None = None,
        scopes: Iterable[str] | str | None = None,
        rate_limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        super().__init__()
        # Slack's own enforcement, per method: at most N calls in any `window` seconds, else HTTP 429 with
        # Retry-After (whole seconds, like Slack) until the oldest call leaves the window.
        self.rate_limits = dict(rate_limits or {})
        self._recent: dict[str, list[float]] = {}
        alice = {"name": "alice", "real_name": "Alice Example", "profile": {"email": "alice@example.com"}}
        self.users = users if users is not None else {"U1": alice}
        self.channels = channels if channels is not None else {"C1": {"name": "dcs-builds"}}
        self.socket_mode_url = socket_mode_url
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        given = scopes if scopes is not None else SCOPES
        self.scopes = [x for x in given.split(",") if x] if isinstance(given, str) else list(given)
        self._files: dict[str, SlackFile] = {}
        self._faults = FaultQueue()
        self._calls: list[SlackCall] = []
        self._responses: list[ResponseUrlPost] = []
        self._messages: dict[tuple[str, str], SlackMessage] = {}
        self._ephemeral: list[SlackMessage] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._home: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    # fault injection ------------------------------------------------------------------------------
    def fail_next(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        response = Response(200, {"ok": False, "error": error})
        self._faults.add(lambda r: r.path == f"/api/{method}", response, times)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        response = Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
        self._faults.add(lambda r: r.path == f"/api/{method}", response, times)

    # inspection -----------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self._messages.values() if channel is None or m.channel == channel]

    def replies(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """Messages posted in the thread of `thread_ts` (not the parent), oldest first."""
        with self._lock:
            return [m for m in self._messages.values() if m.channel == channel and m.thread_ts == thread_ts]

    def mentions(self, user_id: str, threaded: bool | None = None) -> list[SlackMessage]:
        """Messages (current state) that mention `<@user_id>`; `threaded=True` only thread replies, False none."""
        with self._lock:
            return [
                m
                for m in self._messages.values()
                if m.mentions(user_id) and (threaded is None or bool(m.thread_ts) == threaded)
            ]

    def wait_for_mention(self, user_id: str, threaded: bool | None = None, timeout: float = 10.0) -> SlackMessage:
        def describe() -> str:
            return "messages so far: " + "; ".join(f"{m.thread_ts or '-'} {m.text!r}" for m in self.messages())

        return wait_until(lambda: self.mentions(user_id, threaded), timeout, describe)[0]

    def ephemeral_messages(self, user: str | None = None) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self._ephemeral if user is None or m.user == user]

    def views(self) -> dict[str, dict[str, Any]]:
        """Modals opened/updated, by view id (current state)."""
        with self._lock:
            return copy.deepcopy(self._views)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._home.get(user_id))

    def block_kit_problems(self) -> list[str]:
        """Block Kit problems in every body the bot sent (Web API calls and response_url posts), by origin."""
        bodies = [(c.method, c.params) for c in self.calls()] + [
            (f"response_url {p.name}", p.body) for p in self.response_posts()
        ]
        return [f"{origin}: {problem}" for origin, body in bodies for problem in payload_problems(body)]

    def assert_no_escape_characters(self) -> None:
        """Fail if an ESC (\x1b, as in ANSI colour codes) is in any recorded call, response_url post or file."""
        found = [f"{c.method} {p}" for c in self.calls() for p in escape_characters(c.params)]
        found += [f"response_url {r.name} {p}" for r in self.response_posts() for p in escape_characters(r.body)]
        found += [f"file {f.filename}" for f in self.files() if escape_characters(f.content)]
        assert not found, f"ESC characters reached Slack: {found}"

    def assert_no_token_outside_api(self) -> None:
        """Fail if a request outside /api/ (upload URLs, response_urls) carried a token."""
        leaked = [
            f"{r.method} {r.path}"
            for r in self.requests
            if not r.path.startswith("/api/")
            and (r.header("authorization") or (isinstance(r.body, dict) and "token" in r.body))
        ]
        assert not leaked, f"tokens sent outside the Web API: {leaked}"

    def response_posts(self, name: str | None = None) -> list[ResponseUrlPost]:
        with self._lock:
            return [p for p in self._responses if name is None or p.name == name]

    def wait_for_response_post(self, name: str, timeout: float = 10.0) -> ResponseUrlPost:
        """Wait for the first POST to `response_url(name)` and return it."""
        found = wait_until(
            lambda: self.response_posts(name), timeout, lambda: f"response_url posts so far: {self.response_posts()}"
        )
        return found[0]

    def wait_for(
        self, predicate: Callable[[SlackCall], bool] | str, timeout: float = 10.0, count: int = 1
    ) -> list[SlackCall]:
        """Wait until `count` calls match (a method name or a predicate); return all matching calls."""
        match = (lambda c: c.method == predicate) if isinstance(predicate, str) else predicate

        def probe() -> list[SlackCall]:
            found = [c for c in self.calls() if match(c)]
            return found if len(found) >= count else []

        def describe() -> str:
            lines = [f"  {c.method} {json.dumps(c.params, default=str)[:300]}" for c in self.calls()]
            return "Slack calls so far:\n" + ("\n".join(lines) or "  (none)")

        return wait_until(probe, timeout, describe)

    # HTTP -----------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        if request.path.startswith("/response/"):
            post = ResponseUrlPost(request.path.removeprefix("/response/"), request.body, request.headers)
            with self._lock:
                self._responses.append(post)
            return Response(200, "ok")
        if request.path.startswith("/upload/v1/"):
            return self._upload(request)
        if not request.path.startswith("/api/"):
            return Response(404, "not found")
        method = request.path.removeprefix("/api/")
        params, token = _call_params(request)
        response = self._faults.take(request) or self._over_limit(method) or self._dispatch(method, params, token)
        body = response.body if isinstance(response.body, dict) else None
        with self._lock:
            self._calls.append(SlackCall(method, params, token, body, response.status, time.monotonic()))
        return response

    def _over_limit(self, method: str) -> Response | None:
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        most, window = limit
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._recent.get(method, []) if now - t < window]
            if len(recent) >= most:
                self._recent[method] = recent
                retry_after = max(1, math.ceil(window - (now - recent[0])))
                return Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            self._recent[method] = [*recent, now]
        return None

    def busiest_window(self, method: str, window: float) -> int:
        """The most successful calls of `method` seen in any `window` seconds (what Slack's limit counts)."""
        with self._lock:
            times = sorted(c.at for c in self._calls if c.method == method and c.status == 200)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def _dispatch(self, method: str, params: dict[str, Any], token: str | None) -> Response:
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return Response(200, _error("unknown_method", req_method=method))
        if not token:
            return Response(200, _error("not_authed"))
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return Response(200, _error("invalid_auth"))
        if (method == "apps.connections.open") != token.startswith("xapp-") and method != "auth.test":
            return Response(200, _error("not_allowed_token_type"))
        needed = METHOD_SCOPES.get(method)
        if method == "conversations.replies":
            needed = HISTORY_SCOPES.get((params.get("channel") or "C")[:1], "channels:history")
        scopes = {"x-oauth-scopes": ",".join(self.scopes)}
        if needed and needed not in self.scopes:
            return Response(200, _error("missing_scope", needed=needed, provided=",".join(self.scopes)), scopes)
        with self._lock:
            result = handler(params)
        return Response(200, result, scopes)

    # Web API methods (called with the lock held) --------------------------------------------------
    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://dcs-test.slack.com/",
            "team": "DCS Test",
            "user": "dcsbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode_url}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(p.get("channel"))
        problem = _message_problem(p)
        if problem or channel is None:
            return problem or _error("channel_not_found")
        thread_ts = p.get("thread_ts") or None
        broadcast = bool(thread_ts) and str(p.get("reply_broadcast", "")).lower() in ("1", "true")
        message = SlackMessage(
            channel, self._next_ts(), p.get("text"), p.get("blocks"), thread_ts, reply_broadcast=broadcast
        )
        self._messages[(channel, message.ts)] = message
        return {"ok": True, "channel": channel, "ts": message.ts, "message": _message_json(message)}

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel", ""), p.get("ts", "")
        parent = self._messages.get((channel, ts))
        if parent is None:
            known = {c for c, _ in self._messages} | set(self.channels)
            return _error("thread_not_found" if channel in known else "channel_not_found")
        if parent.thread_ts and parent.thread_ts != parent.ts:  # a reply's ts: Slack answers with just it
            return {"ok": True, "messages": [_message_json(parent)], "has_more": False}
        replies = self.replies(channel, ts)
        head = _message_json(parent)
        if replies:
            head.update(
                {
                    "thread_ts": ts,
                    "reply_count": len(replies),
                    "reply_users_count": 1,
                    "reply_users": [BOT_USER_ID],
                    "latest_reply": replies[-1].ts,
                }
            )
        messages = [head] + [_message_json(m) for m in replies]
        return {"ok": True, "messages": messages, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel", ""), p.get("ts", "")
        old = self._messages.get((channel, ts))
        if old is None:
            known = {c for c, _ in self._messages} | set(self.channels)
            return _error("message_not_found" if channel in known else "channel_not_found")
        problem = _message_problem({"text": old.text, "blocks": old.blocks, **p})
        if problem:
            return problem
        text, blocks = p.get("text", old.text), p.get("blocks", old.blocks)
        new = replace(old, text=text, blocks=blocks, updates=old.updates + 1)
        self._messages[(channel, ts)] = new
        return {"ok": True, "channel": channel, "ts": ts, "text": new.text, "message": _message_json(new)}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(p.get("channel"))
        problem = _message_problem(p)
        if problem or channel is None or not p.get("user"):
            return problem or _error("channel_not_found" if channel is None else "user_not_found")
        message = SlackMessage(channel, self._next_ts(), p.get("text"), p.get("blocks"), user=p["user"])
        self._ephemeral.append(message)
        return {"ok": True, "message_ts": message.ts}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        trigger = p.get("trigger_id")
        if not trigger:
            return _invalid_arguments("[ERROR] missing required field: trigger_id")
        if trigger in self._used_triggers:
            return _error("exchanged_trigger_id")
        problem = _view_problem(p.get("view"), "modal")
        if problem:
            return problem
        self._used_triggers.add(trigger)
        view = _view_json(p["view"], _view_id())
        self._views[view["id"]] = view
        return {"ok": True, "view": view}

    _m_views_push = _m_views_open

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        by_external = {v["external_id"]: v for v in self._views.values() if v["external_id"]}
        old = self._views.get(p.get("view_id") or "") or by_external.get(p.get("external_id") or "")
        if old is None:
            return _error("not_found")
        if p.get("hash") and p["hash"] != old["hash"]:
            return _error("hash_conflict")
        problem = _view_problem(p.get("view"), "modal")
        if problem:
            return problem
        view = _view_json(p["view"], old["id"])
        self._views[old["id"]] = view
        return {"ok": True, "view": view}

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user_id")
        if not user_id:
            return _invalid_arguments("[ERROR] missing required field: user_id")
        problem = _view_problem(p.get("view"), "home")
        if problem:
            return problem
        view = _view_json(p["view"], self._home.get(user_id, {}).get("id") or _view_id())
        self._home[user_id] = view
        return {"ok": True, "view": view}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user", "")
        if user_id not in self.users:
            return _error("user_not_found")
        given = self.users[user_id]
        name = given.get("name", user_id.lower())
        real_name = given.get("real_name", name)
        profile = {"real_name": real_name, "display_name": name, **given.get("profile", {})}
        user = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "Europe/London",
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            **{k: v for k, v in given.items() if k != "profile"},
            "profile": profile,
        }
        return {"ok": True, "user": user}

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel_id = p.get("channel", "")
        if channel_id not in self.channels:
            return _error("channel_not_found")
        channel = {
            "id": channel_id,
            "name": channel_id.lower(),
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
            "created": 1700000000,
            "creator": "U1",
            **self.channels[channel_id],
        }
        return {"ok": True, "channel": channel}

    # helpers --------------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _resolve_channel(self, channel: str | None) -> str | None:
        if not channel:
            return None
        if channel.startswith("#"):
            return next((cid for cid, c in self.channels.items() if c.get("name") == channel[1:]), None)
        if channel[0] in "UW":  # posting to a user id lands in the bot's DM with them
            return "D" + channel[1:]
        return channel


def _error(error: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": error, **extra}


def _invalid_arguments(*messages: str) -> dict[str, Any]:
    return _error("invalid_arguments", response_metadata={"messages": list(messages)})


def _call_params(request: RecordedRequest) -> tuple[dict[str, Any], str | None]:
    params: dict[str, Any] = dict(request.query)
    if isinstance(request.body, dict):
        params.update(request.body)
    for key in _JSON_FORM_FIELDS:
        if isinstance(params.get(key), str) and params[key][:1] in ("[", "{"):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                pass  # left as a string: the method then answers invalid_blocks_format
    form_token = params.pop("token", None)
    return params, request.bearer_token or form_token


def _message_problem(p: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's error answer for a message it refuses, or None."""
    blocks = p.get("blocks")
    if not p.get("text") and not blocks and not p.get("attachments"):
        return _error("no_text")
    if len(p.get("text") or "") > 40000:
        return _error("msg_too_long")
    if blocks is not None:
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            return _error("invalid_blocks_format")
        problems = blocks_problems(blocks)
        if problems:
            return invalid_blocks(problems)
    return None


def _view_problem(view: Any, kind: str) -> dict[str, Any] | None:
    if not isinstance(view, dict) or view.get("type") != kind:
        return _invalid_arguments(f"[ERROR] view.type must be {kind} [json-pointer:/view/type]")
    problems = view_problems(view)
    return _invalid_arguments(*[f"[ERROR] {p}" for p in problems]) if problems else None


def _view_json(view: dict[str, Any], view_id: str) -> dict[str, Any]:
    return {
        "id": view_id,
        "team_id": TEAM_ID,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "callback_id": "",
        "private_metadata": "",
        "external_id": "",
        "state": {"values": {}},
        "root_view_id": view_id,
        "previous_view_id": None,
        "clear_on_close": False,
        "notify_on_close": False,
        **copy.deepcopy(view),
        "hash": f"{time.time():.0f}.{secrets.token_hex(4)}",
    }


def _message_json(m: SlackMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": m.text or "",
        "ts": m.ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
    }
    if m.blocks is not None:
        body["blocks"] = m.blocks
    if m.thread_ts:
        body["thread_ts"] = m.thread_ts
        body["parent_user_id"] = BOT_USER_ID
    if m.reply_broadcast:
        body["subtype"] = "thread_broadcast"
    return body
