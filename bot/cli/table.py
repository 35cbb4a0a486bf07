"""Plain aligned text tables: one write per table, cheap at thousands of rows (a rich Table of 5,000 rows takes
seconds to lay out), and the same text on a terminal and in a pipe."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    last = len(headers) - 1

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c if i == last else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    return "\n".join([line([h.upper() for h in headers]), *(line(r) for r in rows)]) + "\n"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(format_table(headers, rows))
