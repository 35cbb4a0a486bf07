"""The forms the bot opened, as the store keeps them: what a submission is answered from."""

from __future__ import annotations

from bot.store import Store
from bot.store.forms import FORM_TTL_SECONDS


def test_a_form_is_kept_per_view_and_kind_and_updated_in_place(tmp_db: str) -> None:
    store = Store(tmp_db)
    store.save_form("V1", kind="launch", user="U1", state={"image": "a", "build": 3})
    store.save_form("V1", kind="launch", user="U2", state={"image": "a", "build": 3, "email": "x@example.com"})
    form = store.form("V1", "launch")
    assert form is not None and form.user == "U1"  # the opener stays: an update only adds what was learnt
    assert form.state == {"image": "a", "build": 3, "email": "x@example.com"}
    assert store.form("V1", "image_add") is None and store.form("V2", "launch") is None
    store.drop_form("V1")
    assert store.form("V1", "launch") is None


def test_forms_older_than_a_day_are_dropped_when_another_is_saved(tmp_db: str) -> None:
    store = Store(tmp_db)
    store.save_form("VOLD", kind="launch", user="U1", state={})
    with store.transaction() as conn:
        conn.execute("UPDATE slack_forms SET created_at = '2000-01-01T00:00:00.000000Z' WHERE view_id = 'VOLD'")
    store.save_form("VNEW", kind="launch", user="U1", state={})
    assert store.form("VOLD", "launch") is None and store.form("VNEW", "launch") is not None
    assert FORM_TTL_SECONDS == 24 * 3600
