"""The Bolt app factory (part of the composition root). Building it touches no network (unless
`verify_token=True`, used at start-up).

Slack surfaces are modules with `register(app, ctx)`, listed in SURFACES: a feature adds its module with a
one-line edit. `/dcs` subcommands go in `ctx.commands`, Home sections in `ctx.home_sections` (see
handlers/__init__.py for the whole contract).
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient

import handlers.actions
import handlers.builds
import handlers.catalog
import handlers.commands
import handlers.enable
import handlers.fleet
import handlers.home
import handlers.launch
import handlers.lts
import handlers.placeholders
import handlers.ratelimit
import handlers.rebuild
import handlers.release
import handlers.views
from bot.clients.slack import make_web_client
from bot.clients.slack_acks import PromptAck, PromptAckExecutor
from bot.compose import attach_bot
from bot.config import Config
from bot.ops.build import Builder
from bot.services import Services
from bot.workers import Workers
from handlers.blocks import apology
from handlers.commands import CommandTable
from handlers.context import AppContext, reference_id
from handlers.home import default_sections
from handlers.payloads import payload_problem
from handlers.respond import tell

log = logging.getLogger(__name__)

# Slack surfaces, registered in this order (help lists commands in it). Bolt runs the FIRST listener matching
# an action, so features go above handlers.placeholders, which must stay last (its fallbacks yield to real ones).
SURFACES: list[ModuleType] = [
    handlers.commands,
    handlers.catalog,
    handlers.builds,
    handlers.actions,
    handlers.views,
    handlers.home,
    handlers.rebuild,
    handlers.ratelimit,
    handlers.launch,
    handlers.enable,
    handlers.release,
    handlers.lts,
    handlers.fleet,
    handlers.placeholders,
]

# Acks are answered from these threads (Bolt's default is 5, shared by every listener); our listeners
# only validate, claim and queue, so the pool can stay small but must not be the bottleneck under load.
LISTENER_THREADS = 16

_contexts: weakref.WeakKeyDictionary[App, AppContext] = weakref.WeakKeyDictionary()


def build_context(config: Config, services: Services, workers: Workers, client: WebClient | None = None) -> AppContext:
    attach_bot(services, workers)
    return AppContext(
        config=config,
        services=services,
        workers=workers,
        builder=Builder(services),
        client=client or make_web_client(config),
        commands=CommandTable(),
        home_sections=default_sections(),
    )


def create_app(
    config: Config,
    services: Services,
    workers: Workers,
    *,
    verify_token: bool = False,
    surfaces: list[ModuleType] | None = None,
) -> App:
    ctx = build_context(config, services, workers)
    app = App(
        client=ctx.client,
        # A missing secret is refused at start-up (bot/__main__.py); a random one here means an app built
        # without it can never accept a request, instead of accepting ones signed with an empty key.
        signing_secret=config.slack_signing_secret or secrets.token_hex(32),
        token_verification_enabled=verify_token,
        listener_executor=PromptAckExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"),
        name="dcs-bot",
    )
    app.use(PromptAck())  # first: acks leave when `ack()` is called (bot/clients/slack_acks.py)

    app.use(WellFormed())

    for surface in surfaces if surfaces is not None else SURFACES:
        register: Callable[[App, AppContext], None] = surface.register
        register(app, ctx)

    @app.error
    def unexpected(error: Exception, body: dict[str, Any]) -> None:
        ref = reference_id()
        log.error("unhandled error in a Slack listener (ref %s)", ref, exc_info=error)
        url = body.get("response_url") if isinstance(body, dict) else None
        if url:
            workers.quick(tell, url, apology(ref))

    _contexts[app] = ctx
    return app


class WellFormed(Middleware):
    """Malformed (forged) payloads get a 400 with the reason before routing, never a 500 from inside."""

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt calls process(req=, resp=, next=)
    ) -> BoltResponse | None:
        problem = payload_problem(req.body)
        if problem is not None:
            log.warning("refused a malformed Slack payload: %s", problem)
            return BoltResponse(status=400, body=f"Malformed Slack payload: {problem}.")
        return next()


def app_context(app: App) -> AppContext:
    """The context an app was built with (for start-up hooks and tests)."""
    return _contexts[app]
