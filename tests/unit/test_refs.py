"""Docker image references: the distribution/reference grammar, Docker Hub normalisation, rejections."""

from __future__ import annotations

import pytest

from bot.domain.refs import (
    ImageRef,
    is_sha256_digest,
    is_valid_tag,
    parse_ref,
    parse_repository,
    same_registry_host,
)
from bot.errors import InvalidInput

DIGEST = "sha256:" + "0123456789abcdef" * 4
REF_FIX = "Use host[:port]/path[:tag][@sha256:<64 hex>]"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "shown"),
    [
        # Docker Hub: no domain, single segment gets library/
        ("ubuntu", "docker.io", "library/ubuntu", None, None, "ubuntu"),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "ubuntu:22.04"),
        (
            "databricksruntime/standard:15.4-LTS",
            "docker.io",
            "databricksruntime/standard",
            "15.4-LTS",
            None,
            "databricksruntime/standard:15.4-LTS",
        ),
        # Docker Hub aliases all normalise to docker.io
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None, "ubuntu"),
        ("docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "ubuntu:22.04"),
        ("index.docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, "ubuntu:22.04"),
        ("registry-1.docker.io/team/app", "docker.io", "team/app", None, None, "team/app"),
        ("registry.hub.docker.com/team/app:1", "docker.io", "team/app", "1", None, "team/app:1"),
        # other registries: domain kept, no library/ prefix
        (
            "myacr.azurecr.io/databricksruntime/standard:15.4-LTS",
            "myacr.azurecr.io",
            "databricksruntime/standard",
            "15.4-LTS",
            None,
            "myacr.azurecr.io/databricksruntime/standard:15.4-LTS",
        ),
        ("ghcr.io/org/team/app:v1.2.3", "ghcr.io", "org/team/app", "v1.2.3", None, "ghcr.io/org/team/app:v1.2.3"),
        ("quay.io/app", "quay.io", "app", None, None, "quay.io/app"),
        # localhost and ports
        ("localhost/app", "localhost", "app", None, None, "localhost/app"),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None, "localhost:5000/app:1"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", None, None, "127.0.0.1:5000/team/app"),
        ("registry:5000/app", "registry:5000", "app", None, None, "registry:5000/app"),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None, "[::1]:5000/app"),
        ("host.io:65535/app", "host.io:65535", "app", None, None, "host.io:65535/app"),
        ("host.io:1/app", "host.io:1", "app", None, None, "host.io:1/app"),
        # a host:port with no path is a Docker Hub name with a tag, as in Docker itself
        ("localhost:5000", "docker.io", "library/localhost", "5000", None, "localhost:5000"),
        # digests, with and without a tag
        (f"ubuntu@{DIGEST}", "docker.io", "library/ubuntu", None, DIGEST, f"ubuntu@{DIGEST}"),
        (f"ubuntu:22.04@{DIGEST}", "docker.io", "library/ubuntu", "22.04", DIGEST, f"ubuntu:22.04@{DIGEST}"),
        (f"localhost:5000/app:1@{DIGEST}", "localhost:5000", "app", "1", DIGEST, f"localhost:5000/app:1@{DIGEST}"),
        # separators inside components
        ("team/my_app", "docker.io", "team/my_app", None, None, "team/my_app"),
        ("team/my__app", "docker.io", "team/my__app", None, None, "team/my__app"),
        ("team/my---app", "docker.io", "team/my---app", None, None, "team/my---app"),
        ("team/my.app", "docker.io", "team/my.app", None, None, "team/my.app"),
        # tags: uppercase, underscore first, 128 characters
        ("app:Latest_1", "docker.io", "library/app", "Latest_1", None, "app:Latest_1"),
        ("app:_x", "docker.io", "library/app", "_x", None, "app:_x"),
        ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None, "app:" + "t" * 128),
    ],
)
def test_parse_ref_accepts_and_normalises(
    text: str, domain: str, path: str, tag: str | None, digest: str | None, shown: str
) -> None:
    ref = parse_ref(text)
    assert ref == ImageRef(domain, path, tag, digest)
    assert str(ref) == shown
    # what users write parses back to the same reference
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        (" ubuntu", "contains whitespace or control characters"),
        ("ubuntu ", "contains whitespace or control characters"),
        ("ubu ntu", "contains whitespace or control characters"),
        ("ubuntu\n", "contains whitespace or control characters"),
        ("ubuntu\nRUN id", "contains whitespace or control characters"),
        ("ubuntu\t", "contains whitespace or control characters"),
        ("ubuntu\x00", "contains whitespace or control characters"),
        ("ubuntu\u2028", "contains whitespace or control characters"),
        ("Ubuntu", "has an invalid repository path"),
        ("team/App", "has an invalid repository path"),
        ("TEAM/app", "has an invalid repository path"),
        ("-app", "has an invalid repository path"),
        ("app-", "has an invalid repository path"),
        ("team//app", "has an invalid repository path"),
        ("team/app/", "has an invalid repository path"),
        ("/app", "has an invalid repository path"),
        ("team/my..app", "has an invalid repository path"),
        ("team/app$(id)", "has an invalid repository path"),
        ("a:b:c", "has an invalid repository path"),
        ("myacr.azurecr.io/", "has an invalid repository path"),
        ("ubuntu:", "has an invalid tag ''"),
        ("ubuntu:.hidden", "has an invalid tag '.hidden'"),
        ("ubuntu:-dash", "has an invalid tag '-dash'"),
        ("ubuntu:a/b", "has an invalid registry host 'ubuntu:a'"),
        ("ubuntu:" + "t" * 129, "has an invalid tag"),
        ("ubuntu:café", "has an invalid tag 'café'"),
        ("ubuntu:;id", "has an invalid tag ';id'"),
        ("my_host.io/app", "has an invalid registry host 'my_host.io'"),
        ("-host.io/app", "has an invalid registry host '-host.io'"),
        ("host.io:port/app", "has an invalid registry host 'host.io:port'"),
        ("host.io:65536/app", "has a registry port outside 1-65535 (65536)"),
        ("localhost:99999/app:1", "has a registry port outside 1-65535 (99999)"),
        ("[::1]:70000/app", "has a registry port outside 1-65535 (70000)"),
        ("host.io:0/app", "has a registry port outside 1-65535 (0)"),
        ("host.io:00000/app", "has a registry port outside 1-65535 (00000)"),
        ("host.io:123456/app", "has an invalid registry host 'host.io:123456'"),
        ("ubuntu@", "has an invalid digest ''"),
        ("ubuntu@sha256:abc", "has an invalid digest 'sha256:abc'"),
        ("ubuntu@sha256", "has an invalid digest 'sha256'"),
        ("ubuntu@" + "a" * 64, "has an invalid digest"),
        ("ubuntu@sha256:" + "A" * 64, "has a sha256 digest that is not 64 lowercase hex digits"),
        ("ubuntu@sha256:" + "a" * 65, "has a sha256 digest that is not 64 lowercase hex digits"),
        ("ubuntu@sha256:" + "g" * 64, "has an invalid digest"),
        ("a" * 256, "has a repository name longer than 255 characters"),
        ("team/" + "a" * 251, "has a repository name longer than 255 characters"),
        ("x" * 513, "is longer than 512 characters"),
    ],
)
def test_parse_ref_rejections_name_field_value_and_fix(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref(text, "base")
    error = caught.value
    assert error.field == "base"
    assert error.value == text
    assert error.reason.startswith(reason)
    assert str(error).startswith("base: ")
    assert REF_FIX in str(error)
    assert repr(text)[:60] in str(error)


@pytest.mark.parametrize("value", [None, 5, b"ubuntu"])
def test_parse_ref_rejects_values_that_are_not_text(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref(value, "base")  # type: ignore[arg-type]
    assert caught.value.field == "base"
    assert caught.value.value == value


def test_name_of_exactly_255_characters_is_accepted() -> None:
    assert parse_ref("team/" + "a" * 250).path == "team/" + "a" * 250


@pytest.mark.parametrize(
    ("text", "api_host", "on_hub", "repository", "reference"),
    [
        ("ubuntu", "registry-1.docker.io", True, "ubuntu", "latest"),
        ("library/ubuntu:22.04", "registry-1.docker.io", True, "ubuntu", "22.04"),
        ("team/app:1", "registry-1.docker.io", True, "team/app", "1"),
        (f"team/app:1@{DIGEST}", "registry-1.docker.io", True, "team/app", DIGEST),
        ("myacr.azurecr.io/team/app:2", "myacr.azurecr.io", False, "myacr.azurecr.io/team/app", "2"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", False, "127.0.0.1:5000/app", "latest"),
    ],
)
def test_ref_properties(text: str, api_host: str, on_hub: bool, repository: str, reference: str) -> None:
    ref = parse_ref(text)
    assert ref.api_host == api_host
    assert ref.on_docker_hub is on_hub
    assert ref.repository == repository
    assert ref.reference == reference


def test_with_tag_drops_the_digest_and_with_digest_keeps_the_tag() -> None:
    ref = parse_ref(f"team/app:1@{DIGEST}")
    assert str(ref.with_tag("2")) == "team/app:2"
    assert str(parse_ref("team/app:1").with_digest(DIGEST)) == f"team/app:1@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("myacr.azurecr.io/team/app", True),
        ("team/app", True),
        ("team/app:1", False),
        (f"team/app@{DIGEST}", False),
    ],
)
def test_parse_repository_refuses_tags_and_digests(text: str, ok: bool) -> None:
    if ok:
        assert parse_repository(text).tag is None
        return
    with pytest.raises(InvalidInput) as caught:
        parse_repository(text)
    assert caught.value.field == "repository"
    assert caught.value.value == text
    assert "must not carry a tag or digest" in str(caught.value)
    assert "tags come from the tag scheme" in str(caught.value)


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("15.4-LTS", True),
        ("_x", True),
        ("a" * 128, True),
        ("", False),
        (".x", False),
        ("-x", False),
        ("a" * 129, False),
        ("a b", False),
        ("a:b", False),
        ("latest\n", False),
        ("café", False),
        ("١٥", False),
    ],
)
def test_is_valid_tag(tag: str, ok: bool) -> None:
    assert is_valid_tag(tag) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (DIGEST, True),
        (DIGEST.upper(), False),
        (DIGEST[:-1], False),
        (DIGEST + "\n", False),
        ("sha512:" + "a" * 64, False),
    ],
)
def test_is_sha256_digest(text: str, ok: bool) -> None:
    assert is_sha256_digest(text) is ok


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("docker.io", "index.docker.io", True),
        ("registry-1.docker.io", "docker.io", True),
        ("Docker.IO", "registry.hub.docker.com", True),
        ("myacr.azurecr.io", "MYACR.azurecr.io", True),
        ("myacr.azurecr.io", "docker.io", False),
        ("127.0.0.1:5000", "127.0.0.1:5001", False),
    ],
)
def test_same_registry_host(a: str, b: str, same: bool) -> None:
    assert same_registry_host(a, b) is same
