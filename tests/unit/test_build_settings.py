"""Build settings: validation (field, value, fix), levels (environment < [build] < image), credentials stay with
their own index, the catalog file round-trips, a bad environment stops the bot at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.domain.build_settings import (
    BuildSettings,
    check_layers,
    effective_settings,
    settings_from_dict,
    settings_from_environment,
)
from bot.domain.catalog import dump_catalog, image_from_dict, parse_catalog
from bot.domain.dockerfile import spec_hash
from bot.errors import ConfigError, InvalidInput, InvalidInputs
from bot.services import Services

INDEX = "https://pypi.corp.example/simple/"
MINIMAL = {"name": "team", "base": "databricksruntime/standard:15.4-LTS", "repository": "127.0.0.1:5000/team"}


@pytest.mark.parametrize(
    ("data", "field", "reason", "fix"),
    [
        ({"pip_index_url": "https://u:pw@pypi.corp/simple/"}, "build.pip_index_url", "carries credentials", "pip_user"),
        ({"pip_index_url": "ftp://pypi.corp/simple/"}, "build.pip_index_url", "is not an http(s) index URL", "https://"),
        ({"pip_index_url": "https://pypi.corp/simple/?a=1"}, "build.pip_index_url", "has a query", "https://"),
        ({"pip_index_url": "https://pypi.corp/simple/\nx"}, "build.pip_index_url", "has a query", "https://"),
        ({"pip_extra_index_urls": ["https://ok/simple/", "https://x y/"]}, "build.pip_extra_index_urls", "has", ""),
        ({"http_proxy": "http://proxy.corp:99999"}, "build.http_proxy", "has an invalid port", ""),
        ({"https_proxy": "http://user:pw@proxy.corp:3128"}, "build.https_proxy", "carries credentials", ""),
        ({"no_proxy": "localhost,$(id)"}, "build.no_proxy", "is not a host name", "CIDRs"),
        ({"pip_trusted_hosts": ["pypi corp"]}, "build.pip_trusted_hosts", "is not a host name", ""),
        ({"network": "none"}, "build.network", "is not a build network", "bridge, host"),
        ({"ca_bundle": "certs/ca.pem"}, "build.ca_bundle", "is not an absolute file path", "PEM"),
        ({"ca_bundle": "/etc/../root/.ssh/id_rsa"}, "build.ca_bundle", "is not an absolute file path", ""),
        ({"install_ca": "maybe"}, "build.install_ca", "is not true or false", "true or false"),
        ({"pip_username": "u", "pip_password_env": "SLACK"}, "build.pip_password_env", "is not a secret", "DCS_"),
        ({"pip_password_env": "DCS_SECRET_PIP"}, "build.pip_username", "is missing", "username"),
        ({"pip_password": "hunter2"}, "build.pip_password", "would store a secret", "pip_password_env"),
        ({"colour": "red"}, "build.colour", "is not a known build setting", "pip_index_url"),
    ],
)  # fmt: skip
def test_rejections_name_field_value_and_fix(data: dict[str, Any], field: str, reason: str, fix: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        settings_from_dict(data)
    assert caught.value.field == field
    assert caught.value.reason.startswith(reason)
    assert fix in caught.value.fix
    assert "hunter2" not in caught.value.message and "pw@" not in caught.value.message


def test_every_problem_of_a_table_is_reported() -> None:
    with pytest.raises(InvalidInputs) as caught:
        settings_from_dict({"network": "x", "apt_mirror": "file:///srv"})
    assert sorted(p.field for p in caught.value.problems) == ["build.apt_mirror", "build.network"]


def test_a_valid_table_round_trips() -> None:
    table = {
        "pip_index_url": INDEX,
        "pip_extra_index_urls": ["https://extra.corp/simple/"],
        "pip_username": "builder",
        "pip_password_env": "DCS_SECRET_PIP",
        "pip_trusted_hosts": ["legacy.corp:8080"],
        "ca_bundle": "/etc/ssl/corp-ca.pem",
        "install_ca": True,
        "http_proxy": "http://proxy.corp:3128",
        "https_proxy": "http://proxy.corp:3128",
        "no_proxy": "localhost,.corp.example,10.0.0.0/8",
        "network": "host",
        "apt_mirror": "https://mirror.corp/",
    }
    settings = settings_from_dict(table)
    assert settings.to_dict() == table | {"apt_mirror": "https://mirror.corp"}
    assert settings_from_dict(settings.to_dict()) == settings


def test_the_environment_names_its_variables() -> None:
    env = {
        "DCS_PIP_INDEX_URL": INDEX,
        "DCS_PIP_EXTRA_INDEX_URLS": "https://a.corp/simple/, https://b.corp/simple/",
        "DCS_PIP_USERNAME": "builder",
        "DCS_PIP_PASSWORD_ENV": "DCS_SECRET_PIP",
        "DCS_BUILD_NETWORK": "host",
        "DCS_BUILD_INSTALL_CA": "false",
    }
    settings = settings_from_environment(env)
    assert settings.pip_extra_index_urls == ("https://a.corp/simple/", "https://b.corp/simple/")
    assert (settings.pip_username, settings.pip_password_env, settings.network) == ("builder", "DCS_SECRET_PIP", "host")
    assert settings.install_ca is False
    with pytest.raises(InvalidInput) as caught:
        settings_from_environment({"DCS_PIP_USERNAME": "u", "DCS_PIP_PASSWORD_ENV": "SLACK_BOT_TOKEN"})
    assert caught.value.field == "DCS_PIP_PASSWORD_ENV"


def test_a_bad_environment_stops_the_bot_at_start_up(tmp_path: Path) -> None:
    config = load_config({"DCS_DB": str(tmp_path / "x.db"), "DCS_BUILD_NETWORK": "overlay"})
    with pytest.raises(ConfigError) as caught:
        Services.from_config(config)
    assert caught.value.problems == ["DCS_BUILD_NETWORK: 'overlay' is not a build network. Use one of: bridge, host."]
    assert not (tmp_path / "x.db").exists()


def test_levels_override_field_by_field() -> None:
    env = BuildSettings(pip_index_url=INDEX, https_proxy="http://proxy.corp:3128", network="bridge")
    catalog = BuildSettings(no_proxy="localhost")
    image = BuildSettings(https_proxy="http://other-proxy.corp:3128")
    merged = effective_settings(env, catalog, image)
    assert merged.pip_index_url == INDEX
    assert merged.https_proxy == "http://other-proxy.corp:3128"
    assert (merged.no_proxy, merged.network) == ("localhost", "bridge")


def test_credentials_never_follow_the_index_to_another_host() -> None:
    env = BuildSettings(pip_index_url=INDEX, pip_username="builder", pip_password_env="DCS_SECRET_PIP")
    # another host without credentials of its own: the inherited ones are dropped, not sent there
    elsewhere = effective_settings(env, BuildSettings(), BuildSettings(pip_index_url="https://evil.example/simple/"))
    assert (elsewhere.pip_username, elsewhere.pip_password_env) == (None, None)
    # another path on the same host keeps them
    same = effective_settings(
        env, BuildSettings(pip_index_url="https://pypi.corp.example/team/simple/"), BuildSettings()
    )
    assert same.pip_password_env == "DCS_SECRET_PIP"
    # a port is part of the host
    port = effective_settings(
        env, BuildSettings(pip_index_url="https://pypi.corp.example:8443/simple/"), BuildSettings()
    )
    assert port.pip_password_env is None


def test_layer_rules() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_layers(BuildSettings(), ("build.", BuildSettings(pip_username="u", pip_password_env="DCS_SECRET_X")))
    assert (caught.value.field, caught.value.reason) == ("build.pip_password_env", "has no index to go to")
    with pytest.raises(InvalidInput) as caught:
        check_layers(BuildSettings(), ("image[x].build.", BuildSettings(network="host")))
    assert "DCS_BUILD_NETWORK=host" in caught.value.fix
    check_layers(BuildSettings(network="host"), ("build.", BuildSettings(network="host")))


def test_catalog_build_tables_round_trip_and_name_their_fields() -> None:
    text = f"""
