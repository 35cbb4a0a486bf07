"""The fleet inventory: one pass per workspace (each kind listed once) serves every catalog image.

Workspaces are listed side by side, each in its own thread and time budget: an unreachable or refusing
workspace is reported with its reason and the others are listed all the same. Used by `dcs fleet`,
`/dcs fleet`, App Home, the rebuild notices ("still on an older digest") and rollouts.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.clients.databricks import databricks_configured
from bot.clients.databricks_fleet import RawFleet, list_fleet
from bot.domain.fleet import KINDS, FleetItem, RepoIndex, WorkspaceScan, fleet_items
from bot.errors import DcsError
from bot.services import Services

log = logging.getLogger(__name__)
# The newest listing per Services (a process has one; tests make many): id → (weak reference, report).
_LAST: dict[int, tuple[weakref.ref[Services], FleetReport]] = {}


@dataclass
class FleetReport:
    """Every workspace's scan plus the digest each image is current on (its newest pushed build)."""

    scans: list[WorkspaceScan]
    current: dict[str, str] = field(default_factory=dict)

    @property
    def items(self) -> list[FleetItem]:
        return [item for scan in self.scans for item in scan.items]

    def of(self, image: str) -> list[FleetItem]:
        return [item for item in self.items if item.image == image]

    def stale(self, image: str | None = None) -> list[FleetItem]:
        return [item for item in self.items if item.stale and (image is None or item.image == image)]

    @property
    def errors(self) -> dict[str, str]:
        return {scan.workspace: scan.error for scan in self.scans if scan.error}

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "workspaces": [
                {
                    "workspace": scan.workspace,
                    "error": scan.error,
                    "listed": scan.counts,
                    "calls": scan.calls,
                    "items": [item.to_dict() for item in scan.items],
                }
                for scan in self.scans
            ],
        }


def current_digests(services: Services) -> dict[str, str]:
    """Image → the digest it is current on: its promoted build (the moving tag) when it has one, else its
    newest pushed build."""
    current = {name: digest for name, (_build, digest) in services.store.current_digests().items()}
    promoted = services.store.promoted_builds()
    digests = services.store.pushed_digests(list(promoted))
    for name, build_id in promoted.items():
        if build_id in digests:
            current[name] = digests[build_id]
    return current


def scan_fleet(
    services: Services,
    *,
    images: list[str] | None = None,
    workspace: str | None = None,
    lister: Any = list_fleet,
) -> FleetReport:
    """Items naming `images` (default: the whole catalog) in `workspace` (default: every workspace)."""
    specs = {spec.name: spec for spec in services.store.list_images() if images is None or spec.name in images}
    if images is not None:
        for name in images:
            if name not in specs:
                services.store.get_image(name)  # raises NotFound naming the known images
    current = {name: digest for name, digest in current_digests(services).items() if name in specs}
    index = RepoIndex({name: spec.repository_ref for name, spec in specs.items()}, current)
    names = [services.config.workspace(workspace).name] if workspace else services.workspace_names
    if not databricks_configured(services.config):
        scans = [WorkspaceScan(name, error="No Databricks workspace is configured.") for name in names]
        return FleetReport(scans, current)

    def one(name: str) -> WorkspaceScan:
        try:
            raw: RawFleet = lister(services.workspace(name))
        except DcsError as exc:
            log.warning("fleet: workspace %s not listed: %s", name, exc.message)
            return WorkspaceScan(name, error=services.redactor(exc.message))
        items = fleet_items(
            name,
            index,
            clusters=raw.clusters,
            jobs=raw.jobs,
            pools=raw.pools,
            policies=raw.policies,
            managed_tags=services.config.managed_tags,
        )
        items.sort(key=lambda i: (KINDS.index(i.kind), i.image, i.name, i.item_id, i.location))
        counts = {"clusters": len(raw.clusters), "jobs": len(raw.jobs), "pools": len(raw.pools)}
        counts["policies"] = len(raw.policies)
        return WorkspaceScan(name, items, calls=raw.calls, counts=counts, raw=raw)

    with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="fleet") as pool:
        scans = list(pool.map(one, names))
    report = FleetReport(scans, current)
    _remember(services, report)
    return report


def _remember(services: Services, report: FleetReport) -> None:
    """Keep the newest listing per image for App Home (which never waits for a workspace)."""
    previous = last_report(services)
    if previous is None:
        _LAST[id(services)] = (weakref.ref(services), report)
        return
    listed = {i.image for i in report.items} | set(report.current)
    kept = [
        WorkspaceScan(s.workspace, [i for i in s.items if i.image not in listed], s.error, s.calls, s.counts)
        for s in previous.scans
    ]
    merged = {s.workspace: s for s in kept}
    for scan in report.scans:
        base = merged.get(scan.workspace)
        merged[scan.workspace] = WorkspaceScan(
            scan.workspace, (base.items if base else []) + scan.items, scan.error, scan.calls, scan.counts
        )
    merged_report = FleetReport(list(merged.values()), {**previous.current, **report.current})
    _LAST[id(services)] = (weakref.ref(services), merged_report)


def last_report(services: Services) -> FleetReport | None:
    for key, (ref, _report) in list(_LAST.items()):
        if ref() is None:
            _LAST.pop(key, None)
    found = _LAST.get(id(services))
    return found[1] if found and found[0]() is services else None
