"""The rebuild due-queue and the last check of every image.

A schedule that fires puts its images in `rebuild_queue`; a rebuild run takes what is queued, checks it, and
removes exactly the entries queued before it started. An image queued again while a run is busy stays for the
next run: nothing a schedule made due is dropped, also across restarts (the queue is in the database).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.clock import utcnow
from bot.domain.records import ImageCheck
from bot.store.base import StoreBase


class ScheduleTables(StoreBase):
    def queue_images(self, names: Iterable[str], job_id: str, at: str | None = None) -> int:
        """Queue `names` (due now); an image already queued is queued again at the new time. Returns the count."""
        when = at or utcnow()
        rows = [(name, when, job_id) for name in dict.fromkeys(names)]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO rebuild_queue (name, queued_at, job_id) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET queued_at = excluded.queued_at, job_id = excluded.job_id",
                rows,
            )
        return len(rows)

    def queued_images(self) -> list[str]:
        """Every queued image, oldest first."""
        return [r["name"] for r in self.query("SELECT name FROM rebuild_queue ORDER BY queued_at, name")]

    def queue_size(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM rebuild_queue")[0]["n"])

    def dequeue_images(self, names: Iterable[str], queued_until: str) -> None:
        """Remove `names` unless queued again after `queued_until` (the start of the run that checked them)."""
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM rebuild_queue WHERE name = ? AND queued_at <= ?",
                [(name, queued_until) for name in names],
            )

    # ------------------------------------------------------------ last checks
    def record_image_checks(self, checks: Iterable[ImageCheck]) -> None:
        rows = [(c.name, c.checked_at, c.status, c.note, c.source) for c in checks]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO image_checks (name, checked_at, status, note, source) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET checked_at = excluded.checked_at, status = excluded.status,"
                " note = excluded.note, source = excluded.source",
                rows,
            )

    def image_check(self, name: str) -> ImageCheck | None:
        rows = self.query("SELECT * FROM image_checks WHERE name = ?", (name,))
        return ImageCheck(**rows[0]) if rows else None

    def image_checks(self) -> dict[str, ImageCheck]:
        return {r["name"]: ImageCheck(**r) for r in self.query("SELECT * FROM image_checks")}
