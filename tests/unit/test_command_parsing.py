"""`/dcs` text parsing, the subcommand table, and what the dispatcher answers (no Slack, no network)."""

from __future__ import annotations

import shlex
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compose import build_services
from bot.config import load_config
from bot.domain.permissions import Role
from bot.errors import InvalidInput
from bot.workers import Workers
from handlers.commands import CommandTable, Subcommand, dispatch, normalize, parse_text, split_words


@pytest.mark.parametrize(
    ("text", "words", "options"),
    [
        ("", (), {}),
        ("build team-pandas push", ("build", "team-pandas", "push"), {}),
        ("  BUILD   x  ", ("BUILD", "x"), {}),
        (
            "image add x base=databricksruntime/standard:15.4-LTS pip=pandas==2.2.2,numpy",
            ("image", "add", "x"),
            {"base": "databricksruntime/standard:15.4-LTS", "pip": "pandas==2.2.2,numpy"},
        ),
        ('image add x schedule="0 3 * * 1"', ("image", "add", "x"), {"schedule": "0 3 * * 1"}),
        ("image add x schedule=“0 3 * * 1”", ("image", "add", "x"), {"schedule": "0 3 * * 1"}),  # Slack smart quotes
        ('image add x "description=two words"', ("image", "add", "x"), {"description": "two words"}),
        ("image add x Repo=r", ("image", "add", "x"), {"repo": "r"}),  # keys are case-insensitive
        ("image add x notify=<#C0123ABC|dcs-builds>", ("image", "add", "x"), {"notify": "C0123ABC"}),
        ("image add x pip=pandas&gt;=2,&lt;3", ("image", "add", "x"), {"pip": "pandas>=2,<3"}),
        ("build=x", ("build=x",), {}),  # the first word is always the subcommand
        ("log #12", ("log", "#12"), {}),
    ],
)
def test_parse_text(text: str, words: tuple[str, ...], options: dict[str, str]) -> None:
    parsed = parse_text(text)
    assert parsed.words == words
    assert parsed.options == options


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ('image add x schedule="0 3 * * 1', "command text", "Close every quote"),
        ("image add x repo=a repo=b", "repo", "once"),
    ],
)
def test_parse_errors_name_the_field_and_the_fix(text: str, field: str, fix: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_text(text)
    assert caught.value.field == field
    assert fix in caught.value.message


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<@U012AB|alice>", "U012AB"),
        ("<https://example.com|example.com>", "https://example.com"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("a &amp; b", "a & b"),
    ],
)
def test_normalize_undoes_slack_formatting(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


def _noop(cmd: Any) -> None:
    return None


def table(*names: str, placeholder: bool = False) -> CommandTable:
    t = CommandTable()
    for name in names:
        t.add(Subcommand(name, "help", name, Role.EVERYONE, _noop, placeholder=placeholder))
    return t


def test_two_word_names_win_over_one_word() -> None:
    t = table("image", "image add")
    assert t.resolve(("image", "add", "x")) == (t.get("image add"), 2)
    assert t.resolve(("Image", "list")) == (t.get("image"), 1)
    assert t.resolve(("nope",)) == (None, 0)


@pytest.mark.parametrize(
    ("typo", "guess"), [("biuld", "build"), ("imgaes", "images"), ("stat", "status"), ("xyzzy", None)]
)
def test_closest_subcommand(typo: str, guess: str | None) -> None:
    assert table("build", "images", "status", "log", "image add").closest(typo) == guess


def test_a_placeholder_is_replaced_whatever_the_order() -> None:
    real = Subcommand("launch", "real", "launch NAME", Role.BUILDER, _noop)
    later = table("launch", placeholder=True)
    later.add(real)
    assert later.get("launch") is real
    first = CommandTable()
    first.add(real)
    first.add(Subcommand("launch", "stand-in", "launch", Role.BUILDER, _noop, placeholder=True))
    assert first.get("launch") is real


def test_a_real_command_is_not_silently_overwritten() -> None:
    t = table("build")
    with pytest.raises(ValueError, match="already registered"):
        t.add(Subcommand("build", "other", "build", Role.EVERYONE, _noop))
    t.add(Subcommand("build", "other", "build", Role.EVERYONE, _noop), replace=True)
    assert t.get("build").help == "other"


# ---------------------------------------------------------------- the dispatcher, with a recording ack
@pytest.fixture
def ctx(tmp_db: str):
    from bot.app import app_context, create_app

    config = load_config(
        {
            "DCS_DB": tmp_db,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "DCS_ADMINS": "UADMIN1",
            "DCS_BUILDERS": "UBUILD1",
        }
    )
    services = build_services(config)
    workers = Workers(1)
    yield app_context(create_app(config, services, workers))
    workers.shutdown(wait=False)


def run(ctx, text: str, user: str = "UBUILD1") -> dict[str, Any]:
    acks: list[dict[str, Any]] = []
    body = {"text": text, "user_id": user, "channel_id": "C1", "trigger_id": "t.1", "response_url": ""}
    dispatch(ctx, body, lambda **kw: acks.append(kw), None)
    assert len(acks) == 1, "every command is acked exactly once"
    return acks[0]


def test_empty_text_shows_help_with_every_command(ctx) -> None:
    text = run(ctx, "")["text"]
    for usage in (
        "help",
        "images",
        "image add",
        "build NAME [push]",
        "status [BUILD_ID]",
        "log BUILD_ID",
        "launch NAME",
        "ratelimit",
        "enable",
    ):
        assert f"/dcs {usage}" in text


def test_unknown_subcommand_suggests_the_closest(ctx) -> None:
    text = run(ctx, "biuld team-pandas")["text"]
    assert "I don't know `biuld`" in text and "Did you mean `build`?" in text


def test_help_marks_commands_the_user_may_not_run(ctx) -> None:
    text = run(ctx, "help", user="UOTHER1")["text"]
    assert "`/dcs build NAME [push] [force]` — " in text and "_(needs builder)_" in text
    assert "_(needs" not in run(ctx, "help", user="UADMIN1")["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("build", "NAME: '' is missing"),
        ("build x deploy", "build option: 'deploy' is not a build option"),
        ("build x colour=red", "colour: 'red' is not an option of `build`"),
        ("log twelve", "BUILD_ID: 'twelve' is not a build number"),
        ("status 99", "No build #99"),
        ("build nope", "No image named 'nope'"),
    ],
)
def test_bad_input_is_answered_with_field_value_and_fix(ctx, text: str, expected: str) -> None:
    answer = run(ctx, text)
    assert answer["response_type"] == "ephemeral"
    assert expected in answer["text"]


