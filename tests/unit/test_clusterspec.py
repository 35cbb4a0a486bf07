"""Cluster specs: every DCS rule rejected with its field, the runtime/node pickers, the exact request body."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.catalog import RegistrySpec, image_from_dict, registry_from_dict, registry_to_dict
from bot.domain.clusterspec import (
    DRIVER_NFS_CONF,
    MAX_TAGS,
    TAG_DIGEST,
    TAG_IMAGE,
    TAG_LAUNCHED_BY,
    VOLUMES_CONF,
    ImageSource,
    LaunchContext,
    LaunchRequest,
    dcs_node_types,
    dcs_runtimes,
    init_script_entry,
    parse_launch_args,
    parse_runtime,
    plan_launch,
    preferred_runtime,
    runtime_problem,
)
from bot.errors import InvalidInput, InvalidInputs
from tests.fakes.databricks import NODE_TYPES, SPARK_VERSIONS

DIGEST = "sha256:" + "ab" * 32
ACR = RegistrySpec("acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PASSWORD", None, "{{secrets/dcs/acr}}")


def source(
    base: str = "databricksruntime/standard:15.4-LTS",
    repository: str = "myacr.azurecr.io/team/pandas",
    registry: RegistrySpec | None = ACR,
) -> ImageSource:
    spec = image_from_dict({"name": "team-pandas", "base": base, "repository": repository})
    return ImageSource(spec, 12, DIGEST, registry)


def ctx(email: str = "alice@example.com", password: str | None = None) -> LaunchContext:
    return LaunchContext(email, "U1", "req123", SPARK_VERSIONS, NODE_TYPES, plaintext_password=password)


def request(**changes: object) -> LaunchRequest:
    base = {"image": "team-pandas", "runtime": "15.4.x-scala2.12", "node_type": "m5d.large", "num_workers": 2}
    return LaunchRequest(**{**base, **changes})  # type: ignore[arg-type]


def problems(exc: pytest.ExceptionInfo) -> dict[str, InvalidInput]:
    found = exc.value.problems if isinstance(exc.value, InvalidInputs) else [exc.value]
    return {p.field: p for p in found}


# ---------------------------------------------------------------- the body


def test_exact_body_for_a_fixed_size_cluster() -> None:
    plan = plan_launch(request(init_scripts=("file:/databricks/init.sh",), tags=(("team", "data"),)), source(), ctx())
    assert plan.body == {
        "cluster_name": "dcs team-pandas (alice)",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "m5d.large",
        "num_workers": 2,
        "autotermination_minutes": 60,
        "data_security_mode": "SINGLE_USER",
        "single_user_name": "alice@example.com",
        "spark_conf": {VOLUMES_CONF: "true"},
        "custom_tags": {
            TAG_LAUNCHED_BY: "U1",
            TAG_IMAGE: "team-pandas",
            TAG_DIGEST: DIGEST,
            "dcs_build": "12",
            "dcs_request": "req123",
            "team": "data",
        },
        "init_scripts": [{"file": {"destination": "file:/databricks/init.sh"}}],
        "docker_image": {
            "url": f"myacr.azurecr.io/team/pandas@{DIGEST}",
            "basic_auth": {"username": "sp-id", "password": "{{secrets/dcs/acr}}"},
        },
    }
    assert plan.shown_body == plan.body  # a secret reference is safe to show
    assert (plan.pulls_at_start, plan.pulls_ceiling, plan.auth) == (3, 3, "secret")
    assert plan.warnings == ()


def test_body_round_trips_through_the_sdk_dataclass() -> None:
    from databricks.sdk.service.compute import ClusterSpec

    plan = plan_launch(request(min_workers=1, max_workers=4, num_workers=None), source(), ctx())
    assert ClusterSpec.from_dict(plan.body).as_dict() == plan.body
    assert plan.body["autoscale"] == {"min_workers": 1, "max_workers": 4}
    assert "num_workers" not in plan.body
    assert (plan.pulls_at_start, plan.pulls_ceiling) == (2, 5)


def test_public_image_gets_no_basic_auth() -> None:
    plan = plan_launch(request(), source(repository="team/pandas", registry=None), ctx())
    assert plan.body["docker_image"] == {"url": f"team/pandas@{DIGEST}"}
    assert plan.auth == "none"


def test_a_public_registry_pushed_with_credentials_launches_without_basic_auth_or_secret() -> None:
    hub = RegistrySpec("hub", "docker.io", "dcsteam", "DCS_SECRET_HUB_TOKEN", public=True)  # no cluster secret
    plan = plan_launch(request(), source(repository="dcsteam/pandas", registry=hub), ctx())
    assert plan.body["docker_image"] == {"url": f"docker.io/dcsteam/pandas@{DIGEST}"} or plan.body["docker_image"] == {
        "url": f"dcsteam/pandas@{DIGEST}"
    }
    assert "basic_auth" not in plan.shown_body["docker_image"] and plan.auth == "none"
    with pytest.raises(InvalidInput):  # the same registry, not public: it needs its cluster secret
        plan_launch(request(), source(repository="dcsteam/pandas", registry=replace(hub, public=False)), ctx())


def test_a_public_image_on_a_private_registry_launches_without_basic_auth() -> None:
    spec = image_from_dict({"name": "team-pandas", "base": "databricksruntime/standard:15.4-LTS",
                            "repository": "myacr.azurecr.io/team/pandas", "public": True})  # fmt: skip
    plan = plan_launch(request(), ImageSource(spec, 12, DIGEST, ACR), ctx())
    assert "basic_auth" not in plan.body["docker_image"]


def test_pin_tag_launches_the_immutable_tag_and_keeps_the_digest_in_the_tags() -> None:
    tagged = replace(ACR, pin="tag")
    image = ImageSource(source().spec, 12, DIGEST, tagged, "latest-20261202-b12")
    plan = plan_launch(request(), image, ctx())
    assert plan.body["docker_image"]["url"] == "myacr.azurecr.io/team/pandas:latest-20261202-b12"
    assert plan.body["docker_image"]["basic_auth"]["password"] == "{{secrets/dcs/acr}}"
    assert DIGEST in plan.body["custom_tags"].values()
    assert plan_launch(request(), replace(image, registry=ACR), ctx()).body["docker_image"]["url"].endswith(DIGEST)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("pin", "latest", "is not digest or tag"), ("public", "yes", "is not true or false")],
)
def test_public_and_pin_are_validated(field: str, value: str, words: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        registry_from_dict({"name": "hub", "host": "docker.io", field: value})
    assert exc.value.field == field and words in exc.value.reason


def test_public_and_pin_round_trip() -> None:
    spec = registry_from_dict({"name": "hub", "host": "docker.io", "public": True, "pin": "tag"})
    assert (spec.public, spec.pin) == (True, "tag")
    assert registry_from_dict(registry_to_dict(spec)) == spec
    assert "pin" not in registry_to_dict(registry_from_dict({"name": "hub", "host": "docker.io"}))


def test_plaintext_password_only_when_allowed_and_never_in_the_shown_body() -> None:
    reg = RegistrySpec("acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PASSWORD", allow_plaintext_password=True)
    plan = plan_launch(request(), source(registry=reg), ctx(password="hunter2-very-secret"))
    assert plan.body["docker_image"]["basic_auth"]["password"] == "hunter2-very-secret"
    assert "hunter2" not in repr(plan) and "hunter2" not in str(plan.shown_body)
    assert (
        plan.shown_body["docker_image"]["basic_auth"]["password"]
        == "<plaintext from $DCS_SECRET_ACR_PASSWORD, not shown>"
    )
    assert plan.auth == "plaintext"


def test_private_registry_without_cluster_secret_is_rejected() -> None:
    reg = RegistrySpec("acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PASSWORD")
    with pytest.raises(InvalidInput) as exc:
        plan_launch(request(), source(registry=reg), ctx(password="would-be-plaintext"))
    assert exc.value.field == "registry[acr].cluster_password_secret"
    assert "{{secrets/SCOPE/KEY}}" in exc.value.fix


@pytest.mark.parametrize(
    ("base", "runtime", "nfs_off"),
    [
        ("databricksruntime/minimal:14.3-LTS", "14.3.x-scala2.12", True),
        ("databricksruntime/rbase:13.3-LTS", "13.3.x-scala2.12", True),
        ("databricksruntime/standard:15.4-LTS", "15.4.x-scala2.12", False),
        ("databricksruntime/python:15.4-LTS", "15.4.x-scala2.12", False),
    ],
)
def test_images_without_a_venv_turn_driver_nfs_off(base: str, runtime: str, nfs_off: bool) -> None:
    plan = plan_launch(request(runtime=runtime), source(base=base), ctx())
    assert plan.body["spark_conf"][VOLUMES_CONF] == "true"
    assert (plan.body["spark_conf"].get(DRIVER_NFS_CONF) == "false") is nfs_off


def test_runtime_other_than_the_base_is_refused_naming_both_and_the_fix() -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_launch(request(runtime="16.4.x-scala2.12"), source(), ctx())
    problem = raised.value
    assert problem.field == "runtime" and problem.value == "16.4.x-scala2.12"
    assert "made for DBR 15.4, not 16.4" in problem.reason
    assert "Python 3.11" in problem.reason and "Python 3.12" in problem.reason
    assert "15.4.x-scala2.12" in problem.fix and "allow_runtime_mismatch=yes" in problem.fix


def test_an_admin_override_launches_the_mismatched_pair_with_a_warning() -> None:
    plan = plan_launch(replace(request(runtime="16.4.x-scala2.12"), allow_runtime_mismatch=True), source(), ctx())
    assert plan.body["spark_version"] == "16.4.x-scala2.12"
    assert any("overridden" in w and "15.4" in w and "16.4" in w for w in plan.warnings)


def test_the_base_s_own_runtime_and_other_scala_variants_are_not_a_mismatch() -> None:
    assert plan_launch(request(runtime="15.4.x-photon-scala2.12"), source(), ctx()).warnings == ()
    assert not plan_launch(
        request(runtime="17.3.x-scala2.13"), source(base="databricksruntime/standard:17.3-LTS"), ctx()
    ).warnings


def test_zero_workers_is_a_single_node_cluster() -> None:
    plan = plan_launch(request(num_workers=0), source(), ctx())
    assert plan.body["num_workers"] == 0
    assert plan.body["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    assert plan.body["custom_tags"]["ResourceClass"] == "SingleNode"
    assert (plan.pulls_at_start, plan.pulls_ceiling) == (1, 1)


# ---------------------------------------------------------------- every rule, with field and fix


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"runtime": "15.4.x-cpu-ml-scala2.12"}, "runtime", "Machine Learning"),
        ({"runtime": "15.4.x-gpu-ml-scala2.12"}, "runtime", "Machine Learning"),
        ({"runtime": "10.4.x-hls-scala2.12"}, "runtime", "Genomics"),
        ({"runtime": "apache-spark-2.4.x-scala2.11"}, "runtime", "Light"),
        ({"runtime": "16.4.x-aarch64-scala2.12"}, "runtime", "aarch64"),
        ({"runtime": "12.2.x-scala2.12"}, "runtime", "not offered"),
        ({"runtime": None}, "runtime", "missing"),
        ({"node_type": "m6gd.large"}, "node_type", "Graviton"),
        ({"node_type": "m4.large"}, "node_type", "deprecated"),
        ({"node_type": "g4dn.xlarge"}, "node_type", "GPU node type"),
        ({"node_type": "x9.huge"}, "node_type", "not a node type"),
        ({"driver_node_type": "m6gd.large"}, "driver_node_type", "Graviton"),
        ({"autotermination_minutes": 5}, "autotermination", "10..10000"),
        ({"init_scripts": ("dbfs:/init.sh",)}, "init_scripts", "end-of-life"),
        ({"init_scripts": ("ftp://x/init.sh",)}, "init_scripts", "not an init script location"),
        ({"init_scripts": ("s3://bucket/init.sh",)}, "init_scripts", "region"),
        ({"init_scripts": tuple(f"file:/s{i}.sh" for i in range(11))}, "init_scripts", "more than 10"),
        ({"spark_conf": ((VOLUMES_CONF, "false"),)}, f"spark_conf.{VOLUMES_CONF}", "override"),
        ({"tags": (("Creator", "me"),)}, "tags.Creator", "sets itself"),
        ({"tags": (("a/b", "x"),)}, "tags.a/b", "characters"),
        ({"tags": tuple((f"t{i}", "x") for i in range(MAX_TAGS))}, "tags", "limit is 45"),
    ],
)
def test_each_rule_names_field_reason_and_fix(changes: dict, field: str, words: str) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as exc:
        plan_launch(request(**changes), source(), ctx())
    found = problems(exc)
    assert field in found, found
    assert words in found[field].reason
    assert found[field].fix


def test_minimal_image_may_not_turn_driver_nfs_back_on() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_launch(
            request(runtime="14.3.x-scala2.12", spark_conf=((DRIVER_NFS_CONF, "true"),)),
            source(base="databricksruntime/minimal:14.3-LTS"),
            ctx(),
        )
    assert exc.value.field == f"spark_conf.{DRIVER_NFS_CONF}"


def test_launching_user_must_have_an_email_for_dedicated_mode() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_launch(request(), source(), ctx(email=""))
    assert exc.value.field == "user" and "users:read.email" in exc.value.fix


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(InvalidInputs) as exc:
        plan_launch(
            request(runtime="15.4.x-cpu-ml-scala2.12", node_type="m6gd.large", init_scripts=("dbfs:/x.sh",)),
            source(),
            ctx(),
        )
    assert set(problems(exc)) == {"runtime", "node_type", "init_scripts"}


def test_gpu_image_takes_gpu_nodes() -> None:
    gpu = source(base="databricksruntime/gpu-venv:cuda11.8")
    plan = plan_launch(request(runtime="14.3.x-scala2.12", node_type="g4dn.xlarge"), gpu, ctx())
    assert plan.body["node_type_id"] == "g4dn.xlarge"


@pytest.mark.parametrize(
    "base",
    [
        "nvidia/cuda:12.2.0-runtime-ubuntu22.04",
        "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04",
        "myacr.azurecr.io/mirror/nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04",
    ],
)
def test_an_own_cuda_base_is_a_gpu_image(base: str) -> None:
    plan = plan_launch(request(runtime="14.3.x-scala2.12", node_type="g4dn.xlarge"), source(base=base), ctx())
    assert plan.body["node_type_id"] == "g4dn.xlarge"
    assert [n.node_type_id for n in dcs_node_types(NODE_TYPES, source(base=base).spec.base_info.gpu)][
        0
    ] == "g4dn.xlarge"


@pytest.mark.parametrize("base", ["databricksruntime/standard:15.4-LTS", "myacr.azurecr.io/team/cuda-like:1"])
def test_a_gpu_node_type_with_a_non_gpu_image_stays_refused(base: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_launch(request(node_type="g4dn.xlarge"), source(base=base), ctx())
    assert raised.value.field == "node_type" and "GPU" in raised.value.reason + raised.value.fix


# ---------------------------------------------------------------- parsing key=value and shapes


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["runtime=15.4.x-scala2.12", "node_type=m5d.large"], {"num_workers": 1}),
        (["workers=0"], {"num_workers": 0}),
        (["min_workers=1", "max_workers=3"], {"num_workers": None, "min_workers": 1, "max_workers": 3}),
        (["autotermination=0"], {"autotermination_minutes": 0}),
        (["init_script=file:/a.sh,/Volumes/c/s/v/b.sh"], {"init_scripts": ("file:/a.sh", "/Volumes/c/s/v/b.sh")}),
        (
            ["spark.sql.shuffle.partitions=8", "tag.team=data"],
            {"spark_conf": (("spark.sql.shuffle.partitions", "8"),), "tags": (("team", "data"),)},
        ),
        (["node=m5d.large", "name=my cluster"], {"node_type": "m5d.large", "cluster_name": "my cluster"}),
    ],
)
def test_parse_launch_args(tokens: list[str], expected: dict) -> None:
    parsed = parse_launch_args("team-pandas", tokens)
    for key, value in expected.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize(
    ("tokens", "field"),
    [
        (["workers=two"], "workers"),
        (["workers=-1"], "workers"),
        (["workers=2", "min_workers=1", "max_workers=3"], "workers"),
        (["min_workers=1"], "max_workers"),
        (["min_workers=3", "max_workers=3"], "max_workers"),
        (["autotermination=forever"], "autotermination"),
        (["colour=blue"], "colour"),
        (["justaword"], "arguments"),
    ],
)
def test_parse_launch_args_rejects(tokens: list[str], field: str) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as exc:
        parse_launch_args("team-pandas", tokens)
    assert field in problems(exc)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("file:/databricks/init.sh", {"file": {"destination": "file:/databricks/init.sh"}}),
        ("/Workspace/Users/a@b.c/init.sh", {"workspace": {"destination": "/Workspace/Users/a@b.c/init.sh"}}),
        ("workspace:/cluster-init/x.sh", {"workspace": {"destination": "/cluster-init/x.sh"}}),
        ("/Volumes/main/default/scripts/x.sh", {"volumes": {"destination": "/Volumes/main/default/scripts/x.sh"}}),
        ("s3://bucket/x.sh?region=us-west-2", {"s3": {"destination": "s3://bucket/x.sh", "region": "us-west-2"}}),
        (
            "abfss://c@acct.dfs.core.windows.net/x.sh",
            {"abfss": {"destination": "abfss://c@acct.dfs.core.windows.net/x.sh"}},
        ),
        ("gs://bucket/x.sh", {"gcs": {"destination": "gs://bucket/x.sh"}}),
    ],
)
def test_init_script_locations(text: str, entry: dict) -> None:
    assert init_script_entry(text) == entry


# ---------------------------------------------------------------- pickers


def test_runtime_picker_keeps_only_dcs_runtimes_lts_first_scala213_included() -> None:
    keys = [r.key for r in dcs_runtimes(SPARK_VERSIONS)]
    assert keys[:2] == ["17.3.x-scala2.13", "17.3.x-photon-scala2.13"]
    assert "16.4.x-scala2.13" in keys and "18.0.x-scala2.13" in keys
    assert not [k for k in keys if "-ml-" in k or "-hls-" in k or "aarch64" in k or k.startswith("apache")]
    lts = [r.lts for r in dcs_runtimes(SPARK_VERSIONS)]
    assert lts == sorted(lts, reverse=True)  # every LTS runtime before any other


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("databricksruntime/standard:15.4-LTS", "15.4.x-scala2.12"),
        ("databricksruntime/standard:16.4-LTS", "16.4.x-scala2.12"),
        ("databricksruntime/standard:17.3-LTS", "17.3.x-scala2.13"),
        ("databricksruntime/minimal:14.3-LTS", "14.3.x-scala2.12"),
        ("myacr.azurecr.io/databricksruntime/python:13.3-LTS", "13.3.x-scala2.12"),
        ("ubuntu:22.04", "17.3.x-scala2.13"),  # an own base: the newest LTS
        ("databricksruntime/gpu-venv:cuda11.8", "14.3.x-scala2.12"),
    ],
)
def test_preselected_runtime_matches_the_base(base: str, expected: str) -> None:
    spec = image_from_dict({"name": "x", "base": base, "repository": "r/x"})
    assert preferred_runtime(dcs_runtimes(SPARK_VERSIONS), spec.base_info).key == expected


def test_node_picker() -> None:
    cpu = [n.node_type_id for n in dcs_node_types(NODE_TYPES, gpu_image=False)]
    gpu = [n.node_type_id for n in dcs_node_types(NODE_TYPES, gpu_image=True)]
    assert "m4.large" not in cpu and "m6gd.large" not in cpu and "g4dn.xlarge" not in cpu
    assert set(cpu) == {"m5d.large", "m5d.xlarge", "i3.xlarge", "r5d.large", "c5d.2xlarge"}
    assert set(gpu) == {"g4dn.xlarge", "g5.xlarge", "p3.2xlarge"}


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("17.3.x-scala2.13", True),
        ("15.4.x-photon-scala2.12", True),
        ("15.4.x-cpu-ml-scala2.12", False),
        ("13.3.x-gpu-ml-scala2.12", False),
        ("10.4.x-hls-scala2.12", False),
        ("16.4.x-aarch64-scala2.12", False),
        ("apache-spark-2.4.x-scala2.11", False),
        ("custom:foo", False),
    ],
)
def test_runtime_problem(key: str, ok: bool) -> None:
    assert (runtime_problem(parse_runtime(key)) is None) is ok
