"""Trust boundaries of the catalog: which variables an entry may name, and which host gets its password.

Catalog files come from pull requests and Slack admins do not own the bot's keys. Every way in (import, add,
update, Slack) gets the same answer, and the bot checks again when it reads a password.
"""

from __future__ import annotations

import json

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import RegistrySpec, parse_catalog
from bot.errors import CredentialsRefused, InvalidInput, InvalidInputs
from bot.ops.catalog import (
    add_image,
    add_registry,
    import_catalog,
    list_registries,
    registry_migrations,
    update_image,
)
from bot.services import Services

ACR = '[[registry]]\nname = "acr"\nhost = "myacr.azurecr.io"\nusername = "sp"\n'
IMAGE = '[[image]]\nname = "pandas"\nbase = "databricksruntime/standard:15.4-LTS"\n'


def problems_of(exc: pytest.ExceptionInfo[Exception]) -> list[InvalidInput]:
    err = exc.value
    return list(err.problems) if isinstance(err, InvalidInputs) else [err]  # type: ignore[list-item]


# ------------------------------------------------------------ bad catalogs, a table of examples

BOT_SECRETS = [
    "DATABRICKS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DOCKERHUB_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "DCS_DB",
    "AWS_SECRET_ACCESS_KEY",
    "PATH",
]


@pytest.mark.parametrize(
    ("text", "field", "value", "reason"),
    [
        *[
            (
                ACR + f'password_env = "{name}"\n',
                "registry[0].password_env",
                name,
                "is not a secret variable the catalog may name: only variables starting with DCS_SECRET_ can be",
            )
            for name in BOT_SECRETS
        ],
        (
            ACR + 'password_env = "dcs_secret_acr"\n',
            "registry[0].password_env",
            "dcs_secret_acr",
            "only variables starting with DCS_SECRET_",
        ),
        (
            ACR + 'password_env = "DCS_SECRET_"\n',
            "registry[0].password_env",
            "DCS_SECRET_",
            "only variables starting with DCS_SECRET_",
        ),
        # the registry is chosen by name: its password must not go to the image's other host
        (
            ACR + 'password_env = "DCS_SECRET_ACR"\n' + IMAGE + 'repository = "evil.example.com/x"\nregistry = "acr"\n',
            "image[pandas].repository",
            "evil.example.com/x",
            "is on evil.example.com, but registry acr is for myacr.azurecr.io (its password goes only there)",
        ),
        (
            ACR + 'password_env = "DCS_SECRET_ACR"\n' + IMAGE + 'repository = "team/pandas"\nregistry = "acr"\n',
            "image[pandas].repository",
            "team/pandas",
            "is on docker.io, but registry acr is for myacr.azurecr.io",
        ),
        (
            ACR + 'password_env = "DCS_SECRET_ACR"\n' + IMAGE + 'repository = "myacr.azurecr.io.evil.example/x"\n'
            'registry = "acr"\n',
            "image[pandas].repository",
            "myacr.azurecr.io.evil.example/x",
            "is on myacr.azurecr.io.evil.example, but registry acr is for myacr.azurecr.io",
        ),
        (
            ACR + 'password_env = "DCS_SECRET_ACR"\n' + IMAGE + 'repository = "myacr.azurecr.io:444/x"\n'
            'registry = "acr"\n',
            "image[pandas].repository",
            "myacr.azurecr.io:444/x",
            "is on myacr.azurecr.io:444, but registry acr is for myacr.azurecr.io",
        ),
    ],
)
def test_bad_catalogs_are_refused_naming_field_value_and_rule(text: str, field: str, value: str, reason: str) -> None:
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        parse_catalog(text)
    found = [p for p in problems_of(caught) if p.field == field]
    assert found, [p.message for p in problems_of(caught)]
    assert found[0].value == value
    assert reason in found[0].reason


def test_the_refusal_says_which_variable_to_rename_to() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_catalog(ACR + 'password_env = "ACR_PASSWORD"\n')
    assert "rename ACR_PASSWORD to DCS_SECRET_ACR_PASSWORD" in caught.value.fix
    assert "registry acr" in caught.value.fix


