"""The release policy fields of a catalog entry (bot/domain/release.py): defaults, round trip, errors by field."""

from __future__ import annotations

import pytest

from bot.domain.catalog import Catalog, dump_catalog, image_from_dict, image_to_dict, parse_catalog
from bot.domain.release import ReleasePolicy, may_approve
from bot.errors import InvalidInput, InvalidInputs

BASE = {"name": "team-pandas", "base": "databricksruntime/standard:15.4-LTS", "repository": "myacr.azurecr.io/t/p"}


def test_the_default_is_promotion_by_the_doctor_and_is_not_written_out():
    spec = image_from_dict(BASE)
    assert spec.release == ReleasePolicy()
    assert spec.release.promote == "doctor" and not spec.release.needs_canary
    assert image_to_dict(spec) == BASE


def test_an_approval_policy_round_trips_through_the_catalog_file():
    fields = {
        "promote": "approval",
        "approvals": 2,
        "approvers": ["admins", "U0ALICE01"],
        "approval_hours": 24,
        "canary": True,
        "canary_snippet": "import pandas\nassert pandas.__version__",
    }
    spec = image_from_dict({**BASE, **fields})
    assert spec.release.needs_canary and spec.release.needs_approval
    text = dump_catalog(Catalog(images=(spec,)))
    assert parse_catalog(text).images[0] == spec
    assert "2 approval(s)" in spec.release.describe() and "24 h" in spec.release.describe()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"promote": "always"}, "promote", "is not a release policy"),
        ({"approvals": 0}, "approvals", "from 1 to 5"),
        ({"approvals": True}, "approvals", "from 1 to 5"),
        ({"approval_hours": 10000}, "approval_hours", "from 1 to 720"),
        ({"approvers": "admins"}, "approvers", "is not a list"),
        ({"approvers": ["alice"]}, "approvers", "Slack user id"),
        ({"promote": "approval", "approvers": ["U0ALICE01"]}, "approvers", "cannot approve their own build"),
        ({"canary": "yes"}, "canary", "true or false"),
        ({"canary_language": "sql"}, "canary_language", "python, r or scala"),
        ({"canary_snippet": "x\x00"}, "canary_snippet", "at most 4000"),
    ],
)
def test_bad_release_fields_are_named_with_the_value_and_a_fix(fields, field, words):
    with pytest.raises((InvalidInput, InvalidInputs)) as info:
        image_from_dict({**BASE, **fields})
    problems = info.value.problems if isinstance(info.value, InvalidInputs) else [info.value]
    assert [p.field for p in problems] == [field]
    assert words in problems[0].message and problems[0].fix


def test_only_approvers_approve_and_never_the_requester():
    policy = image_from_dict({**BASE, "promote": "approval", "approvers": ["admins", "U0ALICE01", "U0BOB0001"]}).release
    admins = frozenset({"U0ADMIN01"})
    assert may_approve(policy, "U0ALICE01", requester="U0BOB0001", admins=admins) == (True, "")
    assert may_approve(policy, "U0ADMIN01", requester="U0BOB0001", admins=admins) == (True, "")
    ok, why = may_approve(policy, "U0ALICE01", requester="U0ALICE01", admins=admins)
    assert not ok and "four eyes" in why
    ok, why = may_approve(policy, "U0ADMIN01", requester="U0ADMIN01", admins=admins)
    assert not ok
    ok, why = may_approve(policy, "U0OTHER01", requester="U0BOB0001", admins=admins)
    assert not ok and "<@U0ALICE01>" in why
