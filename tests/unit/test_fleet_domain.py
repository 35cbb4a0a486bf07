"""bot/domain/fleet.py: matching URLs to catalog repositories, policy rules, ownership."""

from __future__ import annotations

import json

import pytest

from bot.domain.fleet import (
    RepoIndex,
    fleet_items,
    job_managed_by,
    managed_by,
    policy_url_rules,
    still_on_older_digest,
)
from bot.domain.refs import parse_repository

D1, D2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
INDEX = RepoIndex(
    {"pandas": parse_repository("myacr.azurecr.io/team/pandas"), "hub": parse_repository("acme/spark")},
    {"pandas": D2, "hub": None},
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"myacr.azurecr.io/team/pandas@{D1}", (["pandas"], D1)),
        ("MYACR.azurecr.io/team/pandas:1.2", (["pandas"], ":1.2")),
        ("myacr.azurecr.io/team/pandas", (["pandas"], ":latest")),
        ("docker.io/acme/spark:3", (["hub"], ":3")),
        ("index.docker.io/acme/spark:3", (["hub"], ":3")),
        ("myacr.azurecr.io/team/pandas-gpu:1", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_urls_match_by_repository(url: object, expected: object) -> None:
    assert INDEX.match(url) == expected


def test_stale_means_pinned_to_another_digest() -> None:
    assert INDEX.is_stale("pandas", D1) and not INDEX.is_stale("pandas", D2)
    assert not INDEX.is_stale("pandas", ":latest") and not INDEX.is_stale("hub", D1)  # no current digest known


def test_policy_rules_fixed_allowlist_overrides_and_others() -> None:
    fixed = {"definition": json.dumps({"docker_image.url": {"type": "fixed", "value": "a/b:1"}})}
    assert list(policy_url_rules(fixed)) == [("definition", "fixed", ["a/b:1"])]
    family = {
        "definition": json.dumps({"docker_image.url": {"type": "allowlist", "values": ["a/b:1", "a/b:2"]}}),
        "policy_family_definition_overrides": json.dumps(
            {"docker_image.url": {"type": "allowlist", "values": ["a/b:1", "a/b:2"]}}
        ),
    }
    assert list(policy_url_rules(family)) == [("policy_family_definition_overrides", "allowlist", ["a/b:1", "a/b:2"])]
    assert (
        list(policy_url_rules({"definition": json.dumps({"docker_image.url": {"type": "regex", "pattern": ".*"}})}))
        == []
    )
    assert list(policy_url_rules({"definition": "{not json"})) == []


def test_ownership_bundle_lock_and_admin_named_tags() -> None:
    assert job_managed_by({"deployment": {"kind": "BUNDLE"}}, ()) == "a Databricks Asset Bundle"
    assert job_managed_by({"edit_mode": "UI_LOCKED"}, ()) == "its deployment (edit_mode UI_LOCKED)"
    assert job_managed_by({"tags": {"owner": "tf"}}, (("owner", None),)) == "tag owner=tf"
    assert managed_by({"managed_by": "pulumi"}, (("managed_by", "terraform"),)) is None
    assert managed_by(None, (("owner", None),)) is None


def test_clusters_a_job_made_are_left_to_their_job() -> None:
    spec = {"docker_image": {"url": f"myacr.azurecr.io/team/pandas@{D1}"}}
    items = fleet_items(
        "dev",
        INDEX,
        clusters=[
            {**spec, "cluster_id": "a", "cluster_source": "JOB"},
            {**spec, "cluster_id": "b", "cluster_source": "UI"},
        ],
    )
    assert [i.item_id for i in items] == ["b"] and items[0].stale


def test_what_a_rebuild_notice_lists_as_still_on_an_older_digest() -> None:
    repo = "myacr.azurecr.io/team/pandas"
    items = fleet_items(
        "dev",
        INDEX,
        clusters=[
            {"cluster_id": "moving-up", "state": "RUNNING", "docker_image": {"url": f"{repo}:latest"}},
            {"cluster_id": "moving-down", "state": "TERMINATED", "docker_image": {"url": f"{repo}:latest"}},
            {"cluster_id": "pinned-old", "state": "TERMINATED", "docker_image": {"url": f"{repo}@{D1}"}},
            {"cluster_id": "pinned-new", "state": "RUNNING", "docker_image": {"url": f"{repo}@{D2}"}},
            {"cluster_id": "immutable", "state": "RUNNING", "docker_image": {"url": f"{repo}:20240101"}},
        ],
        jobs=[
            {
                "job_id": 7,
                "settings": {
                    "name": "etl",
                    "tasks": [{"task_key": "a", "new_cluster": {"docker_image": {"url": f"{repo}@{D1}"}}}],
                },
            }
        ],
        pools=[{"instance_pool_id": "p", "preloaded_docker_images": [{"url": f"{repo}:unknown-tag"}]}],
    )
    stale = still_on_older_digest(items, {"pandas": D2}, {"pandas": "latest"}, {("pandas", "20240101"): D1})
    assert {(s.kind, s.cluster_id, s.moving) for s in stale} == {
        ("cluster", "moving-up", True),
        ("cluster", "pinned-old", False),
        ("cluster", "immutable", False),
        ("job", "7", False),
    }
    assert next(s for s in stale if s.cluster_id == "immutable").running_digest == D1
