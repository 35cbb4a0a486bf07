"""RegistryClient: digests by manifest HEAD with Bearer-token auth (Docker Hub) and Basic auth (local registry)."""

from __future__ import annotations

import pytest

from bot.clients.registry import RegistryClient
from bot.domain.credentials import Credentials
from bot.domain.refs import parse_ref
from bot.errors import ManifestNotFound, PullLimitReached, RegistryAuthError, RegistryUnreachable
from tests.fakes.dockerhub import FakeDockerHub
from tests.support.namespace import local


@pytest.fixture
def hub():
    with FakeDockerHub() as fake:
        yield fake


def test_docker_hub_name_resolves_through_the_bearer_challenge_with_head_only(hub):
    client = RegistryClient(dockerhub_registry_url=hub.url)
    head = client.head_manifest(parse_ref("databricksruntime/standard:15.4-LTS"))
    assert head.digest == hub.digest_of("databricksruntime/standard", "15.4-LTS")
    assert hub.counts().get("GET", 0) == 0  # no pull spent
    # The token is reused: a second HEAD does not go back to the token service.
    tokens = len(hub.token_requests())
    client.head_manifest(parse_ref("databricksruntime/standard:15.4-LTS"))
    assert len(hub.token_requests()) == tokens


def test_tokens_are_reused_within_their_lifetime_and_a_known_registry_costs_one_head_per_base(hub, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("bot.clients.registry.time.monotonic", lambda: clock[0])
    client = RegistryClient(dockerhub_registry_url=hub.url)
    bases = [parse_ref(f"databricksruntime/{flavour}:15.4-LTS") for flavour in ("standard", "python", "minimal")]
    client.head_manifest(bases[0])  # first contact: the 401 says where the token service is
    assert (hub.counts()["HEAD"], len(hub.token_requests())) == (2, 1)
    for ref in bases[1:]:  # other repositories: their token is fetched first, no 401 round trip
        client.head_manifest(ref)
    assert (hub.counts()["HEAD"], len(hub.token_requests())) == (4, 3)
    clock[0] += 200  # within the 300 s the token service granted: one HEAD each, no token request
    for ref in bases:
        client.head_manifest(ref)
    assert (hub.counts()["HEAD"], len(hub.token_requests())) == (7, 3)
    clock[0] += 100  # past expires_in (less the margin): renewed before the HEAD, still no 401
    client.head_manifest(bases[0])
    assert (hub.counts()["HEAD"], len(hub.token_requests())) == (8, 4)
    assert sum(1 for r in hub.requests if r.method == "HEAD" and not r.header("authorization")) == 1
    assert client.counts == {"HEAD": 8, "token": 4}


def test_a_moved_tag_gives_a_new_digest(hub):
    client = RegistryClient(dockerhub_registry_url=hub.url)
    ref = parse_ref("databricksruntime/standard:15.4-LTS")
    before = client.head_manifest(ref).digest
    hub.push_new_digest("databricksruntime/standard", "15.4-LTS")
    assert client.head_manifest(ref).digest != before


def test_private_repository_needs_credentials(hub):
    hub.add_manifest("team/private", "1.0", private=True)
    client = RegistryClient(dockerhub_registry_url=hub.url)
    with pytest.raises(RegistryAuthError):
        client.head_manifest(parse_ref("team/private:1.0"))
    head = RegistryClient(dockerhub_registry_url=hub.url).head_manifest(
        parse_ref("team/private:1.0"), Credentials("dcsbot", "dckr_pat_test")
    )
    assert head.digest == hub.digest_of("team/private", "1.0")


def test_wrong_docker_hub_token_is_a_credentials_error(hub):
    hub.add_manifest("team/private", "1.0", private=True)
    with pytest.raises(RegistryAuthError, match="rejected the credentials"):
        RegistryClient(dockerhub_registry_url=hub.url).head_manifest(
            parse_ref("team/private:1.0"), Credentials("dcsbot", "wrong")
        )


def test_unknown_tag_and_pull_limit_are_named(hub):
    client = RegistryClient(dockerhub_registry_url=hub.url)
    with pytest.raises(ManifestNotFound, match="does not exist"):
        client.head_manifest(parse_ref("databricksruntime/standard:0.0-LTS"))
    hub.set_exhausted()
    with pytest.raises(PullLimitReached, match="rate limit"):
        client.head_manifest(parse_ref("databricksruntime/standard:15.4-LTS"))


def test_basic_auth_registry(registry, make_base, push_base):
    make_base(local("databricksruntime/minimal:15.4-LTS"), python=None)
    pushed = push_base(local("databricksruntime/minimal:15.4-LTS"), registry, "mirror/minimal", "15.4-LTS")
    ref = parse_ref(f"{registry.host}/mirror/minimal:15.4-LTS")
    head = RegistryClient().head_manifest(ref, Credentials(registry.username, registry.password))
    assert head.digest == pushed
    with pytest.raises(RegistryAuthError):
        RegistryClient().head_manifest(ref, Credentials(registry.username, "nope"))
    with pytest.raises(RegistryAuthError, match="needs a username"):
        RegistryClient().head_manifest(ref)


def test_unreachable_registry_fails_fast():
    with pytest.raises(RegistryUnreachable):
        RegistryClient(timeout=2).head_manifest(parse_ref("127.0.0.1:9/nothing/here:1"))
