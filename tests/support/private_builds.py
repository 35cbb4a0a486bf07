"""Real builds on the real Python base through the bot's own Builder: a private HTTPS index (the session CA,
basic auth) with one test package, the base pushed to the test registry, and Services configured only by the
README's variables. Fixtures: `private_index`, `build_proxy`, `pushed_python_base` (tests/integration/conftest.py).
"""

from __future__ import annotations

import os

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import registry_from_dict
from bot.services import Services
from tests.support.proxy import ForwardProxy
from tests.support.servers import PackageIndex
from tests.support.tls import TestCA

PACKAGE = "dcs-private-pkg"
MODULE = "dcs_private_pkg"
VERSION = "1.4.2"
PAYLOAD = 3 * 1024 * 1024  # random bytes: incompressible, so sizes show what was shipped
BASE_PYTHON = "/databricks/python3/bin/python"  # the test base is an own base: it says where its Python is


def make_services(db: str, registry, environ: dict[str, str]) -> Services:
    """Services over `db` with the test registry (its password in a DCS_SECRET_ variable) and `environ`."""
    env = {"DCS_DB": db, "DCS_SECRET_TEST_REGISTRY": registry.password, **environ}
    if os.environ.get("DOCKER_HOST"):
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    services = build_services(load_config(env))
    services.store.add_registry(
        registry_from_dict(
            {
                "name": "local",
                "host": registry.host,
                "username": registry.username,
                "password_env": "DCS_SECRET_TEST_REGISTRY",
                "cluster_password_secret": "{{secrets/dcs/test-registry}}",
            }
        )
    )
    return services


def settings_env(
    index: PackageIndex, proxy: ForwardProxy | None, ca: TestCA, *, with_ca: bool = True
) -> dict[str, str]:
    """Exactly the README's "Corporate networks" variables."""
    assert index.auth is not None
    env = {
        "DCS_PIP_INDEX_URL": index.index_url,
        "DCS_PIP_USERNAME": index.auth[0],
        "DCS_PIP_PASSWORD_ENV": "DCS_SECRET_PRIVATE_INDEX",
        "DCS_SECRET_PRIVATE_INDEX": index.auth[1],
        "DCS_BUILD_NETWORK": "host",  # the index and the proxy listen on the host's 127.0.0.1
    }
    if proxy is not None:
        env["DCS_BUILD_HTTPS_PROXY"] = proxy.url
    if with_ca:
        env["DCS_PIP_CA_BUNDLE"] = str(ca.pem_path)
    return env
