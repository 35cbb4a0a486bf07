"""The Slack Web API client: one factory, bounded 429 back-off, errors in words a person can act on.

Every call spends from one workspace-wide budget per method (bot/clients/slack_budget.py), so the bot
stays under Slack's limits before Slack has to say so. slack_sdk's default client raises on HTTP 429;
`RateLimitErrorRetryHandler` sleeps for `Retry-After` and tries again. Ours caps both the number of retries
and the wait, so a long Retry-After turns into a logged failure instead of a thread asleep for minutes, and
tells the budget, so every other thread waits out the same Retry-After. `SlackApiError`s are translated at this boundary
into `SlackError` (a DcsError) whose message says what to fix.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.clients.slack_budget import SlackBudget, budget_for
from bot.config import Config
from bot.errors import DcsError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
MAX_RATE_LIMIT_RETRIES = 3
MAX_RETRY_AFTER_SECONDS = 30


class SlackError(DcsError):
    """A Slack Web API call failed; `code` is Slack's error string (invalid_auth, not_in_channel, ...)."""

    exit_code = 30

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SlackWebClient(WebClient):
    """A WebClient that knows its app's workspace-wide budget (`call()` spends from it)."""

    budget: SlackBudget


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Honours Retry-After, but gives up when Slack asks for a wait longer than `max_wait`. Every 429 also
    pauses the method in the workspace budget, so the bot's other threads wait too instead of piling on."""

    def __init__(
        self,
        max_retry_count: int = MAX_RATE_LIMIT_RETRIES,
        max_wait: int = MAX_RETRY_AFTER_SECONDS,
        budget: SlackBudget | None = None,
    ):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.budget = budget

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response)
        if self.budget is not None:
            self.budget.pause(_method(request), wait)
        if wait > self.max_wait:
            log.warning(
                "Slack asked to wait %ss before retrying %s; not retrying (cap %ss)",
                wait,
                _method(request),
                self.max_wait,
            )
            return False
        log.info("Slack rate-limited %s; retrying in %ss", _method(request), wait)
        return True


def make_web_client(config: Config, token: str | None = None, budget: SlackBudget | None = None) -> SlackWebClient:
    """The WebClient every part of the bot uses (Bolt copies its base URL and retry handlers per request).
    Every client made for the same token shares one budget (bot/clients/slack_budget.py)."""
    token = token if token is not None else config.slack_bot_token
    budget = budget or budget_for(config.slack_api_url, token or "")
    client = SlackWebClient(
        token=token,
        base_url=config.slack_api_url,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[BoundedRateLimitRetryHandler(budget=budget), ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    client.budget = budget
    return client


_EXPLANATIONS = {
    "invalid_auth": "Slack rejected the bot's token (invalid_auth). Check SLACK_BOT_TOKEN and reinstall the app.",
    "not_authed": "No Slack token was sent (not_authed). Set SLACK_BOT_TOKEN.",
    "account_inactive": "The bot's Slack token belongs to a deactivated app or user (account_inactive).",
    "token_revoked": "The bot's Slack token was revoked (token_revoked). Reinstall the app and update SLACK_BOT_TOKEN.",
    "channel_not_found": "I cannot see that channel (channel_not_found). For a private channel, invite me with "
    "`/invite @DCS`; otherwise check the channel id.",
    "not_in_channel": "I am not a member of that channel (not_in_channel). Invite me with `/invite @DCS`.",
    "is_archived": "That channel is archived (is_archived): pick another channel.",
    "msg_too_long": "The message was too long for Slack (msg_too_long).",
    "ratelimited": "Slack is rate-limiting the bot right now (ratelimited). Try again in a minute.",
    "expired_trigger_id": "The dialog could not open because Slack's 3-second window passed. Run the command again.",
    "exchanged_trigger_id": "This dialog was already opened once. Run the command again.",
    "missing_scope": "The bot's Slack app lacks a permission scope for this (missing_scope). Update the app "
    "from slack-manifest.yml and reinstall it.",
}


def explain(exc: SlackApiError | SlackClientError) -> SlackError:
    """Translate a slack_sdk exception into a SlackError with a message a person can act on."""
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
        needed = exc.response.get("needed") if exc.response is not None else None
        message = _EXPLANATIONS.get(code, f"Slack answered with an error ({code}).")
        if code == "missing_scope" and needed:
            message += f" Needed scope: {needed}."
        return SlackError(message, code)
    return SlackError(
        f"Slack could not be reached ({type(exc).__name__}). Check the network and SLACK_API_URL.", "unreachable"
    )


def call(client: WebClient, method: str, *, prepaid: bool = False, **params: Any) -> dict[str, Any]:
    """Call a Web API method ("chat.postMessage"); raises SlackError after one clear log line.

    The call first waits its turn in the client's workspace budget, unless the caller already took it
    (`prepaid`: a progress update that found a free token)."""
    budget = getattr(client, "budget", None)
    if budget is not None and not prepaid:
        budget.acquire(method, _channel_of(params))
    try:
        response = getattr(client, method.replace(".", "_"))(**params)
        return dict(response.data) if isinstance(response.data, dict) else {}
    except (SlackApiError, SlackClientError) as exc:
        error = explain(exc)
        where = params.get("channel") or params.get("user_id") or params.get("user") or ""
        log.warning("Slack %s %s failed: %s", method, where, error.code)
        raise error from None


def _channel_of(params: dict[str, Any]) -> str | None:
    channel = params.get("channel")
    return channel if isinstance(channel, str) else None


def _retry_after(response: HttpResponse) -> int:
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return int(values[0])
            except ValueError:
                return 1
    return 1


def _method(request: HttpRequest) -> str:
    return request.url.rsplit("/", 1)[-1]
