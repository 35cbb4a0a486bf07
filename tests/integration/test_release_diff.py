"""What changed inside, from real inventories: a base moves under an image (a Debian package upgraded in the
dpkg database, a Python distribution installed), the image is built on each, and `dcs diff` / the rebuild
notice name exactly those changes."""

from __future__ import annotations

import json
import re

import pytest

from bot.domain.catalog import image_from_dict, image_to_dict
from bot.ops.build import Builder
from bot.ops.diff import build_changes
from tests.integration.test_inventory import dcs, services_for
from tests.support.images import run_shell
from tests.support.namespace import local

SITE = "/databricks/python3/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def moved_base(engine, python_base, python_variant):
    """python_base, and the same with sudo upgraded (its dpkg record) and dcs-demo 1.0 installed."""
    status = run_shell(engine, python_base, "cat /var/lib/dpkg/status").stdout
    old = re.search(r"Package: sudo\n(?:[^\n]+\n)*?Version: (\S+)", status).group(1)
    new = old + "+dcs1"
    patched = re.sub(r"(Package: sudo\n(?:[^\n]+\n)*?Version: )\S+", lambda m: m.group(1) + new, status, count=1)
    metadata = "Metadata-Version: 2.1\nName: dcs-demo\nVersion: 1.0\n"
    ref = python_variant(
        "python-base-moved",
        files={"/var/lib/dpkg/status": patched, f"{SITE}/dcs_demo-1.0.dist-info/METADATA": metadata},
    )
    return ref, old, new


def test_dcs_diff_names_the_packages_that_moved_with_the_base(python_base, moved_base, tmp_path):
    ref, old, new = moved_base
    db = str(tmp_path / "dcs.db")
    services = services_for(db)
    spec = image_from_dict({"name": "diffed", "base": python_base, "repository": local("diff/diffed")})
    services.store.add_image(spec)
    first = Builder(services).build("diffed")
    assert first.ok, first.error
    services.store.add_image(image_from_dict({**image_to_dict(spec), "base": ref}), replace=True)
    second = Builder(services).build("diffed")
    assert second.ok, second.error

    changes = build_changes(services, "diffed", first.build.id, second.build.id).diff
    assert changes.os.changed == {"sudo": (old, new)} and not changes.os.added and not changes.os.removed
    assert changes.python.added == {"dcs-demo": "1.0"} and not changes.python.changed
    assert changes.python_version is None
    assert changes.summary() == (f"1 OS package updated (sudo {old} → {new}) · pip: 1 added (dcs-demo)")

    shown = dcs("diff", "diffed", str(first.build.id), str(second.build.id), db=db)
    assert shown.returncode == 0, shown.stderr
    assert changes.summary() in shown.stdout
    assert f"~ sudo {old} → {new}" in shown.stdout and "+ dcs-demo 1.0" in shown.stdout
    data = json.loads(dcs("diff", "diffed", str(first.build.id), str(second.build.id), "--json", db=db).stdout)
    assert data["os_packages"]["changed"] == {"sudo": {"old": old, "new": new}}
    assert data["python_packages"]["added"] == {"dcs-demo": "1.0"}
    one = dcs("diff", "diffed", str(first.build.id), db=db)
    assert one.returncode == 2 and "two build ids" in one.stderr
