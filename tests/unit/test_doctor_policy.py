"""Waivers and the size budget of an image's `doctor` table: validation, the catalog round trip, applying them."""

from __future__ import annotations

import pytest

from bot.domain.bases import classify_base
from bot.domain.catalog import image_from_dict, image_to_dict, parse_catalog
from bot.domain.checks import FAIL, PASS, WAIVED, WARN, Check, DoctorReport
from bot.domain.doctor import evaluate
from bot.domain.doctor_policy import CHECK_NAMES, DoctorPolicy, apply_waivers, policy_from_dict
from bot.domain.image_checks import InitRun, init_scripts_check, size_check
from bot.domain.refs import parse_ref
from bot.errors import InvalidInput, InvalidInputs
from handlers.blocks import doctor_summary, doctor_table
from tests.unit.test_doctor import AMD64, probe

ENTRY = {"name": "team-debian", "base": "myacr.azurecr.io/base/debian:12", "repository": "myacr.azurecr.io/t/d"}


def test_a_waiver_round_trips_through_the_catalog():
    spec = image_from_dict({**ENTRY, "doctor": {"waive": {"os": "Debian approved by the platform team"}}})
    assert spec.doctor == DoctorPolicy(waive=(("os", "Debian approved by the platform team"),))
    assert image_to_dict(spec)["doctor"] == {"waive": {"os": "Debian approved by the platform team"}}
    assert image_from_dict(image_to_dict(spec)) == spec
    assert "doctor" not in image_to_dict(image_from_dict(ENTRY))


def test_the_toml_form_of_the_issue_parses():
    text = f'''
[[image]]
name = "{ENTRY["name"]}"
base = "{ENTRY["base"]}"
repository = "{ENTRY["repository"]}"
doctor.waive = {{ os = "Debian approved by the platform team" }}
doctor.size_budget_mb = 6000
'''
    spec = parse_catalog(text).images[0]
    assert spec.doctor.waive == (("os", "Debian approved by the platform team"),) and spec.doctor.size_budget_mb == 6000


@pytest.mark.parametrize(
    ("doctor", "field", "words"),
    [
        ({"waive": {"platform": "x"}}, "doctor.waive.platform", "cannot be waived"),
        ({"waive": {"colour": "x"}}, "doctor.waive.colour", "is not a doctor check"),
        ({"waive": {"os": ""}}, "doctor.waive.os", "is not a reason"),
        ({"waive": {"os": 3}}, "doctor.waive.os", "is not a reason"),
        ({"waive": {"os": "a\nb"}}, "doctor.waive.os", "is not a reason"),
        ({"waive": "os"}, "doctor.waive", "is not a table"),
        ({"size_budget_mb": "big"}, "doctor.size_budget_mb", "whole number"),
        ({"skip": True}, "doctor.skip", "is not a doctor setting"),
        ("os", "doctor", "is not a table"),
    ],
)
def test_bad_doctor_tables_name_the_field(doctor, field, words):
    with pytest.raises((InvalidInput, InvalidInputs)) as raised:
        image_from_dict({**ENTRY, "doctor": doctor})
    problem = raised.value if isinstance(raised.value, InvalidInput) else raised.value.problems[0]
    assert problem.field == field and words in problem.reason


def test_waived_rows_stop_blocking_and_keep_their_detail():
    report = DoctorReport(
        "x",
        (Check("os", WARN, "Debian 12", "Base on Ubuntu"), Check("sudo", FAIL, "no sudo", "apt-get install -y sudo")),
    )
    waived = apply_waivers(report, policy_from_dict({"waive": {"os": "approved", "sudo": "jobs only"}}))
    assert [(c.name, c.status, c.detail, c.waiver) for c in waived.checks] == [
        ("os", WAIVED, "Debian 12", "approved"),
        ("sudo", WAIVED, "no sudo", "jobs only"),
    ]
    assert waived.ok and waived.status == PASS and not report.ok
    assert waived.to_rows()[0]["waiver"] == "approved" and "waiver" not in report.to_rows()[0]


def test_a_waiver_of_a_passing_row_changes_nothing():
    report = DoctorReport("x", (Check("os", PASS, "Ubuntu 22.04"),))
    assert apply_waivers(report, policy_from_dict({"waive": {"os": "just in case"}})) == report


def test_every_row_the_doctor_makes_is_a_known_check_name():
    gpu = classify_base(parse_ref("nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"))
    standard = classify_base(parse_ref("databricksruntime/standard:15.4-LTS"))
    names = {
        c.name
        for base in (gpu, standard, None)
        for c in evaluate("x", probe(), AMD64, base, ("pandas",), init=InitRun([], ""), size_budget_mb=1).checks
    }
    names |= {c.name for c in evaluate("x", "", AMD64, None).checks}
    assert names <= set(CHECK_NAMES), names - set(CHECK_NAMES)
    assert {"gpu", "shell", "init_scripts", "size"} <= names


def test_the_build_message_shows_waived_rows_and_their_reason():
    rows = [
        {"name": "os", "status": "waived", "detail": "Debian 12", "fix": "Base on Ubuntu", "waiver": "approved"},
        {"name": "sudo", "status": "pass", "detail": "/usr/bin/sudo", "fix": ""},
    ]
    assert doctor_summary(rows) == "doctor 1/1 ✓, 1 waived (os)"
    assert "(waived: approved)" in doctor_table(rows) and "Base on Ubuntu" not in doctor_table(rows)


def test_init_script_output_and_size_budget_rows():
    run = InitRun(["/a.sh"], "dcs-init\tstart\t/a.sh\ndcs-init\tline\tboom\ndcs-init\tend\t2\t/a.sh\n", 9)
    assert init_scripts_check(run).detail == "/a.sh failed (exit code 2): boom"
    assert init_scripts_check(InitRun(["/a.sh"], None, 9)).detail == "/a.sh did not finish within 9 s"
    ok = "dcs-init\tstart\t/a.sh\ndcs-init\tend\t0\t/a.sh\ndcs-init\tdone\n"
    assert init_scripts_check(InitRun(["/a.sh"], ok)).status == PASS
    assert (
        init_scripts_check(InitRun(["/x.sh"], "dcs-init\tstart\t/x.sh\ndcs-init\tend\tmissing\t/x.sh\n")).status == FAIL
    )
    inspect = {"Size": 7_200_000_000, "RootFS": {"Layers": ["a"] * 14}}
    assert size_check(inspect, 6000).status == WARN and "7.2 GB in 14 layers" in size_check(inspect, 6000).detail
    assert size_check(inspect, 8000).status == PASS
