"""Answers to the person who asked, after the ack: through the interaction's response_url."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.webhook import WebhookClient

from bot.clients.slack import TIMEOUT_SECONDS
from bot.errors import DcsError
from handlers import blocks as bk
from handlers.context import reference_id

log = logging.getLogger(__name__)


def tell(response_url: str | None, content: dict[str, Any]) -> None:
    """An ephemeral note to the person who asked, through the interaction's response_url."""
    if not response_url:
        return
    try:
        response = WebhookClient(response_url, timeout=TIMEOUT_SECONDS).send(
            response_type="ephemeral", replace_original=False, **content
        )
        if response.status_code != 200:
            log.warning("the response_url answered %s (it expires after 30 min and 5 uses)", response.status_code)
    except Exception as exc:
        log.warning("could not answer through the response_url: %s", type(exc).__name__)


def replace(response_url: str | None, content: dict[str, Any]) -> None:
    """Replace the message a button was clicked in (an ephemeral answer's pages), through the response_url."""
    if not response_url:
        return
    try:
        response = WebhookClient(response_url, timeout=TIMEOUT_SECONDS).send(replace_original=True, **content)
        if response.status_code != 200:
            log.warning("the response_url answered %s (it expires after 30 min and 5 uses)", response.status_code)
    except Exception as exc:
        log.warning("could not replace the message through the response_url: %s", type(exc).__name__)


def told_errors(response_url: str | None, what: str, fn: Callable[..., None], *args: Any) -> None:
    """Run a step after the ack: a DcsError is told to the person who asked; a crash is logged with a reference
    id they are given."""
    try:
        fn(*args)
    except DcsError as exc:
        tell(response_url, bk.problem(exc.message))
    except Exception:
        ref = reference_id()
        log.exception("%s failed (ref %s)", what, ref)
        tell(response_url, bk.apology(ref))
