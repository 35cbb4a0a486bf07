"""Two fake Databricks workspaces (`dev`, `prod`) reached through unified-auth profiles in a config file the
test writes, as a team with a ~/.databrickscfg of two profiles would configure the bot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks

PROD_TOKEN = "dapi-prod-token"


@dataclass
class TwoWorkspaces:
    dev: FakeDatabricks
    prod: FakeDatabricks
    config_file: Path

    def env(self, protected: str = "prod") -> dict[str, str]:
        """The bot's variables: profiles only (no DATABRICKS_HOST/TOKEN, which the SDK would let win)."""
        return {
            "DCS_WORKSPACES": "dev:dev-profile,prod:prod-profile",
            "DCS_PROTECTED_WORKSPACES": protected,
            "DATABRICKS_CONFIG_FILE": str(self.config_file),
            "DATABRICKS_HOST": "",
            "DATABRICKS_TOKEN": "",
        }


@contextlib.contextmanager
def two_workspaces(tmp_path: Path, *, prod_dcs: str | None = "true") -> Iterator[TwoWorkspaces]:
    # Each workspace knows only its own token: a call sent to the wrong one with the other's token is refused.
    with FakeDatabricks() as dev, FakeDatabricks(tokens={PROD_TOKEN: "alice@example.com"}, enable_dcs=prod_dcs) as prod:
        cfg = tmp_path / "databrickscfg"
        cfg.write_text(
            f"[dev-profile]\nhost = {dev.url}\ntoken = {DEFAULT_TOKEN}\n\n"
            f"[prod-profile]\nhost = {prod.url}\ntoken = {PROD_TOKEN}\n",
            encoding="utf-8",
        )
        yield TwoWorkspaces(dev, prod, cfg)
