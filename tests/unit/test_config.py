"""Configuration from the environment: defaults, one error listing every problem, secrets never shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import VARIABLES, Config, load_config, read_environment
from bot.errors import ConfigError

BOT_TOKEN = "xoxb-1111-2222-SeCrEtBoTtOkEn"
APP_TOKEN = "xapp-1-A111-2222-SeCrEtApPtOkEn"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
DATABRICKS_TOKEN = "dapi0123456789abcdef0123456789abcdef"
HUB_TOKEN = "dckr_pat_SeCrEtHuBtOkEn123"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING, DATABRICKS_TOKEN, HUB_TOKEN)


def test_defaults() -> None:
    config = load_config({})
    assert config == Config()
    assert config.db_path == "./dcs.db"
    assert config.docker_host is None
    assert config.slack_api_url == "https://slack.com/api/"
    assert config.dockerhub_auth_url == "https://auth.docker.io"
    assert config.dockerhub_registry_url == "https://registry-1.docker.io"
    assert (config.build_timeout, config.workers, config.log_level) == (1800, 2, "INFO")
    assert (config.base_check_minutes, config.ratelimit_minutes) == (60, 15)
    assert (config.pull_warn_percent, config.pull_warn_min, config.rebuild_max_age_days) == (20, 10, None)
    assert config.admins == frozenset() and config.builders == frozenset()
    assert config.missing_for("http") == [
        "SLACK_BOT_TOKEN is required for http mode",
        "SLACK_SIGNING_SECRET is required for http mode",
    ]


def test_every_value_is_read() -> None:
    config = load_config(
        {
            "DCS_DB": "/var/lib/dcs/dcs.db",
            "DOCKER_HOST": "unix:///tmp/docker.sock",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": "http://127.0.0.1:8080/api",
            "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net",
            "DATABRICKS_TOKEN": DATABRICKS_TOKEN,
            "DCS_ADMINS": "U012AB3CD, W0123ABCD",
            "DCS_BUILDERS": "U0BUILDER",
            "DCS_NOTIFY_CHANNEL": "#data-platform",
            "DOCKERHUB_USERNAME": "bob",
            "DOCKERHUB_TOKEN": HUB_TOKEN,
            "DOCKERHUB_AUTH_URL": "http://127.0.0.1:9000/",
            "DOCKERHUB_REGISTRY_URL": "http://127.0.0.1:9001/",
            "DCS_BUILD_TIMEOUT": "600",
            "DCS_WORKERS": " 4 ",
            "DCS_LOG_LEVEL": "debug",
            "DCS_BASE_CHECK_MINUTES": "30",
            "DCS_RATELIMIT_MINUTES": "5",
            "DCS_PULL_WARN_PERCENT": "0",
            "DCS_PULL_WARN_MIN": "100000",
            "DCS_REBUILD_MAX_AGE_DAYS": "30",
            "DCS_SECRET_ACR_PASSWORD": "acr-secret-value",
        }
    )
    assert config.db_path == "/var/lib/dcs/dcs.db"
    assert config.docker_host == "unix:///tmp/docker.sock"
    assert config.slack_api_url == "http://127.0.0.1:8080/api/"  # a trailing slash is added for slack_sdk
    assert config.dockerhub_auth_url == "http://127.0.0.1:9000"
    assert config.dockerhub_registry_url == "http://127.0.0.1:9001"
    assert config.admins == frozenset({"U012AB3CD", "W0123ABCD"})
    assert config.builders == frozenset({"U0BUILDER"})
    assert config.notify_channel == "#data-platform"
    assert (config.build_timeout, config.workers, config.log_level) == (600, 4, "DEBUG")
    assert (config.pull_warn_percent, config.pull_warn_min, config.rebuild_max_age_days) == (0, 100000, 30)
    assert config.secret("DCS_SECRET_ACR_PASSWORD") == "acr-secret-value"
    assert config.secret("DCS_SECRET_NOT_SET") is None
    assert sorted(config.secret_values()) == sorted([BOT_TOKEN, SIGNING, APP_TOKEN, DATABRICKS_TOKEN, HUB_TOKEN])
    assert config.missing_for("http") == [] and config.missing_for("socket") == []


def test_every_bad_value_is_listed_in_one_error() -> None:
    environ = {
        "SLACK_BOT_TOKEN": "not-a-bot-token-" + BOT_TOKEN,
        "SLACK_APP_TOKEN": BOT_TOKEN,  # a bot token where the app token goes
        "SLACK_API_URL": "ftp://slack.example/api",
        "DATABRICKS_HOST": f"https://token:{DATABRICKS_TOKEN}@adb-1.azuredatabricks.net",
        "DATABRICKS_TOKEN": DATABRICKS_TOKEN,
        "DCS_ADMINS": "bob, U012AB3CD, alice@example.com",
        "DCS_BUILDERS": "u012ab3cd",
        "DCS_NOTIFY_CHANNEL": "general",
        "DCS_LOG_LEVEL": "loud",
        "DCS_BUILD_TIMEOUT": "0",
        "DCS_WORKERS": "two",
        "DCS_BASE_CHECK_MINUTES": "99999",
        "DCS_RATELIMIT_MINUTES": "1.5",
        "DCS_PULL_WARN_PERCENT": "101",
        "DCS_PULL_WARN_MIN": "-1",
        "DCS_REBUILD_MAX_AGE_DAYS": "forever",
        "DOCKERHUB_USERNAME": "bob",
        "DOCKERHUB_AUTH_URL": "auth.docker.io",
        "DOCKERHUB_REGISTRY_URL": "https://",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(environ)
    error = caught.value
    assert error.exit_code == 78
    assert sorted(error.problems) == sorted(
        [
            "DCS_NOTIFY_CHANNEL='general' is not a channel id (C…) or #channel-name",
            "DCS_LOG_LEVEL='LOUD' must be DEBUG, INFO, WARNING or ERROR",
            "SLACK_API_URL='ftp://slack.example/api' is not an http(s) URL; set it like https://host/path",
            "DCS_REBUILD_MAX_AGE_DAYS='forever' is not a whole number; set it to a number from 0 to 3650",
            "SLACK_BOT_TOKEN does not look like a Slack token (it should start with 'xoxb-')",
            "SLACK_APP_TOKEN does not look like a Slack token (it should start with 'xapp-')",
            "DATABRICKS_HOST must not carry credentials in the URL; use the token variables instead",
            "DCS_ADMINS has 'bob', 'alice@example.com': list Slack user ids (like U012ABCDEF), comma-separated; "
            "names and emails are not accepted",
            "DCS_BUILDERS has 'u012ab3cd': list Slack user ids (like U012ABCDEF), comma-separated; "
            "names and emails are not accepted",
            "DOCKERHUB_AUTH_URL='auth.docker.io' is not an http(s) URL; set it like https://host/path",
            "DOCKERHUB_REGISTRY_URL='https://' is not an http(s) URL; set it like https://host/path",
            "DCS_BUILD_TIMEOUT=0 is out of range; set it to a number from 1 to 86400",
            "DCS_WORKERS='two' is not a whole number; set it to a number from 1 to 32",
            "DCS_BASE_CHECK_MINUTES=99999 is out of range; set it to a number from 1 to 10080",
            "DCS_RATELIMIT_MINUTES='1.5' is not a whole number; set it to a number from 1 to 1440",
            "DCS_PULL_WARN_PERCENT=101 is out of range; set it to a number from 0 to 100",
            "DCS_PULL_WARN_MIN=-1 is out of range; set it to a number from 0 to 100000",
            "DOCKERHUB_USERNAME and DOCKERHUB_TOKEN go together: set both or neither",
        ]
    )
    assert str(error).startswith("Configuration problem(s):\n- ")
    assert str(error).count("\n- ") == len(error.problems)
    for secret in SECRETS:
        assert secret not in str(error)
        assert secret not in repr(error)


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("SLACK_API_URL", "ftp://admin:Hunter2Secret@slack.example/api", "Hunter2Secret"),
        ("DATABRICKS_HOST", "token:dapiSecret0123@adb-1.azuredatabricks.net", "dapiSecret0123"),
        ("DOCKERHUB_AUTH_URL", "bob:dckr_pat_Secret@auth.docker.io", "dckr_pat_Secret"),
        ("DATABRICKS_HOST", "https://user:Hunter2Secret@adb-1.azuredatabricks.net", "Hunter2Secret"),
        ("SLACK_BOT_TOKEN", "Hunter2Secret", "Hunter2Secret"),
        ("SLACK_APP_TOKEN", "Hunter2Secret", "Hunter2Secret"),
    ],
)
def test_bad_values_holding_secrets_are_never_quoted(name: str, value: str, secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({name: value})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(name)
    assert secret not in str(caught.value)


def test_secrets_never_appear_in_repr_or_str_of_the_config() -> None:
    config = load_config(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "DATABRICKS_TOKEN": DATABRICKS_TOKEN,
            "DOCKERHUB_USERNAME": "bob",
            "DOCKERHUB_TOKEN": HUB_TOKEN,
            "DCS_SECRET_ACR_PASSWORD": "acr-secret-value",
        }
    )
    for text in (repr(config), str(config), f"{config}"):
        for secret in (*SECRETS, "acr-secret-value"):
            assert secret not in text
    assert "dockerhub_username='bob'" in repr(config)


@pytest.mark.parametrize(
    ("mode", "environ", "missing"),
    [
        ("http", {}, ["SLACK_BOT_TOKEN is required for http mode", "SLACK_SIGNING_SECRET is required for http mode"]),
        ("http", {"SLACK_BOT_TOKEN": BOT_TOKEN}, ["SLACK_SIGNING_SECRET is required for http mode"]),
        ("http", {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING}, []),
        (
            "http",
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN},
            ["SLACK_SIGNING_SECRET is required for http mode"],
        ),
        ("socket", {}, ["SLACK_BOT_TOKEN is required for socket mode", "SLACK_APP_TOKEN is required for socket mode"]),
        (
            "socket",
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING},
            ["SLACK_APP_TOKEN is required for socket mode"],
        ),
        ("socket", {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}, []),
        (
            "socket",
            {"SLACK_BOT_TOKEN": "   ", "SLACK_APP_TOKEN": APP_TOKEN},
            ["SLACK_BOT_TOKEN is required for socket mode"],
        ),
    ],
)
def test_missing_for(mode: str, environ: dict[str, str], missing: list[str]) -> None:
    assert load_config(environ).missing_for(mode) == missing


def test_dotenv_is_merged_under_the_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# local settings\n"
        "DCS_DB=/from/dotenv.db\n"
        "DCS_WORKERS=3\n"
        "SLACK_BOT_TOKEN=xoxb-from-dotenv\n"
        "export DCS_LOG_LEVEL=WARNING\n"
        'DCS_NOTIFY_CHANNEL="#from-dotenv"\n'
        "EMPTY_WITHOUT_VALUE\n"
    )
    merged = read_environment({"DCS_DB": "/from/environment.db", "OTHER": "x"}, dotenv_path=str(dotenv))
    assert merged["DCS_DB"] == "/from/environment.db"  # the environment wins
    assert merged["DCS_WORKERS"] == "3"
    assert merged["SLACK_BOT_TOKEN"] == "xoxb-from-dotenv"
    assert merged["DCS_LOG_LEVEL"] == "WARNING"
    assert merged["DCS_NOTIFY_CHANNEL"] == "#from-dotenv"
    assert merged["OTHER"] == "x"
    assert "EMPTY_WITHOUT_VALUE" not in merged
    config = load_config(merged)
    assert (config.db_path, config.workers, config.log_level, config.notify_channel) == (
        "/from/environment.db",
        3,
        "WARNING",
        "#from-dotenv",
    )


@pytest.mark.parametrize("dotenv_path", [None, "does-not-exist.env"])
def test_no_dotenv_means_the_environment_only(tmp_path: Path, dotenv_path: str | None) -> None:
    path = str(tmp_path / dotenv_path) if dotenv_path else None
    assert read_environment({"A": "1"}, dotenv_path=path) == {"A": "1"}


def test_a_bad_value_in_dotenv_is_reported_like_one_from_the_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DCS_WORKERS=many\n")
    with pytest.raises(ConfigError) as caught:
        load_config(read_environment({}, dotenv_path=str(dotenv)))
    assert caught.value.problems == ["DCS_WORKERS='many' is not a whole number; set it to a number from 1 to 32"]


def test_every_variable_read_is_documented() -> None:
    source = Path(__file__).resolve().parents[2].joinpath("bot", "config.py").read_text()
    read = set(re.findall(r'(?<![.\w])(?:get|integer|url|token|user_ids)\("([A-Z_]+)"', source))
    assert {"DCS_DB", "SLACK_BOT_TOKEN", "DCS_WORKERS", "DATABRICKS_HOST", "DCS_ADMINS"} <= read
    assert read - set(VARIABLES) == set()


def test_token_realms_are_registry_host_pairs() -> None:
    config = load_config(
        {"DCS_TOKEN_REALMS": "registry.gitlab.com=gitlab.com, Registry.GitLab.com=auth.example.com:8443"}
    )
    assert dict(config.token_realms) == {"registry.gitlab.com": ("gitlab.com", "auth.example.com:8443")}
    assert dict(load_config({}).token_realms) == {}


@pytest.mark.parametrize("value", ["gitlab.com", "a=b=c", "registry.gitlab.com=https://gitlab.com", "x=", "=y"])
def test_malformed_token_realms_are_a_configuration_problem(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DCS_TOKEN_REALMS": value})
    assert "DCS_TOKEN_REALMS" in caught.value.message and "REGISTRY_HOST=HOST" in caught.value.message


@pytest.mark.parametrize("name", ["SLACK_API_URL", "DATABRICKS_HOST", "DOCKERHUB_AUTH_URL", "DOCKERHUB_REGISTRY_URL"])
@pytest.mark.parametrize("url", ["http://auth.example.com", "http://127.evil.example:8080", "http://localhost:9000"])
def test_urls_that_receive_a_token_are_https_except_loopback_addresses(name: str, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({name: url})
    assert name in caught.value.message and "use https://" in caught.value.message
    load_config({name: "http://127.0.0.1:9000"})
    load_config({name: "http://[::1]:9000"})
    load_config({name: "https://auth.example.com"})
