"""A large catalog: specs validated on write (never again on read), `/dcs images WORD` with pages, App Home."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

import bot.domain.catalog as catalog
from bot.app import app_context, create_app
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, image_from_stored, image_to_dict
from bot.ops.catalog import image_page
from bot.store import Store
from bot.store.catalog import MARKER_SECONDS
from bot.workers import Workers
from handlers import blocks as bk
from handlers.commands import dispatch
from handlers.home import catalog_section

EVERY_FIELD = {
    "name": "team-pandas",
    "base": "databricksruntime/standard:15.4-LTS",
    "repository": "myacr.azurecr.io/team/pandas",
    "registry": "acr",
    "pip": ["pandas==2.2.3", "numpy<2"],
    "apt": ["curl"],
    "env": {"TZ": "UTC", "A": "b"},
    "tag": "stable",
    "immutable_tag": "{tag}-b{build}",
    "schedule": "0 3 * * 1",
    "notify_channel": "C012AB3CD",
    "owner": "U012AB3CD",
    "description": "pandas for the data team",
}


@pytest.mark.parametrize(
    "data",
    [
        EVERY_FIELD,
        {"name": "min", "base": "ubuntu:22.04", "repository": "r.example/min"},
        EVERY_FIELD | {"build": {"network": "host"}},  # a field group the fast reader hands to full validation
    ],
)
def test_a_stored_spec_reads_back_exactly_as_validated(data: dict[str, Any]) -> None:
    spec = image_from_dict(data)
    assert image_from_stored(json.loads(json.dumps(image_to_dict(spec)))) == spec


def test_list_images_does_not_validate_again_and_sees_other_processes_changes(tmp_db, monkeypatch) -> None:
    store = Store(tmp_db)
    for i in range(50):
        store.add_image(image_from_dict(EVERY_FIELD | {"name": f"team-{i:02d}"}))
    calls: list[object] = []
    real = catalog.image_from_dict
    monkeypatch.setattr(catalog, "image_from_dict", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert [s.name for s in store.list_images()] == [f"team-{i:02d}" for i in range(50)]
    assert store.get_image("team-07").pip == ("pandas==2.2.3", "numpy<2")
    assert calls == []  # no re-validation on read
    other = Store(tmp_db)  # another process: the CLI next to the bot
    other.add_image(image_from_dict(EVERY_FIELD | {"name": "team-07", "pip": ["polars"]}), replace=True)
    other.remove_image("team-08")
    other.add_image(image_from_dict(EVERY_FIELD | {"name": "team-99"}))
    specs = {s.name: s for s in store.list_images()}
    assert specs["team-07"].pip == ("polars",) and "team-08" not in specs and "team-99" in specs
    assert len(specs) == 50


@pytest.fixture
def services(tmp_db):
    services = build_services(load_config({"DCS_DB": tmp_db}))
    for i in range(45):
        pip = ["pandas==2.2.3"] if i % 3 == 0 else ["polars"]
        services.store.add_image(
            image_from_dict(
                {
                    "name": f"team-{i:02d}",
                    "base": "ubuntu:22.04",
                    "python": "/usr/bin/python3",
                    "repository": "r.example/x",
                    "pip": pip,
                }
            )
        )
    return services


def test_pages_cover_every_matching_image_once(services) -> None:
    seen, offset = [], 0
    while True:
        page = image_page(services, "pandas", offset)
        assert page.total == 15 and page.query == "pandas"
        seen += [r.name for r in page.rows]
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert seen == [f"team-{i:02d}" for i in range(0, 45, 3)]
    whole = [image_page(services, "", o) for o in (0, 20, 40)]
    assert [len(p.rows) for p in whole] == [20, 20, 5]
    assert [(p.previous_offset, p.next_offset) for p in whole] == [(None, 20), (0, 40), (20, None)]
    assert image_page(services, "", 999).offset == 40  # past the end: the last page
    assert image_page(services, "PANDAS 2.2").total == 15  # every word, any case
    assert image_page(services, "nothing-like-this").total == 0


def test_the_images_message_pages_with_buttons_that_keep_the_filter(services) -> None:
    first = bk.images_page(image_page(services), bk_now())
    text = json.dumps(first["blocks"], ensure_ascii=False)
    assert "45 image(s) in the catalog, 1–20 shown" in text and "team-19" in text and "team-20" not in text
    buttons = [e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], json.loads(b["value"])) for b in buttons] == [
        ("images_page_next", {"q": "", "offset": 20})
    ]
    middle = bk.images_page(image_page(services, "", 20), bk_now())
    actions = [e["action_id"] for b in middle["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert actions == ["images_page_previous", "images_page_next"]
    found = bk.images_page(image_page(services, "pandas"), bk_now())
    assert "15 image(s) matching `pandas`" in json.dumps(found["blocks"])
    assert not [b for b in found["blocks"] if b["type"] == "actions"]  # one page: no buttons
    none = bk.images_page(image_page(services, "zzz"), bk_now())
    assert "No image matches `zzz`" in none["text"]


def test_a_long_list_says_exactly_how_many_were_left_out() -> None:
    rows = [bk_status(f"img-{i}") for i in range(80)]
    content = bk.images_list(rows, bk_now())
    shown = len(re.findall(r"\*img-\d+\*", json.dumps(content["blocks"])))
    assert len(content["blocks"]) <= bk.MESSAGE_BLOCKS
    assert f"…and {80 - shown} more images not shown" in json.dumps(content["blocks"], ensure_ascii=False)


def test_slash_images_with_a_word_filters_and_home_shows_the_first_page(services, tmp_db) -> None:
    config = load_config({"DCS_DB": tmp_db, "SLACK_BOT_TOKEN": "xoxb-t", "SLACK_API_URL": "http://127.0.0.1:9/api/"})
    workers = Workers(1)
    try:
        ctx = app_context(create_app(config, services, workers))
        acks: list[dict[str, Any]] = []
        body = {"text": "images pandas", "user_id": "U1", "channel_id": "C1", "trigger_id": "t", "response_url": ""}
        dispatch(ctx, body, lambda **kw: acks.append(kw), None)
        assert len(acks) == 1 and "15 image(s) matching `pandas`" in acks[0]["text"]
        home = catalog_section(ctx, "U1")
        assert len(home) <= 30 and "…and 17 more" in json.dumps(home, ensure_ascii=False)  # 28 of 45 shown
    finally:
        workers.shutdown(wait=False)


def bk_now():
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


def bk_status(name: str):
    from bot.domain.records import ImageStatus

    return ImageStatus(name, "ubuntu:22.04", "r/x", None, None, None)


def test_a_kept_page_shows_what_another_process_changed_within_the_marker_window(services, tmp_db) -> None:
    """Pages are kept while nothing they show changed; a build, a check or a release candidate written by
    another process (a `dcs build` next to the bot) is on the page MARKER_SECONDS later, like a catalog change."""
    from bot.domain.records import ImageCheck

    def first_row():
        time.sleep(MARKER_SECONDS)  # another process's write: seen once the reused revisions are this old
        return image_page(services, "team-00").rows[0]

    assert first_row().last is None
    assert image_page(services, "team-00") is image_page(services, "team-00")  # unchanged: kept
    other = Store(tmp_db)
    build = other.create_build("team-00", requester="U2", source="cli")
    assert first_row().last.id == build.id and first_row().last.status == "queued"
    other.update_build(build.id, status="succeeded", pushed_digest="sha256:" + "a" * 64)
    assert first_row().last.status == "succeeded" and first_row().last_good.id == build.id
    other.record_image_checks([ImageCheck("team-00", "2026-01-01T00:00:00+00:00", "unchanged", "up to date")])
    assert first_row().check.status == "unchanged"
    other.add_release(build_id=build.id, image="team-00", digest="sha256:" + "a" * 64, immutable_tag=None,
                      policy="manual", requester="U2", approvals_needed=0, expires_at=None)  # fmt: skip
    assert first_row().candidate is not None and first_row().candidate.build_id == build.id
    other.add_image(image_from_dict({"name": "team-00b", "base": "ubuntu:22.04", "python": "/usr/bin/python3",
                                     "repository": "r.example/x"}))  # fmt: skip
    time.sleep(MARKER_SECONDS)
    assert image_page(services, "team-00").total == 2
    running = other.create_build("team-01", requester="U2", source="cli")
    time.sleep(MARKER_SECONDS)
    kept = image_page(services, "team-01")
    other.beat([running.id])  # a build's heartbeat and log tail, an audit row: nothing the page shows
    other.update_build(running.id, log_tail="Step 1/4 : FROM ubuntu:22.04")
    other.audit(actor="U2", action="x", target=None, outcome="ok")  # writes the page does not show: kept
    time.sleep(MARKER_SECONDS)
    assert image_page(services, "team-01") is kept


def test_the_bots_own_writes_show_at_once_and_unchanged_pages_make_no_database_call(services, monkeypatch) -> None:
    """Under load most `/dcs images` acks read nothing from the database; what the bot itself writes (a build
    starting, its result, a catalog change) is on the very next page, however recent the last read."""
    store = services.store
    assert image_page(services, "team-00").rows[0].last is None
    build = store.create_build("team-00", requester="U1", source="slack")
    assert image_page(services, "team-00").rows[0].last.status == "queued"
    store.update_build(build.id, status="succeeded", pushed_digest="sha256:" + "a" * 64)
    assert image_page(services, "team-00").rows[0].last_good.id == build.id
    store.add_image(image_from_dict({"name": "team-00b", "base": "ubuntu:22.04", "python": "/usr/bin/python3",
                                     "repository": "r.example/x"}))  # fmt: skip
    assert image_page(services, "team-00").total == 2
    reads: list[str] = []
    real = type(store).read_query
    monkeypatch.setattr(type(store), "read_query", lambda self, *a: reads.append(a[0]) or real(self, *a))
    pages = [image_page(services, "team-00") for _ in range(50)]
    assert all(p is pages[0] for p in pages) and len(reads) <= 1  # at most the one read when the window ended
