"""How tests run the `dcs` and `dcs-bot` console scripts: the ones installed next to the interpreter running the
tests.

`shutil.which("dcs")` could find another installation on PATH (a shared Python whose editable install points
at another checkout) and test that code instead of this one.
"""

from __future__ import annotations

import sys
from pathlib import Path


def dcs_command() -> list[str]:
    script = Path(sys.executable).with_name("dcs")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def dcs_bot_command() -> list[str]:
    script = Path(sys.executable).with_name("dcs-bot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot"]