@pytest.mark.parametrize(
    ("registry_host", "repository"),
    [
        ("myacr.azurecr.io", "myacr.azurecr.io/team/pandas"),
        ("MyAcr.AzureCR.io", "myacr.azurecr.io/team/pandas"),
        ("docker.io", "team/pandas"),
        ("index.docker.io", "docker.io/team/pandas"),
        ("registry-1.docker.io", "team/pandas"),
        ("127.0.0.1:5000", "127.0.0.1:5000/team/pandas"),
    ],
)
def test_a_repository_on_the_registry_host_is_accepted(registry_host: str, repository: str) -> None:
    text = (
        f'[[registry]]\nname = "r"\nhost = "{registry_host}"\nusername = "u"\npassword_env = "DCS_SECRET_R"\n'
        + IMAGE
        + f'repository = "{repository}"\nregistry = "r"\n'
    )
    catalog = parse_catalog(text)
    assert catalog.images[0].registry == "r"
    assert catalog.registries[0].password_env == "DCS_SECRET_R"


# ------------------------------------------------------------ every other way in


@pytest.fixture
def services(tmp_db: str) -> Services:
    services = build_services(load_config({"DCS_DB": tmp_db, "DCS_SECRET_ACR": "acr-pw", "DATABRICKS_TOKEN": "dapi1"}))
    add_registry(
        services,
        {"name": "acr", "host": "myacr.azurecr.io", "username": "sp", "password_env": "DCS_SECRET_ACR"},
        actor="test",
    )
    return services


