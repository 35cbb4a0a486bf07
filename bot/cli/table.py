"""Plain aligned text tables: one write per table, cheap at thousands of rows (a rich Table of 5,000 rows takes
seconds to lay out), no box drawing, and the same text on a terminal and in a pipe.

On a terminal the table fits its width (`width`): the widest columns give way first, down to a minimum, and a
cut value keeps its start and its end (`127.0.0.1:5000/…/team-pandas`) so that names sharing a long prefix stay
distinguishable. The first column (the name people type) is never cut. In a pipe nothing is cut.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

GAP = 2
MIN_WIDTH = 8
READABLE = 16  # a column cut below this (or below its natural width, if shorter) is dropped if it may be
ELLIPSIS = "…"


def cell(value: Any) -> str:
    """A value as people read it: lists comma-separated, nothing for None (never `None` or `['a', 'b']`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def shorten(text: str, width: int) -> str:
    """At most `width` characters, keeping both ends: the parts that tell similar values apart."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def fit(widths: Sequence[int], total: int, minimum: Sequence[int], fixed: Iterable[int] = (0,)) -> list[int]:
    """Column widths that fit in `total` columns: shrink the widest shrinkable column, one step at a time."""
    out = list(widths)
    keep = set(fixed)
    room = total - GAP * (len(out) - 1)
    while sum(out) > room:
        candidates = [i for i, w in enumerate(out) if i not in keep and w > minimum[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: out[i])
        out[widest] -= 1
    return out


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int | None = None,
    optional: Sequence[int] = (),
) -> str:
    """`optional`: columns (by index, least needed first) left out when the table would not fit `width`
    readably; the first column is never cut or left out."""
    # text values (most of them) as they are: a call per value is most of the time of a 5,000-row table
    text_rows = [[c if c.__class__ is str else cell(c) for c in row] for row in rows]
    natural = [len(h) for h in headers]
    if text_rows:
        natural = [
            max(n, max(map(len, column))) for n, column in zip(natural, zip(*text_rows, strict=True), strict=True)
        ]
    columns = list(range(len(headers)))
    widths = natural
    if width is not None:
        droppable = [i for i in optional if i in columns and i != 0]
        while True:
            minimum = [max(len(headers[i]), MIN_WIDTH) for i in columns]
            widths = fit([natural[i] for i in columns], width, minimum)
            readable = all(w >= min(natural[i], READABLE) for i, w in zip(columns, widths, strict=True))
            fits = sum(widths) + GAP * (len(widths) - 1) <= width
            if (fits and readable) or not droppable:
                break
            columns.remove(droppable.pop(0))
    last = len(columns) - 1

    gap = " " * GAP
    cut = any(widths[i] < natural[c] for i, c in enumerate(columns))  # not in a pipe, nor on a wide terminal

    def line(cells: Sequence[str]) -> str:
        shown = [shorten(cells[c], widths[i]) for i, c in enumerate(columns)] if cut else [cells[c] for c in columns]
        return gap.join([c.ljust(widths[i]) for i, c in enumerate(shown[:last])] + shown[last:]).rstrip()

    return "\n".join([line([h.upper() for h in headers]), *(line(r) for r in text_rows)]) + "\n"


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: TextIO | None = None,
    width: int | None = None,
    optional: Sequence[int] = (),
) -> None:
    (out or sys.stdout).write(format_table(headers, rows, width, optional))
