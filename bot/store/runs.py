"""The job_runs table: every scheduled (or manually triggered) run, and the lock groups they hold.

A run claims its group ("rebuild", "ratelimit") with one atomic INSERT … WHERE NOT EXISTS, so runs of one
group never overlap, across threads and processes sharing the database.
"""

from __future__ import annotations

from bot.domain.clock import utcnow
from bot.domain.records import JobRun, RunOutcome
from bot.store.base import StoreBase


def run_group(job_id: str) -> str:
    """`rebuild:queue` and `rebuild:manual` share the group `rebuild`."""
    return job_id.split(":", 1)[0]


class RunTables(StoreBase):
    def claim_run(self, job_id: str, detail: str) -> int | None:
        """Start a run of `job_id` unless one of its group is running; the new run's id, or None."""
        group = run_group(job_id)
        with self.transaction() as conn:
            # One statement: atomic across threads and processes sharing the database.
            cur = conn.execute(
                "INSERT INTO job_runs (job_id, started_at, outcome, detail) SELECT ?, ?, 'running', ?"
                " WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE outcome = 'running'"
                " AND (job_id = ? OR job_id LIKE ?))",
                (job_id, utcnow(), detail, group, f"{group}:%"),
            )
            return cur.lastrowid if cur.rowcount == 1 else None

    def running_run(self, job_id: str) -> JobRun | None:
        """The run of `job_id`'s group that is in progress, if any."""
        group = run_group(job_id)
        rows = self.query(
            "SELECT * FROM job_runs WHERE outcome = 'running' AND (job_id = ? OR job_id LIKE ?) ORDER BY id LIMIT 1",
            (group, f"{group}:%"),
        )
        return JobRun(**rows[0]) if rows else None

    def running_runs(self) -> list[JobRun]:
        return [JobRun(**r) for r in self.query("SELECT * FROM job_runs WHERE outcome = 'running' ORDER BY id")]

    def finish_run(self, run_id: int, outcome: RunOutcome, detail: str | None = None) -> None:
        with self.transaction():
            self.table("job_runs").update(run_id, {"finished_at": utcnow(), "outcome": outcome, "detail": detail})

    def record_skip(self, job_id: str, detail: str) -> None:
        now = utcnow()
        with self.transaction():
            self.table("job_runs").insert(
                {"job_id": job_id, "started_at": now, "finished_at": now, "outcome": "skipped", "detail": detail}
            )

    def job_runs(self, job_id: str | None = None, limit: int = 20) -> list[JobRun]:
        where, args = ("job_id = ?", [job_id]) if job_id else (None, None)
        with self._lock:
            return [
                JobRun(**r) for r in self.table("job_runs").rows_where(where, args, order_by="id DESC", limit=limit)
            ]
