"""HTTP mode end to end: signed requests over real HTTP to the app served by waitress, against FakeSlack.

The build tests use the real Docker engine and the local registry; the others need neither (a build
they start fails fast on an unreachable base, which is all they need to count builds).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import yaml

from bot.app import app_context, create_app
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.http import ServerThread, create_server, make_wsgi_app
from bot.store import Build
from bot.workers import Workers
from handlers.context import AppContext
from tests.fakes.slack import (
    FakeSlack,
    SlackMessage,
    block_actions_body,
    block_actions_payload,
    signed_headers,
    slash_command_body,
    view_submission_body,
)
from tests.support.namespace import local

SECRET = "test-signing-secret-0123456789"
ADMIN, BUILDER, OUTSIDER = "UADMIN1", "UBUILD1", "U1"
PASSWORD_VAR = "DCS_SECRET_TEST_PUSH_PASSWORD"
UNREACHABLE_BASE = "127.0.0.1:9/databricksruntime/standard:15.4-LTS"


@dataclass
class Bot:
    url: str
    fake: FakeSlack
    ctx: AppContext

    def post(
        self,
        body: bytes,
        *,
        secret: str = SECRET,
        timestamp: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = {**signed_headers(secret, body, timestamp), **(headers or {})}
        return requests.post(f"{self.url}/slack/events", data=body, headers=sent, timeout=10)

    def command(self, text: str, user: str = BUILDER, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("response_url", self.fake.response_url(f"cmd-{uuid.uuid4().hex[:6]}"))
        response = self.post(slash_command_body(text, user_id=user, **kwargs))
        assert response.status_code == 200, response.text
        return response.json() if response.content else {}

    def wait_finished(self, build_id: int, timeout: float = 120) -> Build:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build = self.ctx.store.get_build(build_id)
            if build.finished and self.ctx.workers.idle():
                return build
            time.sleep(0.1)
        raise AssertionError(f"build #{build_id} did not finish in {timeout}s")

    def message_of(self, build: Build) -> SlackMessage:
        found = [m for m in self.fake.messages() if m.ts == build.slack_ts]
        assert found, f"no Slack message for build #{build.id}"
        return found[0]

    def builds(self) -> list[Build]:
        return self.ctx.store.builds(limit=100)


def start_bot(tmp_db: str, fake: FakeSlack, **env: str) -> tuple[Bot, ServerThread, Workers]:
    environ = {
        "DCS_DB": tmp_db,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "DCS_ADMINS": ADMIN,
        "DCS_BUILDERS": BUILDER,
        **env,
    }
    if os.environ.get("DOCKER_HOST") and "DOCKER_HOST" not in env:
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    config = load_config(environ)
    services = build_services(config)
    workers = Workers(config.workers)
    app = create_app(config, services, workers)
    server = ServerThread(create_server(make_wsgi_app(app, services), "127.0.0.1", 0, threads=8)).start()
    return Bot(server.url, fake, app_context(app)), server, workers


def manifest_scopes() -> list[str]:
    """The bot scopes slack-manifest.yml grants: the fake allows exactly what an installed app may do."""
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack-manifest.yml").read_text(encoding="utf-8"))
    return list(manifest["oauth_config"]["scopes"]["bot"])


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(scopes=manifest_scopes()) as slack:
        yield slack


@pytest.fixture
def bot(tmp_db: str, fake: FakeSlack) -> Iterator[Bot]:
    harness, server, workers = start_bot(tmp_db, fake, DOCKER_HOST="tcp://127.0.0.1:9")
    yield harness
    server.stop()
    workers.shutdown(wait=True, timeout=30)


def add_unbuildable_image(bot: Bot, name: str = "team-pandas") -> str:
    bot.ctx.store.add_image(
        image_from_dict({"name": name, "base": UNREACHABLE_BASE, "repository": f"127.0.0.1:9/team/{name}"})
    )
    return name


# ---------------------------------------------------------------- transport and signatures
def test_forged_signature_and_stale_timestamp_are_refused(bot: Bot) -> None:
    body = slash_command_body("help", user_id=BUILDER)
    assert bot.post(body, secret="not-the-secret").status_code == 401
    assert bot.post(body, timestamp=time.time() - 6 * 60).status_code == 401
    tampered = slash_command_body("build team-pandas", user_id=BUILDER)
    headers = signed_headers(SECRET, body)
    assert requests.post(f"{bot.url}/slack/events", data=tampered, headers=headers, timeout=10).status_code == 401
    assert bot.post(body).status_code == 200


def test_healthz_reports_database_and_docker(bot: Bot) -> None:
    response = requests.get(f"{bot.url}/healthz", timeout=10)
    assert response.status_code == 200
    health = response.json()
    assert {k: health[k] for k in ("database", "docker", "status")} == {
        "database": True,
        "docker": False,
        "status": "degraded",
    }
    (only,) = health["engines"]  # DOCKER_HOST alone, which does not answer here
    assert only["name"] == "default" and only["reachable"] is False and "Cannot reach" in only["error"]


def test_help_answers_in_the_ack(bot: Bot) -> None:
    answer = bot.command("")
    assert answer["response_type"] == "ephemeral"
    assert "/dcs build NAME [push]" in answer["text"]
    assert "Did you mean `images`?" in bot.command("imagse")["text"]


# ---------------------------------------------------------------- permissions and audit
def test_a_denied_user_gets_an_ephemeral_note_naming_the_role(bot: Bot) -> None:
    add_unbuildable_image(bot)
    answer = bot.command("build team-pandas", user=OUTSIDER)
    assert answer["response_type"] == "ephemeral"
    assert "*builder* role" in answer["text"] and "DCS_BUILDERS" in answer["text"]
    assert bot.builds() == []
    assert "*admin* role" in bot.command("image add x base=a repo=b", user=BUILDER)["text"]
    denials = [(e.actor, e.action, e.outcome) for e in bot.ctx.store.audit_events(10)]
    assert (OUTSIDER, "dcs.build", "denied") in denials and (BUILDER, "dcs.image_add", "denied") in denials


# ---------------------------------------------------------------- idempotency
def test_a_retried_slash_command_starts_one_build(bot: Bot) -> None:
    add_unbuildable_image(bot)
    body = slash_command_body("build team-pandas", user_id=BUILDER, response_url=bot.fake.response_url("r"))
    first = bot.post(body)
    again = bot.post(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == again.status_code == 200
    assert "checking whether" in first.json()["text"] or "queued" in first.json()["text"]
    (build,) = bot.builds()
    assert f"#{build.id}" in again.json()["text"] and "nothing new was started" in again.json()["text"]
    bot.wait_finished(build.id)
    channel_posts = [c for c in bot.fake.calls("chat.postMessage") if not c.params.get("thread_ts")]
    assert len(channel_posts) == 1  # one build, one channel message (the requester is told in its thread)
    assert f":x: #{build.id} failed" in json.dumps(bot.command("images")["blocks"])  # the catalog view is fresh
    assert [e.action for e in bot.ctx.store.audit_events(10, action="build.request")] == ["build.request"]


def test_a_double_click_on_retry_starts_one_build(bot: Bot) -> None:
    add_unbuildable_image(bot)
    bot.command("build team-pandas")
    failed = bot.wait_finished(bot.builds()[0].id)
    assert failed.status == "failed"
    message = bot.message_of(failed)
    retry = next(
        e for b in message.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "build_retry"
    )
    click = block_actions_body(
        "build_retry",
        retry["value"],
        user_id=BUILDER,
        message_ts=message.ts,
        block_id=f"build_{failed.id}",
        response_url=bot.fake.response_url("click"),
    )
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(bot.post(click).status_code)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200, 200]
    bot.fake.wait_for("chat.postMessage", count=2)
    builds = bot.builds()
    assert len(builds) == 2, "the double click must start exactly one new build"
    bot.wait_finished(builds[0].id)
    notes = [p.body for p in bot.fake.response_posts("click")]
    assert any("nothing new was started" in json.dumps(n) for n in notes)


def test_an_image_already_building_is_not_built_twice(bot: Bot) -> None:
    add_unbuildable_image(bot)
    gate = threading.Event()
    bot.ctx.workers.submit("hold", gate.wait, 30)  # occupy the single worker: the build stays queued
    bot.ctx.workers.submit("hold-2", gate.wait, 30)
    first = bot.command("build team-pandas")
    assert "queued" in first["text"] and "in line" in first["text"]
    second = bot.command("build team-pandas push")
    assert "already queued" in second["text"]
    assert len(bot.builds()) == 1
    status = bot.command("status")
    assert "queued, 1st in line" in status["text"] + json.dumps(status["blocks"])
    gate.set()
    bot.wait_finished(bot.builds()[0].id)


# ---------------------------------------------------------------- the image form
def values(**fields: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block, value in fields.items():
        if block in ("flavour", "runtime"):
            out[block] = {"value": {"type": "static_select", "selected_option": {"value": value}}}
        else:
            out[block] = {"value": {"type": "plain_text_input", "value": value}}
    return out


def test_image_add_opens_the_form(bot: Bot) -> None:
    answer = bot.command("image add", user=ADMIN)
    assert answer == {}  # empty ack, then the modal
    (call,) = bot.fake.wait_for("views.open")
    assert call.params["view"]["callback_id"] == "image_add"
    assert bot.fake.views()


def test_invalid_form_fields_are_shown_inline_and_a_valid_form_adds_the_image(bot: Bot) -> None:
    bad = view_submission_body(
        "image_add",
        values(
            name="Team Pandas",
            flavour="minimal",
            runtime="15.4",
            pip="pandas",
            repository="reg.example/team/pandas",
            schedule="every day",
        ),
        user_id=ADMIN,
        private_metadata=json.dumps({"channel": "C1"}),
    )
    response = bot.post(bad)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"name", "pip", "schedule"}
    assert "has no Python" in answer["errors"]["pip"]
    assert bot.ctx.store.list_images() == []

    good = view_submission_body(
        "image_add",
        values(
            name="team-pandas",
            flavour="python",
            runtime="14.3",
            pip="pandas==2.2.2, pyarrow>=15",
            repository="reg.example/team/pandas",
        ),
        user_id=ADMIN,
        private_metadata=json.dumps({"channel": "C1"}),
    )
    response = bot.post(good)
    assert response.status_code == 200 and not response.content
    spec = bot.ctx.store.get_image("team-pandas")
    assert spec.base == "databricksruntime/python:14.3-LTS" and spec.pip == ("pandas==2.2.2", "pyarrow>=15")
    assert spec.owner == ADMIN
    (note,) = bot.fake.wait_for("chat.postEphemeral")
    assert note.params["user"] == ADMIN and "Added *team-pandas*" in note.params["text"]
    outcomes = [(e.action, e.outcome) for e in bot.ctx.store.audit_events(10, action="image.add")]
    assert outcomes == [("image.add", "ok"), ("image.add", "invalid")]


def test_image_add_power_user_form(bot: Bot) -> None:
    answer = bot.command(
        "image add team-r base=databricksruntime/rbase:15.4-LTS repo=reg.example/team/r "
        'apt="libxml2-dev curl" schedule="0 3 * * 1" notify=<#C0123ABCD|dcs-builds>',
        user=ADMIN,
    )
    assert "Added *team-r*" in answer["text"]
    spec = bot.ctx.store.get_image("team-r")
    assert (spec.apt, spec.schedule, spec.notify_channel) == (("libxml2-dev", "curl"), "0 3 * * 1", "C0123ABCD")
    again = bot.command("image add team-r base=databricksruntime/rbase:15.4-LTS repo=reg.example/team/r", user=ADMIN)
    assert "already exists" in again["text"]
    bad = bot.command(
        "image add team-x base=databricksruntime/minimal:15.4-LTS repo=r/x pip=pandas colour=red", user=ADMIN
    )
    assert "colour: 'red' is not an option of `image add`" in bad["text"]
    images = bot.command("images")
    assert "team-r" in json.dumps(images["blocks"]) and "never built" in json.dumps(images["blocks"])


# ---------------------------------------------------------------- App Home
def test_app_home_shows_the_catalog_with_a_build_button_for_builders(bot: Bot) -> None:
    add_unbuildable_image(bot)

    def open_home(user: str) -> dict[str, Any]:
        event = {
            "token": "t",
            "team_id": "T0TEST001",
            "api_app_id": "A0TEST001",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:8]}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
        }
        assert bot.post(json.dumps(event).encode()).status_code == 200
        bot.fake.wait_for(lambda c: c.method == "views.publish" and c.params.get("user_id") == user)
        return bot.fake.home_view(user)

    view = open_home(BUILDER)
    home = json.dumps(view)
    assert "team-pandas" in home and "never built" in home and "build_image" in home
    (build_button,) = [b["accessory"] for b in view["blocks"] if (b.get("accessory") or {}).get("action_id")]
    assert build_button["confirm"]["title"]["text"] == "Build and push team-pandas?"  # asked before it pushes
    assert "Nothing is building right now" in home
    assert "build_image" not in json.dumps(open_home(OUTSIDER))

    # A click on Build & push refreshes the Home tab: the build shows up without reopening it.
    published = len(bot.fake.calls("views.publish"))
    payload = block_actions_payload("build_image", build_button["value"], user_id=BUILDER, block_id="catalog")
    payload.pop("message")
    payload.pop("response_url", None)
    payload["container"] = {"type": "view", "view_id": "VHOME1"}
    payload["view"] = {"id": "VHOME1", "type": "home", "hash": "h1", "blocks": view["blocks"]}
    assert bot.post(urlencode({"payload": json.dumps(payload)}).encode()).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(bot.fake.calls("views.publish")) <= published:
        time.sleep(0.05)
    assert len(bot.fake.calls("views.publish")) > published  # republished for the clicker, without reopening
    assert bot.fake.calls("views.publish")[-1].params["user_id"] == BUILDER


def test_empty_home_says_how_to_begin(bot: Bot) -> None:
    event = {
        "type": "event_callback",
        "team_id": "T0TEST001",
        "api_app_id": "A0TEST001",
        "event_id": "Ev1",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": ADMIN, "tab": "home"},
    }
    bot.post(json.dumps(event).encode())
    bot.fake.wait_for("views.publish")
    assert "The catalog is empty" in json.dumps(bot.fake.home_view(ADMIN))


# ---------------------------------------------------------------- Slack failures
def test_not_in_channel_is_explained_to_the_user_and_the_build_goes_on(bot: Bot) -> None:
    add_unbuildable_image(bot)
    bot.fake.fail_next("chat.postMessage", "not_in_channel")
    bot.command("build team-pandas", response_url=bot.fake.response_url("nic"))
    build = bot.wait_finished(bot.builds()[0].id)
    posts = json.dumps([p.body for p in bot.fake.response_posts("nic")])
    assert "not a member of that channel" in posts and "/invite" in posts
    assert f"/dcs status {build.id}" in posts
    assert "failed" in posts  # the result reached the user anyway


# ---------------------------------------------------------------- real builds (engine + registry)
@pytest.fixture
def engine_bot(tmp_db: str, fake: FakeSlack, registry, make_base, push_base) -> Iterator[Bot]:
    make_base(local("databricksruntime/standard:15.4-LTS"))
    push_base(local("databricksruntime/standard:15.4-LTS"), registry, "databricksruntime/standard", "15.4-LTS")
    harness, server, workers = start_bot(tmp_db, fake, **{PASSWORD_VAR: registry.password})
    harness.ctx.store.add_registry(
        registry_from_dict(
            {"name": "local", "host": registry.host, "username": registry.username, "password_env": PASSWORD_VAR}
        )
    )
    harness.registry = registry  # type: ignore[attr-defined]
    yield harness
    server.stop()
    workers.shutdown(wait=True, timeout=60)


def add_buildable_image(bot: Bot, pip: list[str]) -> str:
    registry = bot.registry  # type: ignore[attr-defined]
    name = f"slack-{uuid.uuid4().hex[:8]}"
    bot.ctx.store.add_image(
        image_from_dict(
            {
                "name": name,
                "base": f"{registry.host}/databricksruntime/standard:15.4-LTS",
                "repository": f"{registry.host}/dcs-tests/{name}",
                "pip": pip,
            }
        )
    )
    return name


def update_times(fake: FakeSlack, ts: str) -> list[float]:
    return [
        r.at
        for r in fake.requests_matching(path="/api/chat.update")
        if isinstance(r.body, dict) and r.body.get("ts") == ts
    ]


def buttons_of(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def click(bot: Bot, message: SlackMessage, label: str, name: str, user: str = OUTSIDER) -> Any:
    button = buttons_of(message.blocks or [])[label]
    body = block_actions_body(
        button["action_id"],
        button["value"],
        user_id=user,
        message_ts=message.ts,
        channel_id=message.channel,
        response_url=bot.fake.response_url(name),
    )
    assert bot.post(body).status_code == 200
    return _wait_posts(bot.fake, name)[0]


def test_build_and_push_from_slack_to_the_final_message(engine_bot: Bot) -> None:
    bot = engine_bot
    name = add_buildable_image(bot, ["pandas==2.2.2"])
    started = time.monotonic()
    answer = bot.command(f"build {name} push", response_url=bot.fake.response_url("ask"))
    assert time.monotonic() - started < 1.0, "the ack must not wait for the build"
    assert "checking whether" in answer["text"]
    build = bot.wait_finished(bot.builds()[0].id)
    assert build.status == "succeeded", build.error
    assert "started" in json.dumps(_wait_posts(bot.fake, "ask")[0].body)

    message = bot.message_of(build)
    assert message.channel == "C1" and message.updates >= 2  # progress, then the result
    # The result is short: status, image, short digest, the doctor in one line; details behind buttons.
    summary = message.blocks[0]["text"]["text"]
    assert ":white_check_mark:" in summary and "succeeded in" in message.text
    assert f"`{build.pushed_digest[:19]}…`" in summary and f"/dcs-tests/{name}:latest`" in summary
    assert re.search(r"doctor (\d+)/\1 ✓", summary), summary
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert build.pushed_digest not in text and "✅ bash" not in text
    assert list(buttons_of(message.blocks)) == ["Launch cluster", "Details", "Show log", "Log in thread"]
    details = json.dumps(click(bot, message, "Details", "details").body, ensure_ascii=False)
    assert build.pushed_digest in details and "✅ bash" in details and "✅ python" in details  # the doctor table
    # The requester is told in the message's thread: Slack notifies on a mention, not on an edit.
    note = bot.fake.wait_for_mention(BUILDER, threaded=True)
    assert note.thread_ts == message.ts and "succeeded" in note.text
    assert len(bot.fake.mentions(BUILDER, threaded=True)) == 1
    # Progress said the phase and the step in words (no LABEL/spec-hash echo, no bar in inline code).
    progress = [c for c in bot.fake.calls("chat.update") if "░" in json.dumps(c.params, ensure_ascii=False)]
    assert progress, "no progress update before the result"
    labels = (
        "Checking the base",
        "Pulling the base",
        "Building",
        "Doctor checks",
        "Pushing",
        "Moving the tag",
        "Waiting for a build engine",
    )
    unlabelled = [c.params["text"] for c in progress if not any(label in c.params["text"] for label in labels)]
    assert not unlabelled, unlabelled
    shown = json.dumps([c.params for c in progress], ensure_ascii=False)
    assert "spec-hash" not in shown and "`█" not in shown and "`░" not in shown
    times = update_times(bot.fake, message.ts)
    assert all(b - a >= 1.9 for a, b in zip(times, times[1:], strict=False)), times
    registry = bot.registry  # type: ignore[attr-defined]
    assert registry.password not in json.dumps([c.params for c in bot.fake.calls()])
    assert bot.fake.block_kit_problems() == []


def test_an_unchanged_image_is_answered_directly_and_posts_nothing_in_the_channel(engine_bot: Bot) -> None:
    bot = engine_bot
    name = add_buildable_image(bot, ["numpy==1.26.4"])
    bot.command(f"build {name} push")
    first = bot.wait_finished(bot.builds()[0].id)
    assert first.status == "succeeded", first.error
    calls_before = bot.ctx.services.engine.build_calls
    channel_before = len(bot.fake.messages("C1"))

    bot.command(f"build {name} push", response_url=bot.fake.response_url("again"))
    answer = _wait_posts(bot.fake, "again")[0].body
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (bot.ctx.workers.idle() and len(bot.builds()) == 1):
        time.sleep(0.1)
    assert [b.id for b in bot.builds()] == [first.id]  # the second request left no build behind
    assert bot.ctx.services.engine.build_calls == calls_before
    assert len(bot.fake.messages("C1")) == channel_before  # no copy of the old result in the channel
    text = json.dumps(answer, ensure_ascii=False)
    assert f"already up to date (build #{first.id}, digest `{first.pushed_digest[:19]}…`)" in text
    assert "force" in text and answer["response_type"] == "ephemeral"
    assert "Launch cluster" in buttons_of(answer["blocks"])
    assert bot.ctx.store.audit_events(1, action="build")[0].outcome == "up-to-date"


def test_a_failed_build_says_why_first_without_terminal_codes_and_tells_the_requester(engine_bot: Bot) -> None:
    bot = engine_bot
    name = add_buildable_image(bot, ["dcs-test-colour==1.0"])
    bot.command(f"build {name}")
    build = bot.wait_finished(bot.builds()[0].id)
    assert build.status == "failed"
    message = bot.message_of(build)
    reason = message.blocks[1]["text"]["text"]
    why, failed_at = reason.split("\n")[:2]
    assert why.startswith("*Why* ") and "No matching distribution found for dcs-test-colour==1.0" in why, reason
    assert failed_at.startswith("*Failed at* step ") and failed_at.endswith("(exit code 1)"), reason
    assert reason.count("RUN") == 1 and "Build failed at" not in reason  # the step is said once
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "Last log lines" in text and "Collecting dcs-test-colour==1.0" in text
    assert all(len((b.get("text") or {}).get("text", "")) <= 3000 for b in message.blocks)
    note = bot.fake.wait_for_mention(BUILDER, threaded=True)
    assert note.thread_ts == message.ts and "No matching distribution found for dcs-test-colour" in note.text + str(
        note.blocks
    )
    posted = click(bot, message, "Show log", "log")
    assert "dcs-test-colour" in json.dumps(posted.body) and posted.body["response_type"] == "ephemeral"
    # The log goes into the thread for the team (short logs as text, long ones as a file).
    click_body = block_actions_body(
        "build_share_log",
        str(build.id),
        user_id=OUTSIDER,
        message_ts=message.ts,
        channel_id="C1",
        response_url=bot.fake.response_url("share"),
    )
    assert bot.post(click_body).status_code == 200
    shared = wait_for_thread_text(bot.fake, message.ts, "Log of build")
    assert "No matching distribution found" in json.dumps(shared.blocks)
    stored = bot.ctx.store.get_build(build.id)
    assert "\x1b" not in (stored.log_tail or "") + (stored.error or "")  # the stored log is plain text too
    bot.fake.assert_no_escape_characters()
    assert bot.fake.block_kit_problems() == []


def wait_for_thread_text(fake: FakeSlack, ts: str, words: str, timeout: float = 10) -> SlackMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in fake.replies("C1", ts) if words in (m.text or "")]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no thread reply with {words!r}: {[m.text for m in fake.replies('C1', ts)]}")


def _wait_posts(fake: FakeSlack, name: str, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = fake.response_posts(name)
        if posts:
            return posts
        time.sleep(0.05)
    raise AssertionError(f"nothing posted to response_url {name}")


def test_slack_rate_limits_during_progress_do_not_lose_the_result(engine_bot: Bot) -> None:
    bot = engine_bot
    name = add_buildable_image(bot, ["numpy==1.26.4"])
    bot.fake.rate_limit_next("chat.update", retry_after=1, times=3)
    bot.command(f"build {name}")
    build = bot.wait_finished(bot.builds()[0].id)
    assert build.status == "succeeded", build.error
    limited = [c for c in bot.fake.calls("chat.update") if c.status == 429]
    assert len(limited) == 3
    message = bot.message_of(build)
    assert "succeeded in" in message.text and ":white_check_mark:" in json.dumps(message.blocks)


def test_builds_cut_short_by_a_restart_get_their_message_finished(bot: Bot) -> None:
    from bot.clients.slack import call
    from handlers.builds import close_interrupted

    add_unbuildable_image(bot)
    queued = bot.ctx.builder.enqueue("team-pandas", requester=BUILDER, source="slack", slack_channel="C1")
    posted = call(bot.ctx.client, "chat.postMessage", channel="C1", text="Build #1: Building — step 3 of 5")
    bot.ctx.store.update_build(queued.id, status="running", slack_ts=posted["ts"])
    close_interrupted(bot.ctx, bot.ctx.store.mark_interrupted())
    bot.fake.wait_for("chat.update")
    (message,) = [m for m in bot.fake.messages("C1") if not m.thread_ts]
    assert "interrupted" in message.text and "stopped while this build was in progress" in json.dumps(message.blocks)
    note = bot.fake.wait_for_mention(BUILDER, threaded=True)  # its requester hears about it
    assert note.thread_ts == message.ts and "interrupted" in note.text


# ---------------------------------------------------------------- sharing a log with the team
def _failed_build_with_long_log(bot: Bot) -> tuple[Build, str]:
    from bot.clients.slack import call
    from bot.domain.clock import utcnow

    add_unbuildable_image(bot)
    queued = bot.ctx.builder.enqueue("team-pandas", requester=BUILDER, source="slack", slack_channel="C1")
    log = "\n".join(f"\x1b[32mline {i}\x1b[0m" for i in range(300)) + "\nERROR: No matching distribution found for x"
    posted = call(bot.ctx.client, "chat.postMessage", channel="C1", text="Build #1 failed")
    bot.ctx.store.update_build(
        queued.id, status="failed", finished_at=utcnow(), log_tail=log, error="boom", slack_ts=posted["ts"]
    )
    return bot.ctx.store.get_build(queued.id), posted["ts"]


def _share(bot: Bot, build: Build, ts: str) -> None:
    body = block_actions_body(
        "build_share_log", str(build.id), user_id=OUTSIDER, message_ts=ts, response_url=bot.fake.response_url("s")
    )
    assert bot.post(body).status_code == 200


def test_a_long_log_is_attached_to_the_thread_as_a_file(bot: Bot) -> None:
    build, ts = _failed_build_with_long_log(bot)
    _share(bot, build, ts)
    _share(bot, build, ts)  # a double click shares once
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not bot.fake.files(channel="C1", thread_ts=ts):
        time.sleep(0.05)
    (shared,) = bot.fake.files(channel="C1", thread_ts=ts)
    content = (shared.content or b"").decode()
    assert shared.filename == f"build-{build.id}.log" and "line 0\n" in content
    assert content.rstrip().endswith("No matching distribution found for x")
    assert bot.fake.calls("files.getUploadURLExternal") and not bot.fake.calls("files.upload")
    bot.fake.assert_no_escape_characters()
    bot.fake.assert_no_token_outside_api()


def test_without_files_write_the_thread_gets_the_last_lines_and_how_to_get_more(tmp_db: str) -> None:
    scopes = [s for s in manifest_scopes() if s != "files:write"]
    with FakeSlack(scopes=scopes) as fake:
        bot, server, workers = start_bot(tmp_db, fake, DOCKER_HOST="tcp://127.0.0.1:9")
        try:
            build, ts = _failed_build_with_long_log(bot)
            _share(bot, build, ts)
            reply = wait_for_thread_text(fake, ts, "Log of build")
            text = json.dumps(reply.blocks)
            assert "No matching distribution found for x" in text and "line 299" in text and "line 200\\n" not in text
            assert "files:write" in text and f"/dcs log {build.id}" in text
            fake.assert_no_escape_characters()
        finally:
            server.stop()
            workers.shutdown(wait=True, timeout=30)


def test_the_manifests_usage_hint_lists_every_subcommand(bot: Bot) -> None:
    for manifest in ("slack-manifest.yml", "slack-manifest.http.yml"):
        data = yaml.safe_load((Path(__file__).parents[2] / manifest).read_text(encoding="utf-8"))
        (command,) = data["features"]["slash_commands"]
        parts = command["usage_hint"].split("|")
        hinted = {" ".join(w for w in part.split() if w.isalpha() and w.islower()) for part in parts}
        names = {c.name for c in bot.ctx.commands.visible()} | {"fleet"}  # fleet: only with a workspace configured
        assert names <= hinted, (manifest, sorted(names - hinted))


def test_images_pages_through_the_catalog_with_next_and_previous(bot: Bot) -> None:
    for i in range(45):
        bot.ctx.store.add_image(
            image_from_dict({"name": f"team-{i:02d}", "base": "ubuntu:22.04", "repository": "r.example/x"})
        )
    first = bot.command("images")
    assert "45 image(s) in the catalog, 1–20 shown" in first["text"]
    message = SlackMessage(channel="C1", ts="1.000001", text=first["text"], blocks=first["blocks"])
    second = click(bot, message, "Next ▶", "page-2")
    assert second.body["replace_original"] is True
    text = json.dumps(second.body["blocks"], ensure_ascii=False)
    assert "21–40 shown" in text and "*team-20*" in text and "*team-19*" not in text
    assert set(buttons_of(second.body["blocks"])) == {"◀ Previous", "Next ▶"}
    back = SlackMessage(channel="C1", ts="1.000002", text="", blocks=second.body["blocks"])
    assert "1–20 shown" in json.dumps(click(bot, back, "◀ Previous", "page-1").body["blocks"], ensure_ascii=False)
    found = bot.command("images team-4")
    assert "5 image(s) matching `team-4`" in found["text"]  # team-40 … team-44
