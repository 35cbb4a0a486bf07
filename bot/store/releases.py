"""The release-gate tables: a candidate per pushed build, the moving tag's promotion history, approval votes.

Every state change is one guarded UPDATE (`WHERE status IN (…)`), so two processes or a double click move a
candidate once: the loser gets False and says "already decided".
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bot.domain.clock import utcnow
from bot.domain.records import OPEN_RELEASE_STATES, Promotion, Release, ReleaseStatus
from bot.errors import NotFound
from bot.store.base import StoreBase

_OPEN = "status IN ('candidate', 'canary', 'waiting')"


def release_from_row(row: dict[str, Any]) -> Release:
    data = dict(row)
    data["canary"] = json.loads(data.get("canary") or "{}")
    return Release(**data)


class ReleaseTables(StoreBase):
    def add_release(
        self,
        *,
        build_id: int,
        image: str,
        digest: str,
        immutable_tag: str | None,
        policy: str,
        requester: str | None,
        approvals_needed: int,
        expires_at: str | None,
    ) -> Release:
        """A new candidate; older open candidates of the image are superseded in the same transaction."""
        now = utcnow()
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE releases SET status = 'superseded', reason = ?, updated_at = ? WHERE image = ? AND {_OPEN}",  # noqa: S608 - a constant
                (f"build #{build_id} is newer", now, image),
            )
            self.table("releases").insert(
                {
                    "build_id": build_id,
                    "image": image,
                    "digest": digest,
                    "immutable_tag": immutable_tag,
                    "policy": policy,
                    "status": "candidate",
                    "requester": requester,
                    "approvals_needed": approvals_needed,
                    "expires_at": expires_at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return self.release(build_id)

    def release(self, build_id: int) -> Release:
        rows = self.query("SELECT * FROM releases WHERE build_id = ?", (build_id,))
        if not rows:
            raise NotFound(f"Build #{build_id} is not a release candidate (it was not pushed).")
        return release_from_row(rows[0])

    def find_release(self, build_id: int) -> Release | None:
        rows = self.query("SELECT * FROM releases WHERE build_id = ?", (build_id,))
        return release_from_row(rows[0]) if rows else None

    def releases(self, image: str, limit: int = 20) -> list[Release]:
        rows = self.query("SELECT * FROM releases WHERE image = ? ORDER BY build_id DESC LIMIT ?", (image, limit))
        return [release_from_row(r) for r in rows]

    def open_release(self, image: str) -> Release | None:
        rows = self.query(
            f"SELECT * FROM releases WHERE image = ? AND {_OPEN} ORDER BY build_id DESC LIMIT 1",  # noqa: S608 - a constant
            (image,),
        )
        return release_from_row(rows[0]) if rows else None

    def open_releases(self) -> dict[str, Release]:
        """The open candidate of every image that has one (for `/dcs images`, App Home): one query."""
        rows = self.query(f"SELECT * FROM releases WHERE {_OPEN} ORDER BY build_id")  # noqa: S608 - a constant
        return {r["image"]: release_from_row(r) for r in rows}

    def releases_in(self, status: ReleaseStatus) -> list[Release]:
        rows = self.query("SELECT * FROM releases WHERE status = ? ORDER BY build_id", (status,))
        return [release_from_row(r) for r in rows]

    def releases_expired(self, now: str) -> list[int]:
        rows = self.query(
            "SELECT build_id FROM releases WHERE status = 'waiting' AND expires_at <= ? ORDER BY build_id", (now,)
        )
        return [r["build_id"] for r in rows]

    def move_release(
        self,
        build_id: int,
        *,
        to: ReleaseStatus,
        frm: tuple[ReleaseStatus, ...] = OPEN_RELEASE_STATES,
        reason: str | None = None,
        canary: dict[str, Any] | None = None,
    ) -> bool:
        """Atomically move one candidate from one of `frm` to `to`; False when it was not in `frm` any more."""
        marks = ", ".join("?" for _ in frm)
        sets = "status = ?, updated_at = ?, reason = COALESCE(?, reason)"
        params: list[Any] = [to, utcnow(), reason]
        if canary is not None:
            sets += ", canary = ?"
            params.append(json.dumps(canary))
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE releases SET {sets} WHERE build_id = ? AND status IN ({marks})",  # noqa: S608 - placeholders only
                (*params, build_id, *frm),
            )
            return cur.rowcount == 1

    def record_canary(self, build_id: int, canary: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE releases SET canary = ?, updated_at = ? WHERE build_id = ?",
                (json.dumps(canary), utcnow(), build_id),
            )

    def attach_release_message(self, build_id: int, channel: str, ts: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE releases SET slack_channel = ?, slack_ts = ? WHERE build_id = ?", (channel, ts, build_id)
            )

    def drop_claim(self, key: str) -> None:
        """Give a claim back (its action failed and may be tried again)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM claims WHERE key = ?", (key,))

    # ------------------------------------------------------------ votes
    def vote(self, build_id: int, user: str, vote: str) -> bool:
        """One vote per person per candidate; False when this person already voted."""
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO release_votes (build_id, user, vote, at) VALUES (?, ?, ?, ?)",
                    (build_id, user, vote, utcnow()),
                )
            return True
        except sqlite3.IntegrityError:
            return False

    def votes(self, build_id: int) -> list[tuple[str, str]]:
        rows = self.query("SELECT user, vote FROM release_votes WHERE build_id = ? ORDER BY at, user", (build_id,))
        return [(r["user"], r["vote"]) for r in rows]

    # ------------------------------------------------------------ promotions (the moving tag's history)
    def add_promotion(
        self, *, image: str, build_id: int, tag: str, digest: str, how: str, actor: str | None
    ) -> Promotion:
        with self.transaction():
            table = self.table("promotions").insert(
                {
                    "image": image,
                    "build_id": build_id,
                    "tag": tag,
                    "digest": digest,
                    "how": how,
                    "actor": actor,
                    "at": utcnow(),
                }
            )
            row_id = table.last_rowid
        return Promotion(**self.query("SELECT * FROM promotions WHERE id = ?", (row_id,))[0])

    def promotions(self, image: str, *, limit: int = 20) -> list[Promotion]:
        """The moving tag's history that still stands (rolled-back moves left out), newest first."""
        rows = self.query(
            "SELECT * FROM promotions WHERE image = ? AND undone_at IS NULL ORDER BY id DESC LIMIT ?", (image, limit)
        )
        return [Promotion(**r) for r in rows]

    def promoted(self, image: str) -> Promotion | None:
        found = self.promotions(image, limit=1)
        return found[0] if found else None

    def promoted_builds(self) -> dict[str, int]:
        """Image → the build its moving tag points to (for overviews): one query."""
        rows = self.query(
            "SELECT p.image, p.build_id FROM promotions p JOIN (SELECT image, MAX(id) AS id FROM promotions "
            "WHERE undone_at IS NULL GROUP BY image) last ON p.id = last.id"
        )
        return {r["image"]: r["build_id"] for r in rows}

    def undo_promotion(self, promotion_id: int) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE promotions SET undone_at = ? WHERE id = ? AND undone_at IS NULL", (utcnow(), promotion_id)
            )
            return cur.rowcount == 1
