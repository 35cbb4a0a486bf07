"""The Docker Hub pull-budget check against a fake Docker Hub speaking the real wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.clients.dockerhub import DockerHubClient
from bot.clients.registry import Credentials, RegistryClient
from bot.errors import PullLimitReached, RegistryAuthError
from bot.refs import parse_ref
from tests.fakes.dockerhub import FakeDockerHub
from tests.fakes.dockerhub import PullBudget as FakeBudget


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