[build]
pip_index_url = "{INDEX}"
https_proxy = "http://proxy.corp:3128"

[[image]]
name = "team"
base = "databricksruntime/standard:15.4-LTS"
repository = "127.0.0.1:5000/team"
build = {{ no_proxy = "localhost", install_ca = true, ca_bundle = "/etc/ssl/corp.pem" }}
"""
    catalog = parse_catalog(text)
    assert catalog.build.pip_index_url == INDEX
    assert catalog.images[0].build.install_ca is True
    again = parse_catalog(dump_catalog(catalog))
    assert again == catalog
    assert dump_catalog(again) == dump_catalog(catalog)
    with pytest.raises(InvalidInputs) as caught:
        parse_catalog(text.replace('"localhost"', '"local host"').replace("http://proxy", "ftp://proxy"))
    assert sorted(p.field for p in caught.value.problems) == ["build.https_proxy", "image[team].build.no_proxy"]


def test_what_changes_the_image_changes_the_spec_hash() -> None:
    plain = image_from_dict(MINIMAL)
    proxied = image_from_dict(MINIMAL | {"build": {"https_proxy": "http://proxy.corp:3128", "network": "bridge"}})
    indexed = image_from_dict(MINIMAL | {"build": {"pip_index_url": INDEX}})
    with_ca = image_from_dict(MINIMAL | {"build": {"install_ca": True, "ca_bundle": "/etc/ssl/corp.pem"}})
    assert spec_hash(proxied) == spec_hash(plain)
    assert len({spec_hash(plain), spec_hash(indexed), spec_hash(with_ca)}) == 3


def test_import_stores_the_build_table_and_export_writes_it_back(tmp_path: Path) -> None:
    from bot.ops.catalog import export_catalog, import_catalog

    services = Services.from_config(load_config({"DCS_DB": str(tmp_path / "dcs.db")}))
    text = f'[build]\npip_index_url = "{INDEX}"\n\n[[image]]\nname = "team"\nbase = "{MINIMAL["base"]}"\n'
    text += f'repository = "{MINIMAL["repository"]}"\nbuild = {{ no_proxy = "localhost" }}\n'
    import_catalog(services, text, source="catalog.toml", prune=False, actor="test")
    assert services.store.catalog_build_settings() == BuildSettings(pip_index_url=INDEX)
    exported = export_catalog(services)
    assert parse_catalog(exported) == parse_catalog(text)
    # a file without [build] keeps the stored one, unless it replaces the whole catalog (--prune)
    import_catalog(services, text.split("\n\n", 1)[1], source="c.toml", prune=False, actor="test")
    assert services.store.catalog_build_settings().pip_index_url == INDEX
    import_catalog(services, text.split("\n\n", 1)[1], source="c.toml", prune=True, actor="test")
    assert services.store.catalog_build_settings() == BuildSettings()
    # host networking from a catalog needs the operator's opt-in
    with pytest.raises(InvalidInput) as caught:
        import_catalog(
            services, text.replace("no_proxy", 'network = "host", no_proxy'), source="c.toml", prune=False, actor="t"
        )
    assert caught.value.field == "image[team].build.network"
