"""The connection, its lock and transactions; audit rows and idempotency claims (every table group needs them).

One connection is shared by the bot's threads behind a re-entrant lock. `transaction()` is sqlite-utils'
`atomic()`: nested blocks become savepoints, so a table method may open one inside a caller's.

Read-only connections, one per thread (`read_query`), serve the reads a Slack ack waits for (the catalog, a
page of `/dcs images`): in WAL mode they read the last committed state without waiting for the writing
connection's lock, which a build's heartbeat or progress write holds through its commit (an fsync), nor for
each other. While the writing connection is inside a transaction, `read_query` goes through it instead, so a
transaction reads its own writes.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
import sqlite_utils.db

from bot.domain.clock import utcnow
from bot.domain.records import AuditEvent
from bot.store.schema import migrate

T = TypeVar("T")


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    keys = [d[0] for d in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


class StoreBase:
    """Plumbing shared by the table groups; see bot.store.Store for the whole API."""

    def __init__(self, path: str) -> None:
        self.path = path
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10)
        # No sqlite-utils plugins: the store uses none, and finding them (every installed package's entry
        # points) costs each process more than opening the database.
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        self._readers = threading.local()
        self._all_readers: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._readers_lock = threading.Lock()
        # (revisions, when read, commits before the read): the last `page_marker` read (see there)
        self._marker: tuple[tuple[int, int], float, int] | None = None
        self.commits = 0  # transactions this Store committed
        with self._lock:
            if path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(conn)

    def table(self, name: str) -> sqlite_utils.db.Table:
        """sqlite-utils' table API (insert, upsert, update, rows_where) for one of our tables."""
        return self.db.table(name)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes (a savepoint when nested): see `write_transaction`."""
        with self.write_transaction() as conn:
            yield conn

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction that takes SQLite's write lock before its first read (BEGIN IMMEDIATE).

        Every transaction of the store is one: most read before they write (does the image exist, is the
        build still running), and a plain BEGIN would read a snapshot that another process (the bot's builds,
        the CLI) may commit past before this one writes. SQLite then refuses the write at once with "database
        is locked" (SQLITE_BUSY_SNAPSHOT: waiting cannot help, so busy_timeout does not apply). Here a second
        writer waits (busy_timeout) until the first one committed, then reads what it wrote. Nested in
        another transaction it is a savepoint of that one (which then decides).
        """
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                with self.db.atomic():
                    yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            self.commits += 1  # a page marker read before this commit is not reused (see page_marker)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        """Rows as dicts. For the store's own modules and for tests that look inside; the rest of the bot
        calls the named methods."""
        with self._lock:
            return list(self.db.query(sql, params))

    def query_rows(self, sql: str, params: tuple | dict = ()) -> list[tuple[Any, ...]]:
        """As `query`, each row a tuple in the order the SELECT names its columns: for reads of thousands of
        rows (`image_overview`), where making a dict of every row is a good part of the time."""
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def read_rows(self, sql: str, params: tuple | dict = ()) -> list[tuple[Any, ...]]:
        """As `read_query`, each row a tuple (see `query_rows`)."""
        if self.path == ":memory:" or self.db.conn.in_transaction:
            return self.query_rows(sql, params)
        return self._reader().execute(sql, params).fetchall()

    def read_query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        """Rows as dicts from the read-only connection (see the module docstring): for reads on the ack path."""
        # another connection to ":memory:" would be another, empty database
        if self.path == ":memory:" or self.db.conn.in_transaction:
            return self.query(sql, params)
        return _rows(self._reader().execute(sql, params))

    @contextmanager
    def read_snapshot(self) -> Iterator[Callable[..., list[dict[str, Any]]]]:
        """`read(sql, params)` for several reads of one committed state: a read transaction on this thread's
        read-only connection (through the writing connection, like `read_query`, inside its transaction)."""
        if self.path == ":memory:" or self.db.conn.in_transaction:
            yield self.query
            return
        reader = self._reader()
        reader.execute("BEGIN")
        try:
            yield lambda sql, params=(): _rows(reader.execute(sql, params))
        finally:
            reader.rollback()  # nothing was written: ending the read transaction lets checkpoints move on

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if reader is None:
            uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
            reader = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            reader.execute("PRAGMA busy_timeout=10000")
            self._readers.conn = reader
            with self._readers_lock:
                for gone in [pair for pair in self._all_readers if pair[0]() is None]:  # their threads ended
                    gone[1].close()
                    self._all_readers.remove(gone)
                self._all_readers.append((weakref.ref(threading.current_thread()), reader))
        return reader

    def with_lock(self, fn: Callable[[], T]) -> T:
        """Run `fn` while no other thread uses the store (check-then-act sequences of several calls)."""
        with self._lock:
            return fn()

    def ping(self) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1").fetchone()[0] == 1

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
        with self._readers_lock:
            for _, reader in self._all_readers:
                reader.close()
            self._all_readers.clear()

    def change_marker(self) -> tuple[int, int]:
        """Moves whenever anything was written: by this process (`total_changes`) or another one
        (`PRAGMA data_version`). Lets readers cache until the database changes."""
        with self._lock:
            conn = self.db.conn
            return conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0]

    # ------------------------------------------------------------ audit
    def audit(
        self, *, actor: str | None, action: str, target: str | None, outcome: str, detail: str | None = None
    ) -> None:
        with self._lock:
            self.table("audit").insert(
                {
                    "at": utcnow(),
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "outcome": outcome,
                    "detail": detail,
                }
            )

    def audit_events(self, limit: int = 50, action: str | None = None) -> list[AuditEvent]:
        where, args = ("action = ?", [action]) if action else (None, None)
        with self._lock:
            rows = self.table("audit").rows_where(where, args, order_by="id DESC", limit=limit)
            return [AuditEvent(**r) for r in rows]

    # ------------------------------------------------------------ claims
    def claim(self, key: str, kind: str, ref: str | None = None) -> bool:
        """True for the first caller with this key, False for every later one (retries, double clicks)."""
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO claims (key, kind, ref, created_at) VALUES (?, ?, ?, ?)", (key, kind, ref, utcnow())
                )
            return True
        except sqlite3.IntegrityError:
            return False

    def claim_ref(self, key: str) -> str | None:
        rows = self.query("SELECT ref FROM claims WHERE key = ?", (key,))
        return rows[0]["ref"] if rows else None

    def set_claim_ref(self, key: str, ref: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE claims SET ref = ? WHERE key = ?", (ref, key))
