"""Roles come from Slack user ids only: admins > builders (empty list = everyone) > everyone."""

from __future__ import annotations

import pytest

from bot.config import load_config
from bot.domain.permissions import Role, allowed, denial, role_of


def config(admins: str = "", builders: str = ""):
    return load_config({"DCS_ADMINS": admins, "DCS_BUILDERS": builders})


@pytest.mark.parametrize(
    ("admins", "builders", "user", "expected"),
    [
        ("", "", "U1", Role.BUILDER),  # no builders list: every workspace member builds
        ("UADMIN1", "", "U1", Role.BUILDER),
        ("UADMIN1", "", "UADMIN1", Role.ADMIN),
        ("", "UBUILD1", "UBUILD1", Role.BUILDER),
        ("", "UBUILD1", "U1", Role.EVERYONE),  # a list exists and U1 is not on it
        ("UADMIN1", "UBUILD1", "UADMIN1", Role.ADMIN),  # admins need not be listed as builders
        ("UADMIN1,UADMIN2", "UBUILD1", "UADMIN2", Role.ADMIN),
        ("", "UBUILD1", "ubuild1", Role.EVERYONE),  # ids are exact: no case folding
    ],
)
def test_role_of(admins: str, builders: str, user: str, expected: Role) -> None:
    assert role_of(user, config(admins, builders)) is expected


@pytest.mark.parametrize(
    ("user", "needed", "ok"),
    [
        ("UADMIN1", Role.ADMIN, True),
        ("UADMIN1", Role.BUILDER, True),
        ("UADMIN1", Role.EVERYONE, True),
        ("UBUILD1", Role.ADMIN, False),
        ("UBUILD1", Role.BUILDER, True),
        ("UBUILD1", Role.EVERYONE, True),
        ("UOTHER1", Role.ADMIN, False),
        ("UOTHER1", Role.BUILDER, False),
        ("UOTHER1", Role.EVERYONE, True),
    ],
)
def test_allowed(user: str, needed: Role, ok: bool) -> None:
    assert allowed(user, needed, config("UADMIN1", "UBUILD1")) is ok


def test_names_are_not_ids() -> None:
    """A user name in DCS_ADMINS is refused at start-up instead of silently never matching."""
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="DCS_ADMINS"):
        config(admins="alice")


@pytest.mark.parametrize(
    ("needed", "words"),
    [(Role.ADMIN, ["*admin*", "DCS_ADMINS"]), (Role.BUILDER, ["*builder*", "DCS_BUILDERS", "admins are builders"])],
)
def test_denial_names_the_role_and_the_variable(needed: Role, words: list[str]) -> None:
    text = denial(needed, "use `/dcs build`")
    for word in words:
        assert word in text
    assert "use `/dcs build`" in text
