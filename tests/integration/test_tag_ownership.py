"""The suite owns its tags: its bases live under `dcs-test-<run>/`, and the real Databricks names stay put.

The session-wide proof is the guard in tests/conftest.py (armed before the first test, checked after the
last one: a changed name fails the run). These tests show it is armed, that the namespace is read as the
Databricks base it imitates, and that the guard's check can fail.
"""

from __future__ import annotations

import docker
import pytest

from bot.domain.bases import classify_base
from bot.domain.refs import parse_ref
from tests.support.namespace import NAMESPACE, PROTECTED, TagGuard, local, remove_namespace


def test_a_namespaced_base_is_the_databricks_base_it_imitates() -> None:
    info = classify_base(parse_ref(local("databricksruntime/standard:15.4-LTS")))
    assert (info.flavour, info.runtime, info.lts, info.python) == ("standard", (15, 4), True, "venv")
    conda = classify_base(parse_ref(local("databricksruntime/standard:8.x")))
    assert (conda.runtime, conda.python) == ((8, None), "conda")
    assert classify_base(parse_ref(local("databricksruntime/minimal:15.4-LTS"))).python == "none"


def test_the_guard_watches_every_real_name_from_before_the_first_test(tag_guard: TagGuard) -> None:
    assert set(tag_guard.before) == set(PROTECTED)
    assert tag_guard.changed() == []  # so far, nothing the suite did moved them


def test_the_guard_notices_a_retagged_name(engine: docker.DockerClient, make_base) -> None:
    probe = local("guard-probe/standard:1")
    make_base(probe, marker="guard-probe-a")
    guard = TagGuard(engine, names=(probe,))
    guard.arm()
    assert guard.changed() == []
    make_base(probe, marker="guard-probe-b")  # a different image under the same name
    (problem,) = guard.changed()
    assert problem.startswith(f"{probe}: was ")


def test_namespace_cleanup_removes_only_its_own_tags(engine: docker.DockerClient, make_base) -> None:
    other = f"{NAMESPACE}-other/keep:1"  # a neighbour namespace (another run) with the same image
    image = make_base(local("cleanup-probe/standard:1"), marker="cleanup-probe")
    engine.api.tag(image, f"{NAMESPACE}-other/keep", "1")
    try:
        removed = remove_namespace(engine, f"{NAMESPACE}/cleanup-probe")
        assert removed == [local("cleanup-probe/standard:1")]
        assert engine.images.get(other).id == image  # still there, and the image with it
    finally:
        engine.images.remove(other)


@pytest.mark.parametrize("name", PROTECTED)
def test_the_suite_never_tags_a_real_databricks_name_itself(name: str) -> None:
    # Every base the tests make goes through local(): no test module names these bases bare anymore.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bare = f'make_base("{name}"'
    offenders = [str(p) for p in root.rglob("*.py") if bare in p.read_text()]
    assert offenders == []
