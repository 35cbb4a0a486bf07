"""The `dcs` console script end to end, as a pipeline would run it (subprocess, environment, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import requests

from bot.clients.registry import MANIFEST_ACCEPT
from tests.support.cli import dcs_command
from tests.support.namespace import local


def dcs(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # The installed console script, as a pipeline runs it (scripts/test installs the project).
    return subprocess.run(
        [*dcs_command(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False
    )


def cli_env(tmp_path: Path, registry) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "DATABRICKS_"))}
    env.update({"DCS_DB": str(tmp_path / "cli.db"), "DCS_SECRET_LOCAL_REGISTRY_PASSWORD": registry.password})
    return env


def test_build_push_end_to_end_with_basic_auth(tmp_path, registry, make_base, push_base):
    make_base(local("databricksruntime/standard:15.4-LTS"))
    push_base(local("databricksruntime/standard:15.4-LTS"), registry, "databricksruntime/standard", "15.4-LTS")
    env = cli_env(tmp_path, registry)
    catalog = f"""
[[registry]]
name = "local"
host = "{registry.host}"
username = "{registry.username}"
password_env = "DCS_SECRET_LOCAL_REGISTRY_PASSWORD"
cluster_password_secret = "{{{{secrets/dcs/local-registry}}}}"

[[image]]
name = "team-pandas"
base = "{registry.host}/databricksruntime/standard:15.4-LTS"
repository = "{registry.host}/cli/team-pandas"
pip = ["pandas==2.2.2"]
"""
    (tmp_path / "catalog.toml").write_text(catalog)
    imported = dcs("catalog", "import", str(tmp_path / "catalog.toml"), "--json", env=env)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["added"] == ["team-pandas"]

    built = dcs("build", "team-pandas", "--push", "--json", env=env)
    assert built.returncode == 0, built.stderr + built.stdout
    result = json.loads(built.stdout)
    digest = result["build"]["pushed_digest"]
    served = requests.head(
        f"http://{registry.host}/v2/cli/team-pandas/manifests/latest",
        auth=(registry.username, registry.password),
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    ).headers["Docker-Content-Digest"]
    assert digest == served
    assert [p["tag"] for p in result["pushes"]] == [result["build"]["tags"][0], "latest"]
    # Without a terminal, progress goes to stderr as plain lines; stdout stays parseable JSON.
    assert "[100%] done: succeeded" in built.stderr
    assert registry.password not in built.stdout + built.stderr

    again = dcs("build", "team-pandas", "--push", env=env)
    assert again.returncode == 0
    assert "up to date" in again.stdout

    digest_cmd = dcs("digest", f"{registry.host}/cli/team-pandas:latest", env=env)
    assert digest_cmd.stdout.strip() == digest

    exported = dcs("catalog", "export", "-", env=env)
    assert exported.returncode == 0
    assert "DCS_SECRET_LOCAL_REGISTRY_PASSWORD" in exported.stdout and registry.password not in exported.stdout

    # The cluster a launch would create runs exactly the pushed digest, pulling with the secret reference.
    planned = dcs(
        "launch",
        "team-pandas",
        "--runtime",
        "15.4.x-scala2.12",
        "--node-type",
        "m5d.large",
        "--user",
        "ada@example.com",
        "--dry-run",
        "--offline",
        "--json",
        env=env,
    )
    assert planned.returncode == 0, planned.stderr + planned.stdout
    body = json.loads(planned.stdout)
    body = body.get("body", body)
    assert body["docker_image"]["url"] == f"{registry.host}/cli/team-pandas@{digest}"
    assert body["docker_image"]["basic_auth"] == {
        "username": registry.username,
        "password": "{{secrets/dcs/local-registry}}",
    }
    assert body["data_security_mode"] == "SINGLE_USER" and body["single_user_name"] == "ada@example.com"
    assert registry.password not in planned.stdout


def test_doctor_exit_code_and_table(tmp_path, registry, make_base):
    make_base("dcs-tests/no-sudo:1", sudo=False, cmd=["/bin/bash"])
    env = cli_env(tmp_path, registry)
    result = dcs("doctor", "dcs-tests/no-sudo:1", "--json", env=env)
    assert result.returncode == 12
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["sudo"]["status"] == "fail" and "apt-get install -y sudo" in checks["sudo"]["fix"]
    assert checks["entrypoint"]["status"] == "warn"
    assert checks["bash"]["status"] == "pass"


def test_invalid_input_names_field_value_and_fix(tmp_path, registry):
    env = cli_env(tmp_path, registry)
    result = dcs(
        "image",
        "add",
        "team-x",
        "--base",
        "databricksruntime/standard:15.4-LTS",
        "--repo",
        "example.azurecr.io/x",
        "--pip",
        "pandas; rm -rf /",
        "--json",
        env=env,
    )
    assert result.returncode == 2
    problem = json.loads(result.stdout)
    assert "pip" in problem["error"] and "pandas; rm -rf /" in problem["error"] and "requirement" in problem["error"]
    listed = dcs("image", "list", "--json", env=env)
    assert json.loads(listed.stdout) == []  # nothing half-written


def test_bad_configuration_lists_every_problem_without_secrets(tmp_path, registry):
    env = cli_env(tmp_path, registry) | {
        "DCS_WORKERS": "many",
        "DCS_ADMINS": "alice@example.com",
        "SLACK_BOT_TOKEN": "not-a-token-but-secret-123",
    }
    result = dcs("image", "list", env=env)
    assert result.returncode == 78
    assert "DCS_WORKERS" in result.stderr and "DCS_ADMINS" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert "not-a-token-but-secret-123" not in result.stderr


def test_a_failed_build_into_a_file_is_plain_text_with_the_cause_first(tmp_path, registry, make_base, push_base):
    """`dcs build NAME > build.txt` of a build whose pip prints in colour: no terminal codes in the file, on
    stderr or in `dcs log`, and the tool's own reason is said before the step."""
    make_base(local("databricksruntime/standard:15.4-LTS"))
    push_base(local("databricksruntime/standard:15.4-LTS"), registry, "databricksruntime/standard", "15.4-LTS")
    env = cli_env(tmp_path, registry)
    base = f"{registry.host}/databricksruntime/standard:15.4-LTS"
    registry_added = dcs(
        "registry", "add", "local", "--host", registry.host, "--username", registry.username,
        "--password-env", "DCS_SECRET_LOCAL_REGISTRY_PASSWORD", env=env,
    )  # fmt: skip
    assert registry_added.returncode == 0, registry_added.stderr
    added = dcs(
        "image", "add", "colourful", "--base", base, "--repo", f"{registry.host}/cli/colourful",
        "--pip", "dcs-test-colour==1.0", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with (tmp_path / "build.txt").open("w") as out:
        built = subprocess.run(
            [*dcs_command(), "build", "colourful"], env=env, stdout=out, stderr=subprocess.PIPE, text=True, timeout=300
        )
    text = (tmp_path / "build.txt").read_text()
    assert built.returncode == 10, built.stderr
    assert "\x1b" not in text + built.stderr
    assert "No matching distribution found for dcs-test-colour==1.0" in built.stderr + text
    log = dcs("log", "1", env=env)
    assert "\x1b" not in log.stdout and "No matching distribution found for dcs-test-colour==1.0" in log.stdout
