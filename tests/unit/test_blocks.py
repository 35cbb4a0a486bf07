"""Block Kit builders: what a user sees, always within Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.catalog import image_from_dict
from bot.domain.inventory import PackageInventory
from bot.errors import InvalidInput, InvalidInputs
from bot.store import Build, ImageStatus, PushRecord
from handlers import blocks as bk
from handlers.views import FIELD_BLOCKS, form_to_image, image_add_modal, inline_errors

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stamp(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build(**fields) -> Build:
    base = {
        "id": 12,
        "image": "team-pandas",
        "status": "succeeded",
        "requester": "U1",
        "push_requested": True,
        "started_at": stamp(timedelta(minutes=3, seconds=5)),
        "finished_at": stamp(timedelta()),
        "base_ref": "databricksruntime/standard:15.4-LTS",
        "tags": ("latest-20260301-b12", "latest"),
        "pushed_digest": "sha256:" + "ab" * 32,
        "doctor": (
            {"name": "bash", "status": "pass", "detail": "/bin/bash", "fix": ""},
            {"name": "acl", "status": "warn", "detail": "setfacl not found", "fix": "apt-get install acl"},
        ),
    }
    return Build(**{**base, **fields})


def within_limits(content: dict, blocks_limit: int = bk.MESSAGE_BLOCKS) -> None:
    assert len(content["text"]) <= bk.TEXT_LIMIT
    assert len(content["blocks"]) <= blocks_limit
    for block in content["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= bk.SECTION_LIMIT
        for element in block.get("elements", []):
            assert len(element.get("text", "") if isinstance(element.get("text"), str) else "") <= bk.SECTION_LIMIT


def all_text(content: dict) -> str:
    return json.dumps(content["blocks"], ensure_ascii=False)


@pytest.mark.parametrize(
    ("fraction", "bar"),
    [
        (0, "░" * 20 + "   0%"),
        (0.5, "█" * 10 + "░" * 10 + "  50%"),
        (1, "█" * 20 + " 100%"),
        (1.7, "█" * 20 + " 100%"),
        (-1, "░" * 20 + "   0%"),
    ],
)
def test_progress_bar(fraction: float, bar: str) -> None:
    assert bk.progress_bar(fraction) == bar


@pytest.mark.parametrize(
    ("text", "limit", "keep", "out"),
    [("abcdef", 10, "head", "abcdef"), ("abcdef", 4, "head", "abc…"), ("abcdef", 4, "tail", "…def")],
)
def test_cut(text: str, limit: int, keep: str, out: str) -> None:
    assert bk.cut(text, limit, keep=keep) == out


def test_user_text_cannot_ping_or_link() -> None:
    assert bk.escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def test_progress_message_says_the_step_in_words_with_a_plain_bar() -> None:
    content = bk.build_progress(build(status="running"), "build", 3, 7, "Step 3/7 : RUN pip install pandas", 0.4)
    text = all_text(content)
    assert "step 3 of 7" in content["text"]
    assert "installing Python packages: pandas" in text
    assert "████████░░░░░░░░░░░░  40%" in text
    assert "`████" not in text and "Step 3/7" not in text  # no inline code (Slack draws it red), no echo


def test_progress_never_echoes_the_label_with_the_spec_hash() -> None:
    label = 'LABEL io.github.dcs-bot.image="x" io.github.dcs-bot.spec-hash="3154abcdef"'
    text = all_text(bk.build_progress(build(status="running"), "build", 5, 5, label, 0.7))
    assert "labelling the image" in text and "spec-hash" not in text and "3154abcdef" not in text


def test_success_message_is_short_with_details_behind_buttons() -> None:
    pushes = [
        PushRecord(1, 12, "local", "reg.example/team/pandas", "latest-20260301-b12", "sha256:" + "ab" * 32, True, None),
        PushRecord(2, 12, "local", "reg.example/team/pandas", "latest", "sha256:" + "ab" * 32, True, None),
    ]
    content = bk.build_result(build(), pushes)
    text = all_text(content)
    assert content["text"].startswith("Build and push #12 of *team-pandas* succeeded in 3 min 5 s")
    summary = content["blocks"][0]["text"]["text"]
    assert summary.count("\n") == 1  # two lines: the result, then image · digest · doctor
    assert "`reg.example/team/pandas:latest`" in summary and "`sha256:abababababab…`" in summary
    assert "doctor 2/2 ✓, 1 warning (acl)" in summary
    assert "sha256:" + "ab" * 32 not in text and "✅ bash" not in text  # the full digest and table: Details
    buttons = content["blocks"][1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Launch cluster", "Details", "Show log", "Log in thread"]
    assert bk.LaunchButton.decode(buttons[0]["value"]) == bk.LaunchButton("team-pandas", 12)
    assert buttons[1]["value"] == buttons[2]["value"] == "12"
    assert len(content["blocks"]) == 3


def test_details_have_the_doctor_table_tags_and_full_digest() -> None:
    pushes = [PushRecord(1, 12, "local", "reg.example/team/pandas", "latest", "sha256:" + "ab" * 32, True, None)]
    text = all_text(bk.build_detail(build(), NOW, None, pushes))
    assert "sha256:" + "ab" * 32 in text and "reg.example/team/pandas:latest` (verified)" in text
    assert "✅ bash" in text and "⚠️ acl" in text and "`latest-20260301-b12`" in text
    assert "/dcs log 12" in text and "BUILD_ID" not in text
    assert "Contains" not in text  # no inventory recorded


def test_details_show_what_the_build_contains() -> None:
    inventory = PackageInventory(
        {"bash": "5.1"}, {"pandas": "2.2.2"}, "3.11.11", "1.8.0_412", "Ubuntu 22.04.4 LTS", 2_100_000_000
    )
    text = all_text(bk.build_detail(build(), NOW, None, (), inventory))
    assert (
        "*Contains* Ubuntu 22.04.4 LTS, Python 3.11.11, Java 1.8.0_412, 1 OS packages, 1 Python packages, 2.1 GB"
        in text
    )


@pytest.mark.parametrize(
    ("rows", "summary"),
    [
        ((("a", "pass"), ("b", "pass")), "doctor 2/2 ✓"),
        ((("a", "pass"), ("b", "warn"), ("c", "warn")), "doctor 3/3 ✓, 2 warnings (b, c)"),
        ((("a", "fail"), ("b", "pass"), ("c", "skip")), "doctor 1/2 ✗, 1 failed (a), 1 skipped"),
    ],
)
def test_doctor_summary_in_one_line(rows, summary) -> None:
    assert bk.doctor_summary({"name": n, "status": s} for n, s in rows) == summary


PIP_STEP = 'Step 3/5 : RUN ["/databricks/python3/bin/pip", "install", "nope==1.0"]'


def test_failure_message_puts_the_cause_first_and_the_step_once_within_limits() -> None:
    log = (
        "\n".join(f"line {i} " + "x" * 400 for i in range(2000))
        + "\n\x1b[1;31mERROR: No matching distribution found for nope==1.0\x1b[0m"
        + "\nERROR: The command '/databricks/python3/bin/pip install nope==1.0' returned a non-zero code: 1"
    )
    doctor = tuple({"name": f"check{i}", "status": "fail", "detail": "d" * 200, "fix": ""} for i in range(60))
    failed = build(
        status="failed",
        pushed_digest=None,
        failed_step=PIP_STEP,
        error=f"Build failed at {PIP_STEP}: The command '/databricks/python3/bin/pip install nope==1.0' "
        "returned a non-zero code: 1",
        log_tail=log,
        doctor=doctor,
    )
    content = bk.build_result(failed)
    within_limits(content)
    reason = content["blocks"][1]["text"]["text"]
    assert reason.startswith("*Why* No matching distribution found for nope==1.0\n")
    assert (
        '*Failed at* step 3 of 5: RUN ["/databricks/python3/bin/pip", "install", "nope==1.0"] (exit code 1)' in reason
    )
    assert reason.count("RUN") == 1  # the step is said once
    text = all_text(content)
    assert "\x1b" not in text and "\\u001b" not in text
    assert "ERROR: No matching distribution found for nope" in text  # the end of the log survives the cut
    assert [b["text"]["text"] for b in content["blocks"][-2]["elements"]] == [
        "Details",
        "Show log",
        "Log in thread",
        "Retry",
    ]
    assert "Launch cluster" not in text


def test_a_failure_without_a_step_keeps_the_error_as_the_cause() -> None:
    failed = build(status="failed", pushed_digest=None, error="Push of x:latest failed: denied")
    assert "*Why* Push of x:latest failed: denied" in all_text(bk.build_result(failed))


def test_the_finished_note_mentions_the_requester() -> None:
    note = bk.build_finished_note(build())
    assert "<@U1>" in all_text(note) and "sha256:abababababab…" in all_text(note) and "doctor 2/2 ✓" in all_text(note)
    failed = bk.build_finished_note(
        build(status="failed", failed_step=PIP_STEP, log_tail="ERROR: No matching distribution found for nope==1.0")
    )
    assert "<@U1>" in all_text(failed) and "No matching distribution found for nope==1.0" in all_text(failed)
    assert "<@" not in all_text(bk.build_finished_note(build(requester="schedule")))


def test_up_to_date_names_the_build_and_its_digest() -> None:
    text = all_text(bk.up_to_date(build(), "`/dcs build team-pandas force`"))
    assert "already up to date (build #12, digest `sha256:abababababab…`)" in text
    assert "/dcs build team-pandas force" in text and "launch_cluster" in text


def test_log_message_keeps_the_last_lines() -> None:
    content = bk.build_log(build(log_tail="\n".join(f"line {i}" for i in range(500))))
    within_limits(content)
    text = all_text(content)
    assert "line 499" in text and "line 100\\n" not in text


def test_images_list_empty_says_how_to_begin() -> None:
    assert "/dcs image add" in bk.images_list([], NOW)["text"]


def test_images_list_of_a_large_catalog_fits_in_one_message() -> None:
    rows = [
        ImageStatus(
            f"img-{i}",
            "databricksruntime/standard:15.4-LTS",
            f"reg/team/img-{i}",
            None,
            build(id=i, image=f"img-{i}"),
            build(id=i, image=f"img-{i}"),
        )
        for i in range(80)
    ]
    content = bk.images_list(rows, NOW)
    within_limits(content)
    assert "more images not shown" in all_text(content)
    assert "img-0*" in all_text(content)


def test_image_line_shows_last_state_age_and_pushed_digest() -> None:
    row = ImageStatus(
        "team-pandas",
        "databricksruntime/standard:15.4-LTS",
        "reg/team/pandas",
        "0 3 * * 1",
        build(id=13, status="failed", finished_at=stamp(timedelta(hours=2))),
        build(),
    )
    line = bk.image_line(row, NOW)
    assert ":x: #13 failed 2 h ago" in line
    assert "pushed `sha256:abababababab…`" in line
    assert "rebuilds `0 3 * * 1`" in line


def test_never_built_image() -> None:
    assert "never built" in bk.image_line(ImageStatus("a", "b:1", "r/a", None, None, None), NOW)


def test_queued_message_says_where_it_stands() -> None:
    assert "queued (2nd in line)" in bk.build_queued(build(status="queued"), 2)["text"]


# ---------------------------------------------------------------- the "Add an image" modal
def test_modal_respects_slack_view_limits() -> None:
    view = image_add_modal("C1")
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= bk.VIEW_BLOCKS
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    input_blocks = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert set(FIELD_BLOCKS.values()) <= input_blocks  # every error lands on a block that exists


def state(**values) -> dict:
    out = {}
    for block, value in values.items():
        if block in ("flavour", "runtime"):
            out[block] = {"value": {"type": "static_select", "selected_option": {"value": value}}}
        elif block == "notify":
            out[block] = {"value": {"type": "channels_select", "selected_channel": value}}
        else:
            out[block] = {"value": {"type": "plain_text_input", "value": value}}
    return out


def test_form_builds_the_base_from_flavour_and_runtime() -> None:
    data = form_to_image(
        state(
            name="team-pandas",
            flavour="python",
            runtime="14.3",
            pip="pandas>=2,<3\nnumpy",
            repository="reg.example/team/pandas",
            notify="C0123",
        )
    )
    assert data["base"] == "databricksruntime/python:14.3-LTS"
    assert data["notify_channel"] == "C0123"
    from handlers.views import form_data

    assert image_from_dict(form_data(data)).pip == ("pandas<3,>=2", "numpy")  # kept whole, canonical


def test_a_full_base_overrides_the_pickers() -> None:
    data = form_to_image(
        state(
            name="x", flavour="python", runtime="14.3", base_custom="reg.example/m/standard:15.4-LTS", repository="r/x"
        )
    )
    assert data["base"] == "reg.example/m/standard:15.4-LTS"


@pytest.mark.parametrize(
    ("form", "custom", "blocks"),
    [
        ({"name": "Bad Name!", "base": "databricksruntime/standard:15.4-LTS", "repository": "r/x"}, False, {"name"}),
        (
            {"name": "x", "base": "databricksruntime/minimal:15.4-LTS", "repository": "r/x", "pip": ["pandas"]},
            False,
            {"pip"},
        ),
        (
            {"name": "x", "base": "databricksruntime/standard:15.4-LTS", "repository": "r/x", "schedule": "daily"},
            False,
            {"schedule"},
        ),
        ({"name": "x", "base": "not a ref!", "repository": "r/x"}, True, {"base_custom"}),
        ({"name": "x", "base": "databricksruntime/standard:15.4-LTS"}, False, {"repository"}),
        (
            {"name": "", "base": "databricksruntime/standard:15.4-LTS", "repository": "r/x", "schedule": "1 2 3"},
            False,
            {"name", "schedule"},
        ),
    ],
)
def test_inline_errors_land_on_the_field_that_is_wrong(form: dict, custom: bool, blocks: set[str]) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        image_from_dict(form)
    errors = inline_errors(caught.value, custom)
    assert set(errors) == blocks
    assert all(0 < len(message) <= 150 for message in errors.values())


def test_doctor_table_tells_how_to_fix_failures_and_warnings_only() -> None:
    table = bk.doctor_table(
        [
            {"name": "bash", "status": "pass", "detail": "/bin/bash", "fix": ""},
            {"name": "sudo", "status": "fail", "detail": "`sudo` not found on PATH", "fix": "apt-get install -y sudo"},
            {"name": "acl", "status": "warn", "detail": "setfacl not found", "fix": "apt-get install -y acl"},
            {"name": "python", "status": "skip", "detail": "base has no Python", "fix": "not shown"},
        ]
    )
    lines = table.strip("`\n").splitlines()
    assert lines[1].endswith("→ apt-get install -y sudo") and lines[2].endswith("→ apt-get install -y acl")
    assert "→" not in lines[0] and "not shown" not in table
