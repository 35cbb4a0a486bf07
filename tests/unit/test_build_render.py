"""Rendering with build settings: what reaches which stage, the password only in the install stage's pip.conf,
proxies only as predefined build arguments, a CA in the image only when asked; CA files give only certificates;
failed builds explained in the catalog's words."""

from __future__ import annotations

import pytest

from bot.domain.build_errors import explain_failure
from bot.domain.build_settings import BuildSettings, certificates_only
from bot.domain.catalog import image_from_dict
from bot.domain.dockerfile import INSTALLED_CA, LABEL_INSTALL_STAGE, pip_conf, render_build
from bot.errors import InvalidInput

DIGEST = "sha256:" + "e" * 64
SPEC = image_from_dict(
    {
        "name": "team",
        "base": "databricksruntime/standard:15.4-LTS",
        "repository": "127.0.0.1:5000/team",
        "pip": ["pandas==2.2.2"],
        "apt": ["curl"],
    }
)
SETTINGS = BuildSettings(
    pip_index_url="https://pypi.corp.example/simple/",
    pip_extra_index_urls=("https://extra.corp.example/simple/",),
    pip_username="svc@corp",
    pip_password_env="DCS_SECRET_PIP",
    ca_bundle="/etc/ssl/corp.pem",
    https_proxy="http://proxy.corp:3128",
    no_proxy="localhost,.corp.example",
    network="host",
    apt_mirror="https://mirror.corp.example",
)
PASSWORD = "s3cr:t/p@ss"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def final_stage(dockerfile: str) -> str:
    return dockerfile.split("\nFROM ")[-1]


def test_settings_reach_only_the_install_stage_and_the_engine() -> None:
    plan = render_build(SPEC, DIGEST, SETTINGS, password=PASSWORD, ca_pem=CA, stage_id="build-7-ab")
    conf = plan.context["dcs-install/pip.conf"].decode()
    assert "index-url = https://svc%40corp:s3cr%3At%2Fp%40ss@pypi.corp.example/simple/" in conf
    assert "extra-index-url =\n    https://extra.corp.example/simple/" in conf
    assert "cert = /dcs-install/ca-bundle.pem" in conf
    assert plan.context["dcs-install/ca.pem"] == CA
    # nothing of the settings is in the Dockerfile text, except the apt mirror's URL (no credential can be in it)
    for value in (PASSWORD, "svc@corp", "pypi.corp.example", "proxy.corp", "BEGIN CERTIFICATE", "DCS_SECRET_PIP"):
        assert value not in plan.dockerfile
    assert plan.buildargs == {
        "https_proxy": "http://proxy.corp:3128",
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "no_proxy": "localhost,.corp.example",
        "NO_PROXY": "localhost,.corp.example",
    }
    assert plan.network == "host"
    # the stage that holds the password is labelled for removal after the build
    assert plan.install_stage == "build-7-ab"
    assert f'LABEL {LABEL_INSTALL_STAGE}="build-7-ab"' in plan.dockerfile
    # the final stage: no ARG, no COPY from the context, no CA
    final = final_stage(plan.dockerfile)
    assert "ARG" not in final and "dcs-install/" not in final.replace("--from=dcs-install /dcs-ship/", "")
    assert INSTALLED_CA not in plan.dockerfile and "dcs-ca/" not in plan.dockerfile


def test_without_a_password_the_install_stage_may_stay_in_the_cache() -> None:
    plan = render_build(SPEC, DIGEST, BuildSettings(pip_index_url="https://pypi.corp.example/simple/"))
    assert plan.install_stage is None
    assert f'LABEL {LABEL_INSTALL_STAGE}="shared"' in plan.dockerfile
    assert "@" not in plan.context["dcs-install/pip.conf"].decode()
    # a password without a user is never written either
    plan = render_build(SPEC, DIGEST, BuildSettings(pip_index_url="https://pypi.corp.example/simple/"), password="x")
    assert "x@" not in plan.context["dcs-install/pip.conf"].decode()


