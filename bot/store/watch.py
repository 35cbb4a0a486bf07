"""What the watches remember: pull-budget samples, alert states, and the last check of every base."""

from __future__ import annotations

from bot.domain.clock import utcnow
from bot.domain.records import BaseCheckRecord, PullSample
from bot.store.base import StoreBase


class WatchTables(StoreBase):
    # ------------------------------------------------------------ pull-budget samples
    def add_sample(
        self,
        *,
        account: str | None,
        limit: int | None,
        remaining: int | None,
        window_seconds: int | None,
        source: str | None,
        at: str | None = None,
        keep_after: str | None = None,
    ) -> None:
        """Store one reading; with `keep_after`, drop the readings older than that (retention)."""
        with self.transaction():
            self.table("ratelimit_samples").insert(
                {
                    "at": at or utcnow(),
                    "account": account,
                    "limit": limit,
                    "remaining": remaining,
                    "window_seconds": window_seconds,
                    "source": source,
                }
            )
            if keep_after is not None:
                self.table("ratelimit_samples").delete_where("at < ?", [keep_after])

    def latest_sample(self) -> PullSample | None:
        rows = self.query("SELECT * FROM ratelimit_samples ORDER BY id DESC LIMIT 1")
        return PullSample(**rows[0]) if rows else None

    def samples_since(self, since: str) -> list[PullSample]:
        rows = self.query("SELECT * FROM ratelimit_samples WHERE at >= ? ORDER BY at, id", (since,))
        return [PullSample(**r) for r in rows]

    # ------------------------------------------------------------ alert states
    def alert_state(self, key: str) -> tuple[str | None, str | None]:
        rows = self.query("SELECT state, detail FROM alert_state WHERE key = ?", (key,))
        return (rows[0]["state"], rows[0]["detail"]) if rows else (None, None)

    def set_alert_state(self, key: str, state: str, detail: str | None = None) -> None:
        """`changed_at` moves only when the state does (the detail may change in between)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO alert_state (key, state, changed_at, detail) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
                " changed_at = CASE WHEN alert_state.state = excluded.state THEN alert_state.changed_at"
                " ELSE excluded.changed_at END",
                (key, state, utcnow(), detail),
            )

    # ------------------------------------------------------------ base checks
    def record_base_check(self, base_ref: str, digest: str | None, checked_at: str, error: str | None) -> None:
        with self.transaction() as conn:
            # A failed check keeps the last known digest, so the table always shows what was last seen.
            conn.execute(
                "INSERT INTO base_checks (base_ref, digest, checked_at, error) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(base_ref) DO UPDATE SET digest = COALESCE(excluded.digest, base_checks.digest),"
                " checked_at = excluded.checked_at, error = excluded.error",
                (base_ref, digest, checked_at, error),
            )

    def base_checks(self) -> dict[str, BaseCheckRecord]:
        rows = self.query("SELECT * FROM base_checks ORDER BY base_ref")
        return {r["base_ref"]: BaseCheckRecord(**r) for r in rows}
