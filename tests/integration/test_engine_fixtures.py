"""The shared fixtures do what other tests rely on: bases run, are reproducible, push, registries guard."""

from __future__ import annotations

import uuid

import docker
import pytest
import requests

from tests.support.images import run_shell
from tests.support.namespace import local

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def test_a_base_runs_with_its_os_release_and_pip_stub(engine, make_base):
    image = make_base(local("databricksruntime/standard:15.4-LTS"))

    output = engine.containers.run(
        image,
        entrypoint=["/bin/sh"],
        command=[
            "-c",
            "cat /etc/os-release; /databricks/python3/bin/pip install x; cat /databricks/python3/pip-installs.log",
        ],
        remove=True,
    ).decode()

    assert "ID=ubuntu" in output
    assert 'VERSION_ID="22.04"' in output
    assert output.rstrip().endswith("install x")


def test_same_arguments_give_the_same_image_even_under_another_tag(engine, make_base):
    first = make_base("dcs-test/same:1", marker="same")

    assert make_base("dcs-test/same:1", marker="same") == first
    assert make_base("dcs-test/same-elsewhere:1", marker="same") == first


def test_another_marker_gives_another_image_under_the_same_tag(engine, make_base):
    ref = f"dcs-test/moving:{uuid.uuid4().hex[:12]}"  # the engine may be shared with other sessions
    old = make_base(ref, marker="old")
    new = make_base(ref, marker="new")

    assert new != old
    assert engine.images.get(ref).id == new
    assert make_base(ref, marker="old") == old
    assert engine.images.get(ref).id == old


def test_cmd_is_set_on_the_image(engine, make_base):
    image = make_base("dcs-test/with-cmd:1", cmd=["/bin/sh", "-c", "echo hello from cmd"])

    assert engine.images.get(image).attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "echo hello from cmd"]
    assert engine.containers.run(image, remove=True) == b"hello from cmd\n"


@pytest.mark.parametrize(
    ("options", "script", "exit_code", "expected"),
    [
        pytest.param({}, "bash -c 'echo via bash' && sudo -n id -u", 0, "via bash\n0\n", id="bash-and-sudo"),
        pytest.param({}, "java -version 2>&1 | head -1", 0, 'openjdk version "1.8.0_392"\n', id="java"),
        pytest.param({}, "/databricks/python3/bin/python3 --version", 0, "Python 3.11.0rc1\n", id="python"),
        pytest.param(
            {},
            "/databricks/python3/bin/python -m pip install a==1 && cat /databricks/python3/pip-installs.log",
            0,
            "install a==1\n",
            id="python-m-pip",
        ),
        pytest.param({}, "/databricks/python3/bin/pip install dcs-test-broken", 1, "", id="pip-broken"),
        pytest.param({}, "apt-get install -y --no-install-recommends curl dcs-test-missing", 100, "", id="apt-missing"),
        pytest.param(
            {},
            "apt-get update && apt-get install -y curl=7.81 git && ls /var/lib/dcs-apt && cat /var/log/dcs-apt.log",
            0,
            "curl\ngit\nupdate\ninstall -y curl=7.81 git\n",
            id="apt-install",
        ),
        pytest.param(
            {},
            "which ps ip setfacl getfacl sudo",
            0,
            "/bin/ps\n/bin/ip\n/usr/bin/setfacl\n/usr/bin/getfacl\n/usr/bin/sudo\n",
            id="tools-on-path",
        ),
        pytest.param(
            {"procps": False, "iproute2": False, "acl": False, "sudo": False, "java": False, "bash": False},
            "for t in ps ip setfacl sudo java bash; do which $t || echo no $t; done",
            0,
            "no ps\nno ip\nno setfacl\nno sudo\nno java\nno bash\n",
            id="tools-left-out",
        ),
        pytest.param(
            {"coreutils": False},
            "for t in ls cp mv mkdir chmod cat; do which $t || echo no $t; done",
            0,
            "no ls\nno cp\nno mv\nno mkdir\nno chmod\n/bin/cat\n",
            id="coreutils-left-out",
        ),
        pytest.param(
            {"python": "conda"},
            "test ! -e /databricks/python3/bin/python && "
            "/databricks/conda/envs/dcs-minimal/bin/pip install y && cat /databricks/conda/pip-installs.log",
            0,
            "install y\n",
            id="conda",
        ),
        pytest.param({"python": None}, "test -e /databricks; echo $?", 0, "1\n", id="no-python"),
        pytest.param(
            {"os_id": "alpine", "os_version": "3.19.1"},
            "grep -E '^(ID|VERSION_ID)=' /etc/os-release",
            0,
            "ID=alpine\nVERSION_ID=3.19.1\n",
            id="alpine",
        ),
        pytest.param(
            {"marker": "m-1"},
            "cat /etc/dcs-test-base; ls -ld /tmp | cut -c1-10",
            0,
            "m-1drwxrwxrwt\n",
            id="marker-and-tmp",
        ),
    ],
)
def test_base_variants_behave_as_documented(engine, make_base, options, script, exit_code, expected):
    image = make_base("dcs-test/variant:1", **options)

    result = run_shell(engine, image, script)

    assert result.exit_code == exit_code, result.stderr
    assert result.stdout == expected


def test_a_left_out_tool_cannot_be_run_as_a_command(engine, make_base):
    image = make_base("dcs-test/variant:1", procps=False)

    container = engine.containers.create(image, entrypoint=["ps"])
    try:
        with pytest.raises(docker.errors.APIError, match="executable file not found"):
            container.start()
    finally:
        container.remove(force=True)


def test_broken_and_missing_packages_fail_with_the_real_tools_messages(engine, make_base):
    image = make_base("dcs-test/variant:1")

    pip = run_shell(engine, image, "/databricks/python3/bin/pip install dcs-test-broken")
    apt = run_shell(engine, image, "apt-get install -y dcs-test-missing")

    assert pip.stderr == "ERROR: No matching distribution found for dcs-test-broken\n"
    assert apt.stderr == "E: Unable to locate package dcs-test-missing\n"


def test_push_base_returns_the_digest_the_registry_serves(make_base, push_base, registry):
    make_base("dcs-test/pushed:1", marker="push")

    digest = push_base("dcs-test/pushed:1", registry, "dcs-test/pushed", "v1")

    response = requests.head(
        f"http://{registry.host}/v2/dcs-test/pushed/manifests/v1",
        auth=(registry.username, registry.password),
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    assert response.status_code == 200
    assert digest.startswith("sha256:")
    assert response.headers["Docker-Content-Digest"] == digest


def test_the_registry_refuses_anonymous_requests(registry):
    response = requests.get(f"http://{registry.host}/v2/", timeout=10)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_a_throw_away_registry_can_go_down_and_come_back(registry_factory):
    extra = registry_factory()
    url = f"http://{extra.host}/v2/"
    assert requests.get(url, auth=(extra.username, extra.password), timeout=10).status_code == 200

    extra.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)

    extra.start()
    assert requests.get(url, auth=(extra.username, extra.password), timeout=10).status_code == 200
