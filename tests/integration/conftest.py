"""Fixtures shared by the integration tests that talk to fake Slack and fake Databricks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.databricks import FakeDatabricks
from tests.fakes.slack import FakeSlack
from tests.support.launch_bot import new_slack


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
