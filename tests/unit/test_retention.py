"""Retention: job_runs, claims, audit and build log tails are pruned by age; what is recent or still running,
and each image's latest log, stay. Log tails are capped when written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.domain.clock import stamp
from bot.ops.build import LOG_TAIL_BYTES, LOG_TAIL_LINES, log_tail
from bot.ops.retention import prune_store

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def at(days_ago: float) -> str:
    return stamp(NOW - timedelta(days=days_ago))


def test_prune_keeps_what_is_recent_running_or_the_latest_log(tmp_db) -> None:
    services = build_services(
        load_config(
            {
                "DCS_DB": tmp_db,
                "DCS_KEEP_RUNS_DAYS": "10",
                "DCS_KEEP_CLAIMS_DAYS": "2",
                "DCS_KEEP_AUDIT_DAYS": "100",
                "DCS_KEEP_LOGS_DAYS": "5",
            }
        )
    )
    store = services.store
    store.add_image(image_from_dict({"name": "team-x", "base": "ubuntu:22.04", "repository": "r.example/x"}))
    with store.transaction() as conn:
        for days, outcome in ((30, "succeeded"), (30, "running"), (20, "skipped"), (1, "failed")):
            conn.execute(
                "INSERT INTO job_runs (job_id, started_at, outcome) VALUES ('rebuild:queue', ?, ?)", (at(days), outcome)
            )
        for key, days in (("old", 3), ("new", 1)):
            conn.execute("INSERT INTO claims (key, kind, created_at) VALUES (?, 'build', ?)", (key, at(days)))
        for days in (200, 50):
            conn.execute("INSERT INTO audit (at, action, outcome) VALUES (?, 'x', 'ok')", (at(days),))
        for days in (9, 8, 1):  # the last is the latest build of the image
            conn.execute(
                "INSERT INTO builds (image, status, finished_at, log_tail) VALUES ('team-x', 'succeeded', ?, 'log')",
                (at(days),),
            )
        conn.execute(  # an older image whose only (latest) build is old: its log stays
            "INSERT INTO builds (image, status, finished_at, log_tail) VALUES ('gone', 'failed', ?, 'why')", (at(90),)
        )
    pruned = prune_store(services, NOW)
    assert (pruned.runs, pruned.claims, pruned.audit, pruned.logs) == (2, 1, 1, 2)
    assert sorted(r["outcome"] for r in store.query("SELECT outcome FROM job_runs")) == ["failed", "running"]
    assert [r["key"] for r in store.query("SELECT key FROM claims")] == ["new"]
    assert len(store.query("SELECT id FROM audit")) == 1
    logs = [(r["image"], r["log_tail"]) for r in store.query("SELECT image, log_tail FROM builds ORDER BY id")]
    assert logs == [("team-x", None), ("team-x", None), ("team-x", "log"), ("gone", "why")]
    assert prune_store(services, NOW).describe() == "0 runs, 0 claims, 0 audit rows, 0 build logs"


def test_the_stored_log_tail_is_capped_in_lines_and_bytes() -> None:
    lines = [f"line {i}" for i in range(1000)]
    assert log_tail(lines).splitlines() == lines[-LOG_TAIL_LINES:]
    wide = ["x" * 1000 + str(i) for i in range(100)]
    kept = log_tail(wide)
    assert len(kept.encode()) <= LOG_TAIL_BYTES and kept.endswith("x99")
    assert kept.splitlines() == wide[-len(kept.splitlines()) :]  # whole lines, the newest
    huge = log_tail(["y" * 100_000])
    assert 0 < len(huge.encode()) <= LOG_TAIL_BYTES  # one endless line still keeps its end


def test_log_tails_are_stored_compressed_and_old_plain_rows_still_read(tmp_db) -> None:
    services = build_services(load_config({"DCS_DB": tmp_db}))
    store = services.store
    store.add_image(image_from_dict({"name": "team-x", "base": "ubuntu:22.04", "repository": "r.example/x"}))
    build = store.create_build("team-x", requester="U1", source="cli", stale_after_seconds=60)
    text = log_tail([f"Step {i}/40 : RUN pip install package-{i}==1.{i}.0" for i in range(200)])
    assert store.update_build(build.id, log_tail=text).log_tail == text
    raw = store.query("SELECT log_tail FROM builds WHERE id = ?", (build.id,))[0]["log_tail"]
    assert isinstance(raw, bytes) and len(raw) * 4 < len(text.encode())
    with store.transaction() as conn:  # a row from before compression: plain text
        conn.execute("UPDATE builds SET log_tail = 'plain old log' WHERE id = ?", (build.id,))
    assert store.get_build(build.id).log_tail == "plain old log"
    assert store.update_build(build.id, log_tail=None).log_tail is None
