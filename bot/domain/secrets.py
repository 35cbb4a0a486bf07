"""Which environment variables a catalog may name as the holder of a secret.

Catalog files arrive through pull requests and Slack admins do not own the bot's keys, so a catalog entry
(a registry's `password_env`, a build index's `pip_password_env`, …) may only name variables with one reserved
prefix. No setting of the bot itself carries that prefix, so the Slack, Databricks and Docker Hub tokens and
every other `DCS_*` setting can never be named, read, or sent anywhere by a catalog entry.

The rule is checked when an entry is written (add, import, update) and again when a secret is read
(`Config.secret` refuses every other name). Entries stored before the rule existed are still loaded, so the
bot can say which entry names which variable and what to rename it to (`legacy_secret_name`,
`migration_message`); their secrets are never read.
"""

from __future__ import annotations

import re

from bot.config import ENV_NAME, SECRET_ENV_NAME, SECRET_ENV_PREFIX
from bot.errors import InvalidInput

__all__ = [
    "SECRET_ENV_PREFIX",
    "check_secret_env_name",
    "is_secret_env_name",
    "legacy_secret_name",
    "migration_message",
    "renamed_secret_env",
]


def is_secret_env_name(name: object) -> bool:
    """True for a variable name a catalog entry may name: `DCS_SECRET_` and upper-case letters, digits, `_`."""
    return isinstance(name, str) and bool(SECRET_ENV_NAME.match(name))


def renamed_secret_env(name: str) -> str:
    """What a variable should be called under the rule: ACR_PASSWORD → DCS_SECRET_ACR_PASSWORD."""
    core = re.sub(r"[^A-Z0-9_]", "_", name.upper().removeprefix("DCS_SECRET_").removeprefix("DCS_")).strip("_")
    return f"{SECRET_ENV_PREFIX}{core or 'PASSWORD'}"


def check_secret_env_name(name: object, field: str, entry: str | None = None) -> str:
    """The name itself, or an InvalidInput naming the field, the value and the rule.

    `entry` (e.g. "registry acr") makes the fix say where to change the name.
    """
    if is_secret_env_name(name):
        assert isinstance(name, str)
        return name
    suggestion = ""
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,100}", name):
        new = renamed_secret_env(name)
        where = f" of {entry}" if entry else ""
        suggestion = f" (e.g. rename {name} to {new} and set the field{where} to {new})"
    raise InvalidInput(
        field,
        name,
        f"is not a secret variable the catalog may name: only variables starting with {SECRET_ENV_PREFIX} can be",
        f"Put the secret in a variable named {SECRET_ENV_PREFIX}<NAME>{suggestion} in the bot's environment and "
        "name that variable here.",
    )


def legacy_secret_name(name: object) -> bool:
    """A variable name an entry stored before the rule may hold: a valid name without the prefix."""
    return isinstance(name, str) and bool(ENV_NAME.match(name)) and not is_secret_env_name(name)


def migration_message(entry: str, field: str, name: str, *, command: str = "") -> str:
    """What an operator does about an entry stored with a variable name the rule no longer allows."""
    new = renamed_secret_env(name)
    how = f" (or `{command}`)" if command else ""
    return (
        f"{entry} names {field} = {name!r}, which the bot no longer reads: only {SECRET_ENV_PREFIX}* variables may "
        f"hold a secret the catalog names. Rename the variable {name} to {new} in the bot's environment and set "
        f'{field} = "{new}" in the catalog file, then import it{how}. Until then nothing is logged in with it.'
    )
