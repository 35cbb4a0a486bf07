"""The fake workspace's instance pools and cluster policies (with enforcement), driven by the real SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service.compute import ClusterSpec, DockerImage, ListSortColumn, UpdateClusterResource

from tests.fakes.databricks import FakeDatabricks, dcs_spec

OLD, NEW = "registry.example.com/team/img@sha256:" + "a" * 64, "registry.example.com/team/img@sha256:" + "b" * 64


@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=0, restart_polls=0) as fake:
        yield fake


# ---- instance pools -------------------------------------------------------------------------------
def test_pools_list_and_get_show_preloaded_images_without_passwords(dbx: FakeDatabricks) -> None:
    auth = {"username": "sp", "password": "pool-s3cret"}
    pool_id = dbx.add_instance_pool("big-images", preloaded_docker_images=[{"url": OLD, "basic_auth": auth}])
    other = dbx.add_instance_pool("plain", custom_tags={"team": "data"})
    w = dbx.client()

    pools = {p.instance_pool_id: p for p in w.instance_pools.list()}
    assert set(pools) == {pool_id, other} and not pools[other].preloaded_docker_images
    image = w.instance_pools.get(pool_id).preloaded_docker_images[0]
    assert image.url == OLD and image.basic_auth.username == "sp" and image.basic_auth.password is None
    raw = w.api_client.do("GET", "/api/2.0/instance-pools/list")
    assert "pool-s3cret" not in json.dumps(raw)
    assert len([r for r in dbx.requests if r.path.endswith("instance-pools/list")]) == 2  # one call per list
    with pytest.raises(ResourceDoesNotExist):
        w.instance_pools.get("0000-000000-pool-nothere")


def test_pool_edit_cannot_change_preloaded_images(dbx: FakeDatabricks) -> None:
    pool_id = dbx.add_instance_pool("big", preloaded_docker_images=[{"url": OLD}], custom_tags={"team": "data"})
    w = dbx.client()
    w.instance_pools.edit(pool_id, "big-renamed", "i3.xlarge", custom_tags={"team": "ml"}, min_idle_instances=1)
    pool = w.instance_pools.get(pool_id)
    assert (pool.instance_pool_name, pool.custom_tags, pool.min_idle_instances) == ("big-renamed", {"team": "ml"}, 1)
    assert pool.preloaded_docker_images[0].url == OLD and pool.idle_instance_autotermination_minutes is None
    (write,) = dbx.writes_to("instance_pool", pool_id)
    assert write.before["custom_tags"] == {"team": "data"} and write.after["custom_tags"] == {"team": "ml"}

    body = {
        "instance_pool_id": pool_id,
        "instance_pool_name": "big",
        "node_type_id": "i3.xlarge",
        "preloaded_docker_images": [{"url": NEW}],
    }
    with pytest.raises(InvalidParameterValue, match="preloaded_docker_images cannot be changed"):
        w.api_client.do("POST", "/api/2.0/instance-pools/edit", body=body)
    with pytest.raises(InvalidParameterValue, match="unknown field in request: enable_elastic_disk"):
        body = {**body, "preloaded_docker_images": [{"url": OLD}], "enable_elastic_disk": False}
        w.api_client.do("POST", "/api/2.0/instance-pools/edit", body=body)
    assert dbx.instance_pools[pool_id]["preloaded_docker_images"] == [{"url": OLD}]
    assert len(dbx.writes_to("instance_pool")) == 1


# ---- cluster policies -----------------------------------------------------------------------------
def _fixed(url: str) -> dict[str, dict[str, object]]:
    return {"docker_image.url": {"type": "fixed", "value": url, "hidden": True}}


def test_policies_list_get_and_family_overrides(dbx: FakeDatabricks) -> None:
    dbx.add_policy_family("personal-vm", "Personal Compute", {"num_workers": {"type": "fixed", "value": 0}})
    fixed = dbx.add_policy("b-fixed", _fixed(OLD), description="pins the image", max_clusters_per_user=3)
    family = dbx.add_policy("a-family", policy_family_id="personal-vm", policy_family_definition_overrides=_fixed(OLD))
    w = dbx.client()

    assert [p.name for p in w.cluster_policies.list(sort_column=ListSortColumn.POLICY_NAME)] == ["a-family", "b-fixed"]
    got = w.cluster_policies.get(fixed)
    assert isinstance(got.definition, str) and json.loads(got.definition) == _fixed(OLD)
    assert (got.description, got.max_clusters_per_user) == ("pins the image", 3)
    fam = w.cluster_policies.get(family)
    assert json.loads(fam.policy_family_definition_overrides) == _fixed(OLD)
    assert json.loads(fam.definition) == {"num_workers": {"type": "fixed", "value": 0}, **_fixed(OLD)}
    assert json.loads(w.policy_families.get("personal-vm").definition) == {"num_workers": {"type": "fixed", "value": 0}}


def test_policy_edit_records_and_clears_what_is_not_sent_back(dbx: FakeDatabricks) -> None:
    dbx.add_policy_family("personal-vm", "Personal Compute", {})
    fixed = dbx.add_policy("fixed", _fixed(OLD), description="pins the image", max_clusters_per_user=3)
    family = dbx.add_policy("fam", policy_family_id="personal-vm", policy_family_definition_overrides=_fixed(OLD))
    w = dbx.client()

    w.cluster_policies.edit(fixed, name="fixed", definition=json.dumps(_fixed(NEW)), max_clusters_per_user=3)
    after = w.cluster_policies.get(fixed)
    assert json.loads(after.definition) == _fixed(NEW) and after.description is None
    (write,) = dbx.writes_to("policy", fixed)
    assert json.loads(write.before["definition"]) == _fixed(OLD) and write.before["description"] == "pins the image"

    read = w.cluster_policies.get(family)
    with pytest.raises(InvalidParameterValue, match="cannot be used with definition"):
        w.cluster_policies.edit(family, name="fam", definition=read.definition, policy_family_id="personal-vm")
    w.cluster_policies.edit(
        family, name="fam", policy_family_id="personal-vm", policy_family_definition_overrides=json.dumps(_fixed(NEW))
    )
    assert json.loads(w.cluster_policies.get(family).definition) == _fixed(NEW)
    with pytest.raises(InvalidParameterValue, match="Invalid policy definition"):
        w.cluster_policies.edit(fixed, name="fixed", definition="{not json")
    with pytest.raises(InvalidParameterValue, match="JSON string"):
        w.api_client.do("POST", "/api/2.0/policies/clusters/edit", body={"policy_id": fixed, "definition": {}})
    assert [x.resource_id for x in dbx.writes_to("policy")] == [fixed, family]


def test_policy_with_a_fixed_url_rejects_a_cluster_on_another_image(dbx: FakeDatabricks) -> None:
    policy = dbx.add_policy("pinned", {**_fixed(OLD), "autotermination_minutes": {"type": "range", "maxValue": 60}})
    w = dbx.client()
    spec = {k: v for k, v in vars(ClusterSpec.from_dict(dcs_spec(NEW, policy_id=policy))).items() if v is not None}
    with pytest.raises(InvalidParameterValue) as err:
        w.clusters.create(**spec)
    assert str(err.value) == f'Validation failed for docker_image.url, the value must be {OLD} (is "{NEW}")'
    assert dbx.clusters == {}

    omitted = dcs_spec(OLD, policy_id=policy)
    del omitted["docker_image"]
    cid = w.api_client.do("POST", "/api/2.1/clusters/create", body=omitted)["cluster_id"]
    assert w.clusters.get(cid).docker_image.url == OLD  # fixed values fill omitted fields

    change = UpdateClusterResource(docker_image=DockerImage(url=NEW))
    with pytest.raises(InvalidParameterValue, match="Validation failed for docker_image.url"):
        w.clusters.update(cid, "docker_image", cluster=change)
    with pytest.raises(InvalidParameterValue, match="autotermination_minutes, the value must be between"):
        w.clusters.update(cid, "autotermination_minutes", cluster=UpdateClusterResource(autotermination_minutes=120))
    w.cluster_policies.edit(policy, name="pinned", definition=json.dumps(_fixed(NEW)))  # policies first
    w.clusters.update(cid, "docker_image", cluster=change)
    assert dbx.clusters[cid].spec["docker_image"]["url"] == NEW
