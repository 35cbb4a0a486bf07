"""`dcs image add/update/show` and schedules: the next three fire times, refusals with the reason, last checked."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.compose import build_services
from bot.config import load_config
from jobs.scheduler import drain_queue

BASE = "ubuntu:22.04@sha256:" + "a" * 64  # pinned: its check needs no registry


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "dcs.db")
    for key in ("DCS_DB", "SLACK_BOT_TOKEN", "DATABRICKS_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DCS_DB", path)
    return path


def dcs_json(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_add_shows_the_next_three_runs_of_a_dom_or_dow_schedule(db, capsys) -> None:
    code = main(["image", "add", "team-x", "--base", BASE, "--repo", "r.example/x", "--schedule", "0 3 1,15 * 1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Schedule 0 3 1,15 * 1 (UTC) next runs: " in out and out.rstrip().endswith("UTC.")
    code, shown = dcs_json(capsys, "image", "show", "team-x")
    runs = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in shown["next_runs"]]
    assert code == 0 and len(runs) == 3 and runs == sorted(runs)
    # crontab(5): the 1st, the 15th OR a Monday, at 03:00 UTC
    assert all((t.hour, t.minute) == (3, 0) and (t.day in (1, 15) or t.weekday() == 0) for t in runs)
    assert (runs[1] - runs[0]).days <= 7  # not months apart, as when both had to match


def test_a_schedule_that_never_fires_is_refused_with_the_reason(db, capsys) -> None:
    code = main(["image", "add", "team-x", "--base", BASE, "--repo", "r.example/x", "--schedule", "0 3 30 2 *"])
    err = capsys.readouterr().err
    assert code == 2
    assert "schedule" in err and "never fires (day 30 never occurs in February)" in err
    code, listed = dcs_json(capsys, "image", "list")
    assert listed == []  # nothing stored


def test_show_says_when_the_image_was_last_checked(db, capsys) -> None:
    assert main(["image", "add", "team-x", "--base", BASE, "--repo", "r.example/x"]) == 0
    capsys.readouterr()
    main(["image", "show", "team-x"])
    assert "last checked    never" in capsys.readouterr().out
    services = build_services(load_config({"DCS_DB": db}))
    services.store.queue_images(["team-x"], "rebuild:lts")
    assert drain_queue(services) == 1
    code, shown = dcs_json(capsys, "image", "show", "team-x")
    assert code == 0 and "next_runs" not in shown
    check = shown["last_checked"]
    assert check["status"] == "unchanged" and check["source"] == "schedule" and "never built" in check["note"]
    main(["image", "show", "team-x"])
    assert re.search(r"last checked +\d+ s ago \(schedule\) unchanged: never built", capsys.readouterr().out)
