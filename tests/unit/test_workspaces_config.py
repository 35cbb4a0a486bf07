"""DCS_WORKSPACES / DCS_PROTECTED_WORKSPACES / DCS_MANAGED_TAGS: named workspaces through unified-auth profiles."""

from __future__ import annotations

import pytest

from bot.config import Workspace, load_config
from bot.errors import ConfigError, InvalidInput


def test_without_workspaces_there_is_one_default_from_the_environment() -> None:
    config = load_config({"DATABRICKS_HOST": "https://dbc-1.cloud.databricks.com"})
    assert config.workspaces == ()
    assert config.workspace_list == (Workspace("default"),)
    assert config.workspace(None).name == "default" and config.default_workspace == "default"


def test_profiles_by_name_the_first_is_the_default_and_prod_is_protected() -> None:
    config = load_config({"DCS_WORKSPACES": "dev:dev-profile, prod:PROD.profile", "DCS_PROTECTED_WORKSPACES": "prod"})
    assert config.workspace_list == (Workspace("dev", "dev-profile"), Workspace("prod", "PROD.profile", True))
    assert config.default_workspace == "dev"
    assert config.workspace("prod").protected and not config.workspace("dev").protected


def test_an_unknown_workspace_name_names_the_known_ones() -> None:
    config = load_config({"DCS_WORKSPACES": "dev:a,prod:b"})
    with pytest.raises(InvalidInput) as caught:
        config.workspace("staging")
    assert "staging" in caught.value.message and "dev, prod" in caught.value.message


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DCS_WORKSPACES": "Dev:a"}, ["'Dev'", "lower-case"]),
        ({"DCS_WORKSPACES": "dev:a b"}, ["'a b'", "profile"]),
        ({"DCS_WORKSPACES": "dev:a,dev:b"}, ["'dev' twice"]),
        ({"DCS_WORKSPACES": "dev,prod:b"}, ["'dev' no profile"]),
        ({"DCS_WORKSPACES": "dev:a", "DCS_PROTECTED_WORKSPACES": "prod"}, ["'prod'", "use one of dev"]),
        ({"DCS_MANAGED_TAGS": "managed by=x"}, ["DCS_MANAGED_TAGS", "'managed by=x'"]),
        ({"DCS_MANAGED_TAGS": "owner="}, ["DCS_MANAGED_TAGS", "'owner='"]),
    ],
)
def test_bad_workspace_settings_say_what_and_how(env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    text = str(caught.value)
    assert all(w in text for w in words), text


def test_auth_variables_next_to_profiles_are_refused_because_the_sdk_lets_them_win() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DCS_WORKSPACES": "dev:a,prod:b", "DATABRICKS_HOST": "https://x", "DATABRICKS_TOKEN": "dapi-1"})
    text = str(caught.value)
    assert "DATABRICKS_HOST, DATABRICKS_TOKEN" in text and "dapi-1" not in text


def test_one_bare_name_names_the_environment_workspace() -> None:
    config = load_config({"DCS_WORKSPACES": "prod", "DATABRICKS_HOST": "https://x", "DCS_PROTECTED_WORKSPACES": "prod"})
    assert config.workspace_list == (Workspace("prod", None, True),)


def test_protecting_the_single_default_workspace() -> None:
    assert load_config({"DCS_PROTECTED_WORKSPACES": "default"}).workspace(None).protected


def test_managed_tags_are_keys_or_pairs() -> None:
    config = load_config({"DCS_MANAGED_TAGS": "managed_by=terraform, owner"})
    assert config.managed_tags == (("managed_by", "terraform"), ("owner", None))
