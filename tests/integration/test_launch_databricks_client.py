"""The Databricks client with the real SDK over real HTTP: errors translated for people, every wait bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.clients.databricks import DatabricksClient
from bot.config import load_config
from bot.errors import (
    ConfigError,
    DcsDisabled,
    NotFound,
    WorkspacePermissionDenied,
    WorkspaceRateLimited,
    WorkspaceRejected,
    WorkspaceUnreachable,
)
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks

BODY = {
    "cluster_name": "x",
    "spark_version": "15.4.x-scala2.12",
    "node_type_id": "m5d.large",
    "num_workers": 1,
    "data_security_mode": "SINGLE_USER",
    "single_user_name": "a@example.com",
    "docker_image": {"url": "myacr.azurecr.io/x@sha256:" + "a" * 64},
}


@pytest.fixture
def fake() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=0) as workspace:
        yield workspace


def client(host: str, token: str = DEFAULT_TOKEN, budget: str = "3", **env: str) -> DatabricksClient:
    return DatabricksClient(
        load_config(
            {
                "DATABRICKS_HOST": host,
                "DATABRICKS_TOKEN": token,
                "DCS_DATABRICKS_TIMEOUT": budget,
                "HOME": "/nonexistent",
                **env,
            }
        )
    )


def test_create_sends_exactly_the_body(fake: FakeDatabricks) -> None:
    cluster_id = client(fake.url).create_cluster(BODY)
    assert fake.created_specs() == [BODY]
    assert fake.requests_matching("POST")[0].path == "/api/2.1/clusters/create"
    assert cluster_id in fake.clusters


def test_a_termination_code_the_sdk_does_not_know_is_kept(fake: FakeDatabricks) -> None:
    fake.script_next_cluster("TERMINATED", "SOME_CODE_FROM_NEXT_YEAR", parameters={"databricks_error_message": "new"})
    c = client(fake.url)
    cluster_id = c.create_cluster(BODY)
    status = c.get_cluster(cluster_id)
    while not status.failed:
        status = c.get_cluster(cluster_id)
    assert status.termination_code == "SOME_CODE_FROM_NEXT_YEAR"
    assert status.parameters["databricks_error_message"] == "new"


@pytest.mark.parametrize(
    ("status", "code", "message", "error", "words"),
    [
        (403, "PERMISSION_DENIED", "User is not allowed to create clusters", WorkspacePermissionDenied, "permission"),
        (401, "UNAUTHENTICATED", "Token expired", WorkspacePermissionDenied, "DATABRICKS_TOKEN"),
        (400, "INVALID_PARAMETER_VALUE", "Node type q9.huge is not supported", WorkspaceRejected, "q9.huge"),
        (400, "FEATURE_DISABLED", "This feature is disabled", DcsDisabled, "/dcs enable"),
        (500, "INTERNAL_ERROR", "boom", None, "boom"),
    ],
)
def test_errors_are_translated(
    fake: FakeDatabricks, status: int, code: str, message: str, error: type | None, words: str
) -> None:
    fake.fail_next("clusters/create", status, code, message)
    with pytest.raises(Exception) as caught:
        client(fake.url).create_cluster(BODY)
    if error is not None:
        assert isinstance(caught.value, error)
    assert words in str(caught.value)
    assert DEFAULT_TOKEN not in str(caught.value)


def test_dcs_switched_off_is_recognised_by_its_message(fake: FakeDatabricks) -> None:
    fake.workspace_conf["enableDcs"] = "false"
    with pytest.raises(DcsDisabled, match="/dcs enable"):
        client(fake.url).create_cluster(BODY)


def test_an_unknown_cluster_is_not_found(fake: FakeDatabricks) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        client(fake.url).get_cluster("0101-000000-nothere")


def test_a_short_rate_limit_is_retried(fake: FakeDatabricks) -> None:
    fake.fail_next("spark-versions", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=1)
    started = time.monotonic()
    assert client(fake.url, budget="10").spark_versions()
    assert 1 <= time.monotonic() - started < 5
    assert len(fake.requests_matching("GET", path_contains="spark-versions")) == 2


def test_a_long_retry_after_is_cut_to_the_budget(fake: FakeDatabricks) -> None:
    fake.fail_next("spark-versions", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=3600, times=50)
    c = client(fake.url, budget="2")
    c.me()  # the first call also builds the SDK client; time the second one
    started = time.monotonic()
    with pytest.raises(WorkspaceRateLimited, match="Wait a minute"):
        c.spark_versions()
    assert time.monotonic() - started < 4


def test_an_unreachable_workspace_fails_within_the_budget() -> None:
    c = client("http://127.0.0.1:9", budget="2")
    started = time.monotonic()
    with pytest.raises(WorkspaceUnreachable, match="DATABRICKS_HOST"):
        c.spark_versions()
    first = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(WorkspaceUnreachable):
        c.workspace_conf("enableDcs")
    # The first call also probes /.well-known/databricks-config (a quarter of the budget).
    assert first < 2 * 1.25 + 1.5 and time.monotonic() - started < 2 + 1.5


def test_missing_credentials_are_a_configuration_error() -> None:
    c = DatabricksClient(
        load_config({"DATABRICKS_HOST": "http://127.0.0.1:9", "DCS_DATABRICKS_TIMEOUT": "1", "HOME": "/nonexistent"})
    )
    with pytest.raises(ConfigError, match="DATABRICKS_TOKEN"):
        c.spark_versions()


def test_workspace_conf_and_identity(fake: FakeDatabricks) -> None:
    c = client(fake.url)
    assert c.workspace_conf("enableDcs") == {"enableDcs": "true"}
    me = c.me()
    assert me.user_name == "alice@example.com" and me.is_admin
    fake.admins.clear()
    assert not c.me().is_admin
    with pytest.raises(WorkspacePermissionDenied, match="workspace admin"):
        c.set_workspace_conf({"enableDcs": "true"})
