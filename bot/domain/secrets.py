"""Which environment variables a catalog may name as the holder of a secret.

Catalog files arrive through pull requests and Slack admins do not own the bot's keys, so a catalog entry
(a registry's `password_env`, a build index's `pip_password_env`, …) may only name variables with one reserved
prefix. No setting of the bot itself carries that prefix, so the Slack, Databricks and Docker Hub tokens and
every other `DCS_*` setting can never be named, read, or sent anywhere by a catalog entry.
"""

from __future__ import annotations

import re

from bot.errors import InvalidInput

SECRET_ENV_PREFIX = "DCS_SECRET_"  # noqa: S105 - a variable-name prefix, not a password
_SECRET_ENV = re.compile(r"^DCS_SECRET_[A-Z0-9_]{1,116}\Z")  # \Z: "$" would let a trailing newline through


def is_secret_env_name(name: object) -> bool:
    """True for a variable name a catalog entry may name: `DCS_SECRET_` and upper-case letters, digits, `_`."""
    return isinstance(name, str) and bool(_SECRET_ENV.match(name))


def check_secret_env_name(name: object, field: str) -> str:
    """The name itself, or an InvalidInput naming the field, the value and the rule."""
    if is_secret_env_name(name):
        assert isinstance(name, str)
        return name
    suggestion = ""
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,100}", name):
        suggestion = f" (e.g. rename {name} to {SECRET_ENV_PREFIX}{name.upper().removeprefix('DCS_')})"
    raise InvalidInput(
        field,
        name,
        f"is not a secret variable the catalog may name: only variables starting with {SECRET_ENV_PREFIX} can be",
        f"Put the secret in a variable named {SECRET_ENV_PREFIX}<NAME>{suggestion} in the bot's environment and "
        "name that variable here.",
    )
