"""The image catalog: validation of images and registries, the TOML file and its exact round trip."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from bot.domain.catalog import (
    DEFAULT_IMMUTABLE_TAG,
    Catalog,
    ImageSpec,
    RegistrySpec,
    dump_catalog,
    image_from_dict,
    image_to_dict,
    parse_catalog,
    registry_for,
    registry_from_dict,
    registry_to_dict,
    update_image,
)
from bot.errors import InvalidInput, InvalidInputs

BASE = "databricksruntime/standard:15.4-LTS"
MINIMAL = {"name": "team-pandas", "base": BASE, "repository": "myacr.azurecr.io/team/pandas"}
FULL: dict[str, Any] = {
    "name": "team-pandas",
    "base": BASE,
    "repository": "myacr.azurecr.io/team/pandas",
    "pip": ["pandas==2.2.2", "requests[socks,security]>=2.31", "numpy>=1.26,<2"],
    "apt": ["libgomp1", "curl=7.81.0-1ubuntu1.16"],
    "env": {"TZ": "UTC", "LANG": "C.UTF-8"},
    "registry": "acr",
    "tag": "stable",
    "immutable_tag": "{tag}-{date}-{spec}",
    "schedule": "0  3 * * 1",
    "notify_channel": "#data-platform",
    "owner": "U012AB3CD",
    "description": "Pandas for the data team",
}


def problems_of(error: InvalidInput | InvalidInputs) -> list[InvalidInput]:
    return error.problems if isinstance(error, InvalidInputs) else [error]


# ---------------------------------------------------------------- images


def test_image_from_dict_with_every_field() -> None:
    spec = image_from_dict(FULL)
    assert spec == ImageSpec(
        name="team-pandas",
        base=BASE,
        repository="myacr.azurecr.io/team/pandas",
        pip=("pandas==2.2.2", "requests[security,socks]>=2.31", "numpy<2,>=1.26"),
        apt=("libgomp1", "curl=7.81.0-1ubuntu1.16"),
        env=(("TZ", "UTC"), ("LANG", "C.UTF-8")),
        registry="acr",
        tag="stable",
        immutable_tag="{tag}-{date}-{spec}",
        schedule="0 3 * * 1",
        notify_channel="#data-platform",
        owner="U012AB3CD",
        description="Pandas for the data team",
    )
    assert spec.base_info.pip_path == "/databricks/python3/bin/pip"
    assert spec.repository_ref.domain == "myacr.azurecr.io"


def test_image_defaults() -> None:
    spec = image_from_dict(MINIMAL)
    assert (spec.pip, spec.apt, spec.env) == ((), (), ())
    assert spec.tag == "latest"
    assert spec.immutable_tag == DEFAULT_IMMUTABLE_TAG == "{tag}-{date}-b{build}"
    assert (spec.registry, spec.schedule, spec.notify_channel, spec.owner, spec.description) == (
        None,
        None,
        None,
        None,
        "",
    )
    assert image_to_dict(spec) == MINIMAL


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pip": "pandas>=2,<3, numpy"}, {"pip": ("pandas<3,>=2", "numpy")}),
        ({"pip": "pandas\nnumpy\n"}, {"pip": ("pandas", "numpy")}),
        ({"apt": "curl, libgomp1"}, {"apt": ("curl", "libgomp1")}),
        ({"env": [["TZ", "UTC"]]}, {"env": (("TZ", "UTC"),)}),
        ({"env": (("TZ", "UTC"), ("LANG", "C"))}, {"env": (("TZ", "UTC"), ("LANG", "C"))}),
        ({"owner": "someone@example.com"}, {"owner": "someone@example.com"}),
        ({"owner": "W012AB3CD"}, {"owner": "W012AB3CD"}),
        ({"notify_channel": "C012AB3CD"}, {"notify_channel": "C012AB3CD"}),
        ({"notify_channel": "G012AB3CD"}, {"notify_channel": "G012AB3CD"}),
        ({"schedule": ""}, {"schedule": None}),
        ({"schedule": "*/15 * * * *"}, {"schedule": "*/15 * * * *"}),
        ({"schedule": "0 3 * * mon-fri"}, {"schedule": "0 3 * * mon-fri"}),
        ({"registry": ""}, {"registry": None}),
        ({"tag": ""}, {"tag": "latest"}),
        ({"immutable_tag": "{tag}-b{build}"}, {"immutable_tag": "{tag}-b{build}"}),
        ({"immutable_tag": "{spec}"}, {"immutable_tag": "{spec}"}),
        ({"immutable_tag": "v{build}-{base}"}, {"immutable_tag": "v{build}-{base}"}),
        # own bases take pip once they say where their Python is
        ({"base": "ubuntu:22.04", "python": "/usr/bin/python3", "pip": ["pandas"]}, {"pip": ("pandas",)}),
        ({"base": "databricksruntime/standard:8.x", "pip": ["pandas"]}, {"pip": ("pandas",)}),
        ({"base": "databricksruntime/minimal:15.4-LTS", "apt": ["curl"]}, {"apt": ("curl",)}),
        ({"pip": ["pandas==2.2", "numpy==2.2"]}, {"pip": ("pandas==2.2", "numpy==2.2")}),
        ({"apt": ["libc6:amd64", "libc6:i386"]}, {"apt": ("libc6:amd64", "libc6:i386")}),
    ],
)
def test_image_accepted_forms(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = image_from_dict(MINIMAL | changes)
    for key, value in expected.items():
        assert getattr(spec, key) == value


@pytest.mark.parametrize(
    ("changes", "field", "value", "reason", "fix"),
    [
        ({"name": None}, "name", None, "is not a valid name", "Use 1-63 lowercase letters"),
        ({"name": "Team_Pandas"}, "name", "Team_Pandas", "is not a valid name", "Use 1-63 lowercase letters"),
        ({"name": "-x"}, "name", "-x", "is not a valid name", "Use 1-63 lowercase letters"),
        ({"name": "x" * 64}, "name", "x" * 64, "is not a valid name", "Use 1-63 lowercase letters"),
        ({"name": "pandas\n"}, "name", "pandas\n", "is not a valid name", "Use 1-63 lowercase letters"),
        ({"base": None}, "base", None, "is missing", "Set base, e.g. databricksruntime/standard:15.4-LTS."),
        ({"base": "Ubuntu"}, "base", "Ubuntu", "has an invalid repository path", "Use host[:port]/path"),
        ({"base": "ubuntu:22.04\n"}, "base", "ubuntu:22.04\n", "contains whitespace", "Use host[:port]/path"),
        ({"repository": ""}, "repository", "", "is missing", "Set the repository to push to"),
        (
            {"repository": "myacr.azurecr.io/team/pandas:1"},
            "repository",
            "myacr.azurecr.io/team/pandas:1",
            "must not carry a tag or digest",
            "tags come from the tag scheme",
        ),
        (
            {"repository": "Team/Pandas"},
            "repository",
            "Team/Pandas",
            "has an invalid repository path",
            "Use host[:port]/path",
        ),
        (
            {"pip": ["pandas", "rm -rf /"]},
            "pip",
            "rm -rf /",
            "is not a valid PEP 508 requirement",
            "Write it as name[extras]<op>version",
        ),
        (
            {"pip": ["pandas;$(id)"]},
            "pip",
            "pandas;$(id)",
            "contains characters that are not allowed",
            "Give a plain requirement",
        ),
        (
            {"pip": ["--index-url=https://evil.example"]},
            "pip",
            "--index-url=https://evil.example",
            "is a pip option",
            "Options such as --index-url or -r are not allowed",
        ),
        ({"pip": 5}, "pip", 5, "is not a list", "Give pip as a list of strings."),
        ({"pip": [5]}, "pip", 5, "is not text", "Give each requirement as a string"),
        ({"apt": ["Curl"]}, "apt", "Curl", "is not a valid Debian package name", "Use a Debian package name"),
        ({"apt": {"curl": 1}}, "apt", {"curl": 1}, "is not a list", "Give apt as a list of strings."),
        ({"env": "TZ=UTC"}, "env", "TZ=UTC", "is not a table", 'env = { TZ = "UTC" }'),
        ({"env": {"1TZ": "UTC"}}, "env.1TZ", "1TZ", "is not a valid variable name", "Use letters, digits"),
        (
            {"env": {"TZ": "$(id)"}},
            "env.TZ",
            "$(id)",
            "contains characters that are not allowed",
            "Use a value without quotes",
        ),
        ({"env": {"API_TOKEN": "x"}}, "env.API_TOKEN", "API_TOKEN", "looks like a secret", "{{secrets/scope/key}}"),
        (
            {"env": [["TZ", "UTC", "extra"]]},
            "env.['TZ', 'UTC', 'extra']",
            "['TZ', 'UTC', 'extra']",
            "is not a valid variable name",
            "Use letters, digits",
        ),
        ({"env": [[]]}, "env.[]", "[]", "is not a valid variable name", "Use letters, digits"),
        # pip on bases without Python
        (
            {"base": "databricksruntime/minimal:15.4-LTS", "pip": ["pandas", "numpy"]},
            "pip",
            "pandas, numpy",
            "cannot be installed: databricksruntime/minimal:15.4-LTS has no Python",
            "Use a Python base (databricksruntime/python or standard) or remove the pip packages.",
        ),
        (
            {"base": "databricksruntime/rbase:15.4-LTS", "pip": ["pandas"]},
            "pip",
            "pandas",
            "cannot be installed: databricksruntime/rbase:15.4-LTS has no Python",
            "Use a Python base",
        ),
        (
            {"base": "databricksruntime/gpu-base:cuda11.8", "pip": ["torch"]},
            "pip",
            "torch",
            "cannot be installed: databricksruntime/gpu-base:cuda11.8 has no Python",
            "Use a Python base",
        ),
        (
            {"base": "myacr.azurecr.io/databricksruntime/minimal:15.4-LTS", "pip": ["pandas"]},
            "pip",
            "pandas",
            "cannot be installed",
            "Use a Python base",
        ),
        # duplicates
        (
            {"pip": ["pandas", "numpy", "pandas"]},
            "pip",
            ["pandas"],
            "lists the same package twice",
            "Remove the duplicates.",
        ),
        (
            {"pip": ["pandas==2.1", "pandas==2.2"]},
            "pip",
            ["pandas"],
            "lists the same package twice",
            "Remove the duplicates.",
        ),
        (
            {"pip": ["scikit-learn", "Scikit_Learn>=1"]},
            "pip",
            ["scikit-learn"],
            "lists the same package twice",
            "Remove the duplicates.",
        ),
        ({"apt": ["curl", "curl"]}, "apt", ["curl"], "lists the same package twice", "Remove the duplicates."),
        ({"apt": ["curl", "curl=7.81.0-1"]}, "apt", ["curl"], "lists the same package twice", "Remove the duplicates."),
        # unknown fields
        (
            {"colour": "red"},
            "colour",
            "colour",
            "is not a known image field",
            "Use one of: apk, approval_hours, approvals, approvers, apt, base, build, canary",
        ),
        (
            {"base": "ubuntu:22.04", "pip": ["pandas"]},
            "python",
            None,
            "is missing: the base is not a Databricks image",
            'python = "/usr/bin/python3"',
        ),
        ({"packages": ["pandas"]}, "packages", "packages", "is not a known image field", "Use one of:"),
        # tags and templates
        ({"tag": "bad tag"}, "tag", "bad tag", "is not a valid Docker tag", "Use letters, digits, '_', '.', '-'."),
        ({"tag": ".hidden"}, "tag", ".hidden", "is not a valid Docker tag", "Use letters, digits"),
        ({"tag": "latest\n"}, "tag", "latest\n", "is not a valid Docker tag", "Use letters, digits"),
        ({"tag": 5}, "tag", 5, "is not a valid Docker tag", "Use letters, digits"),
        (
            {"immutable_tag": "{tag}-{date}"},
            "immutable_tag",
            "{tag}-{date}",
            "does not change between builds",
            "Include {build} (or {spec})",
        ),
        ({"immutable_tag": "fixed"}, "immutable_tag", "fixed", "does not change between builds", "Include {build}"),
        (
            {"immutable_tag": "{tag}-{nope}-{build}"},
            "immutable_tag",
            "{tag}-{nope}-{build}",
            "uses unknown placeholder(s) ['nope']",
            "placeholders from {tag, date, build, spec, base}",
        ),
        (
            {"immutable_tag": "{build!r}"},
            "immutable_tag",
            "{build!r}",
            "uses unknown placeholder(s)",
            "placeholders from",
        ),
        (
            {"immutable_tag": "{tag.__class__}-{build}"},
            "immutable_tag",
            "{tag.__class__}-{build}",
            "uses unknown placeholder(s)",
            "placeholders from",
        ),
        (
            {"immutable_tag": "{}-{build}"},
            "immutable_tag",
            "{}-{build}",
            "uses unknown placeholder(s) ['']",
            "placeholders from",
        ),
        (
            {"immutable_tag": "{tag}:{build}"},
            "immutable_tag",
            "{tag}:{build}",
            "does not produce a valid Docker tag",
            "e.g. '{tag}-{date}-b{build}'",
        ),
        (
            {"immutable_tag": "x" * 128 + "{build}"},
            "immutable_tag",
            "x" * 128 + "{build}",
            "does not produce a valid Docker tag",
            "placeholders from",
        ),
        ({"immutable_tag": "{build}}"}, "immutable_tag", "{build}}", "has a stray '{' or '}'", "placeholders from"),
        ({"immutable_tag": "}{build}"}, "immutable_tag", "}{build}", "has a stray '{' or '}'", "placeholders from"),
        ({"immutable_tag": "{{build}"}, "immutable_tag", "{{build}", "has a stray '{' or '}'", "placeholders from"),
        (
            {"immutable_tag": "{spec[{tag}]}-{build}"},
            "immutable_tag",
            "{spec[{tag}]}-{build}",
            "has a stray '{' or '}'",
            "placeholders from",
        ),
        (
            {"immutable_tag": "{spec:{tag}}-{build}"},
            "immutable_tag",
            "{spec:{tag}}-{build}",
            "has a stray '{' or '}'",
            "placeholders from",
        ),
        (
            {"immutable_tag": "b{build}\n"},
            "immutable_tag",
            "b{build}\n",
            "does not produce a valid Docker tag",
            "placeholders from",
        ),
        # schedule, channel, owner, registry, description
        (
            {"schedule": "every day"},
            "schedule",
            "every day",
            "is not a five-field cron expression",
            "e.g. '0 3 * * 1' for Mondays at 03:00 UTC",
        ),
        (
            {"schedule": "0 3 * * 1 2026"},
            "schedule",
            "0 3 * * 1 2026",
            "is not a five-field cron expression",
            "Use five cron fields",
        ),
        (
            {"schedule": "61 * * * *"},
            "schedule",
            "61 * * * *",
            "is not a valid cron expression",
            "Use five cron fields",
        ),
        (
            {"schedule": "0 25 * * *"},
            "schedule",
            "0 25 * * *",
            "is not a valid cron expression",
            "Use five cron fields",
        ),
        ({"schedule": 5}, "schedule", 5, "is not a five-field cron expression", "Use five cron fields"),
        (
            {"notify_channel": "general"},
            "notify_channel",
            "general",
            "is not a Slack channel",
            "Use a channel id like C012AB3CD or #channel-name.",
        ),
        ({"notify_channel": "#General"}, "notify_channel", "#General", "is not a Slack channel", "Use a channel id"),
        ({"notify_channel": "#ops\n"}, "notify_channel", "#ops\n", "is not a Slack channel", "Use a channel id"),
        ({"notify_channel": "U012AB3CD"}, "notify_channel", "U012AB3CD", "is not a Slack channel", "channel id"),
        ({"owner": "bob"}, "owner", "bob", "is not a Slack user id or an email", "Use a Slack user id like U012AB3CD"),
        ({"owner": "C012AB3CD"}, "owner", "C012AB3CD", "is not a Slack user id or an email", "Slack user id"),
        ({"owner": "U012AB3CD\n"}, "owner", "U012AB3CD\n", "is not a Slack user id or an email", "Slack user id"),
        ({"registry": "My Registry"}, "registry", "My Registry", "is not a valid name", "Use 1-63 lowercase"),
        (
            {"description": "two\nlines"},
            "description",
            "two\nlines",
            "is not one line of at most 300 characters",
            "Shorten the description.",
        ),
        (
            {"description": "x" * 301},
            "description",
            "x" * 301,
            "is not one line of at most 300 characters",
            "Shorten the description.",
        ),
        ({"description": 5}, "description", 5, "is not one line", "Shorten the description."),
    ],
)
def test_image_rejections_name_field_value_and_fix(
    changes: dict[str, Any], field: str, value: object, reason: str, fix: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        image_from_dict(MINIMAL | changes)
    error = caught.value
    assert error.field == field
    assert error.value == value
    assert error.reason.startswith(reason)
    assert fix in error.fix
    assert str(error).startswith(f"{field}: {repr(value)[:40]}")


def test_image_rejections_are_all_reported_at_once() -> None:
    with pytest.raises(InvalidInputs) as caught:
        image_from_dict(
            {
                "name": "Bad Name",
                "base": "Ubuntu",
                "pip": ["a;b"],
                "apt": ["X"],
                "env": {"1": "v"},
                "schedule": "soon",
                "owner": "bob",
                "colour": "red",
            }
        )
    fields = [p.field for p in caught.value.problems]
    assert sorted(fields) == sorted(
        ["colour", "name", "base", "repository", "pip", "apt", "env.1", "schedule", "owner"]
    )
    message = str(caught.value)
    assert message.startswith("9 problem(s):\n- ")
    assert "- name: 'Bad Name' is not a valid name." in message
    assert caught.value.exit_code == 2


def test_field_prefix_names_the_catalog_entry() -> None:
    with pytest.raises(InvalidInput) as caught:
        image_from_dict(MINIMAL | {"pip": ["a;`b`"]}, "image[team-pandas].")
    assert caught.value.field == "image[team-pandas].pip"
    assert str(caught.value).startswith("image[team-pandas].pip: 'a;`b`' contains characters that are not allowed")


def test_immutable_tag_for_fills_every_placeholder() -> None:
    spec = image_from_dict(MINIMAL | {"tag": "stable", "immutable_tag": "{tag}-{date}-b{build}-{spec}-{base}"})
    tag = spec.immutable_tag_for(
        build_id=42, date="20260101", spec_hash="f" * 64, base_digest="sha256:" + "0123456789ab" + "c" * 52
    )
    assert tag == "stable-20260101-b42-ffffffffffff-0123456789ab"
    assert spec.immutable_tag_for(build_id=1, date="d", spec_hash="a" * 64, base_digest=None) == (
        "stable-d-b1-aaaaaaaaaaaa-local"
    )


def test_update_image_revalidates_and_clears_fields() -> None:
    spec = image_from_dict(FULL)
    updated = update_image(spec, {"pip": ["polars==1.0"], "schedule": None, "owner": ""})
    assert updated.pip == ("polars==1.0",)
    assert updated.schedule is None
    assert updated.owner is None
    assert updated.apt == spec.apt and updated.env == spec.env and updated.tag == "stable"
    with pytest.raises(InvalidInput) as caught:
        update_image(spec, {"base": "databricksruntime/minimal:15.4-LTS"})
    assert caught.value.field == "pip"
    assert "has no Python" in caught.value.reason


# ---------------------------------------------------------------- registries

ACR = {
    "name": "acr",
    "host": "myacr.azurecr.io",
    "username": "00000000-sp-id",
    "password_env": "DCS_SECRET_ACR_PASSWORD",
    "cluster_username": "11111111-sp-id",
    "cluster_password_secret": "{{secrets/dcs/acr-password}}",
    "allow_plaintext_password": True,
}


def test_registry_from_dict_with_every_field() -> None:
    spec = registry_from_dict(ACR)
    assert spec == RegistrySpec(
        name="acr",
        host="myacr.azurecr.io",
        username="00000000-sp-id",
        password_env="DCS_SECRET_ACR_PASSWORD",
        cluster_username="11111111-sp-id",
        cluster_password_secret="{{secrets/dcs/acr-password}}",
        allow_plaintext_password=True,
    )
    assert spec.kind == "acr"
    assert registry_to_dict(spec) == ACR


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("docker.io", "dockerhub"),
        ("index.docker.io", "dockerhub"),
        ("registry-1.docker.io", "dockerhub"),
        ("myacr.azurecr.io", "acr"),
        ("MyAcr.AzureCR.io", "acr"),
        ("127.0.0.1:5000", "basic"),
        ("localhost", "basic"),
        ("localhost:5000", "basic"),
        ("ghcr.io", "basic"),
    ],
)
def test_registry_kind_by_host(host: str, kind: str) -> None:
    assert registry_from_dict({"name": "r", "host": host}).kind == kind


@pytest.mark.parametrize(
    ("data", "field", "reason", "fix"),
    [
        (
            {"name": "acr", "host": "myacr.azurecr.io", "password": "hunter2-secret"},
            "password",
            "would store a secret in the catalog",
            "Set password_env to the NAME of an environment variable",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "token": "hunter2-secret"},
            "token",
            "would store a secret in the catalog",
            "Set password_env",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "secret": "hunter2-secret"},
            "secret",
            "would store a secret in the catalog",
            "Set password_env",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "colour": "red"},
            "colour",
            "is not a known registry field",
            "Use one of: allow_plaintext_password, cluster_password_secret",
        ),
        ({"name": "ACR", "host": "myacr.azurecr.io"}, "name", "is not a valid name", "Use 1-63 lowercase"),
        ({"host": "myacr.azurecr.io"}, "name", "is not a valid name", "Use 1-63 lowercase"),
        ({"name": "acr"}, "host", "is missing", "Set host, e.g. docker.io or myacr.azurecr.io."),
        ({"name": "acr", "host": ""}, "host", "is missing", "Set host"),
        ({"name": "acr", "host": 5}, "host", "is missing", "Set host"),
        (
            {"name": "acr", "host": "myacr.azurecr.io/team"},
            "host",
            "is not a registry host",
            "Give the host (and port) only, e.g. myacr.azurecr.io or 127.0.0.1:5000.",
        ),
        ({"name": "acr", "host": "myregistry"}, "host", "is not a registry host", "Give the host (and port) only"),
        ({"name": "acr", "host": "my_acr.io"}, "host", "has an invalid registry host", "Use host[:port]/path"),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "password_env": "acr-password", "username": "u"},
            "password_env",
            "is not a secret variable the catalog may name: only variables starting with DCS_SECRET_ can be",
            "Put the secret in a variable named DCS_SECRET_<NAME>",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "password_env": "DCS_SECRET_ACR_PASSWORD"},
            "username",
            "is missing",
            "A password needs a username.",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "cluster_password_secret": "hunter2"},
            "cluster_password_secret",
            "is not a Databricks secret reference",
            "Use {{secrets/<scope>/<key>}}",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "cluster_password_secret": "{{secrets/scope}}"},
            "cluster_password_secret",
            "is not a Databricks secret reference",
            "databricks secrets put-secret",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "cluster_password_secret": "{{secrets/a b/c}}"},
            "cluster_password_secret",
            "is not a Databricks secret reference",
            "Use {{secrets/<scope>/<key>}}",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "cluster_password_secret": "{{secrets/a/b}}\n"},
            "cluster_password_secret",
            "is not a Databricks secret reference",
            "Use {{secrets/<scope>/<key>}}",
        ),
        (
            {"name": "acr", "host": "myacr.azurecr.io", "allow_plaintext_password": "yes"},
            "allow_plaintext_password",
            "is not true or false",
            "Use true or false.",
        ),
    ],
)
def test_registry_rejections_name_field_value_and_fix(data: dict[str, Any], field: str, reason: str, fix: str) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        registry_from_dict(data, "registry[0].")
    matching = [p for p in problems_of(caught.value) if p.field == f"registry[0].{field}"]
    assert matching, [p.message for p in problems_of(caught.value)]
    problem = matching[0]
    assert problem.reason.startswith(reason)
    assert fix in problem.fix
    assert "hunter2" not in str(caught.value)


def test_registry_password_field_is_refused_without_echoing_the_secret() -> None:
    with pytest.raises(InvalidInput) as caught:
        registry_from_dict({"name": "acr", "host": "myacr.azurecr.io", "username": "u", "password": "s3cr3t-Pa55word"})
    assert caught.value.field == "password"
    assert caught.value.value == "***"
    assert "s3cr3t-Pa55word" not in str(caught.value)
    assert "s3cr3t-Pa55word" not in repr(caught.value.__dict__)


@pytest.mark.parametrize("secret", ["{{secrets/dcs/acr}}", "{{secrets/my.scope/key_1}}", "{{secrets/a-b/c-d}}"])
def test_secret_references_accepted(secret: str) -> None:
    spec = registry_from_dict({"name": "acr", "host": "myacr.azurecr.io", "cluster_password_secret": secret})
    assert spec.cluster_password_secret == secret


# ---------------------------------------------------------------- registry_for

REGISTRIES = [
    RegistrySpec(name="hub", host="index.docker.io", username="bob", password_env="DCS_SECRET_HUB_TOKEN"),
    RegistrySpec(name="acr", host="myacr.azurecr.io", username="sp", password_env="DCS_SECRET_ACR_PASSWORD"),
    RegistrySpec(name="local", host="127.0.0.1:5000", username="ci", password_env="DCS_SECRET_LOCAL_PASSWORD"),
]


@pytest.mark.parametrize(
    ("repository", "registry", "expected"),
    [
        ("team/app", None, "hub"),
        ("docker.io/team/app", None, "hub"),
        ("registry-1.docker.io/team/app", None, "hub"),
        ("index.docker.io/team/app", None, "hub"),
        ("myacr.azurecr.io/team/app", None, "acr"),
        ("MyAcr.azurecr.io/team/app", None, "acr"),
        ("127.0.0.1:5000/team/app", None, "local"),
        ("127.0.0.1:5001/team/app", None, None),
        ("ghcr.io/team/app", None, None),
        ("ghcr.io/team/app", "acr", "acr"),  # named explicitly wins over the host
        ("myacr.azurecr.io/team/app", "local", "local"),
        ("myacr.azurecr.io/team/app", "missing", None),
    ],
)
def test_registry_for_by_name_and_by_host(repository: str, registry: str | None, expected: str | None) -> None:
    spec = image_from_dict(MINIMAL | {"repository": repository} | ({"registry": registry} if registry else {}))
    found = registry_for(spec, REGISTRIES)
    assert (found.name if found else None) == expected


# ---------------------------------------------------------------- TOML files

HAND_WRITTEN = textwrap.dedent("""\
    # Our team's images. Reviewed in pull requests.

    [[image]]
    name = "team-pandas"
    base = "databricksruntime/standard:15.4-LTS"
    repository = "myacr.azurecr.io/team/pandas"
    registry = "acr"
    pip = ["requests[socks,security]>=2.31", "pandas>=2, <3", "numpy==1.26.*"]
    apt = ["libgomp1", "curl=7.81.0-1ubuntu1.16"]
    tag = "stable"
    immutable_tag = "{tag}-{date}-{spec}"
    schedule = "0  3 * * 1"
    notify_channel = "#data-platform"
    owner = "U012AB3CD"
    description = "Pandas with \\"quotes\\", 'single', # hash, ünïcode ✓"

    [image.env]
    TZ = "UTC"
    LANG = "C.UTF-8"

    [[image]]
    name = "r-minimal"
    base = "databricksruntime/minimal:15.4-LTS"
    repository = "team/r-minimal"
    apt = ["r-base-core"]

    [[registry]]
    name = "acr"
    host = "myacr.azurecr.io"
    username = "00000000-sp-id"
    password_env = "DCS_SECRET_ACR_PASSWORD"
    cluster_password_secret = "{{secrets/dcs/acr-password}}"

    [[registry]]
    name = "hub"
    host = "docker.io"
    """)


def by_name(catalog: Catalog) -> tuple[dict[str, ImageSpec], dict[str, RegistrySpec]]:
    return {s.name: s for s in catalog.images}, {r.name: r for r in catalog.registries}


def test_hand_written_file_survives_import_export_import_unchanged() -> None:
    first = parse_catalog(HAND_WRITTEN)
    assert len(first.images) == 2 and len(first.registries) == 2
    second = parse_catalog(dump_catalog(first))
    assert by_name(second) == by_name(first)
    pandas = by_name(second)[0]["team-pandas"]
    assert pandas.env == (("TZ", "UTC"), ("LANG", "C.UTF-8"))
    assert pandas.description == "Pandas with \"quotes\", 'single', # hash, ünïcode ✓"
    assert pandas.pip == ("requests[security,socks]>=2.31", "pandas<3,>=2", "numpy==1.26.*")


@pytest.mark.parametrize(
    "catalog",
    [
        Catalog(),
        Catalog(images=(image_from_dict(MINIMAL),)),
        Catalog(registries=(registry_from_dict(ACR),)),
        Catalog(
            images=(image_from_dict(FULL), image_from_dict(MINIMAL | {"name": "aaa-first"})),
            registries=(registry_from_dict(ACR), registry_from_dict({"name": "hub", "host": "docker.io"})),
        ),
        parse_catalog(HAND_WRITTEN),
    ],
    ids=["empty", "one-image", "one-registry", "full", "hand-written"],
)
def test_export_import_export_is_byte_identical(catalog: Catalog) -> None:
    exported = dump_catalog(catalog)
    again = dump_catalog(parse_catalog(exported))
    assert again == exported
    assert exported.startswith("# dcs-bot catalog: images and registries.")
    assert by_name(parse_catalog(exported)) == by_name(catalog)


def test_export_is_sorted_by_name_and_leaves_defaults_out() -> None:
    text = dump_catalog(
        Catalog(images=(image_from_dict(MINIMAL | {"name": "zeta"}), image_from_dict(MINIMAL | {"name": "alpha"})))
    )
    assert text.index('name = "alpha"') < text.index('name = "zeta"')
    assert "immutable_tag" not in text and "tag =" not in text and "schedule" not in text
    assert [s.name for s in parse_catalog(text).images] == ["alpha", "zeta"]


def test_export_never_contains_a_password_value() -> None:
    text = dump_catalog(parse_catalog(HAND_WRITTEN))
    assert 'password_env = "DCS_SECRET_ACR_PASSWORD"' in text
    assert "\npassword =" not in text and " password =" not in text


def test_parse_catalog_reports_every_problem_with_its_entry() -> None:
    text = textwrap.dedent("""\
        [[registry]]
        name = "acr"
        host = "myacr.azurecr.io"
        password = "hunter2-secret"

        [[image]]
        name = "team-pandas"
        base = "databricksruntime/minimal:15.4-LTS"
        repository = "myacr.azurecr.io/team/pandas"
        pip = ["pandas==2.2.2", "rm -rf /"]
        schedule = "daily"

        [[image]]
        name = "ok-image"
        base = "databricksruntime/standard:15.4-LTS"
        repository = "team/ok"
        registry = "nowhere"

        [[image]]
        base = "databricksruntime/standard:15.4-LTS"
        repository = "team/anon"

        [extra]
        x = 1
        """)
    with pytest.raises(InvalidInputs) as caught:
        parse_catalog(text, "catalog.toml")
    found = {(p.field, p.reason.split(" (")[0]) for p in caught.value.problems}
    assert found == {
        ("catalog.toml: [extra]", "is not a known section"),
        ("registry[0].password", "would store a secret in the catalog"),
        ("image[team-pandas].pip", "is not a valid PEP 508 requirement"),
        ("image[team-pandas].pip", "cannot be installed: databricksruntime/minimal:15.4-LTS has no Python"),
        ("image[team-pandas].schedule", "is not a five-field cron expression"),
        ("image[ok-image].registry", "is not defined in this file"),
        ("image[2].name", "is not a valid name"),
    }
    message = str(caught.value)
    assert message.startswith("7 problem(s):")
    assert "hunter2-secret" not in message
    assert "Add a [[registry]] with that name or remove the field." in message


@pytest.mark.parametrize(
    ("text", "field", "value", "reason"),
    [
        (
            '[[image]]\nname = "a"\nbase = "ubuntu"\nrepository = "t/a"\n'
            '[[image]]\nname = "a"\nbase = "ubuntu"\nrepository = "t/b"\n',
            "image.name",
            "a",
            "is defined twice",
        ),
        (
            '[[registry]]\nname = "r"\nhost = "docker.io"\n[[registry]]\nname = "r"\nhost = "ghcr.io"\n',
            "registry.name",
            "r",
            "is defined twice",
        ),
        (
            '[[image]]\nname = "a"\nbase = "ubuntu"\nrepository = "t/a"\nregistry = "r"\n',
            "image[a].registry",
            "r",
            "is not defined in this file",
        ),
        ("[images]\n", "catalog.toml: [images]", "images", "is not a known section"),
    ],
)
def test_parse_catalog_single_problems(text: str, field: str, value: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_catalog(text, "catalog.toml")
    assert caught.value.field == field
    assert caught.value.value == value
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "text",
    ['[[image]\nname = "a"', 'name = "unterminated', "[[image]]\npip = [1,", '[[image]]\nname = "a"\nname = "b"\n'],
)
def test_parse_catalog_toml_syntax_error_names_the_file_and_position(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_catalog(text, "team.toml")
    assert caught.value.field == "team.toml"
    assert caught.value.reason.startswith("is not valid TOML (")
    assert "(at line " in caught.value.reason or "(at end of document)" in caught.value.reason
    assert caught.value.fix == "Fix the TOML syntax at that position."
