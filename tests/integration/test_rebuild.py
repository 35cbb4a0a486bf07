"""Scheduled rebuilds against the real engine and registry, notices to a fake Slack."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from bot.app import app_context, create_app
from bot.clients.registry import MANIFEST_ACCEPT
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, image_to_dict, registry_from_dict
from bot.domain.rebuild import FAILED, REBUILT, UNCHANGED, base_key
from bot.http import ServerThread, create_server, make_wsgi_app
from bot.ops.rebuild import rebuild_job
from bot.services import Services
from bot.workers import Workers
from tests.fakes.slack import FakeSlack, signed_headers, slash_command_body

PASSWORD_VAR = "DCS_SECRET_TEST_PUSH_PASSWORD"
CHANNEL = "C0BUILDS1"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(channels={CHANNEL: {"name": "dcs-builds"}}) as fake:
        yield fake


@pytest.fixture
def services(tmp_db, registry, slack) -> Services:
    environ = {
        "DCS_DB": tmp_db,
        PASSWORD_VAR: registry.password,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack.api_url,
        "DCS_NOTIFY_CHANNEL": CHANNEL,
    }
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    services = build_services(load_config(environ))
    services.store.add_registry(
        registry_from_dict(
            {"name": "local", "host": registry.host, "username": registry.username, "password_env": PASSWORD_VAR}
        )
    )
    return services


class Base:
    """A Databricks-like LTS base in the local registry, under a repository of its own per test."""

    def __init__(self, make_base, push_base, registry) -> None:
        self.uid = uuid.uuid4().hex[:8]
        self.repo = f"rb{self.uid}/databricksruntime/standard"
        self.ref = f"{registry.host}/{self.repo}:15.4-LTS"
        self._make, self._push, self._registry = make_base, push_base, registry

    def publish(self, marker: str) -> str:
        """Push a base with this marker under the SAME tag; returns the new digest."""
        local = f"dcs-rebuild-base-{self.uid}:{marker}"
        self._make(local, marker=f"{self.uid}-{marker}")
        return self._push(local, self._registry, self.repo, "15.4-LTS")


@pytest.fixture
def base(make_base, push_base, registry) -> Base:
    return Base(make_base, push_base, registry)


def add_image(services: Services, registry, base: Base, name: str, **fields) -> str:
    spec = image_from_dict(
        {"name": name, "base": base.ref, "repository": f"{registry.host}/dcs-rb-{base.uid}/{name}", **fields}
    )
    services.store.add_image(spec)
    return name


def served_digest(registry, repo: str, tag: str) -> str | None:
    response = requests.head(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        auth=(registry.username, registry.password),
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def notice_text(message) -> str:
    return (message.text or "") + json.dumps(message.blocks)


def test_moved_base_is_detected_rebuilt_pushed_and_announced_once(services, registry, base, slack):
    first_base = base.publish("v1")
    for name in ("alpha", "beta"):
        add_image(services, registry, base, name, pip=["requests==2.32.3"])
    first = rebuild_job(services, ["alpha", "beta"], by_hand=True, source="cli", notify=False)
    assert [r.status for r in first.run.results] == [REBUILT, REBUILT]
    before = {r.image: r.pushed_digest for r in first.run.results}
    assert slack.messages() == []

    # Unchanged base: one HEAD for the one distinct base, no build, no notice.
    builds_before = services.engine.build_calls
    quiet = rebuild_job(services)
    assert [r.status for r in quiet.run.results] == [UNCHANGED, UNCHANGED]
    assert quiet.run.head_requests == 1
    assert services.engine.build_calls == builds_before
    assert slack.messages() == []

    # Upstream pushes a patched base under the same tag.
    new_base = base.publish("v2")
    assert new_base != first_base
    summary = rebuild_job(services)

    assert summary.run.head_requests == 1
    assert [r.status for r in summary.run.results] == [REBUILT, REBUILT]
    for result in summary.run.results:
        assert result.decision.old_base_digest == first_base
        assert result.decision.new_base_digest == new_base
        assert result.build.base_digest == new_base
        assert result.pushed_digest != before[result.image]
        # The registry now serves the new image under the moving tag and the new immutable tag.
        repo = f"dcs-rb-{base.uid}/{result.image}"
        assert served_digest(registry, repo, "latest") == result.pushed_digest
        assert served_digest(registry, repo, result.immutable_tag) == result.pushed_digest
    assert (
        services.store.query(
            "SELECT digest FROM base_checks WHERE base_ref = ?", (base_key(services.store.get_image("alpha")),)
        )[0]["digest"]
        == new_base
    )

    messages = slack.messages()
    assert len(messages) == 1, [m.text for m in messages]
    notice = messages[0]
    assert notice.channel == CHANNEL
    text = notice_text(notice)
    for fragment in ("alpha", "beta", first_base.split(":")[1][:12], new_base.split(":")[1][:12]):
        assert fragment in text
    assert summary.posted == [CHANNEL]

    # Next run: nothing moved any more, so nothing happens.
    again = rebuild_job(services)
    assert {r.status for r in again.run.results} == {UNCHANGED}
    assert len(slack.messages()) == 1


def test_a_failing_build_is_named_and_the_others_still_complete(services, registry, base, slack):
    base.publish("v1")
    for name in ("a-broken", "b-good", "c-good"):
        add_image(services, registry, base, name, pip=["requests==2.32.3"])
    first = rebuild_job(services, None, by_hand=True, source="cli", notify=False)
    assert {r.status for r in first.run.results} == {REBUILT}

    # The first image (processed first, alphabetically) now cannot build; then the base moves.
    spec = image_to_dict(services.store.get_image("a-broken"))
    services.store.add_image(
        image_from_dict({**spec, "pip": ["requests==2.32.3", "dcs-test-broken==1.0"]}), replace=True
    )
    new_base = base.publish("v2")
    summary = rebuild_job(services)

    status = {r.image: r.status for r in summary.run.results}
    assert status == {"a-broken": FAILED, "b-good": REBUILT, "c-good": REBUILT}
    for name in ("b-good", "c-good"):
        built = next(r for r in summary.run.results if r.image == name)
        assert served_digest(registry, f"dcs-rb-{base.uid}/{name}", "latest") == built.pushed_digest
        assert built.build.base_digest == new_base
    broken = next(r for r in summary.run.results if r.image == "a-broken")
    assert "dcs-test-broken" in (broken.error or "") or "pip" in (broken.error or "")
    # The published image of the broken one is untouched.
    published = next(r for r in first.run.results if r.image == "a-broken").pushed_digest
    assert served_digest(registry, f"dcs-rb-{base.uid}/a-broken", "latest") == published

    messages = slack.messages()
    assert len(messages) == 1
    text = notice_text(messages[0])
    assert "a-broken" in text and f"#{broken.build.id}" in text
    assert "b-good" in text and "c-good" in text

    # The same failure is not retried and re-announced every interval.
    again = rebuild_job(services)
    assert {r.image: r.status for r in again.run.results}["a-broken"] == UNCHANGED
    assert len(slack.messages()) == 1


def test_a_rebuild_cut_short_by_a_restart_is_done_at_the_next_run(services, registry, base, slack):
    first_base = base.publish("v1")
    add_image(services, registry, base, "gamma")
    assert rebuild_job(services, ["gamma"], by_hand=True, notify=False).run.results[0].status == REBUILT
    new_base = base.publish("v2")
    # The bot died while the scheduled rebuild was building: the row stays "running" ...
    crashed = services.store.create_build("gamma", requester=None, source="schedule", push=True)
    services.store.update_build(crashed.id, status="running", started_at=crashed.requested_at)
    # ... and start-up marks it interrupted (bot/__main__.py does this before anything else).
    assert services.store.mark_interrupted() == [crashed.id]

    summary = rebuild_job(services)
    result = summary.run.results[0]
    assert result.status == REBUILT
    assert (result.decision.old_base_digest, result.decision.new_base_digest) == (first_base, new_base)
    assert services.store.get_build(crashed.id).status == "interrupted"
    assert len(slack.messages()) == 1


def test_the_notice_lists_live_clusters_still_on_the_old_digest(services, registry, base, slack):
    from bot.domain.clusterspec import TAG_BUILD, TAG_DIGEST, TAG_IMAGE
    from tests.fakes.databricks import DEFAULT_TOKEN, DEFAULT_USER, FakeDatabricks

    base.publish("v1")
    add_image(services, registry, base, "delta")
    first = rebuild_job(services, ["delta"], by_hand=True, notify=False).run.results[0]
    moving = f"{registry.host}/dcs-rb-{base.uid}/delta:latest"
    with FakeDatabricks() as workspace:
        config = load_config(
            {
                **services.config.environ,
                "DATABRICKS_HOST": workspace.url,
                "DATABRICKS_TOKEN": DEFAULT_TOKEN,
                "DCS_DATABRICKS_TIMEOUT": "10",
            }
        )
        services = Services(config=config, store=services.store, notifier=services.notifier)
        node = next(
            n["node_type_id"] for n in workspace.node_types if not n.get("is_graviton") and not n.get("num_gpus")
        )

        def cluster(name: str, url: str) -> str:
            return services.databricks.create_cluster(
                {
                    "cluster_name": name,
                    "spark_version": "15.4.x-scala2.12",
                    "node_type_id": node,
                    "num_workers": 1,
                    "data_security_mode": "SINGLE_USER",
                    "single_user_name": DEFAULT_USER,
                    "docker_image": {"url": url},
                    "custom_tags": {
                        TAG_IMAGE: "delta",
                        TAG_DIGEST: first.pushed_digest,
                        TAG_BUILD: str(first.build.id),
                    },
                }
            )

        on_moving = cluster("etl-nightly", moving)
        pinned = cluster("etl-pinned", f"{registry.host}/dcs-rb-{base.uid}/delta:{first.immutable_tag}")
        stopped = cluster("etl-stopped", moving)
        workspace.set_cluster_state(on_moving, "RUNNING")
        workspace.set_cluster_state(pinned, "RUNNING")
        workspace.set_cluster_state(stopped, "TERMINATED")

        base.publish("v2")
        summary = rebuild_job(services)

    assert summary.run.results[0].status == REBUILT
    assert {c.cluster_id: c.moving for c in summary.stale} == {on_moving: True, pinned: False}
    text = notice_text(slack.messages()[0])
    assert "etl-nightly" in text and "restart it" in text
    assert "etl-pinned" in text and "pinned by digest" in text
    new_digest = summary.run.results[0].pushed_digest
    assert f"dcs-rb-{base.uid}/delta@{new_digest}`" in text and "delta:latest` and restart" not in text
    assert "etl-stopped" not in text
    assert len(slack.messages()) == 1


def test_without_databricks_the_notice_has_no_cluster_section(services, registry, base, slack):
    base.publish("v1")
    add_image(services, registry, base, "epsilon")
    rebuild_job(services, ["epsilon"], by_hand=True, notify=False)
    base.publish("v2")
    summary = rebuild_job(services)
    assert summary.stale == [] and summary.problems == []
    assert "older digest" not in notice_text(slack.messages()[0])


@contextmanager
def slash_bot(tmp_db, registry, slack, **env: str) -> Iterator[tuple[Services, Callable[[str, str, str], dict], Any]]:
    """The bot over real HTTP: its services, `command(text, user, response_name)` and its Bolt app."""
    secret = "test-signing-secret-rebuild"
    environ = {
        "DCS_DB": tmp_db,
        PASSWORD_VAR: registry.password,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": slack.api_url,
        "DCS_NOTIFY_CHANNEL": CHANNEL,
        "DCS_BUILDERS": "UBUILD1",
        **env,
    }
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    config = load_config(environ)
    services = build_services(config)
    services.store.add_registry(
        registry_from_dict(
            {"name": "local", "host": registry.host, "username": registry.username, "password_env": PASSWORD_VAR}
        )
    )
    workers = Workers(config.workers)
    app = create_app(config, services, workers)
    server = ServerThread(create_server(make_wsgi_app(app, services), "127.0.0.1", 0, threads=4)).start()

    def command(text: str, user: str, name: str) -> dict:
        body = slash_command_body(text, user_id=user, response_url=slack.response_url(name))
        answer = requests.post(
            f"{server.url}/slack/events", data=body, headers=signed_headers(secret, body), timeout=10
        )
        assert answer.status_code == 200
        return answer.json()

    try:
        yield services, command, app
        assert workers.wait_idle(30)
    finally:
        server.stop()
        workers.shutdown(wait=True, timeout=30)


def test_slash_rebuild_runs_in_the_background_and_answers_the_requester(tmp_db, registry, base, slack):
    with slash_bot(tmp_db, registry, slack) as (services, command, app):
        base.publish("v1")
        add_image(services, registry, base, "zeta")
        assert "need the *builder* role" in json.dumps(command("rebuild zeta", "U1", "denied"))
        assert "No image named 'nope'" in json.dumps(command("rebuild nope", "UBUILD1", "missing"))
        ack = json.dumps(command("rebuild zeta", "UBUILD1", "ok"))
        assert "Rebuilding *zeta*" in ack or "queued" in ack
        done = json.dumps(slack.wait_for_response_post("ok", timeout=120).body)
        assert "zeta" in done and "rebuilt" in done
    build = services.store.last_build("zeta")
    assert build.status == "succeeded" and build.source == "slack" and build.requester == "UBUILD1"
    assert served_digest(registry, f"dcs-rb-{base.uid}/zeta", "latest") == build.pushed_digest
    notices = slack.messages(CHANNEL)
    assert len(notices) == 1 and "zeta" in notice_text(notices[0])
    assert notices[0].text.startswith("Rebuild: ")  # by hand, not "Scheduled rebuild"
    assert notices[0].mentions("UBUILD1")  # a new message that mentions the requester notifies them
    runs = services.store.query("SELECT job_id, outcome FROM job_runs")
    assert runs == [{"job_id": "rebuild:manual", "outcome": "succeeded"}]
    assert app_context(app).commands.get("rebuild").role.label == "builder"


def test_slash_rebuild_by_a_builder_rebuilds_only_what_moved(tmp_db, registry, base, slack):
    with slash_bot(tmp_db, registry, slack, DCS_ADMINS="UADMIN1") as (services, command, _app):
        base.publish("v1")
        add_image(services, registry, base, "theta")
        command("rebuild theta", "UBUILD1", "first")  # never built: a builder may build it
        assert "rebuilt" in json.dumps(slack.wait_for_response_post("first", timeout=120).body)
        first = services.store.last_build("theta")
        assert first.status == "succeeded"

        command("rebuild theta", "UBUILD1", "unchanged")  # nothing moved: nothing is built
        answer = json.dumps(slack.wait_for_response_post("unchanged", timeout=120).body)
        assert "nothing was rebuilt" in answer and "/dcs rebuild theta force" in answer
        assert services.store.last_build("theta").id == first.id

        denied = json.dumps(command("rebuild theta force", "UBUILD1", "force-denied"))
        assert "need the *admin* role" in denied
        assert services.store.audit_events(action="rebuild.force")[0].outcome == "denied"
        assert "is not a rebuild option" in json.dumps(command("rebuild theta now", "UBUILD1", "bad-option"))

        command("rebuild theta force", "UADMIN1", "forced")  # the admins' force rebuilds it anyway
        assert "rebuilt" in json.dumps(slack.wait_for_response_post("forced", timeout=120).body)
        forced = services.store.last_build("theta")
        assert forced.id > first.id and forced.status == "succeeded"

        base.publish("v2")  # the base moved: a builder's rebuild runs again
        command("rebuild theta", "UBUILD1", "moved")
        assert "rebuilt" in json.dumps(slack.wait_for_response_post("moved", timeout=120).body)
        assert services.store.last_build("theta").id > forced.id


def test_cli_rebuild_by_name_dry_run_and_due(services, registry, base, slack, monkeypatch, capsys):
    from bot.cli import main

    for key, value in services.config.environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(os.path.dirname(services.config.db_path))  # no stray .env is read
    base.publish("v1")
    add_image(services, registry, base, "eta")

    def dcs(*args: str) -> tuple[int, dict]:
        code = main([*args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, out = dcs("rebuild", "eta")
    assert code == 0 and out["results"][0]["status"] == REBUILT
    code, out = dcs("rebuild", "--due", "--dry-run")
    assert code == 0 and out["due"] == [] and out["not_due"][0]["note"] == "up to date"
    new_base = base.publish("v2")
    code, out = dcs("rebuild", "--due", "--dry-run")
    assert out["due"][0]["image"] == "eta" and out["due"][0]["new_base_digest"] == new_base
    assert services.store.last_build("eta").base_digest != new_base  # a dry run builds nothing
    code, out = dcs("rebuild", "--due")
    assert code == 0 and out["results"][0]["status"] == REBUILT
    # One base checked; a fresh process's first HEAD meets the registry's basic-auth challenge once.
    assert len(out["base_checks"]) == 1 and out["head_requests"] <= 2
    assert out["notified_channels"] == [CHANNEL]
    code, out = dcs("rebuild", "eta", "--due")
    assert code == 2 and "NAME" in out["error"]
