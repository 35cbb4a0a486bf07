"""When is an image due for a rebuild: a schedule, a builder's `/dcs rebuild NAME`, an admin's `force`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.catalog import image_from_dict
from bot.domain.rebuild import BaseCheck, decide
from bot.domain.records import Build

SPEC = image_from_dict({"name": "team-pandas", "base": "databricksruntime/standard:15.4-LTS", "repository": "r.io/t/p"})
NOW = datetime(2026, 3, 1, tzinfo=UTC)
OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64
GOOD = Build(1, "team-pandas", "succeeded", spec_hash="h", base_digest=OLD, pushed_digest="sha256:" + "9" * 64)
FAILED_SAME = Build(2, "team-pandas", "failed", spec_hash="h", base_digest=NEW)

CASES = [
    # (case, published, latest, base now, spec hash now, due for: schedule, a builder's request, force)
    ("never built", None, None, NEW, "h", (False, True, True)),
    ("unchanged", GOOD, GOOD, OLD, "h", (False, False, True)),
    ("base moved", GOOD, GOOD, NEW, "h", (True, True, True)),
    ("spec changed", GOOD, GOOD, OLD, "h2", (True, True, True)),
    ("moved, but these inputs already failed", GOOD, FAILED_SAME, NEW, "h", (False, True, True)),
]


@pytest.mark.parametrize(("case", "published", "latest", "digest", "spec_hash", "due"), CASES)
def test_who_rebuilds_what(case, published, latest, digest, spec_hash, due) -> None:
    check = BaseCheck("docker.io/databricksruntime/standard:15.4-LTS", digest, "2026-03-01T00:00:00.000000Z")
    answers = tuple(
        decide(
            SPEC,
            current_hash=spec_hash,
            published=published,
            latest=latest,
            check=check,
            now=NOW,
            max_age_days=None,
            by_hand=mode == "force",
            on_request=mode == "request",
        ).due
        for mode in ("schedule", "request", "force")
    )
    assert answers == due, case


def test_a_builder_hears_why_an_unchanged_image_was_not_rebuilt() -> None:
    check = BaseCheck("b", OLD, "2026-03-01T00:00:00.000000Z")
    decision = decide(
        SPEC, current_hash="h", published=GOOD, latest=GOOD, check=check, now=NOW, max_age_days=None, on_request=True
    )
    assert not decision.due and decision.note == "up to date"
