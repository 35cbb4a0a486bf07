"""The parsed catalog is reused while the catalog is unchanged, and every change is seen: by this process, by
another process on the same database, inside a transaction, and after a rolled-back one."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.catalog import image_from_dict
from bot.errors import DcsError
from bot.store import Store


def spec(name: str, pip: str = "pandas==2.2.2"):
    return image_from_dict({"name": name, "base": "databricksruntime/standard:15.4-LTS", "repository": f"r.io/{name}",
                            "pip": [pip]})  # fmt: skip


def pips(store: Store) -> dict[str, list[str]]:
    return {s.name: list(s.pip) for s in store.list_images()}


def test_changes_by_this_and_another_process_are_seen(tmp_path: Path) -> None:
    db = str(tmp_path / "dcs.db")
    bot, other = Store(db), Store(db)
    bot.add_image(spec("a"))
    assert pips(bot) == {"a": ["pandas==2.2.2"]}
    assert bot.list_images() == bot.list_images()  # unchanged: the same catalog again
    other.add_image(spec("b"))
    other.add_image(spec("a", "numpy==2.0.0"), replace=True)
    assert pips(bot) == {"a": ["numpy==2.0.0"], "b": ["pandas==2.2.2"]}
    other.remove_image("b")
    assert pips(bot) == {"a": ["numpy==2.0.0"]}
    bot.audit(actor="U1", action="x", target=None, outcome="ok")  # other writes leave the catalog as it was
    assert pips(bot) == {"a": ["numpy==2.0.0"]}


def test_a_transaction_reads_its_own_writes_and_a_rollback_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "dcs.db"))
    store.add_image(spec("a"))
    assert pips(store) == {"a": ["pandas==2.2.2"]}
    with pytest.raises(DcsError), store.transaction():
        store.add_image(spec("b"))
        assert set(pips(store)) == {"a", "b"}
        raise DcsError("the import failed half-way")
    assert pips(store) == {"a": ["pandas==2.2.2"]}
    store.add_image(spec("c"))  # as many images as inside the rolled-back transaction: seen all the same
    assert set(pips(store)) == {"a", "c"}


def test_a_change_stamped_with_an_older_clock_is_seen_and_only_what_changed_is_parsed_again(tmp_path: Path) -> None:
    """Changes are found by the catalog's revision (moved by SQLite triggers inside the writing transaction), not
    by timestamps: a writer whose clock is behind (or which waited for the write lock after taking the time)
    is seen all the same. The images nobody changed keep their parsed objects."""
    import sqlite3

    db = str(tmp_path / "dcs.db")
    bot = Store(db)
    for name in ("a", "b", "c"):
        bot.add_image(spec(name))
    before = {s.name: s for s in bot.list_images()}
    stored = bot.query("SELECT spec FROM images WHERE name = 'b'")[0]["spec"]
    other = sqlite3.connect(db)  # another process, with a clock a year behind
    with other:
        other.execute(
            "UPDATE images SET spec = ?, updated_at = '2025-01-01T00:00:00+00:00' WHERE name = 'b'",
            (stored.replace("pandas==2.2.2", "polars==1.0.0"),),
        )
    after = {s.name: s for s in bot.list_images()}
    assert after["b"].pip == ("polars==1.0.0",)
    assert after["a"] is before["a"] and after["c"] is before["c"]
    with other:
        other.execute("DELETE FROM images WHERE name = 'a'")
    assert [s.name for s in bot.list_images()] == ["b", "c"]
    other.close()
