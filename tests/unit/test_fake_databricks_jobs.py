"""The fake workspace's jobs API 2.2, driven by the real databricks-sdk (`JobsExt`) over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service.jobs import JobDeploymentKind, JobEditMode, JobSettings

from tests.fakes.databricks import FakeDatabricks, dcs_spec

OLD, NEW = "registry.example.com/team/img@sha256:" + "a" * 64, "registry.example.com/team/img@sha256:" + "b" * 64


def _task(key: str, url: str | None = None, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"/Jobs/{key}"}, **extra}
    if url:
        task["new_cluster"] = dcs_spec(url)
    return task


@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks() as fake:
        yield fake


def _gets(fake: FakeDatabricks) -> list[Any]:
    return [r for r in fake.requests if r.path == "/api/2.2/jobs/get"]


def test_get_merges_task_and_job_cluster_pages_beyond_100(dbx: FakeDatabricks) -> None:
    tasks = [_task(f"t{i:03d}", OLD if i == 249 else None) for i in range(250)]
    clusters = [{"job_cluster_key": f"c{i:03d}", "new_cluster": dcs_spec(OLD)} for i in range(130)]
    job_id = dbx.add_job({"name": "big", "tasks": tasks, "job_clusters": clusters})

    job = dbx.client().jobs.get(job_id)

    assert [t.task_key for t in job.settings.tasks] == [t["task_key"] for t in tasks]
    assert len(job.settings.job_clusters) == 130 and job.settings.tasks[249].new_cluster.docker_image.url == OLD
    pages = _gets(dbx)
    assert len(pages) == 3 and "page_token" not in pages[0].query
    raw = dbx.client().api_client.do(
        "GET", "/api/2.2/jobs/get", query={"job_id": job_id, "page_token": pages[2].query["page_token"]}
    )
    assert (
        "next_page_token" not in raw and len(raw["settings"]["tasks"]) == 50 and "job_clusters" not in raw["settings"]
    )


def test_list_pages_and_expand_tasks_fetches_long_jobs_whole(dbx: FakeDatabricks) -> None:
    ids = [dbx.add_job({"name": f"job-{i}", "tasks": [_task("main", OLD)]}) for i in range(4)]
    long_id = dbx.add_job({"name": "long", "tasks": [_task(f"t{i}") for i in range(120)]})
    w = dbx.client()

    plain = list(w.jobs.list(limit=2))
    assert {j.job_id for j in plain} == {*ids, long_id}
    assert all(j.settings.tasks is None or j.settings.tasks == [] for j in plain)
    assert len([r for r in dbx.requests if r.path == "/api/2.2/jobs/list"]) == 3

    expanded = {j.job_id: j for j in w.jobs.list(expand_tasks=True, limit=100)}
    assert len(expanded[long_id].settings.tasks) == 120  # JobsExt.list called jobs/get because has_more
    assert expanded[ids[0]].settings.tasks[0].new_cluster.docker_image.url == OLD
    assert [(r.query["job_id"], "page_token" in r.query) for r in _gets(dbx)] == [
        (str(long_id), False),
        (str(long_id), True),
    ]
    assert [j.job_id for j in w.jobs.list(name="JOB-1")] == [ids[1]]
    with pytest.raises(InvalidParameterValue, match="limit"):
        list(w.jobs.list(limit=101))


def test_update_replaces_only_the_task_it_is_sent(dbx: FakeDatabricks) -> None:
    inner = {"task_key": "inner", "new_cluster": dcs_spec(OLD), "notebook_task": {"notebook_path": "/x"}}
    settings = {
        "name": "etl",
        "tasks": [
            _task("ingest", OLD, max_retries=2),
            _task("report", "registry.example.com/other/img:1"),
            {"task_key": "fan", "for_each_task": {"inputs": "[1,2]", "task": inner}},
        ],
        "job_clusters": [{"job_cluster_key": "shared", "new_cluster": dcs_spec(OLD)}],
        "deployment": {"kind": "BUNDLE", "metadata_file_path": "/Workspace/b/state/metadata.json"},
        "edit_mode": "UI_LOCKED",
    }
    job_id = dbx.add_job(settings)
    w = dbx.client()
    job = w.jobs.get(job_id)
    assert job.settings.deployment.kind == JobDeploymentKind.BUNDLE
    assert job.settings.edit_mode == JobEditMode.UI_LOCKED

    ingest = job.settings.tasks[0]
    ingest.new_cluster.docker_image.url = NEW
    fan = job.settings.tasks[2]
    fan.for_each_task.task.new_cluster.docker_image.url = NEW
    w.jobs.update(job_id, new_settings=JobSettings(tasks=[ingest, fan]))

    stored = dbx.jobs[job_id].settings
    assert [t["task_key"] for t in stored["tasks"]] == ["ingest", "report", "fan"]
    assert stored["tasks"][0]["new_cluster"]["docker_image"]["url"] == NEW and stored["tasks"][0]["max_retries"] == 2
    assert stored["tasks"][1] == settings["tasks"][1]
    assert stored["tasks"][2]["for_each_task"]["task"]["new_cluster"]["docker_image"]["url"] == NEW
    assert stored["job_clusters"] == settings["job_clusters"] and stored["deployment"] == settings["deployment"]
    (write,) = dbx.writes_to("job", job_id)
    assert write.before == settings and write.after == stored

    # a task sent partially replaces the stored one whole: the notebook_task is gone
    w.jobs.update(job_id, new_settings=JobSettings.from_dict({"tasks": [{"task_key": "report"}]}))
    assert dbx.jobs[job_id].settings["tasks"][1] == {"task_key": "report"}

    w.jobs.update(job_id, fields_to_remove=["tasks/fan", "edit_mode"])
    assert [t["task_key"] for t in dbx.jobs[job_id].settings["tasks"]] == ["ingest", "report"]
    assert "edit_mode" not in dbx.jobs[job_id].settings


def test_update_and_reset_refusals(dbx: FakeDatabricks) -> None:
    job_id = dbx.add_job({"name": "etl", "tasks": [_task("a", OLD)]})
    w = dbx.client()
    for body, message in [
        ({"new_settings": {"tasks": [{"task_key": "a", "new_cluster": {"docker_image": {"uri": NEW}}}]}}, "uri"),
        ({"new_settings": {"tasks": [{"task_key": "a"}, {"task_key": "a"}]}}, "not unique"),
        ({"fields_to_remove": ["tasks/missing"]}, "not found"),
        ({"fields_to_remove": ["no_such_field"]}, "no_such_field"),
    ]:
        with pytest.raises(InvalidParameterValue, match=message):
            w.api_client.do("POST", "/api/2.2/jobs/update", body={"job_id": job_id, **body})
    with pytest.raises(InvalidParameterValue, match="new_settings"):
        w.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": job_id})
    assert dbx.writes_to("job") == []
    with pytest.raises(ResourceDoesNotExist, match="Job 42 does not exist"):
        w.jobs.get(42)


def test_reset_replaces_everything(dbx: FakeDatabricks) -> None:
    job_id = dbx.add_job({"name": "etl", "tasks": [_task("a", OLD), _task("b", OLD)], "tags": {"k": "v"}})
    w = dbx.client()
    w.jobs.reset(job_id, JobSettings.from_dict({"name": "etl", "tasks": [_task("a", NEW)]}))
    assert w.jobs.get(job_id).settings.as_dict() == {"name": "etl", "tasks": [_task("a", NEW)]}
    assert [x.action for x in dbx.writes_to("job", job_id)] == ["reset"]
