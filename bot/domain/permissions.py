"""Who may do what: three roles decided by Slack user id only.

`DCS_ADMINS` may do everything (catalog changes, approvals, forced pushes). `DCS_BUILDERS` may build,
push and launch; when that list is empty every workspace member is a builder. Everyone may read
(help, images, status, logs). User names are never used: they are not unique and users can change them.
"""

from __future__ import annotations

from enum import IntEnum

from bot.config import Config


class Role(IntEnum):
    """Ordered: a higher role includes every lower one."""

    EVERYONE = 0
    BUILDER = 1
    ADMIN = 2

    @property
    def label(self) -> str:
        return {Role.EVERYONE: "everyone", Role.BUILDER: "builder", Role.ADMIN: "admin"}[self]

    @property
    def variable(self) -> str | None:
        return {Role.BUILDER: "DCS_BUILDERS", Role.ADMIN: "DCS_ADMINS"}.get(self)


def role_of(user_id: str, config: Config) -> Role:
    if user_id in config.admins:
        return Role.ADMIN
    if not config.builders or user_id in config.builders:
        return Role.BUILDER
    return Role.EVERYONE


def allowed(user_id: str, needed: Role, config: Config) -> bool:
    return role_of(user_id, config) >= needed


def denial(needed: Role, action: str) -> str:
    """The ephemeral text a user sees when refused: the role needed and who grants it."""
    who = f"listed in `{needed.variable}`" if needed.variable else "a workspace member"
    extra = " (admins are builders too)" if needed is Role.BUILDER else ""
    return (
        f":no_entry: You need the *{needed.label}* role to {action}: your Slack user id must be {who}"
        f"{extra}. Ask a bot admin to add you."
    )
