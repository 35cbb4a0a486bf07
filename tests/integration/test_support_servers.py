"""The Maven repository, the static file server and the forward proxy, from the host and from containers."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.support.containers import run_script
from tests.support.proxy import ForwardProxy
from tests.support.servers import StaticServer

# Download a jar and its .sha256 in the base's own Python, compare, exit 0 only when they match.
FETCH_AND_VERIFY = """
import hashlib, ssl, sys, urllib.request
context = ssl.create_default_context(cafile="/ca.pem")
def get(url):
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        return response.read()
jar, published = get(sys.argv[1]), get(sys.argv[1] + ".sha256").decode().split()[0]
actual = hashlib.sha256(jar).hexdigest()
print("verified" if actual == published else f"checksum mismatch: {actual} != {published}")
sys.exit(actual != published)
"""


def fetch(url: str, ca) -> requests.Response:
    response = requests.get(url, verify=ca.pem_path, timeout=10)
    response.raise_for_status()
    return response


# --- Maven ------------------------------------------------------------------------------------------------


def test_maven_layout_with_checksums_and_metadata(maven_repo, test_ca):
    first = maven_repo.add_artifact("com.example.team:udfs:1.0.0")
    maven_repo.add_artifact("com.example.team:udfs:1.1.0")
    root = f"{maven_repo.url}/com/example/team/udfs"

    jar = fetch(f"{root}/1.0.0/udfs-1.0.0.jar", test_ca).content
    metadata = ET.fromstring(fetch(f"{root}/maven-metadata.xml", test_ca).content)  # noqa: S314 (our own server)

    assert jar == first.data and jar[:2] == b"PK"  # a zip, as jars are
    for kind in ("sha1", "sha256", "md5"):
        published = fetch(f"{root}/1.0.0/udfs-1.0.0.jar.{kind}", test_ca).text
        assert published == hashlib.new(kind, jar).hexdigest() == getattr(first, kind)
    assert "<artifactId>udfs</artifactId>" in fetch(f"{root}/1.0.0/udfs-1.0.0.pom", test_ca).text
    assert [v.text for v in metadata.iter("version")] == ["1.0.0", "1.1.0"]
    assert metadata.findtext("versioning/release") == "1.1.0"
    assert metadata.findtext("groupId") == "com.example.team"


def test_a_wrong_checksum_is_published_only_where_asked(maven_repo, test_ca):
    artifact = maven_repo.add_artifact("org.example:bad:2.0", wrong_checksums=("sha1",))

    sha1 = fetch(artifact.url + ".sha1", test_ca).text
    sha256 = fetch(artifact.url + ".sha256", test_ca).text

    assert sha1 != hashlib.sha1(artifact.data).hexdigest()
    assert sha256 == hashlib.sha256(artifact.data).hexdigest()


def test_a_container_verifies_a_good_jar_and_rejects_a_bad_checksum(engine, python_base, maven_repo, test_ca):
    good = maven_repo.add_artifact("com.example:good:1.0")
    bad = maven_repo.add_artifact("com.example:bad:1.0", wrong_checksums=("sha256",))

    results = [
        run_script(
            engine,
            python_base,
            f"/databricks/python3/bin/python /verify.py {artifact.url}",
            files={"/ca.pem": test_ca.pem, "/verify.py": FETCH_AND_VERIFY},
        )
        for artifact in (good, bad)
    ]

    assert (results[0].exit_code, results[0].stdout) == (0, "verified\n")
    assert results[1].exit_code == 1 and results[1].stdout.startswith("checksum mismatch: ")
    assert maven_repo.paths() == [good.path, good.path + ".sha256", bad.path, bad.path + ".sha256"]


def test_maven_repo_can_require_auth(maven_repo, test_ca):
    artifact = maven_repo.add_artifact("com.example:private:1.0")
    maven_repo.auth = ("reader", "s3cret")

    denied = requests.get(artifact.url, verify=test_ca.pem_path, timeout=10)
    allowed = requests.get(artifact.url, verify=test_ca.pem_path, auth=("reader", "s3cret"), timeout=10)

    assert (denied.status_code, allowed.status_code) == (401, 200)
    assert [r.username for r in maven_repo.requests] == [None, "reader"]


# --- static files -----------------------------------------------------------------------------------------


def test_curl_in_the_base_fetches_a_served_file_with_the_ca_and_matches_its_sha256(
    engine, python_base, file_server, test_ca
):
    served = file_server.serve("/team/config.json", b'{"retries": 3}\n')

    result = run_script(
        engine,
        python_base,
        f"curl -fsS --cacert /ca.pem {served.url} | sha256sum | cut -d' ' -f1; "
        f"curl -sS {served.url} >/dev/null 2>&1 || echo untrusted",
        files={"/ca.pem": test_ca.pem},
    )

    assert result.stdout == f"{served.sha256}\nuntrusted\n"
    assert served.url.startswith("https://127.0.0.1:")
    assert file_server.requests[0].user_agent.startswith("curl/")


def test_unknown_paths_are_404_and_recorded(file_server, test_ca):
    response = requests.get(f"{file_server.url}/nothing", verify=test_ca.pem_path, timeout=10)

    assert response.status_code == 404
    assert [(r.path, r.status) for r in file_server.requests] == [("/nothing", 404)]


# --- the forward proxy ------------------------------------------------------------------------------------


def test_plain_http_is_forwarded_and_https_is_tunnelled(forward_proxy, test_ca):
    with StaticServer() as plain, StaticServer(ca=test_ca) as tls:
        plain.add("/a", b"plain")
        tls.add("/b", b"tls")
        proxies = {"http": forward_proxy.url, "https": forward_proxy.url}

        first = requests.get(f"{plain.url}/a", proxies=proxies, timeout=10)
        second = requests.get(f"{tls.url}/b", proxies=proxies, verify=test_ca.pem_path, timeout=10)
        ports = plain.port, tls.port

    assert (first.text, second.text) == ("plain", "tls")
    assert [(r.method, r.target, r.path, r.allowed) for r in forward_proxy.requests] == [
        ("GET", f"127.0.0.1:{ports[0]}", "/a", True),
        ("CONNECT", f"127.0.0.1:{ports[1]}", "", True),
    ]


def test_the_proxy_refuses_hosts_outside_its_allow_list_without_connecting(forward_proxy):
    response = requests.get(
        "http://example.invalid/x", proxies={"http": forward_proxy.url}, timeout=10
    )  # refused before any lookup or connection

    assert response.status_code == 403
    assert [(r.target, r.allowed, r.status) for r in forward_proxy.requests] == [("example.invalid:80", False, 403)]


def test_the_proxy_can_require_credentials_and_records_what_came():
    with ForwardProxy(credentials=("proxyuser", "pw")) as proxy, StaticServer() as plain:
        plain.add("/a", b"ok")
        without = requests.get(f"{plain.url}/a", proxies={"http": proxy.url}, timeout=10)
        with_them = requests.get(f"{plain.url}/a", proxies={"http": proxy.url_with_credentials}, timeout=10)

    assert (without.status_code, with_them.status_code) == (407, 200)
    assert without.headers["Proxy-Authenticate"] == 'Basic realm="dcs-test-proxy"'
    recorded = [(r.status, r.proxy_authorization) for r in proxy.requests]
    assert recorded == [(407, None), (200, "Basic cHJveHl1c2VyOnB3")]


@pytest.mark.timeout(180)
def test_apt_in_the_base_goes_through_the_proxy_to_debians_mirror(engine, python_base):
    # bookworm-updates is small (a few hundred KB of lists), and deb.debian.org is a registry this machine reaches.
    with ForwardProxy(allow_hosts={"deb.debian.org"}) as proxy:
        result = run_script(
            engine,
            python_base,
            "echo 'deb http://deb.debian.org/debian bookworm-updates main' > /etc/apt/sources.list && "
            f"apt-get -o Acquire::http::Proxy={proxy.url} -o Acquire::Retries=2 update",
        )

    assert result.exit_code == 0, result.stdout + result.stderr
    fetched = [(r.method, r.target) for r in proxy.requests if r.status == 200]
    assert ("GET", "deb.debian.org:80") in fetched
    assert any(r.path.startswith("/debian/dists/bookworm-updates/") for r in proxy.requests)