@pytest.mark.parametrize("name", BOT_SECRETS)
def test_registry_add_refuses_the_bots_own_variables(services: Services, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        add_registry(
            services, {"name": "evil", "host": "evil.example.com", "username": "x", "password_env": name}, actor="t"
        )
    assert (caught.value.field, caught.value.value) == ("password_env", name)
    assert [r.name for r in services.store.list_registries()] == ["acr"]


def test_image_add_and_update_keep_the_repository_on_the_registry_host(services: Services) -> None:
    base = {"name": "pandas", "base": "databricksruntime/standard:15.4-LTS", "registry": "acr"}
    with pytest.raises(InvalidInput) as caught:
        add_image(services, base | {"repository": "evil.example.com/x"}, actor="U0SLACK")
    assert (caught.value.field, caught.value.value) == ("repository", "evil.example.com/x")
    assert "registry acr is for myacr.azurecr.io" in caught.value.reason
    assert services.store.image_names() == []

    add_image(services, base | {"repository": "myacr.azurecr.io/team/pandas"}, actor="U0SLACK")
    with pytest.raises(InvalidInput) as caught:
        update_image(services, "pandas", {"repository": "evil.example.com/x"}, actor="U0SLACK")
    assert caught.value.field == "repository"
    assert services.store.get_image("pandas").repository == "myacr.azurecr.io/team/pandas"


def test_moving_a_registry_to_another_host_is_refused_while_images_name_it(services: Services) -> None:
    add_image(
        services,
        {"name": "pandas", "base": "ubuntu:22.04", "repository": "myacr.azurecr.io/p", "registry": "acr"},
        actor="t",
    )
    moved = {"name": "acr", "host": "evil.example.com", "username": "sp", "password_env": "DCS_SECRET_ACR"}
    with pytest.raises(InvalidInput) as caught:
        add_registry(services, moved, actor="t")
    assert (caught.value.field, caught.value.value) == ("host", "evil.example.com")
    assert "image pandas" in caught.value.reason
    assert services.store.get_registry("acr").host == "myacr.azurecr.io"
    # the same through a catalog file that leaves the image out (no prune): nothing of the file is written
    text = '[[registry]]\nname = "acr"\nhost = "evil.example.com"\nusername = "sp"\npassword_env = "DCS_SECRET_ACR"\n'
    with pytest.raises(InvalidInput):
        import_catalog(services, text, source="pr.toml", prune=False, actor="ci")
    assert services.store.get_registry("acr").host == "myacr.azurecr.io"


# ------------------------------------------------------------ entries stored before the rule


def _store_legacy(services: Services, spec: dict[str, object]) -> None:
    """A row as an older version wrote it (its validation allowed any variable name)."""
    services.store.db["registries"].insert(
        {"name": spec["name"], "spec": json.dumps(spec), "created_at": "2025", "updated_at": "2025"}
    )


def test_an_entry_stored_before_the_rule_gets_a_migration_message_and_its_variable_is_never_read(
    services: Services,
) -> None:
    _store_legacy(
        services,
        {"name": "old", "host": "old.example.com", "username": "u", "password_env": "DATABRICKS_TOKEN"},
    )
    entries = {e.spec.name: e for e in list_registries(services)}  # the catalog still loads
    assert entries["acr"].migration is None and entries["acr"].password_set
    old = entries["old"]
    assert not old.password_set
    assert old.migration is not None
    for words in ("Registry 'old'", "password_env = 'DATABRICKS_TOKEN'", "DCS_SECRET_DATABRICKS_TOKEN"):
        assert words in old.migration
    assert "dcs registry add old --host old.example.com --username u --password-env DCS_SECRET_DATABRICKS_TOKEN" in (
        old.migration
    )
    assert registry_migrations(services) == [old.migration]
    # at use time: refused with the same message, the token is never turned into credentials
    with pytest.raises(CredentialsRefused) as caught:
        services.credentials(old.spec, "old.example.com")
    assert "DCS_SECRET_DATABRICKS_TOKEN" in caught.value.message
    with pytest.raises(CredentialsRefused):
        services.credentials_for_host("old.example.com")
    assert "dapi1" not in caught.value.message
    # and a file exported from it does not import until it is renamed
    from bot.ops.catalog import export_catalog

    with pytest.raises(InvalidInput) as again:
        parse_catalog(export_catalog(services))
    assert again.value.value == "DATABRICKS_TOKEN"


def test_reading_a_password_checks_the_rule_and_the_host_again(services: Services) -> None:
    acr = services.store.get_registry("acr")
    creds = services.credentials(acr, "myacr.azurecr.io")
    assert creds is not None and creds.password == "acr-pw"
    with pytest.raises(CredentialsRefused) as caught:
        services.credentials(acr, "evil.example.com")
    assert "only to the registry's own host" in caught.value.message
    assert "acr-pw" not in caught.value.message
    # a spec built in code (not through validation) still cannot read the bot's own token
    forged = RegistrySpec("x", "evil.example.com", "u", "DATABRICKS_TOKEN")
    with pytest.raises(CredentialsRefused):
        services.credentials(forged, "evil.example.com")
    with pytest.raises(InvalidInput):
        services.config.secret("DATABRICKS_TOKEN")
    assert services.config.secret("DCS_SECRET_ACR") == "acr-pw"


def test_docker_hub_credentials_only_for_docker_hub_hosts(tmp_db: str) -> None:
    services = build_services(
        load_config({"DCS_DB": tmp_db, "DOCKERHUB_USERNAME": "bob", "DOCKERHUB_TOKEN": "dckr_pat_x"})
    )
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        creds = services.credentials_for_host(host)
        assert creds is not None and creds.password == "dckr_pat_x"
    for host in ("evil.example.com", "docker.io.evil.example", "127.0.0.1:5000", "myacr.azurecr.io"):
        assert services.credentials_for_host(host) is None


def test_a_launch_never_hands_a_registry_password_to_a_cluster_pulling_from_another_host(services: Services) -> None:
    """Checked at use time too: a stored image whose repository left its registry's host (an older database)."""
    from bot.domain.catalog import image_from_dict
    from bot.domain.clusterspec import ImageSource
    from bot.ops.launch import Launcher

    moved = RegistrySpec("acr", "myacr.azurecr.io", "sp", "DCS_SECRET_ACR", None, None, allow_plaintext_password=True)
    spec = image_from_dict({"name": "p", "base": "ubuntu:22.04", "repository": "evil.example.com/p"})
    source = ImageSource(spec, 1, "sha256:" + "a" * 64, moved)
    with pytest.raises(CredentialsRefused) as caught:
        Launcher(services).context(
            source, requester="U1", user_email="a@example.com", request_key="k", check_workspace=False
        )
    assert "evil.example.com" in caught.value.message and "acr-pw" not in caught.value.message
    ok = ImageSource(
        image_from_dict({**image_to_dict_min(), "repository": "myacr.azurecr.io/p"}), 1, source.digest, moved
    )
    context = Launcher(services).context(
        ok, requester="U1", user_email="a@example.com", request_key="k", check_workspace=False
    )
    assert context.plaintext_password == "acr-pw"


def image_to_dict_min() -> dict[str, str]:
    return {"name": "p", "base": "ubuntu:22.04"}
