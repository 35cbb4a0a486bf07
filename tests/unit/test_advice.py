"""Termination codes → advice a person can act on."""

from __future__ import annotations

import pytest

from bot.domain.advice import advise, failing_init_script

URL = "team/pandas@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("code", "params", "kwargs", "must_say"),
    [
        (
            "DOCKER_IMAGE_PULL_FAILURE",
            {"databricks_error_message": "toomanyrequests: You have reached your pull rate limit."},
            {"on_docker_hub": True},
            ["pull limit", "window"],
        ),
        (
            "DOCKER_IMAGE_PULL_FAILURE",
            {"databricks_error_message": "unauthorized: authentication required"},
            {"auth": "secret"},
            ["refused the login", "cluster_password_secret"],
        ),
        (
            "DOCKER_IMAGE_PULL_FAILURE",
            {"databricks_error_message": "manifest unknown"},
            {},
            ["does not have it", "push again"],
        ),
        ("DOCKER_IMAGE_PULL_FAILURE", {}, {"on_docker_hub": True}, ["The URL", "The credentials", "pull limit"]),
        ("DOCKER_IMAGE_PULL_FAILURE", {}, {"on_docker_hub": False}, ["The URL", "The credentials"]),
        ("DOCKER_INVALID_OS_EXCEPTION", {}, {}, ["operating system", "databricksruntime", "linux/amd64"]),
        ("DOCKER_IMAGE_TOO_LARGE_FOR_INSTANCE_EXCEPTION", {}, {}, ["disk", "smaller"]),
        ("CONTAINER_LAUNCH_FAILURE", {}, {}, ["could not start", "dcs doctor team-pandas", "172.17.0.0/16"]),
        ("DOCKER_CONTAINER_CREATION_EXCEPTION", {}, {}, ["could not start"]),
        (
            "INIT_SCRIPT_FAILURE",
            {
                "databricks_error_message": "Cluster scoped init script /Volumes/main/s/v/setup.sh "
                "failed: Script exit status is non-zero"
            },
            {},
            ["/Volumes/main/s/v/setup.sh", "non-zero"],
        ),
        ("USER_REQUEST", {"username": "bob@example.com"}, {}, ["bob@example.com"]),
        ("INACTIVITY", {}, {}, ["autotermination"]),
        ("CLOUD_PROVIDER_LAUNCH_FAILURE", {}, {}, ["cloud provider"]),
        ("SOMETHING_NEW", {"databricks_error_message": "A new reason."}, {}, ["SOMETHING_NEW", "A new reason."]),
    ],
)
def test_advice(code: str, params: dict, kwargs: dict, must_say: list[str]) -> None:
    text = advise(code, parameters=params, image="team-pandas", image_url=URL, **kwargs).text()
    for words in must_say:
        assert words in text, text


def test_pull_limit_advice_only_for_docker_hub() -> None:
    said = {"databricks_error_message": "toomanyrequests"}
    assert "pull limit" not in advise("DOCKER_IMAGE_PULL_FAILURE", parameters=said, on_docker_hub=False).text()


def test_pull_failure_names_the_image_url() -> None:
    assert URL in advise("DOCKER_IMAGE_PULL_FAILURE", image_url=URL).headline


@pytest.mark.parametrize(
    ("message", "scripts", "expected"),
    [
        (
            "Cluster scoped init script file:/databricks/a.sh failed: Script exit status is non-zero",
            (),
            "file:/databricks/a.sh",
        ),
        ("Init script dbfs:/x/y.sh failed: No such file", (), "dbfs:/x/y.sh"),
        ("Script exit status is non-zero", ("file:/only.sh",), "file:/only.sh"),
        ("Script exit status is non-zero", ("file:/a.sh", "file:/b.sh"), None),
    ],
)
def test_failing_init_script(message: str, scripts: tuple[str, ...], expected: str | None) -> None:
    assert failing_init_script(message, scripts) == expected


def test_init_script_failure_falls_back_to_the_only_script() -> None:
    advice = advise("INIT_SCRIPT_FAILURE", state_message="Init scripts failed.", init_scripts=("file:/x.sh",))
    assert "file:/x.sh" in advice.headline
