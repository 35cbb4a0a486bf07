"""The Docker Hub pull-budget check against a fake Docker Hub speaking the real wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.clients.dockerhub import DockerHubClient
from bot.clients.registry import RegistryClient
from bot.compose import build_services
from bot.config import load_config
from bot.domain.credentials import Credentials
from bot.domain.ratelimit import ALL_CLEAR, WARNING
from bot.domain.refs import parse_ref
from bot.errors import PullLimitReached, RegistryAuthError
from bot.ops.budget import budget_report
from bot.services import Services
from bot.store import utcnow
from jobs.ratelimit import ratelimit_job
from tests.fakes.dockerhub import FakeDockerHub
from tests.fakes.dockerhub import PullBudget as FakeBudget
from tests.fakes.slack import FakeSlack


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as fake:
        yield fake


def client(hub: FakeDockerHub) -> DockerHubClient:
    return DockerHubClient(auth_url=hub.url, registry_url=hub.url, timeout=5)


def test_anonymous_budget_reads_limit_remaining_and_window(hub: FakeDockerHub) -> None:
    hub.set_rate_limit(limit=100, remaining=76, window=21600)
    budget = client(hub).pull_budget(None)
    assert (budget.limit, budget.remaining, budget.window_seconds, budget.unlimited) == (100, 76, 21600, False)
    assert budget.source == hub.source_ip
    token_request = hub.token_requests()[0]
    assert token_request.query["scope"] == "repository:ratelimitpreview/test:pull"
    assert token_request.query["service"] == "registry.docker.io"
    assert token_request.header("authorization") is None


def test_numbers_come_from_the_headers_not_from_constants(hub: FakeDockerHub) -> None:
    hub.set_rate_limit(limit=37, remaining=5, window=3600)
    budget = client(hub).pull_budget(None)
    assert (budget.limit, budget.remaining, budget.window_seconds) == (37, 5, 3600)
    assert budget.describe() == "5/37 pulls left per 1 h"


def test_authenticated_budget_uses_the_account(hub: FakeDockerHub) -> None:
    hub.set_rate_limit(limit=200, remaining=150, window=21600, user="dcsbot")
    budget = client(hub).pull_budget(Credentials("dcsbot", "dckr_pat_test"))
    assert (budget.limit, budget.remaining) == (200, 150)
    assert budget.source != hub.source_ip  # charged to the account, not the IP
    assert hub.token_requests()[0].header("authorization", "").startswith("Basic ")


def test_missing_headers_mean_unlimited(hub: FakeDockerHub) -> None:
    hub.set_unlimited()
    budget = client(hub).pull_budget(None)
    assert budget.unlimited
    assert budget.limit is None and budget.remaining is None


def test_429_toomanyrequests_is_a_pull_limit_with_numbers(hub: FakeDockerHub) -> None:
    hub.set_rate_limit(limit=100, remaining=3, window=21600)
    hub.set_exhausted()
    with pytest.raises(PullLimitReached) as caught:
        client(hub).pull_budget(None)
    assert (caught.value.limit, caught.value.remaining, caught.value.window_seconds) == (100, 0, 21600)
    assert "0/100 pulls left per 6 h" in caught.value.message
    assert "toomanyrequests" in caught.value.message


def test_wrong_token_is_bad_credentials(hub: FakeDockerHub) -> None:
    with pytest.raises(RegistryAuthError, match="DOCKERHUB_USERNAME"):
        client(hub).pull_budget(Credentials("dcsbot", "wrong"))


def test_too_many_failed_logins_is_bad_credentials_not_a_pull_limit(hub: FakeDockerHub) -> None:
    hub.too_many_failed_logins = True
    with pytest.raises(RegistryAuthError, match="too many failed login attempts"):
        client(hub).pull_budget(Credentials("dcsbot", "dckr_pat_test"))
    assert hub.counts() == {}


def test_checks_use_head_only_and_spend_no_pull(hub: FakeDockerHub) -> None:
    hub.set_rate_limit(limit=100, remaining=50, window=21600)
    dockerhub = client(hub)
    for _ in range(3):
        assert dockerhub.pull_budget(None).remaining == 50
    assert hub.counts() == {"HEAD": 3}
    assert hub.budget().remaining == 50
    assert {method for method, _ in dockerhub.requests_made} == {"GET", "HEAD"}
    assert all(url.endswith("/token") for method, url in dockerhub.requests_made if method == "GET")


def test_base_digest_check_on_docker_hub_is_a_head_and_429_names_the_numbers(hub: FakeDockerHub) -> None:
    registry = RegistryClient(dockerhub_registry_url=hub.url, timeout=5)
    ref = parse_ref("databricksruntime/standard:15.4-LTS", "base")
    head = registry.head_manifest(ref, None)
    assert head.digest == hub.digest_of("databricksruntime/standard", "15.4-LTS")
    hub.queue_rate_limit(FakeBudget(limit=100, remaining=0, window=21600, exhausted=True))
    with pytest.raises(PullLimitReached) as caught:
        registry.head_manifest(ref, None)
    assert caught.value.limit == 100 and caught.value.remaining == 0
    assert "0/100 pulls left per 6 h" in caught.value.message
    assert set(hub.counts()) == {"HEAD"}


# ---------------------------------------------------------------- the periodic watch, end to end

CHANNEL = "C0ALERTS1"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(channels={CHANNEL: {"name": "dcs-alerts"}}) as fake:
        yield fake


def watch_services(tmp_db: str, hub: FakeDockerHub, slack: FakeSlack, **env: str) -> Services:
    environ = {
        "DCS_DB": tmp_db,
        "DOCKERHUB_AUTH_URL": hub.url,
        "DOCKERHUB_REGISTRY_URL": hub.url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack.api_url,
        "DCS_NOTIFY_CHANNEL": CHANNEL,
        "DCS_PULL_WARN_PERCENT": "20",
        "DCS_PULL_WARN_MIN": "10",
        **env,
    }
    return build_services(load_config(environ))


def test_falling_then_recovering_budget_posts_one_warning_and_one_all_clear(tmp_db, hub, slack) -> None:
    services = watch_services(tmp_db, hub, slack)
    posted = []
    for remaining in [90, 60, 30, 18, 12, 5, 0, 3, 15, 22, 40, 100, 95]:
        hub.set_rate_limit(limit=100, remaining=remaining, window=21600)
        posted.append(ratelimit_job(services).posted)
    assert [p for p in posted if p] == [WARNING, ALL_CLEAR]
    assert posted.index(WARNING) == 3  # the first sample below 20 % of the limit
    messages = slack.messages(CHANNEL)
    assert len(messages) == 2
    assert "18/100" in messages[0].text and "low" in messages[0].text
    assert "recovered" in messages[1].text
    assert len(services.store.query("SELECT * FROM ratelimit_samples")) == 13
    assert hub.counts() == {"HEAD": 13}  # watching never spends a pull


def test_a_429_while_watching_is_a_warning_with_numbers(tmp_db, hub, slack) -> None:
    services = watch_services(tmp_db, hub, slack)
    hub.set_rate_limit(limit=100, remaining=50, window=21600)
    assert ratelimit_job(services).posted is None
    hub.set_exhausted()
    outcome = ratelimit_job(services)
    assert outcome.posted == WARNING
    assert "toomanyrequests" in (outcome.error or "")
    assert "0/100" in slack.messages(CHANNEL)[0].text


def test_launches_of_the_window_raise_the_warning_line(tmp_db, hub, slack) -> None:
    services = watch_services(tmp_db, hub, slack)
    now = utcnow()
    with services.store.transaction() as conn:
        for image_url, status, pulls, cluster in [
            ("myorg/etl:latest", "running", 30, "0101-abc"),
            ("docker.io/myorg/ml:1", "blocked", 25, None),  # waiting for "launch anyway"
            ("myacr.azurecr.io/team/x:1", "running", 99, "0101-def"),
            ("myorg/old:1", "failed", 40, None),  # never started: needs nothing
        ]:
            conn.execute(
                "INSERT INTO launches (image, image_url, status, pulls_needed, cluster_id, created_at)"
                " VALUES ('x', ?, ?, ?, ?, ?)",
                (image_url, status, pulls, cluster, now),
            )
    hub.set_rate_limit(limit=200, remaining=50, window=21600)  # 25 %: fine by percentage and minimum
    outcome = ratelimit_job(services)
    assert outcome.posted == WARNING  # but 30 recent + 25 planned Docker Hub pulls need 55
    assert "launches in this window need 55" in outcome.decision.reason
    report = budget_report(services)
    assert (report.recent_pulls, report.planned_pulls) == (30, 25)  # the ACR launch spends no Docker Hub pull


def test_slack_outage_delays_the_warning_instead_of_losing_it(tmp_db, hub, slack) -> None:
    services = watch_services(tmp_db, hub, slack)
    hub.set_rate_limit(limit=100, remaining=5, window=21600)
    slack.fail_next("chat.postMessage", "not_in_channel")
    assert ratelimit_job(services).posted is None
    assert ratelimit_job(services).posted == WARNING
    assert ratelimit_job(services).posted is None
    assert len(slack.messages(CHANNEL)) == 1


# ---------------------------------------------------------------- /dcs ratelimit and the App Home, over HTTP

SIGNING_SECRET = "test-signing-secret-ratelimit"


@pytest.fixture
def slack_bot(tmp_db, hub, slack) -> Iterator[tuple[str, object]]:
    from bot.app import app_context, create_app
    from bot.http import ServerThread, create_server, make_wsgi_app
    from bot.workers import Workers

    config = load_config(
        {
            "DCS_DB": tmp_db,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DOCKERHUB_AUTH_URL": hub.url,
            "DOCKERHUB_REGISTRY_URL": hub.url,
            "DOCKER_HOST": "tcp://127.0.0.1:9",
        }
    )
    services = build_services(config)
    workers = Workers(config.workers)
    app = create_app(config, services, workers)
    server = ServerThread(create_server(make_wsgi_app(app, services), "127.0.0.1", 0, threads=4)).start()
    yield server.url, app_context(app)
    server.stop()
    workers.shutdown(wait=True, timeout=10)


def post_signed(url: str, body: bytes) -> dict:
    import requests

    from tests.fakes.slack import signed_headers

    answer = requests.post(f"{url}/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json() if answer.content else {}


def test_slash_ratelimit_answers_at_once_then_with_fresh_numbers(slack_bot, hub, slack) -> None:
    from tests.fakes.slack import slash_command_body

    url, ctx = slack_bot
    hub.set_rate_limit(limit=100, remaining=64, window=21600)
    ack = post_signed(url, slash_command_body("ratelimit", user_id="U1", response_url=slack.response_url("rl1")))
    assert "unknown" in json.dumps(ack) and "Asking Docker Hub" in json.dumps(ack)  # no sample yet: no guess
    fresh = json.dumps(slack.wait_for_response_post("rl1").body)
    assert "64/100" in fresh and "per 6 h" in fresh and "Last 24 h" in fresh
    # A recent sample: answered from the store, no second check.
    heads = hub.counts().get("HEAD", 0)
    again = post_signed(url, slash_command_body("ratelimit", user_id="U1", response_url=slack.response_url("rl2")))
    assert "64/100" in json.dumps(again) and "Asking" not in json.dumps(again)
    assert hub.counts().get("HEAD", 0) == heads

    from handlers.home import publish_home

    publish_home(ctx, "U1")
    home = json.dumps(slack.home_view("U1"), ensure_ascii=False)
    assert "Docker Hub pull budget" in home and "64/100" in home and "Launches in this window need 0" in home


def test_slash_ratelimit_reports_a_429_as_a_pull_limit(slack_bot, hub, slack) -> None:
    from tests.fakes.slack import slash_command_body

    url, _ = slack_bot
    hub.set_rate_limit(limit=100, remaining=0, window=21600)
    hub.set_exhausted()
    post_signed(url, slash_command_body("ratelimit", user_id="U1", response_url=slack.response_url("rl3")))
    answer = json.dumps(slack.wait_for_response_post("rl3").body)
    assert "pull rate limit reached" in answer and "0/100" in answer


# ---------------------------------------------------------------- the scheduler, for real


def test_scheduled_jobs_run_record_and_check_docker_hub_bases_with_head_only(tmp_db, hub, slack) -> None:
    import time
    from datetime import UTC, datetime

    from bot.domain.catalog import image_from_dict
    from jobs.scheduler import LTS_JOB, QUEUE_JOB, RATELIMIT_JOB, start_scheduler

    services = watch_services(tmp_db, hub, slack)
    services.store.add_image(
        image_from_dict(
            {
                "name": "team-pandas",
                "base": "databricksruntime/standard:15.4-LTS",
                "repository": "myacr.azurecr.io/team/pandas",
            }
        )
    )
    hub.set_rate_limit(limit=100, remaining=70, window=21600)
    scheduler = start_scheduler(services)
    try:
        for job_id in (LTS_JOB, RATELIMIT_JOB):
            scheduler.get_job(job_id).modify(next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            runs = {r["job_id"]: r for r in services.store.query("SELECT * FROM job_runs")}
            if all(runs.get(j, {}).get("finished_at") for j in (QUEUE_JOB, RATELIMIT_JOB)):
                break
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    # the LTS interval queued the image, the queue run checked it
    assert runs[QUEUE_JOB]["outcome"] == "succeeded" and "1 unchanged" in runs[QUEUE_JOB]["detail"]
    assert services.store.image_check("team-pandas").status == "unchanged"
    assert runs[RATELIMIT_JOB]["outcome"] == "succeeded" and "70/100" in runs[RATELIMIT_JOB]["detail"]
    check = services.store.query("SELECT * FROM base_checks")[0]
    assert check["digest"] == hub.digest_of("databricksruntime/standard", "15.4-LTS") and check["error"] is None
    assert set(hub.counts()) == {"HEAD"}  # neither job spent a pull
    assert slack.messages() == []  # nothing moved, budget fine: nothing to say


def test_a_429_on_an_engine_pull_is_a_pull_limit_not_a_generic_error(engine, hub, tmp_db) -> None:
    import os

    from bot.clients.engine import DockerEngine

    hub.set_exhausted(head_too=False)  # HEADs still answer; the engine's manifest GET is refused
    docker_engine = DockerEngine({k: v for k, v in os.environ.items() if k == "DOCKER_HOST"})
    ref = parse_ref(f"{hub.url.removeprefix('http://')}/databricksruntime/standard:15.4-LTS", "base")
    with pytest.raises(PullLimitReached) as caught:
        docker_engine.pull(ref, None)
    assert "toomanyrequests" in caught.value.message.lower()
    assert hub.counts().get("GET", 0) >= 1
