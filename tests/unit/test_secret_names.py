"""The one rule for variables a catalog may name as holding a secret."""

from __future__ import annotations

import pytest

from bot.domain.secrets import SECRET_ENV_PREFIX, check_secret_env_name, is_secret_env_name
from bot.errors import InvalidInput


@pytest.mark.parametrize("name", ["DCS_SECRET_ACR_PASSWORD", "DCS_SECRET_X", "DCS_SECRET_PIP_TOKEN_2"])
def test_reserved_prefix_is_accepted(name: str) -> None:
    assert is_secret_env_name(name)
    assert check_secret_env_name(name, "registry[acr].password_env") == name


@pytest.mark.parametrize(
    "name",
    [
        "DATABRICKS_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "DOCKERHUB_TOKEN",
        "DATABRICKS_CLIENT_SECRET",
        "DCS_DB",
        "DCS_SECRET_",
        "dcs_secret_acr",
        "DCS_SECRET_ACR\n",
        "DCS_SECRET_ACR-PW",
        "",
        None,
        5,
        ["DCS_SECRET_A"],
    ],
)
def test_anything_else_is_refused_with_field_value_and_rule(name: object) -> None:
    assert not is_secret_env_name(name)
    with pytest.raises(InvalidInput) as caught:
        check_secret_env_name(name, "registry[acr].password_env")
    assert caught.value.field == "registry[acr].password_env"
    assert SECRET_ENV_PREFIX in caught.value.message


def test_the_fix_suggests_the_renamed_variable() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_secret_env_name("ACR_PASSWORD", "password_env")
    assert "DCS_SECRET_ACR_PASSWORD" in caught.value.fix


def test_no_setting_of_the_bot_uses_the_reserved_prefix() -> None:
    from bot.config import VARIABLES

    assert not [name for name in VARIABLES if name.startswith(SECRET_ENV_PREFIX)]
