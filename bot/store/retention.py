"""Retention: what grows with time is pruned by age, in bounded batches (each a short transaction), so a
database that ran for years stays small and no prune holds the write lock for long.

- `job_runs`: finished runs started before the cut-off (a run still "running" is never touched);
- `claims`: idempotency keys older than the cut-off (Slack retries and double clicks come within minutes);
- `audit`: rows older than the cut-off;
- build log tails: cleared on builds that finished before the cut-off, except each image's latest build.
Builds themselves, pushes, launches and inventories are the history and stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.base import StoreBase

BATCH = 5000


@dataclass(frozen=True)
class Pruned:
    runs: int = 0
    claims: int = 0
    audit: int = 0
    logs: int = 0

    def describe(self) -> str:
        return f"{self.runs} runs, {self.claims} claims, {self.audit} audit rows, {self.logs} build logs"


_STATEMENTS = {
    "runs": "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs WHERE started_at < ?"
    " AND outcome != 'running' LIMIT ?)",
    "claims": "DELETE FROM claims WHERE key IN (SELECT key FROM claims WHERE created_at < ? LIMIT ?)",
    "audit": "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? LIMIT ?)",
    "logs": "UPDATE builds SET log_tail = NULL WHERE id IN (SELECT id FROM builds WHERE finished_at < ?"
    " AND log_tail IS NOT NULL AND id NOT IN (SELECT MAX(id) FROM builds GROUP BY image) LIMIT ?)",
}


class RetentionTables(StoreBase):
    def prune(self, *, runs_before: str, claims_before: str, audit_before: str, logs_before: str) -> Pruned:
        """Delete (or, for logs, clear) what is older than each cut-off (UTC timestamps as the store writes)."""
        cutoffs = {"runs": runs_before, "claims": claims_before, "audit": audit_before, "logs": logs_before}
        counts = {}
        for what, sql in _STATEMENTS.items():
            total = 0
            while True:
                with self.transaction() as conn:
                    done = conn.execute(sql, (cutoffs[what], BATCH)).rowcount
                total += done
                if done < BATCH:
                    break
            counts[what] = total
        return Pruned(**counts)
