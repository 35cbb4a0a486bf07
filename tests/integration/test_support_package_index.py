"""The private package index: real pip in the real base installs test-made wheels over HTTPS with basic auth."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile

import pytest
import requests

from tests.support.containers import run_script
from tests.support.wheels import make_wheel

PIP = "/databricks/python3/bin/pip"
QUIET = "--disable-pip-version-check --no-input --no-cache-dir --progress-bar off"


def pip_install(index, args: str, *, cert: bool = True, url: str | None = None) -> str:
    cert_option = "--cert /ca.pem" if cert else ""
    return f"{PIP} install {QUIET} --index-url {url or index.index_url_with_credentials} {cert_option} {args}"


# --- wheels -------------------------------------------------------------------------------------------


def test_make_wheel_is_deterministic_and_its_record_matches_its_files(tmp_path):
    first = make_wheel(tmp_path / "a", "Team_Utils", "1.2.0", requires=["six>=1"], module="team_utils")
    second = make_wheel(tmp_path / "b", "Team_Utils", "1.2.0", requires=["six>=1"], module="team_utils")

    assert first.name == "team_utils-1.2.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        record = wheel.read("team_utils-1.2.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
        metadata = wheel.read("team_utils-1.2.0.dist-info/METADATA").decode()
    assert "Name: Team_Utils\nVersion: 1.2.0\n" in metadata
    assert "Requires-Dist: six>=1\n" in metadata
    assert len(record) == 5  # module, METADATA, WHEEL, top_level.txt, RECORD


# --- the index on the host ----------------------------------------------------------------------------


def test_the_index_needs_credentials_and_links_wheels_with_their_sha256(package_index, test_ca):
    wheel = package_index.make_wheel("dcs-demo", "1.0")

    anonymous = requests.get(package_index.index_url, verify=test_ca.pem_path, timeout=10)
    page = requests.get(
        f"{package_index.index_url}dcs-demo/", auth=package_index.auth, verify=test_ca.pem_path, timeout=10
    )

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="dcs-test"'
    assert page.status_code == 200
    assert f'href="/files/{wheel.filename}#sha256={wheel.sha256}"' in page.text
    assert [(r.path, r.authorized, r.username) for r in package_index.requests] == [
        ("/simple/", False, None),
        ("/simple/dcs-demo/", True, package_index.auth[0]),
    ]


def test_without_the_ca_a_client_fails_verification(package_index):
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(package_index.index_url, timeout=10)
    assert package_index.requests == []


# --- pip in the real base -----------------------------------------------------------------------------


def test_pip_installs_a_wheel_from_the_index_and_it_imports(engine, python_base, package_index, test_ca):
    package_index.make_wheel("dcs-greeting", "2.1.0", module="greeting", source="def hello():\n    return 'hi'\n")

    result = run_script(
        engine,
        python_base,
        pip_install(package_index, "dcs-greeting==2.1.0")
        + " && /databricks/python3/bin/python -c 'import greeting; print(greeting.__version__, greeting.hello())'",
        files={"/ca.pem": test_ca.pem},
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "2.1.0 hi"
    fetched = [r for r in package_index.requests if r.path.startswith("/files/")]
    assert [r.path for r in fetched] == ["/files/dcs_greeting-2.1.0-py3-none-any.whl"]
    assert all(r.authorized and r.username == package_index.auth[0] for r in package_index.requests)
    assert all(r.user_agent.startswith("pip/") for r in package_index.requests)


def test_pip_without_the_ca_fails_with_a_certificate_error(engine, python_base, package_index):
    package_index.make_wheel("dcs-greeting", "2.1.0")

    result = run_script(engine, python_base, pip_install(package_index, "--retries 0 dcs-greeting", cert=False))

    assert result.exit_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stdout + result.stderr
    assert package_index.requests == []  # no request got past the handshake
    assert package_index.tls_failures


def test_pip_with_a_wrong_password_gets_401_but_only_says_no_matching_distribution(
    engine, python_base, package_index, test_ca
):
    package_index.make_wheel("dcs-greeting", "2.1.0")
    wrong = package_index.index_url_with_credentials.replace(package_index.auth[1], "wrong")

    result = run_script(
        engine, python_base, pip_install(package_index, "dcs-greeting", url=wrong), files={"/ca.pem": test_ca.pem}
    )

    assert result.exit_code == 1
    # pip 23 mentions the 401 only with -v: a build error hint cannot rely on seeing it
    assert "No matching distribution found for dcs-greeting" in result.stderr
    assert not re.search(r"(?<![:\d])401(?!\d)", result.stdout + result.stderr)  # a port may hold "401"
    assert {(r.status, r.username) for r in package_index.requests} == {(401, package_index.auth[0])}


def test_dependencies_resolve_and_require_hashes_checks_the_links(engine, python_base, package_index, test_ca):
    base = package_index.make_wheel("dcs-lib", "0.3.0")
    app = package_index.make_wheel("dcs-app", "1.0.0", requires=["dcs-lib>=0.3"])
    good = f"dcs-app==1.0.0 --hash=sha256:{app.sha256}\ndcs-lib==0.3.0 --hash=sha256:{base.sha256}\n"
    bad = good.replace(base.sha256, "0" * 64)

    ok = run_script(
        engine,
        python_base,
        pip_install(package_index, "--require-hashes -r /good.txt") + " && /databricks/python3/bin/pip list",
        files={"/ca.pem": test_ca.pem, "/good.txt": good},
    )
    tampered = run_script(
        engine,
        python_base,
        pip_install(package_index, "--require-hashes -r /bad.txt"),
        files={"/ca.pem": test_ca.pem, "/bad.txt": bad},
    )

    assert ok.exit_code == 0, ok.stderr
    assert re.search(r"^dcs-app\s+1\.0\.0$", ok.stdout, re.M) and re.search(r"^dcs-lib\s+0\.3\.0$", ok.stdout, re.M)
    assert tampered.exit_code == 1
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in tampered.stderr


def test_pip_through_the_proxy_opens_a_connect_tunnel_to_the_index(
    engine, python_base, package_index, forward_proxy, test_ca
):
    package_index.make_wheel("dcs-greeting", "2.1.0")

    result = run_script(
        engine,
        python_base,
        pip_install(package_index, f"--proxy {forward_proxy.url} dcs-greeting"),
        files={"/ca.pem": test_ca.pem},
    )

    assert result.exit_code == 0, result.stderr
    assert forward_proxy.connects() == [f"127.0.0.1:{package_index.port}"] * len(forward_proxy.connects())
    assert forward_proxy.connects()
    assert [r.proxy_authorization for r in forward_proxy.requests] == [None] * len(forward_proxy.requests)
    assert "/files/dcs_greeting-2.1.0-py3-none-any.whl" in package_index.paths()


def test_a_docker_build_on_host_network_reaches_the_index_and_the_proxy_args_stay_out_of_history(
    engine, python_base, package_index, forward_proxy, test_ca, build_image
):
    package_index.make_wheel("dcs-greeting", "2.1.0", module="greeting")
    dockerfile = (
        f"FROM {python_base}\n"
        "COPY ca.pem /tmp/ca.pem\n"
        f"RUN {pip_install(package_index, 'dcs-greeting').replace('/ca.pem', '/tmp/ca.pem')} && rm /tmp/ca.pem\n"
    )

    ref = build_image(
        "index-build", dockerfile, context={"ca.pem": test_ca.pem}, buildargs={"HTTPS_PROXY": forward_proxy.url}
    )

    assert forward_proxy.connects()  # pip used the predefined HTTPS_PROXY build argument
    history = " ".join(str(step.get("CreatedBy")) for step in engine.images.get(ref).history())
    assert forward_proxy.url not in history
    assert package_index.auth[1] in history  # a URL with credentials in RUN is in the history: keep it out
    imported = run_script(engine, ref, "/databricks/python3/bin/python -c 'import greeting; print(greeting.NAME)'")
    assert imported.stdout == "dcs-greeting\n"
