"""Fixtures shared by the integration tests that talk to fake Slack and fake Databricks."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import pytest

from tests.fakes.databricks import FakeDatabricks
from tests.fakes.slack import FakeSlack
from tests.support.images import push_image
from tests.support.launch_bot import new_slack
from tests.support.private_builds import MODULE, PACKAGE, PAYLOAD, VERSION
from tests.support.proxy import ForwardProxy
from tests.support.servers import PackageIndex


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """FakeSlack knowing the launch harness's users (admins, a builder, an outsider, one without email)."""
    with new_slack() as fake:
        yield fake


@pytest.fixture
def databricks() -> Iterator[FakeDatabricks]:
    """A workspace with Container Services on."""
    with FakeDatabricks() as fake:
        yield fake


# --- real builds on the real Python base (tests/support/private_builds.py) ----------------------------------


@pytest.fixture(scope="session")
def private_index(test_ca, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """The private HTTPS index (session CA, random basic-auth user) serving dcs-private-pkg 1.4.2."""
    user, password = f"svc-{secrets.token_hex(4)}", secrets.token_hex(16)
    index = PackageIndex(tmp_path_factory.mktemp("private-index"), ca=test_ca, auth=(user, password))
    index.make_wheel(PACKAGE, VERSION, module=MODULE, files={f"{MODULE}/payload.bin": os.urandom(PAYLOAD)})
    with index:
        yield index


@pytest.fixture(scope="session")
def build_proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="session")
def pushed_python_base(engine, python_base: str, registry) -> tuple[str, str]:
    """The real Python base in the test registry (builds resolve its digest there): (ref by tag, digest)."""
    repo = f"dcs-tests/python-base-{uuid.uuid4().hex[:8]}"
    digest = push_image(
        engine,
        python_base,
        host=registry.host,
        username=registry.username,
        password=registry.password,
        repo_path=repo,
        tag="3.11",
    )
    return f"{registry.host}/{repo}:3.11", digest
