"""DCS_ENGINES parsing (errors name the entry, the value and the fix) and which engine takes a build."""

from __future__ import annotations

import pytest

from bot.config import EngineSpec, load_config
from bot.domain.engine_choice import EngineState, choose_engine
from bot.errors import ConfigError


def test_engines_are_parsed_with_concurrency_names_and_certs() -> None:
    config = load_config(
        {
            "DCS_ENGINES": "unix:///var/run/docker.sock?concurrency=2, "
            "tcp://build-1.internal:2376?certs=/etc/dcs/build-1&concurrency=4 ssh://dcs@build-2.internal"
        }
    )
    assert config.engines == (
        EngineSpec("local", "unix:///var/run/docker.sock", 2),
        EngineSpec("build-1.internal", "tcp://build-1.internal:2376", 4, "/etc/dcs/build-1"),
        EngineSpec("build-2.internal", "ssh://dcs@build-2.internal", 1),
    )
    assert config.workers == 7  # enough workers to fill every engine, unless DCS_WORKERS says otherwise
    assert load_config({"DCS_ENGINES": "unix:///a.sock?concurrency=9", "DCS_WORKERS": "3"}).workers == 3
    assert load_config({}).engines == () and load_config({}).workers == 2


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("https://build-1:2376", "https scheme is not a Docker engine address"),
        ("tcp://build-1.internal:2376", "plain TCP lets anyone on the network run containers as root"),
        ("tcp://build-1.internal", "needs the port"),
        ("unix://", "needs the socket path"),
        ("unix:///a.sock?concurrency=0", "concurrency='0' must be a whole number from 1 to 32"),
        ("unix:///a.sock?concurrency=lots", "concurrency='lots'"),
        ("unix:///a.sock?colour=red", "unknown option 'colour'"),
        ("ssh://dcs@b?certs=/x", "certs= applies to tcp:// addresses only"),
        ("unix:///a.sock?name=bad/name", "name='bad/name' must be 1-40 letters"),
        ("unix:///a.sock?name=x, unix:///b.sock?name=x", "the name 'x' is already used"),
    ],
)
def test_bad_engine_entries_are_refused_naming_entry_value_and_fix(entry: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DCS_ENGINES": entry})
    assert says in caught.value.message and "DCS_ENGINES" in caught.value.message


def test_plain_tcp_is_accepted_on_loopback_only() -> None:
    (spec,) = load_config({"DCS_ENGINES": "tcp://127.0.0.1:2375"}).engines
    assert spec.url == "tcp://127.0.0.1:2375" and spec.certs is None


def state(name: str, running: int = 0, concurrency: int = 2, **kw: bool) -> EngineState:
    return EngineState(name, concurrency, running, kw.pop("reachable", True), **kw)


@pytest.mark.parametrize(
    ("states", "chosen"),
    [
        ([state("a"), state("b")], "a"),  # equal: DCS_ENGINES order
        ([state("a", running=1), state("b")], "b"),  # least loaded
        ([state("a", running=1), state("b", has_base=True)], "b"),
        ([state("a"), state("b", running=1, has_base=True)], "b"),  # the base beats load while a slot is free
        ([state("a", has_base=True), state("b", has_base=True, has_previous=True)], "b"),  # layer cache
        ([state("a", running=2, has_base=True), state("b")], "b"),  # full: pull elsewhere rather than wait
        ([state("a", reachable=False, has_base=True), state("b")], "b"),  # unreachable: skipped
        ([state("a", running=1, concurrency=4), state("b", running=1, concurrency=2)], "a"),  # load = share
        ([state("a", running=2), state("b", running=2)], None),  # all full: wait
        ([state("a", reachable=False)], None),
    ],
)
def test_the_engine_for_the_next_build(states: list[EngineState], chosen: str | None) -> None:
    choice = choose_engine(states)
    assert (choice.name if choice else None) == chosen
