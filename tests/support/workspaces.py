"""Two fake Databricks workspaces (`dev`, `prod`) reached through unified-auth profiles in a config file the
test writes, as a team with a ~/.databrickscfg of two profiles would configure the bot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.services import Services
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks, dcs_spec

PROD_TOKEN = "dapi-prod-token"


@dataclass
class TwoWorkspaces:
    dev: FakeDatabricks
    prod: FakeDatabricks
    config_file: Path

    def env(self, protected: str = "prod") -> dict[str, str]:
        """The bot's variables: profiles only (no DATABRICKS_HOST/TOKEN, which the SDK would let win)."""
        return {
            "DCS_WORKSPACES": "dev:dev-profile,prod:prod-profile",
            "DCS_PROTECTED_WORKSPACES": protected,
            "DATABRICKS_CONFIG_FILE": str(self.config_file),
            "DATABRICKS_HOST": "",
            "DATABRICKS_TOKEN": "",
        }


@contextlib.contextmanager
def two_workspaces(tmp_path: Path, *, prod_dcs: str | None = "true") -> Iterator[TwoWorkspaces]:
    # Each workspace knows only its own token: a call sent to the wrong one with the other's token is refused.
    with FakeDatabricks() as dev, FakeDatabricks(tokens={PROD_TOKEN: "alice@example.com"}, enable_dcs=prod_dcs) as prod:
        cfg = tmp_path / "databrickscfg"
        cfg.write_text(
            f"[dev-profile]\nhost = {dev.url}\ntoken = {DEFAULT_TOKEN}\n\n"
            f"[prod-profile]\nhost = {prod.url}\ntoken = {PROD_TOKEN}\n",
            encoding="utf-8",
        )
        yield TwoWorkspaces(dev, prod, cfg)


REPO = "myacr.azurecr.io/team/pandas"
OLD = "sha256:" + "0d" * 32
NEW = "sha256:" + "1e" * 32
VOLUMES = "spark.databricks.unityCatalog.volumes.enabled"


def url(digest: str, repo: str = REPO) -> str:
    return f"{repo}@{digest}"


def task(key: str, spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A notebook task, on its own new cluster when `spec` is given, else on an existing one."""
    entry: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"/Jobs/{key}"}, **extra}
    if spec is not None:
        entry["new_cluster"] = spec
    elif "job_cluster_key" not in extra and "for_each_task" not in extra:
        entry["existing_cluster_id"] = "0101-000000-existing"
    return entry


@dataclass
class SeededFleet:
    """Ids of what `seed_fleet` put in a workspace the bot never touched."""

    running: str = ""
    terminated: str = ""
    current: str = ""
    other_image: str = ""
    job_made: str = ""
    etl_job: int = 0
    loop_job: int = 0
    wide_job: int = 0
    bundle_job: int = 0
    pool: str = ""
    policy: str = ""


def seed_fleet(fake: FakeDatabricks, repo: str = REPO) -> SeededFleet:
    """Clusters (UI and Terraform made, running and terminated), jobs (two tasks of which one uses the image, a
    for-each task, a shared job cluster on a tag, 150 tasks so jobs/get pages), a pool and a policy."""
    s = SeededFleet()
    s.policy = fake.add_policy(
        "dcs-pandas",
        {"docker_image.url": {"type": "fixed", "value": url(OLD, repo)}, "spark_version": {"type": "unlimited"}},
    )
    # under the policy that fixes the URL: only a policy changed first lets the cluster change
    s.running = fake.add_cluster(
        dcs_spec(url(OLD, repo), cluster_name="ui-made", policy_id=s.policy, spark_conf={"spark.x": "1"}),
        state="RUNNING",
    )
    s.terminated = fake.add_cluster(dcs_spec(url(OLD, repo), cluster_name="nightly"), state="TERMINATED")
    s.current = fake.add_cluster(
        dcs_spec(url(NEW, repo), cluster_name="fresh", spark_conf={VOLUMES: "true"}), state="TERMINATED"
    )
    s.other_image = fake.add_cluster(dcs_spec("other.example.com/x/y:1", cluster_name="elsewhere"))
    s.job_made = fake.add_cluster(dcs_spec(url(OLD, repo), cluster_name="job-run"), cluster_source="JOB")
    s.etl_job = fake.add_job(
        {
            "name": "etl",
            "tasks": [task("extract", dcs_spec(url(OLD, repo))), task("report")],
            "job_clusters": [],
        }
    )
    s.loop_job = fake.add_job(
        {
            "name": "loop",
            "tasks": [
                task("each", None, for_each_task={"inputs": "[1,2]", "task": task("inner", dcs_spec(url(OLD, repo)))})
            ],
            "job_clusters": [{"job_cluster_key": "shared", "new_cluster": dcs_spec(f"{repo}:latest")}],
        }
    )
    wide = [task(f"t{i:03d}") for i in range(150)]
    wide[120] = task("t120", dcs_spec(url(OLD, repo)))
    s.wide_job = fake.add_job({"name": "wide", "tasks": wide})
    s.bundle_job = fake.add_job(
        {
            "name": "bundled",
            "tasks": [task("main", dcs_spec(url(OLD, repo)))],
            "deployment": {"kind": "BUNDLE", "metadata_file_path": "/Workspace/bundles/etl/state/metadata.json"},
            "edit_mode": "UI_LOCKED",
        }
    )
    s.pool = fake.add_instance_pool("warm", preloaded_docker_images=[{"url": url(OLD, repo)}])
    return s


def fleet_services(pair: TwoWorkspaces, tmp_db: str, **env: str) -> Services:
    """Services of a bot configured for both workspaces, with the image `team-pandas` pushed twice (OLD, NEW)."""
    config = load_config({**pair.env(), "DCS_DB": tmp_db, "DCS_DATABRICKS_TIMEOUT": "3", **env})
    services = build_services(config)
    add_image(services)
    return services


def add_image(services: Services, name: str = "team-pandas", repository: str = REPO) -> dict[str, int]:
    """The image in the catalog with a pushed build per digest; returns digest → build id."""
    store = services.store
    spec = {"name": name, "base": "databricksruntime/standard:15.4-LTS", "repository": repository}
    store.add_image(image_from_dict(spec))
    builds = {}
    for digest in (OLD, NEW):
        build = store.create_build(name, requester="U1", source="test", push=True)
        store.update_build(build.id, status="succeeded", pushed_digest=digest)
        builds[digest] = build.id
    return builds
