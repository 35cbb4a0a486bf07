"""Malformed catalog files: every one is answered with field errors (InvalidInput, exit code 2), never another
exception, and nothing of a bad file reaches the database. A table of examples, then random documents."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import MAX_CATALOG_BYTES, MAX_NESTING, ImageSpec, RegistrySpec, decode_catalog, parse_catalog
from bot.errors import InvalidInput, InvalidInputs
from bot.ops.catalog import import_catalog

GOOD_IMAGE = 'name = "team-pandas"\nbase = "databricksruntime/standard:15.4-LTS"\nrepository = "r.io/team/pandas"\n'
GOOD_REGISTRY = 'name = "acr"\nhost = "myacr.azurecr.io"\n'


def image(extra: str) -> str:
    return f"[[image]]\n{GOOD_IMAGE}{extra}\n"


def registry(extra: str) -> str:
    return f"[[registry]]\n{GOOD_REGISTRY}{extra}\n"


def problems(text: str) -> list[InvalidInput]:
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        parse_catalog(text, source="catalog.toml")
    error = caught.value
    return error.problems if isinstance(error, InvalidInputs) else [error]


BAD = [
    # sections of the wrong shape
    ("image = 5", "image", "is a number, not a list of [[image]] tables"),
    ("registry = [1]", "registry[0]", "is a number, not a table"),
    ('registry = "acr"', "registry", "is text, not a list"),
    ('[image]\nname = "x"', "image", "is a table, not a list of [[image]] tables"),
    ('image = [1, "x", [2]]', "image[0]", "is a number, not a table"),
    ('image = [1, "x", [2]]', "image[2]", "is an array, not a table"),
    ("[[nonsense]]\na = 1", "[nonsense]", "is not a known section"),
    # image fields of the wrong type
    ('[[image]]\nname = 5\nbase = "ubuntu:22.04"\nrepository = "r.io/x"', "image[0].name", "is a number, not text"),
    (image("").replace('base = "databricksruntime/standard:15.4-LTS"', "base = [1]"), ".base", "is an array"),
    (image("").replace('repository = "r.io/team/pandas"', "repository = {a = 1}"), ".repository", "is a table"),
    (image("tag = 0"), "image[team-pandas].tag", "is not a valid Docker tag"),
    (image("tag = false"), "image[team-pandas].tag", "is not a valid Docker tag"),
    (image("registry = 0"), "image[team-pandas].registry", "is a number"),
    (image("description = 1979-05-27"), "image[team-pandas].description", "is not one line"),
    (image("description = 0"), "image[team-pandas].description", "is not one line"),
    (image("schedule = ['0 3 * * 1']"), "image[team-pandas].schedule", "is not a five-field cron"),
    (image("immutable_tag = 5"), "image[team-pandas].immutable_tag", "is a number, not text"),
    (image("notify_channel = ['#a']"), "image[team-pandas].notify_channel", "is an array, not text"),
    (image("owner = { id = 'U1' }"), "image[team-pandas].owner", "is a table"),
    (image("pip = [1, 2]"), "image[team-pandas].pip", "is not text"),
    (image("pip = [['pandas']]"), "image[team-pandas].pip", "is not text"),
    (image("pip = [{ name = 'pandas' }]"), "image[team-pandas].pip", "is not text"),
    (image("pip = 7"), "image[team-pandas].pip", "is not a list"),
    (image("apt = [true]"), "image[team-pandas].apt", "is not text"),
    (image("env = 5"), "image[team-pandas].env", "is not a table"),
    (image("env = { TZ = 1 }"), "image[team-pandas].env.TZ", "is not text"),
    (image("env = { TZ = ['UTC'] }"), "image[team-pandas].env.TZ", "is not text"),
    (image("env = { TZ = { a = 'b' } }"), "image[team-pandas].env.TZ", "is not text"),
    # registry fields of the wrong type
    (registry("username = 5"), "registry[0].username", "is a number, not text"),
    (registry("username = ['sp']"), "registry[0].username", "is an array"),
    (registry("cluster_username = { a = 1 }"), "registry[0].cluster_username", "is a table"),
    (registry("password_env = 1"), "registry[0].password_env", "is a number"),
    (registry("allow_plaintext_password = 'yes'"), "registry[0].allow_plaintext_password", "is not true or false"),
    ('[[registry]]\nname = "acr"\nhost = 5', "registry[0].host", "is missing"),
    (registry("cluster_password_secret = 5"), "registry[0].cluster_password_secret", "is not a Databricks secret"),
    # nesting
    ("image = " + "[" * 12 + "]" * 12, "catalog.toml: image", "nests more than"),
    ("image = " + "[" * 3000 + "]" * 3000, "catalog.toml", "too deeply"),
    (image("env = " + "{ a = " * 20 + "'x'" + " }" * 20), "catalog.toml: image", "nests more than"),
]


@pytest.mark.parametrize(("text", "field", "words"), BAD, ids=[f"{i}:{b[1]}" for i, b in enumerate(BAD)])
def test_a_malformed_catalog_gets_field_errors(text: str, field: str, words: str) -> None:
    found = problems(text)
    assert any(field in p.field and words in p.message for p in found), [p.message for p in found]


def test_a_field_of_the_wrong_type_is_reported_once_not_also_as_missing() -> None:
    found = problems('[[image]]\nname = "x"\nbase = 5\nrepository = "r.io/x"')
    assert [p.field for p in found] == ["image[x].base"]


def test_non_utf8_bytes_are_named_with_their_offset() -> None:
    data = f"[[image]]\n{GOOD_IMAGE}description = 'caf".encode() + b"\xe9'\n"
    with pytest.raises(InvalidInput, match=r"is not UTF-8 text") as caught:
        decode_catalog(data, "catalog.toml")
    offset = data.index(b"\xe9")
    assert "0xe9" in caught.value.message and f"offset {offset}" in caught.value.message
    assert decode_catalog(b"\xef\xbb\xbf" + image("").encode(), "catalog.toml").startswith("[[image]]")  # a BOM


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    huge = image("") + "# " + "x" * MAX_CATALOG_BYTES + "\n"
    with pytest.raises(InvalidInput, match=r"larger than the 8 MiB"):
        decode_catalog(huge.encode(), "catalog.toml")
    with pytest.raises(InvalidInput, match=r"larger than the 8 MiB"):
        parse_catalog(huge, "catalog.toml")


def test_nothing_of_a_bad_file_reaches_the_database(tmp_db: str) -> None:
    services = build_services(load_config({"DCS_DB": tmp_db}))
    good_then_bad = registry("") + image("") + "[[image]]\nname = 'two'\nbase = 'ubuntu:22.04'\nrepository = 5\n"
    with pytest.raises((InvalidInput, InvalidInputs)):
        import_catalog(services, good_then_bad, source="catalog.toml", prune=False, actor="ci")
    assert services.store.image_names() == [] and services.store.list_registries() == []
    assert services.store.audit_events(action="catalog.import") == []


# ---------------------------------------------------------------- random documents

KEYS = st.sampled_from(
    ["name", "base", "repository", "pip", "apt", "env", "tag", "registry", "host", "username", "password_env",
     "cluster_username", "cluster_password_secret", "allow_plaintext_password", "schedule", "owner", "x"]
)  # fmt: skip
SCALARS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["team-pandas", "databricksruntime/standard:15.4-LTS", "r.io/a/b", "pandas==2.2.2", "TZ"]),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=12,
)
ENTRY = st.dictionaries(KEYS, VALUES, max_size=8)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "image": st.one_of(st.lists(ENTRY, max_size=3), VALUES),
        "registry": st.one_of(st.lists(ENTRY, max_size=2), VALUES),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT)
def test_any_document_gives_typed_specs_or_field_errors(document: dict[str, object]) -> None:
    text = tomli_w.dumps(document)
    assert tomllib.loads(text) is not None
    try:
        catalog = parse_catalog(text, "catalog.toml")
    except (InvalidInput, InvalidInputs):
        return
    for spec in catalog.images:
        assert isinstance(spec, ImageSpec)
        assert all(isinstance(getattr(spec, f), str) for f in ("name", "base", "repository", "tag", "immutable_tag"))
        assert all(isinstance(x, str) for x in (*spec.pip, *spec.apt))
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in spec.env)
        assert all(v is None or isinstance(v, str) for v in (spec.registry, spec.schedule, spec.owner))
    for reg in catalog.registries:
        assert isinstance(reg, RegistrySpec) and isinstance(reg.allow_plaintext_password, bool)
        texts = (reg.username, reg.password_env, reg.cluster_username, reg.cluster_password_secret)
        assert all(v is None or isinstance(v, str) for v in texts)


def test_the_nesting_limit_leaves_room_for_real_catalogs() -> None:
    assert MAX_NESTING >= 4
    parse_catalog(image("env = { TZ = 'UTC' }\npip = ['pandas==2.2.2']"), "catalog.toml")
