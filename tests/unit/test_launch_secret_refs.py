"""Launch values cannot reference Databricks secrets (the cluster would resolve them with the bot's rights),
except whole values naming a scope the operator allowed; the bot itself writes only the registry's reference."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import load_config
from bot.domain.clusterspec import LaunchRequest, parse_launch_args, plan_launch
from bot.domain.secret_refs import check_body, mentions_secret
from bot.errors import ConfigError, InvalidInput, InvalidInputs
from tests.unit.test_clusterspec import ctx, request, source

REF = "{{secrets/prod/db-password}}"


def fields_refused(exc: pytest.ExceptionInfo[Exception]) -> dict[str, InvalidInput]:
    found = exc.value.problems if isinstance(exc.value, InvalidInputs) else [exc.value]  # type: ignore[attr-defined]
    return {p.field: p for p in found if "references a Databricks secret" in p.reason}


ATTACKS = [
    (dict(spark_conf=(("spark.x", REF),)), "spark_conf.spark.x"),
    (dict(spark_conf=(("spark.x", f"jdbc:pw={REF}"),)), "spark_conf.spark.x"),
    (dict(spark_conf=(("spark.x", "{{ secrets/prod/db-password }}"),)), "spark_conf.spark.x"),
    (dict(spark_conf=(("spark.x", "{{SECRETS/prod/db-password}}"),)), "spark_conf.spark.x"),
    (dict(spark_env_vars=(("DB_PW", REF),)), "spark_env_vars.DB_PW"),
    (dict(tags=(("team", REF),)), "tags.team"),
    (dict(init_scripts=(f"/Volumes/c/s/v/{REF}.sh",)), "init_scripts[0]"),
    (dict(cluster_name=f"dcs {REF}"), "name"),
    (dict(runtime=REF), "runtime"),
    (dict(node_type=REF), "node_type"),
]


@pytest.mark.parametrize(("changes", "field"), ATTACKS)
def test_every_launch_value_refuses_secret_references(changes: dict[str, object], field: str) -> None:
    """Before: `spark.x={{secrets/scope/key}}` reached clusters/create unchanged."""
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        plan_launch(request(**changes), source(), ctx())
    refused = fields_refused(caught)
    assert field in refused, [str(p) for p in refused.values()]
    assert "DCS_LAUNCH_SECRET_SCOPES" in refused[field].fix or "only for Spark conf" in refused[field].fix


def test_an_allowed_scope_may_be_a_whole_spark_conf_or_env_value() -> None:
    allowed = replace(ctx(), secret_scopes=frozenset({"prod"}))
    plan = plan_launch(request(spark_conf=(("spark.x", REF),), spark_env_vars=(("DB_PW", REF),)), source(), allowed)
    assert plan.body["spark_conf"]["spark.x"] == REF
    assert plan.body["spark_env_vars"] == {"DB_PW": REF}
    # … but not another scope, not inside other text, not in tags or names
    for changes in (
        dict(spark_conf=(("spark.x", "{{secrets/other/key}}"),)),
        dict(spark_conf=(("spark.x", f"prefix-{REF}"),)),
        dict(tags=(("team", REF),)),
        dict(cluster_name=REF),
    ):
        with pytest.raises((InvalidInput, InvalidInputs)) as caught:
            plan_launch(request(**changes), source(), allowed)
        assert fields_refused(caught), changes


def test_the_only_reference_the_bot_writes_is_the_registry_password_secret() -> None:
    plan = plan_launch(request(), source(), ctx())
    assert plan.body["docker_image"]["basic_auth"]["password"] == "{{secrets/dcs/acr}}"
    found = [v for v in _strings(plan.body) if mentions_secret(v)]
    assert found == ["{{secrets/dcs/acr}}"]


def test_a_finished_body_is_checked_again() -> None:
    body = {"docker_image": {"url": "x", "basic_auth": {"username": "u", "password": "{{secrets/dcs/acr}}"}}}
    check_body(body, frozenset(), "{{secrets/dcs/acr}}")
    with pytest.raises(InvalidInput) as caught:
        check_body({**body, "cluster_log_conf": {"s3": {"destination": REF}}}, frozenset(), "{{secrets/dcs/acr}}")
    assert caught.value.field == "cluster_log_conf.s3.destination"
    with pytest.raises(InvalidInput):  # another registry's reference is not "its own"
        check_body(body, frozenset(), "{{secrets/dcs/other}}")
    with pytest.raises(InvalidInput):  # a key is never resolved
        check_body({"spark_conf": {REF: "x"}}, frozenset({"prod"}), None)


def test_env_words_and_cli_style_pairs_parse() -> None:
    parsed = parse_launch_args("team-pandas", ["runtime=15.4.x-scala2.12", "env.TZ=UTC", f"env.DB_PW={REF}"])
    assert parsed.spark_env_vars == (("TZ", "UTC"), ("DB_PW", REF))
    plan = plan_launch(replace(parsed, node_type="m5d.large", spark_env_vars=(("TZ", "UTC"),)), source(), ctx())
    assert plan.body["spark_env_vars"] == {"TZ": "UTC"}
    with pytest.raises(InvalidInput) as caught:
        plan_launch(LaunchRequest(**{**vars(request()), "spark_env_vars": (("1BAD", "x"),)}), source(), ctx())
    assert caught.value.field == "spark_env_vars.1BAD"


def test_allowed_scopes_come_from_the_environment() -> None:
    assert load_config({"DCS_LAUNCH_SECRET_SCOPES": "prod, team-data"}).launch_secret_scopes == {"prod", "team-data"}
    assert load_config({}).launch_secret_scopes == frozenset()
    with pytest.raises(ConfigError, match="DCS_LAUNCH_SECRET_SCOPES"):
        load_config({"DCS_LAUNCH_SECRET_SCOPES": "prod,{{x}}"})


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_a_registry_password_secret_comes_only_from_scopes_set_aside_for_it(tmp_db: str) -> None:
    """A catalog entry naming {{secrets/prod/db-password}} as its cluster password would make clusters resolve
    that secret with the bot's rights and send it to the registry host the catalog names."""
    from bot.compose import build_services
    from bot.domain.catalog import RegistrySpec
    from bot.ops.catalog import add_registry, import_catalog

    services = build_services(load_config({"DCS_DB": tmp_db}))
    entry = {"name": "evil", "host": "evil.example.com", "username": "x", "cluster_password_secret": REF}
    with pytest.raises(InvalidInput) as caught:
        add_registry(services, entry, actor="U1")
    assert (caught.value.field, caught.value.value) == ("cluster_password_secret", REF)
    assert "DCS_REGISTRY_SECRET_SCOPES" in caught.value.fix
    text = '[[registry]]\nname = "evil"\nhost = "evil.example.com"\nusername = "x"\n'
    with pytest.raises(InvalidInput) as caught:
        import_catalog(
            services, text + f'cluster_password_secret = "{REF}"\n', source="pr.toml", prune=False, actor="ci"
        )
    assert caught.value.field == "registry[0].cluster_password_secret"
    assert services.store.list_registries() == []
    add_registry(services, {**entry, "cluster_password_secret": "{{secrets/dcs/evil}}"}, actor="U1")  # the default

    stored = RegistrySpec("acr", "myacr.azurecr.io", "sp-id", None, None, REF)  # e.g. from an older database
    with pytest.raises((InvalidInput, InvalidInputs)) as launch:
        plan_launch(request(), replace(source(), registry=stored), ctx())
    assert "registry[acr].cluster_password_secret" in str(launch.value)
    allowed = replace(ctx(), registry_secret_scopes=frozenset({"prod"}))
    plan = plan_launch(request(), replace(source(), registry=stored), allowed)
    assert plan.body["docker_image"]["basic_auth"]["password"] == REF
    scopes = load_config({"DCS_REGISTRY_SECRET_SCOPES": "prod,dcs"}).registry_secret_scopes
    assert scopes == {"prod", "dcs"} and load_config({}).registry_secret_scopes == {"dcs"}
