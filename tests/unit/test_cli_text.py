"""The CLI prints its own plain text: no Slack mrkdwn (`*bold*`, `&lt;` entities, backticks) in a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.store import Store


def test_ratelimit_prints_plain_text_not_mrkdwn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    db = str(tmp_path / "dcs.db")
    store = Store(db)
    store.add_sample(account="<team-bot> & co", limit=100, remaining=7, window_seconds=21600, source="203.0.113.9")
    store.close()
    monkeypatch.setenv("DCS_DB", db)
    assert main(["ratelimit", "--cached"]) == 0
    out = capsys.readouterr().out
    assert "Docker Hub pulls left: 7/100 (7%) per 6 h" in out
    assert "Counted for <team-bot> & co" in out
    for mrkdwn in ("&lt;", "&gt;", "&amp;", "*", "`", ":warning:"):
        assert mrkdwn not in out
    assert "warning: below the warning line" in out
