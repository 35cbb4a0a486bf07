"""Terminal control sequences out of text that leaves the Docker engine.

Engine output (BuildKit, pip, apt) carries colours, cursor moves and carriage-return progress bars meant for
a terminal. Slack, the stored log, `dcs log` and a `dcs build > file` get plain text: `plain()` removes every
escape sequence (CSI, OSC, and two-character ESC sequences), keeps what a terminal would finally show of a
line rewritten with carriage returns, and drops the remaining control characters (tabs and newlines stay).
Colours in the CLI come from rich, which draws them only on a real terminal and honours NO_COLOR.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]              # CSI: colours, cursor moves, erase line
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC: window titles, hyperlinks (BEL or ST ends it)
  | \x1b[PX^_][^\x1b]*(?:\x1b\\)?        # DCS, SOS, PM, APC strings
  | \x1b[ -/]*[0-~]                      # two-character sequences (charset selection, keypad modes)
  | \x1b                                 # a lone ESC left at the end of a chunk
  | \x9b[0-?]*[ -/]*[@-~]                # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")


def plain(text: str) -> str:
    """`text` as a terminal-less reader should see it: no escape sequences, no control characters."""
    if not text:
        return text
    text = _ESCAPES.sub("", text)
    if "\r" in text:
        text = "\n".join(_last_rewrite(line) for line in text.split("\n"))
    return _CONTROL.sub("", text)


def _last_rewrite(line: str) -> str:
    """A line redrawn with carriage returns (progress bars) shows its last non-empty version."""
    parts = [p for p in line.split("\r") if p.strip()]
    return parts[-1] if parts else ""
