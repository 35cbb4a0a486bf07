"""No secret reaches a host it does not belong to: token realms, redirects, plain HTTP, names that look local.

Two recording listeners stand for two hosts (127.0.0.1 is the registry, 127.0.0.2 someone else); every
Authorization header they receive is kept, so each test says exactly who saw which credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.clients.registry import RegistryClient
from bot.compose import build_services
from bot.config import load_config
from bot.domain.credentials import Credentials
from bot.domain.realms import check_token_realm, is_loopback_ip
from bot.domain.refs import parse_ref
from bot.errors import CredentialsRefused
from bot.ops.catalog import add_registry
from tests.fakes.http import RecordedRequest, Response
from tests.support.auth_recorder import AuthRecorder, basic_header, challenge, manifest, redirect, token

PASSWORD = "acr-Pa55-never-elsewhere"
CREDS = Credentials("sp", PASSWORD)
PATH = "/v2/team/app/manifests/1.0"


@pytest.fixture
def registry() -> Iterator[AuthRecorder]:
    with AuthRecorder("127.0.0.1") as server:
        yield server


@pytest.fixture
def other() -> Iterator[AuthRecorder]:
    with AuthRecorder("127.0.0.2") as server:
        yield server


def ref_on(server: AuthRecorder):
    return parse_ref(f"{server.host}/team/app:1.0")


def bearer_protected(realm: str) -> object:
    def answer(request: RecordedRequest) -> Response:
        return manifest() if request.header("authorization") == "Bearer tok-123" else challenge(realm)

    return answer


def test_credentials_go_to_the_registrys_own_token_service(registry: AuthRecorder, other: AuthRecorder) -> None:
    registry.route(PATH, bearer_protected(f"{registry.url}/token"))
    registry.route("/token", token())
    head = RegistryClient().head_manifest(ref_on(registry), CREDS)
    assert head.digest.startswith("sha256:")
    assert basic_header("sp", PASSWORD) in registry.authorizations()
    assert other.requests == []


def test_a_realm_on_another_host_gets_no_credentials(registry: AuthRecorder, other: AuthRecorder) -> None:
    """Before: the Basic credentials went to whatever realm the challenge named."""
    registry.route(PATH, bearer_protected(f"{other.url}/token"))
    other.route("/token", token())
    with pytest.raises(CredentialsRefused) as caught:
        RegistryClient().head_manifest(ref_on(registry), CREDS)
    message = caught.value.message
    assert other.host in message and "DCS_TOKEN_REALMS" in message and PASSWORD not in message
    assert other.requests == [] and not other.received(PASSWORD)


def test_a_realm_the_operator_allowed_for_that_registry_gets_them(registry: AuthRecorder, other: AuthRecorder) -> None:
    registry.route(PATH, bearer_protected(f"{other.url}/token"))
    other.route("/token", token())
    client = RegistryClient(token_realms={registry.host: [other.host]})
    assert client.head_manifest(ref_on(registry), CREDS).digest.startswith("sha256:")
    assert other.authorizations() == [basic_header("sp", PASSWORD)]
    # allowed for that registry only: another registry naming the same realm is still refused
    with AuthRecorder("127.0.0.3") as third:
        third.route(PATH, bearer_protected(f"{other.url}/token"))
        with pytest.raises(CredentialsRefused):
            client.head_manifest(ref_on(third), CREDS)
    assert len(other.authorizations()) == 1


def test_the_same_host_on_another_port_is_another_host(registry: AuthRecorder) -> None:
    with AuthRecorder("127.0.0.1") as side:
        registry.route(PATH, bearer_protected(f"{side.url}/token"))
        side.route("/token", token())
        with pytest.raises(CredentialsRefused):
            RegistryClient().head_manifest(ref_on(registry), CREDS)
        assert side.requests == []


def test_a_token_service_that_redirects_elsewhere_does_not_carry_the_credentials(
    registry: AuthRecorder, other: AuthRecorder
) -> None:
    registry.route(PATH, bearer_protected(f"{registry.url}/token"))
    registry.route("/token", redirect(f"{other.url}/token"))
    other.route("/token", token())
    RegistryClient().head_manifest(ref_on(registry), CREDS)
    assert len(other.requests) == 1  # the redirect was followed …
    assert other.authorizations() == [] and not other.received(PASSWORD)  # … without the credentials


def test_a_manifest_redirect_elsewhere_carries_neither_token_nor_password(
    registry: AuthRecorder, other: AuthRecorder
) -> None:
    def answer(request: RecordedRequest) -> Response:
        if request.header("authorization") == basic_header("sp", PASSWORD):
            return redirect(f"{other.url}{PATH}")
        return Response(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})

    registry.route(PATH, answer)
    other.route(PATH, manifest())
    RegistryClient().head_manifest(ref_on(registry), CREDS)
    assert len(other.requests) == 1
    assert other.authorizations() == [] and not other.received(PASSWORD)


@pytest.mark.parametrize(
    ("realm", "why"),
    [
        ("http://auth.example.com/token", "plain HTTP"),
        ("http://127.evil.example/token", "plain HTTP"),
        ("http://127.0.0.1.nip.io/token", "plain HTTP"),
        ("ftp://127.0.0.1/token", "not an http(s) URL"),
        ("https://auth.example.com/token", "neither the registry's own host"),
        ("https://myacr.azurecr.io.evil.example/oauth2/token", "neither the registry's own host"),
    ],
)
def test_realms_that_never_get_credentials(realm: str, why: str) -> None:
    with pytest.raises(CredentialsRefused, match=re.escape(why)):
        check_token_realm(realm, registry="myacr.azurecr.io", api_url="https://myacr.azurecr.io", extra={})


@pytest.mark.parametrize(
    ("registry", "api_url", "realm"),
    [
        # the real realms (Docker Hub: auth.docker.io; ACR: its own host's /oauth2/token) need no setting
        ("docker.io", "https://registry-1.docker.io", "https://auth.docker.io/token"),
        ("myacr.azurecr.io", "https://myacr.azurecr.io", "https://myacr.azurecr.io/oauth2/token"),
        ("ghcr.io", "https://ghcr.io", "https://ghcr.io/token"),
        ("myacr.azurecr.io", "https://myacr.azurecr.io", "https://MyAcr.azurecr.io:443/oauth2/token"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000/token"),
    ],
)
def test_realms_that_work_out_of_the_box(registry: str, api_url: str, realm: str) -> None:
    check_token_realm(realm, registry=registry, api_url=api_url, extra={})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3:80", True),
        ("[::1]:5000", True),
        ("127.evil.example", False),
        ("127.evil.example:5000", False),
        ("127.0.0.1.nip.io:5000", False),
        ("localhost:5000", False),
        ("10.0.0.1:5000", False),
        ("[fe80::1]:5000", False),
    ],
)
def test_plain_http_only_for_loopback_ip_literals(host: str, loopback: bool) -> None:
    assert is_loopback_ip(host) is loopback
    scheme = RegistryClient().base_url(parse_ref(f"{host}/team/app:1")).split("://")[0]
    assert scheme == ("http" if loopback else "https")


def test_a_catalog_entry_naming_the_bots_token_sends_it_nowhere(
    tmp_db: str, registry: AuthRecorder, other: AuthRecorder
) -> None:
    """The issue's first attack, end to end: the base check reads credentials through the services."""
    token_value = "dapi-the-workspace-admin-token"
    services = build_services(
        load_config({"DCS_DB": tmp_db, "DATABRICKS_TOKEN": token_value, "DCS_SECRET_ACR": PASSWORD})
    )
    registry.route(PATH, bearer_protected(f"{other.url}/token"))
    other.route("/token", token())
    with pytest.raises(Exception, match="DCS_SECRET_"):
        add_registry(
            services,
            {"name": "evil", "host": registry.host, "username": "x", "password_env": "DATABRICKS_TOKEN"},
            actor="ci",
        )
    add_registry(
        services,
        {"name": "acr", "host": registry.host, "username": "sp", "password_env": "DCS_SECRET_ACR"},
        actor="ci",
    )
    ref = ref_on(registry)
    with pytest.raises(CredentialsRefused):
        services.registry.head_manifest(ref, services.credentials_for_ref(ref))
    for server in (registry, other):
        assert not server.received(token_value)
    assert not other.received(PASSWORD)
