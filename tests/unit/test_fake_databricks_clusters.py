"""The fake workspace's clusters API, write log and faults, driven by the real databricks-sdk over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from databricks.sdk.errors import (
    DeadlineExceeded,
    InternalError,
    InvalidParameterValue,
    InvalidState,
    OperationFailed,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
)
from databricks.sdk.service.compute import (
    ClusterSource,
    DockerBasicAuth,
    DockerImage,
    ListClustersFilterBy,
    State,
    TerminationReasonCode,
    TerminationReasonType,
    UpdateClusterResource,
)

from tests.fakes.databricks import FakeDatabricks, dcs_spec

OLD, NEW = "registry.example.com/team/img@sha256:" + "a" * 64, "registry.example.com/team/img@sha256:" + "b" * 64


@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=0, restart_polls=0) as fake:
        yield fake


def _list_calls(fake: FakeDatabricks) -> list[Any]:
    return [r for r in fake.requests if r.path == "/api/2.1/clusters/list"]


def test_list_pages_through_every_cluster_including_terminated_and_foreign_ones() -> None:
    with FakeDatabricks(cluster_page_size=3) as fake:
        ui = fake.add_cluster(dcs_spec(OLD, custom_tags={"team": "data"}), creator="bob@example.com")
        job = fake.add_cluster(dcs_spec(OLD), cluster_source="JOB", creator="jobs@example.com")
        gone = fake.add_cluster(dcs_spec(OLD), state="TERMINATED")
        fake.add_cluster(dcs_spec(OLD), state="TERMINATED", terminated_days_ago=31)  # aged out of list
        pinned = fake.add_cluster(dcs_spec(OLD), state="TERMINATED", terminated_days_ago=45, pinned=True)
        plain = [fake.add_cluster({"cluster_name": f"plain-{i}"}, cluster_source="API") for i in range(3)]
        w = fake.client()

        listed = {c.cluster_id: c for c in w.clusters.list()}

        assert set(listed) == {ui, job, gone, pinned, *plain}
        pages = _list_calls(fake)
        assert len(pages) == 3 and "page_token" not in pages[0].query
        assert listed[ui].creator_user_name == "bob@example.com" and listed[ui].custom_tags == {"team": "data"}
        assert listed[job].cluster_source == ClusterSource.JOB and listed[ui].cluster_source == ClusterSource.UI
        assert listed[gone].state == State.TERMINATED
        assert listed[gone].termination_reason.code == TerminationReasonCode.INACTIVITY
        assert listed[gone].docker_image.url == OLD

        last = w.api_client.do("GET", "/api/2.1/clusters/list", query={"page_token": pages[-1].query["page_token"]})
        assert "next_page_token" not in last and last["prev_page_token"] and len(last["clusters"]) == 1

        by_filter = w.clusters.list(
            filter_by=ListClustersFilterBy(cluster_states=[State.TERMINATED], cluster_sources=[ClusterSource.UI]),
            page_size=50,
        )
        assert {c.cluster_id for c in by_filter} == {gone, pinned}


def test_update_restarts_a_running_cluster_and_records_the_write(dbx: FakeDatabricks) -> None:
    auth = {"username": "sp", "password": "{{secrets/dcs/acr}}"}
    cid = dbx.add_cluster(dcs_spec(OLD, docker_image={"url": OLD, "basic_auth": auth}))
    w = dbx.client()
    dbx.restart_polls = 1  # one get sees RESTARTING

    w.clusters.update(cid, "docker_image.url", cluster=UpdateClusterResource(docker_image=DockerImage(url=NEW)))
    restarting = w.clusters.get(cid)
    running = w.clusters.get(cid)
    dbx.restart_polls = 0

    assert (restarting.state, running.state) == (State.RESTARTING, State.RUNNING)
    assert running.docker_image.url == NEW and running.docker_image.basic_auth.username == "sp"
    (write,) = dbx.writes_to("cluster", cid)
    assert write.action == "update" and write.before["docker_image"]["url"] == OLD
    assert write.after["docker_image"] == {"url": NEW, "basic_auth": auth}  # password kept, never echoed

    # the whole field: basic_auth not sent is dropped, as update_mask=docker_image means
    image = DockerImage(url=OLD, basic_auth=DockerBasicAuth(username="sp2", password="{{secrets/dcs/new}}"))
    w.clusters.update(cid, "docker_image", cluster=UpdateClusterResource(docker_image=image)).result()
    w.clusters.update(cid, "docker_image", cluster=UpdateClusterResource(docker_image=DockerImage(url=NEW)))
    assert "basic_auth" not in dbx.clusters[cid].spec["docker_image"]
    assert [x.after["docker_image"]["url"] for x in dbx.writes_to("cluster", cid)] == [NEW, OLD, NEW]


def test_update_of_a_terminated_cluster_works_although_the_sdk_waiter_raises(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster(dcs_spec(OLD), state="TERMINATED")
    w = dbx.client()
    with pytest.raises(OperationFailed, match="failed to reach RUNNING, got State.TERMINATED"):
        w.clusters.update(
            cid, "docker_image", cluster=UpdateClusterResource(docker_image=DockerImage(url=NEW))
        ).result()
    after = w.clusters.get(cid)
    assert after.state == State.TERMINATED and after.docker_image.url == NEW
    assert len(dbx.writes_to("cluster", cid, "update")) == 1


@pytest.mark.parametrize(
    ("seed", "mask", "error", "message"),
    [
        ({"state": "PENDING"}, "docker_image", InvalidState, "unexpected state PENDING"),
        ({"state": "TERMINATING"}, "docker_image", InvalidState, "unexpected state TERMINATING"),
        ({"cluster_source": "JOB"}, "docker_image", InvalidParameterValue, "Jobs service cannot be updated"),
        ({}, "docker_image,nonsense", InvalidParameterValue, "unknown field nonsense"),
        ({}, "docker_image, spark_conf", InvalidParameterValue, "update_mask"),
    ],
)
def test_update_refusals(dbx: FakeDatabricks, seed: dict[str, Any], mask: str, error: type, message: str) -> None:
    cid = dbx.add_cluster(dcs_spec(OLD), **seed)
    with pytest.raises(error, match=message):
        dbx.client().clusters.update(cid, mask, cluster=UpdateClusterResource(docker_image=DockerImage(url=NEW)))
    assert dbx.clusters[cid].spec["docker_image"]["url"] == OLD and dbx.writes_to("cluster") == []


def test_update_body_is_checked_through_the_sdk_dataclass_and_dcs_rules(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster(dcs_spec(OLD))
    w = dbx.client()
    with pytest.raises(InvalidParameterValue, match="unknown field in request: docker_image.uri"):
        body = {"cluster_id": cid, "update_mask": "docker_image", "cluster": {"docker_image": {"uri": NEW}}}
        w.api_client.do("POST", "/api/2.1/clusters/update", body=body)
    with pytest.raises(InvalidParameterValue, match="Machine Learning"):
        w.clusters.update(cid, "spark_version", cluster=UpdateClusterResource(spark_version="15.4.x-cpu-ml-scala2.12"))
    assert dbx.writes_to("cluster") == []


def test_edit_replaces_the_whole_spec(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster(dcs_spec(OLD, custom_tags={"owner": "bob"}), state="TERMINATED")
    w = dbx.client()
    w.clusters.edit(cluster_id=cid, **{**_sdk_spec(NEW), "num_workers": 2})
    after = w.clusters.get(cid)
    assert after.docker_image.url == NEW and after.num_workers == 2 and after.custom_tags is None
    assert after.state == State.TERMINATED
    assert dbx.writes_to("cluster", cid)[0].before["custom_tags"] == {"owner": "bob"}
    with pytest.raises(InvalidParameterValue, match="single_user_name"):
        body = {"cluster_id": cid, **dcs_spec(NEW)}
        del body["single_user_name"]
        w.api_client.do("POST", "/api/2.1/clusters/edit", body=body)
    assert len(dbx.writes_to("cluster", cid)) == 1


def test_terminate_permanent_delete_and_start(dbx: FakeDatabricks) -> None:
    w = dbx.client()
    cid = w.clusters.create(**_sdk_spec()).cluster_id
    assert w.clusters.get(cid).state == State.RUNNING

    w.clusters.delete(cid).result()
    w.clusters.delete(cid)  # already terminated: nothing happens
    terminated = w.clusters.get(cid)
    assert terminated.termination_reason.code == TerminationReasonCode.USER_REQUEST
    assert terminated.termination_reason.type == TerminationReasonType.SUCCESS
    assert terminated.termination_reason.parameters == {"username": "alice@example.com"}
    assert [x.action for x in dbx.writes_to("cluster", cid)] == ["create", "delete"]

    w.clusters.start(cid).result()
    assert w.clusters.get(cid).state == State.RUNNING and w.clusters.get(cid).termination_reason is None
    with pytest.raises(InvalidState):
        w.clusters.start(cid)

    w.clusters.permanent_delete(cid)
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get(cid)
    assert list(w.clusters.list()) == []


def _sdk_spec(url: str = OLD) -> dict[str, Any]:
    from databricks.sdk.service.compute import ClusterSpec

    spec = ClusterSpec.from_dict(dcs_spec(url))
    return {k: v for k, v in vars(spec).items() if v is not None}


# ---- faults ---------------------------------------------------------------------------------------
def test_504_after_create_leaves_a_cluster_the_client_never_heard_of(dbx: FakeDatabricks) -> None:
    dbx.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "The request timed out", applied=True)
    with pytest.raises(DeadlineExceeded):
        dbx.client().clusters.create(**_sdk_spec())
    assert len(dbx.clusters) == 1 and len(dbx.writes_to("cluster", action="create")) == 1


def test_reset_after_create_makes_the_default_sdk_create_twice(dbx: FakeDatabricks) -> None:
    dbx.reset_next("/clusters/create")
    waiter = dbx.client(retry_timeout_seconds=30).clusters.create(**_sdk_spec())
    assert len(dbx.clusters) == 2 and waiter.cluster_id in dbx.clusters  # the SDK re-sent create by itself

    dbx.reset_next("/clusters/create")
    with pytest.raises(TimeoutError) as err:
        dbx.client(retry_timeout_seconds=1).clusters.create(**_sdk_spec())
    assert type(err.value.__cause__).__name__ == "ConnectionError" and "reset" in str(err.value.__cause__).lower()
    assert len(dbx.clusters) == 3


def test_503_on_list_for_n_calls(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster()
    dbx.fail_next("/clusters/list", 503, "TEMPORARILY_UNAVAILABLE", "busy", retry_after=1, times=1)
    assert [c.cluster_id for c in dbx.client().clusters.list()] == [cid]  # retried once, honouring Retry-After

    dbx.fail_next("/clusters/list", 503, "TEMPORARILY_UNAVAILABLE", "busy", retry_after=1, times=100)
    with pytest.raises(TimeoutError) as err:
        list(dbx.client(retry_timeout_seconds=1).clusters.list())
    assert isinstance(err.value.__cause__, TemporarilyUnavailable)


def test_500_for_one_item_only(dbx: FakeDatabricks) -> None:
    first, second = dbx.add_cluster(dcs_spec(OLD)), dbx.add_cluster(dcs_spec(OLD))
    dbx.fail_next("/clusters/update", 500, "INTERNAL_ERROR", "boom", item=first)
    w = dbx.client()
    change = UpdateClusterResource(docker_image=DockerImage(url=NEW))
    with pytest.raises(InternalError, match="boom"):
        w.clusters.update(first, "docker_image", cluster=change)
    w.clusters.update(second, "docker_image", cluster=change)
    assert [x.resource_id for x in dbx.writes_to("cluster")] == [second]
    w.clusters.update(first, "docker_image", cluster=change)  # one-shot: the retry goes through
    assert dbx.clusters[first].spec["docker_image"]["url"] == NEW


def test_slow_answer_times_out_while_the_write_happens(dbx: FakeDatabricks) -> None:
    dbx.delay_next("/clusters/create", 2)
    # Older SDKs retry the POST until their budget ends and raise TimeoutError from the read timeout; since
    # 0.167 (0.162 still retried) the SDK does not repeat a sent POST and raises the read timeout itself.
    with pytest.raises((TimeoutError, requests.Timeout)) as err:
        dbx.client(retry_timeout_seconds=1, http_timeout_seconds=1).clusters.create(**_sdk_spec())
    read_timeout = err.value.__cause__ if isinstance(err.value, TimeoutError) else err.value
    assert isinstance(read_timeout, requests.Timeout) and "timed out" in str(read_timeout).lower()
    assert len(dbx.clusters) == 1

    dbx.delay_next("/clusters/create", 0.3)  # late but within the timeout: the real answer arrives
    started = time.monotonic()
    waiter = dbx.client().clusters.create(**_sdk_spec())
    assert time.monotonic() - started >= 0.3 and waiter.cluster_id in dbx.clusters


def test_two_workspaces_and_one_goes_down() -> None:
    with FakeDatabricks(workspace_id="111") as dev, FakeDatabricks(workspace_id="222") as prod:
        dev_id, prod_id = dev.add_cluster(), prod.add_cluster()
        url = prod.url
        prod.go_down()
        started = time.monotonic()
        with pytest.raises(TimeoutError) as err:
            list(prod.client(retry_timeout_seconds=1).clusters.list())
        assert type(err.value.__cause__).__name__ == "ConnectionError" and time.monotonic() - started < 10
        assert [c.cluster_id for c in dev.client().clusters.list()] == [dev_id]

        prod.come_up()
        assert prod.url == url and [c.cluster_id for c in prod.client().clusters.list()] == [prod_id]


def test_going_down_cuts_open_keep_alive_connections(dbx: FakeDatabricks) -> None:
    w = dbx.client(retry_timeout_seconds=1)
    assert list(w.clusters.list()) == []  # the session now holds a keep-alive connection
    dbx.go_down()
    with pytest.raises(TimeoutError):
        list(w.clusters.list())
    dbx.come_up()
    assert list(w.clusters.list()) == []
