"""The SQLite store (sqlite-utils): all of the bot's SQL, migrations at start-up, WAL mode, dataclasses out.

The database never holds a secret: registries keep the NAME of the variable with the password, logs
are redacted before they are stored. One connection is shared by the bot's threads behind a lock;
`claim()` gives atomic "first one wins" semantics for Slack retries and double clicks. Each table group
is a module of its own (catalog, builds, launches, approvals, runs, watch); `Store` is all of them.
Every query path has an index (migration 3; tests/unit/test_store_indexes.py reads the query plans).
"""

from __future__ import annotations

from bot.domain.clock import parse_time, utcnow
from bot.domain.records import (
    BUILD_STATES,
    ApprovalRequest,
    ApprovalStatus,
    AuditEvent,
    BaseCheckRecord,
    Build,
    BuildStatus,
    ImageCheck,
    ImageStatus,
    JobRun,
    Launch,
    LaunchStatus,
    Promotion,
    PullSample,
    PushRecord,
    Release,
    RunOutcome,
)
from bot.store.approvals import ApprovalTables
from bot.store.builds import BuildTables
from bot.store.catalog import CatalogTables
from bot.store.forms import FormTables
from bot.store.inventories import InventoryTables
from bot.store.launches import LaunchTables
from bot.store.releases import ReleaseTables
from bot.store.retention import Pruned, RetentionTables
from bot.store.rollouts import RolloutTables
from bot.store.runs import RunTables, run_group
from bot.store.schedule import ScheduleTables
from bot.store.schema import MIGRATIONS
from bot.store.watch import WatchTables


class Store(
    CatalogTables,
    BuildTables,
    InventoryTables,
    LaunchTables,
    ApprovalTables,
    RunTables,
    ScheduleTables,
    RetentionTables,
    WatchTables,
    ReleaseTables,
    RolloutTables,
    FormTables,
):
    """All persistence. Thread-safe; one instance per process."""


__all__ = [
    "BUILD_STATES",
    "MIGRATIONS",
    "ApprovalRequest",
    "ApprovalStatus",
    "AuditEvent",
    "BaseCheckRecord",
    "Build",
    "BuildStatus",
    "ImageCheck",
    "ImageStatus",
    "JobRun",
    "Launch",
    "LaunchStatus",
    "Pruned",
    "PullSample",
    "Promotion",
    "PushRecord",
    "Release",
    "RunOutcome",
    "Store",
    "parse_time",
    "run_group",
    "utcnow",
]
