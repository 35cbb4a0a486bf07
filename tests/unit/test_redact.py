"""Redaction of secrets from text that leaves the process."""

from __future__ import annotations

import logging

import pytest

from bot.domain.redact import MASK, RedactingFilter, Redactor

KNOWN = "acr-Pa55word-value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # known values, wherever they appear
        (f"login with {KNOWN} failed", "login with *** failed"),
        (f"{KNOWN}{KNOWN}", "******"),
        # Slack tokens
        ("token xoxb-1234-5678-AbCdEf", "token ***"),
        ("xoxp-1234-5678-9012-abcdef", "***"),
        ("app token xapp-1-A0123-456-abcdef0123", "app token ***"),
        # Databricks and Docker Hub tokens
        ("dapi0123456789abcdef0123456789abcdef", "***"),
        ("dapi0123456789abcdef0123456789abcdef-2 rest", "*** rest"),
        ("pat dckr_pat_AbCdEf0123456789", "pat ***"),
        # headers
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer ***"),
        ("authorization: basic dXNlcjpwYXNzd29yZA==", "authorization: basic ***"),
        ("AUTHORIZATION:Bearer abc", "AUTHORIZATION:Bearer ***"),
        # URL credentials
        ("https://user:pa55word@registry.example.com/v2/", "https://***@registry.example.com/v2/"),
        ("pull git+https://bot:ghp_x1@github.com/org/repo.git", "pull git+https://***@github.com/org/repo.git"),
        ("clone https://ghp_AbC123token@github.com/org/repo", "clone https://***@github.com/org/repo"),
        ("https://user:p@ss:w@rd@registry.example.com/v2/", "https://***@registry.example.com/v2/"),
        (
            "see https://host.example/path/a@b and https://x.example/",
            "see https://host.example/path/a@b and https://x.example/",
        ),
        # key=value pairs
        ("password=s3cr3t; next", "password=***; next"),
        ('password: "s3cr3t"', 'password: "***"'),
        ('{"token": "abc123", "user": "bob"}', '{"token": "***", "user": "bob"}'),
        ("PASSWD=abc other", "PASSWD=*** other"),
        ("client secret=abc", "client secret=***"),
        # left alone
        ("no secrets here", "no secrets here"),
        ("passwordless login", "passwordless login"),
        ("https://registry.example.com/v2/", "https://registry.example.com/v2/"),
        ("xoxb-short", "xoxb-short"),
        ("", ""),
    ],
)
def test_redactor_masks_secrets(text: str, expected: str) -> None:
    assert Redactor([KNOWN])(text) == expected


def test_short_known_values_are_not_masked_in_ordinary_words() -> None:
    redact = Redactor(["abc", "", "x" * 6])
    assert redact("abc abc xxxxxx") == f"abc abc {MASK}"


def test_longer_known_values_win_over_their_prefixes() -> None:
    redact = Redactor(["secret1", "secret1-and-more"])
    assert redact("value=secret1-and-more!") == f"value={MASK}!"


def test_with_secrets_adds_values_and_keeps_the_old_ones() -> None:
    base = Redactor([KNOWN])
    more = base.with_secrets(["another-secret-value"])
    assert more(f"{KNOWN} another-secret-value") == f"{MASK} {MASK}"
    assert base("another-secret-value") == "another-secret-value"


def test_redacting_filter_rewrites_the_final_message(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redact")
    handler_filter = RedactingFilter(Redactor([KNOWN]))
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="tests.redact"):
            logger.info("push to %s with %s failed", "registry.example.com", KNOWN)
            logger.info("header Authorization: Bearer %s", "eyJabc.def")
            logger.info("nothing secret in build %d", 42)
    finally:
        logger.removeFilter(handler_filter)
    assert [r.getMessage() for r in caplog.records] == [
        "push to registry.example.com with *** failed",
        "header Authorization: Bearer ***",
        "nothing secret in build 42",
    ]
    assert KNOWN not in caplog.text
    assert "eyJabc.def" not in caplog.text


def test_redacting_filter_keeps_records_it_does_not_change() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "build %d done", (7,), None)
    assert RedactingFilter(Redactor([KNOWN])).filter(record) is True
    assert (record.msg, record.args) == ("build %d done", (7,))


def test_redacting_filter_drops_the_args_once_the_message_is_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("abc",), None)
    assert RedactingFilter(Redactor()).filter(record) is True
    assert record.getMessage() == "token=***"
    assert record.args is None


@pytest.mark.parametrize(
    "text",
    [
        "password: add a registry entry with password_env",
        "Password: Add the variable, then restart",
        "token: expired, sign in again",
        "secret: none configured",
        "The registry refused the password: check the username and the password variable.",
        "Databricks did not accept the token: it may have expired",
        "no secret: the image holds none",
        "password:\nadd it to the environment",
    ],
)
def test_ordinary_words_after_a_secret_word_stay_readable(text: str) -> None:
    assert Redactor([KNOWN])(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: hunter2", "password: ***"),
        ("token: AbCdEf0123", "token: ***"),
        ("secret: s3cr3t-value now", "secret: *** now"),
        ("password: p@ss!", "password: ***"),
        ("password:\nhunter2", "password:\n***"),
        ("password: Supercalifragilisticexpialidocious", "password: ***"),  # longer than any plain word we keep
        ("password = add", "password = ***"),  # an assignment is a secret whatever it looks like
        ('password: "add"', 'password: "***"'),  # so is a quoted value
    ],
)
def test_secret_shaped_values_after_a_colon_are_masked(text: str, expected: str) -> None:
    assert Redactor()(text) == expected
