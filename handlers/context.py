"""What every Slack surface receives in `register(app, ctx)`: the bot's parts, passed down explicitly."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient

from bot.config import Config
from bot.domain.permissions import Role, allowed, denial, role_of
from bot.ops.build import Builder
from bot.services import Services
from bot.store import Store
from bot.workers import Workers

if TYPE_CHECKING:
    from handlers.commands import CommandTable

log = logging.getLogger(__name__)

# A Home tab section: (ctx, user_id) -> blocks. Return [] to show nothing.
HomeSectionBuilder = Callable[["AppContext", str], list[dict[str, Any]]]


@dataclass
class HomeSection:
    name: str
    build: HomeSectionBuilder


@dataclass
class AppContext:
    config: Config
    services: Services
    workers: Workers
    builder: Builder
    client: WebClient  # the bot's own client, for work that outlives a request (progress, final messages)
    commands: CommandTable
    home_sections: list[HomeSection] = field(default_factory=list)
    # Set by handlers/home.py: republish someone's Home tab (buttons on it call this after a click).
    refresh_home: Callable[[AppContext, str], None] | None = None

    @property
    def store(self) -> Store:
        return self.services.store

    def role(self, user_id: str) -> Role:
        return role_of(user_id, self.config)

    def permitted(
        self, user_id: str, needed: Role, action: str, target: str | None = None, doing: str | None = None
    ) -> str | None:
        """None when allowed; otherwise the denial text (and an audit row: denials are security events).
        `doing` completes "You need the X role to ..." (default: the action name)."""
        if allowed(user_id, needed, self.config):
            return None
        self.store.audit(
            actor=user_id, action=action, target=target, outcome="denied", detail=f"needs role {needed.label}"
        )
        return denial(needed, doing or action.replace(".", " ").replace("_", " "))

    def set_home_section(self, name: str, build: HomeSectionBuilder, *, before: str | None = None) -> None:
        """Replace the section called `name`, or add it (at the end, or before `before`)."""
        for section in self.home_sections:
            if section.name == name:
                section.build = build
                return
        index = next((i for i, s in enumerate(self.home_sections) if s.name == before), len(self.home_sections))
        self.home_sections.insert(index, HomeSection(name, build))


def reference_id() -> str:
    """A short id shown to a user after an unexpected error and logged next to the traceback."""
    return uuid.uuid4().hex[:8]
