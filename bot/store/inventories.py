"""The package inventory of each successful build (one JSON document per build, keyed by its id)."""

from __future__ import annotations

from bot.domain.clock import utcnow
from bot.domain.inventory import PackageInventory
from bot.store.base import StoreBase


class InventoryTables(StoreBase):
    def save_inventory(self, build_id: int, inventory: PackageInventory) -> None:
        """Record (or replace) what build `build_id` contains."""
        with self.transaction():
            self.table("build_inventories").upsert(
                {"build_id": build_id, "inventory": inventory.to_json(), "recorded_at": utcnow()}, pk="build_id"
            )

    def inventory(self, build_id: int) -> PackageInventory | None:
        rows = self.query("SELECT inventory FROM build_inventories WHERE build_id = ?", (build_id,))
        return PackageInventory.from_json(rows[0]["inventory"]) if rows else None