def test_denial_names_the_role_and_is_audited(ctx) -> None:
    answer = run(ctx, "build team-pandas", user="UOTHER1")
    assert "*builder* role" in answer["text"] and "DCS_BUILDERS" in answer["text"]
    event = ctx.store.audit_events(1)[0]
    assert (event.actor, event.action, event.outcome) == ("UOTHER1", "dcs.build", "denied")


def test_unconfigured_features_answer_truthfully(ctx) -> None:
    # No Databricks workspace is configured here: launch keeps its placeholder.
    assert "not set up in this bot yet" in run(ctx, "launch team-pandas")["text"]
    # No budget has been read yet: ratelimit says so instead of inventing numbers.
    assert "no sample yet" in run(ctx, "ratelimit")["text"]
    # Asking to switch Container Services on is harmless: a builder may ask (an admin decides), and here
    # the answer is that no workspace is configured; someone who is not a builder is refused.
    enable = run(ctx, "enable")["text"]
    assert "not set up in this bot yet" in enable and "no Databricks workspace is configured" in enable
    assert "*builder* role" in run(ctx, "enable", user="UOTHER1")["text"]


def test_an_unexpected_error_gives_an_apology_with_a_reference(ctx, caplog) -> None:
    def boom(cmd: Any) -> None:
        raise RuntimeError("kaboom")

    ctx.commands.add(Subcommand("boom", "crash", "boom", Role.EVERYONE, boom))
    text = run(ctx, "boom")["text"]
    assert "Sorry, something went wrong" in text and "kaboom" not in text
    reference = text.split("reference `")[1].split("`")[0]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_image_added_in_slack_is_scheduled_at_once(ctx) -> None:
    from jobs.scheduler import CRON_JOB_PREFIX, create_scheduler, follow_catalog

    scheduler = create_scheduler()
    scheduler.start(paused=True)
    follow_catalog(scheduler, ctx.services)
    try:
        run(
            ctx,
            "image add team-nightly base=databricksruntime/standard:15.4-LTS repo=example.azurecr.io/t/n "
            'schedule="0 3 * * 1"',
            user="UADMIN1",
        )
        deadline = time.monotonic() + 5
        while scheduler.get_job(CRON_JOB_PREFIX + "0 3 * * 1") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        job = scheduler.get_job(CRON_JOB_PREFIX + "0 3 * * 1")
        assert job is not None, "the new image's schedule was not registered"
        assert job.next_run_time.weekday() == 0 and job.next_run_time.hour == 3  # Mondays 03:00 UTC
    finally:
        scheduler.shutdown(wait=False)


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list(" \t\r\nab=-_/.:,#*é\xa0\u2003\v\f\"'\\<>&“’")), max_size=40))
def test_words_split_like_shlex(text: str) -> None:
    """Plain text takes a fast path; every text splits into the words shlex's POSIX mode gives."""
    try:
        expected = shlex.split(text)
    except ValueError:
        with pytest.raises(ValueError):
            split_words(text)
        return
    assert split_words(text) == expected
