"""Two builds of one image must not race for the same tags; a build abandoned long ago does not block."""

from __future__ import annotations

import pytest

from bot.errors import BuildInProgress
from bot.store import Store


def test_second_build_of_the_same_image_is_refused_with_the_running_one_named(tmp_db):
    store = Store(tmp_db)
    first = store.create_build("team-pandas", requester="U1", source="slack", stale_after_seconds=3600)
    with pytest.raises(BuildInProgress) as caught:
        store.create_build("team-pandas", requester="U2", source="slack", stale_after_seconds=3600)
    assert caught.value.build_id == first.id
    assert f"#{first.id}" in caught.value.message and "U1" in caught.value.message
    # Other images are not blocked.
    assert store.create_build("team-spark", requester="U2", source="slack", stale_after_seconds=3600).id


def test_finished_or_stale_builds_do_not_block(tmp_db):
    store = Store(tmp_db)
    done = store.create_build("team-pandas", requester="U1", source="cli", stale_after_seconds=3600)
    store.update_build(done.id, status="succeeded")
    store.create_build("team-pandas", requester="U1", source="cli", stale_after_seconds=3600)
    stale = store.create_build("team-old", requester="U1", source="cli")
    store.update_build(stale.id, requested_at="2020-01-01T00:00:00.000000Z", status="running")
    assert store.create_build("team-old", requester="U1", source="cli", stale_after_seconds=3600).id > stale.id