def test_install_ca_puts_the_ca_in_the_image_on_request() -> None:
    settings = BuildSettings(ca_bundle="/etc/ssl/corp.pem", install_ca=True)
    plan = render_build(SPEC, DIGEST, settings, ca_pem=CA)
    final = final_stage(plan.dockerfile)
    assert f'COPY dcs-ca/dcs-build-ca.crt {INSTALLED_CA}\nRUN ["update-ca-certificates"]' in final
    assert final.index("update-ca-certificates") < final.index("apt-get")  # apt can use it
    assert plan.context["dcs-ca/dcs-build-ca.crt"] == CA


def test_the_apt_mirror_is_used_for_the_step_and_the_sources_are_put_back() -> None:
    plan = render_build(SPEC, DIGEST, BuildSettings(apt_mirror="https://mirror.corp.example/artifactory"))
    run = final_stage(plan.dockerfile).split("\nCOPY ")[0]
    assert "sed -i -E 's#https?://[^/[:space:]]+/#https://mirror.corp.example/artifactory/#g'" in run
    assert run.index("cp -p") < run.index("apt-get update") < run.index('mv "$f.dcs-orig" "$f"')


def test_trusted_hosts_only_when_asked() -> None:
    assert "trusted-host" not in pip_conf(SETTINGS, None)
    conf = pip_conf(BuildSettings(pip_trusted_hosts=("legacy.corp:8080",)), None)
    assert "trusted-host =\n    legacy.corp:8080" in conf


def test_a_ca_file_gives_only_its_certificates() -> None:
    pem = b"subject=CN corp\n" + CA + b"\n" + CA.replace(b"MIIB", b"MIIC")
    assert certificates_only(pem, "ca_bundle", "/x.pem") == CA + CA.replace(b"MIIB", b"MIIC")
    with pytest.raises(InvalidInput) as caught:
        certificates_only(CA + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "ca_bundle", "/k")
    assert caught.value.reason.startswith("holds more than certificates")
    with pytest.raises(InvalidInput) as caught:
        certificates_only(b"root:x:0:0:root:/root:/bin/bash\n", "ca_bundle", "/etc/passwd")
    assert caught.value.reason == "holds no PEM certificate"


@pytest.mark.parametrize(
    ("log", "starts", "mentions"),
    [
        (
            ["WARNING: Retrying ... SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] x'))"],
            "pip could not verify the package index's TLS certificate",
            ["ca_bundle", "DCS_PIP_CA_BUNDLE", "Corporate networks"],
        ),
        (
            ["ERROR: Could not find a version that satisfies the requirement pandsa==2.2.2 (from versions: none)",
             "ERROR: No matching distribution found for pandsa==2.2.2"],
            "pip: 'pandsa==2.2.2' was not found (No matching distribution found for pandsa==2.2.2).",
            ["Did you mean 'pandas'?"],
        ),
        (
            ["WARNING: Retrying after connection broken by 'ProxyError('Cannot connect to proxy.')'",
             "ERROR: No matching distribution found for numpy"],
            "pip: 'numpy' was not found",
            ["could not be reached", "https_proxy"],
        ),
        (
            ["E: Unable to locate package libgomp"],
            "apt: 'libgomp' is not a package of the base's apt sources (Unable to locate package libgomp).",
            ["Did you mean 'libgomp1'?", "apt_mirror"],
        ),
        (["Temporary failure in name resolution"], "The build could not reach", ["DCS_BUILD_HTTPS_PROXY"]),
        (["Step 3/7 : RUN x", "exit code 2"], None, []),
    ],
)  # fmt: skip
def test_failures_are_explained_in_the_catalogs_words(log: list[str], starts: str | None, mentions: list[str]) -> None:
    hint = explain_failure(log, pip=["pandsa==2.2.2", "numpy"], apt=["libgomp"], known=["pandas", "libgomp1"])
    if starts is None:
        assert hint is None
        return
    assert hint is not None and hint.startswith(starts), hint
    for text in mentions:
        assert text in hint
