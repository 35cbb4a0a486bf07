"""`dcs catalog import` as CI runs it: bad files exit 2 with field errors and no traceback, and an import killed
half-way (a real SIGKILL between two writes) leaves nothing of the file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.domain.catalog import MAX_CATALOG_BYTES
from bot.store import Store
from tests.support.cli import dcs_command


def catalog(images: int) -> str:
    entries = "".join(
        f'[[image]]\nname = "img-{i}"\nbase = "databricksruntime/standard:15.4-LTS"\nrepository = "r.io/t/img-{i}"\n\n'
        for i in range(images)
    )
    return f'[[registry]]\nname = "acr"\nhost = "r.io"\n\n{entries}'


def run_dcs(tmp_path: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "DATABRICKS_"))}
    env["DCS_DB"] = str(tmp_path / "dcs.db")
    return subprocess.run(
        [*dcs_command(), *args], env=env, input=stdin, capture_output=True, timeout=120, check=False, cwd=tmp_path
    )


BAD_FILES = [
    ("section-shape", b"image = 5\nregistry = [1]\n", ["image: 5 is a number", "registry[0]: 1 is a number"]),
    ("entry-shape", b'image = [1, "x"]\n', ["image[0]", "image[1]"]),
    (
        "field-types",
        b'[[image]]\nname = "a"\nbase = ["x"]\nrepository = { a = 1 }\npip = [1, ["p"]]\n'
        b'[[registry]]\nname = "r"\nhost = "r.io"\nusername = 5\n',
        ["image[a].base", "image[a].repository", "image[a].pip", "registry[0].username"],
    ),
    ("non-utf8", b'[[image]]\nname = "caf\xe9"\n', ["is not UTF-8 text", "0xe9"]),
    ("deep", b"image = " + b"[" * 5000 + b"]" * 5000 + b"\n", ["too deeply"]),
    ("toml", b"[[image]\nname = \n", ["is not valid TOML"]),
    (
        "bot-secret",
        b'[[registry]]\nname = "evil"\nhost = "evil.example.com"\nusername = "x"\npassword_env = "DATABRICKS_TOKEN"\n',
        ["registry[0].password_env: 'DATABRICKS_TOKEN'", "only variables starting with DCS_SECRET_"],
    ),
    (
        "other-host",
        b'[[registry]]\nname = "acr"\nhost = "myacr.azurecr.io"\nusername = "sp"\npassword_env = "DCS_SECRET_ACR"\n'
        b'[[image]]\nname = "p"\nbase = "ubuntu:22.04"\nrepository = "evil.example.com/p"\nregistry = "acr"\n',
        ["image[p].repository", "registry acr is for myacr.azurecr.io"],
    ),
]


@pytest.mark.parametrize(("case", "content", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_catalog_file_exits_2_with_field_errors(tmp_path: Path, case: str, content: bytes, words: list[str]):
    path = tmp_path / "catalog.toml"
    path.write_bytes(content)
    result = run_dcs(tmp_path, "catalog", "import", str(path))
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    for word in words:
        assert word in stderr, stderr
    store = Store(str(tmp_path / "dcs.db"))
    assert store.image_names() == [] and store.list_registries() == []


def test_a_huge_catalog_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    with path.open("wb") as handle:
        handle.write(catalog(1).encode())
        handle.write(b"#" * (MAX_CATALOG_BYTES + 10))
    for args, stdin in ((("catalog", "import", str(path)), None), (("catalog", "import", "-"), path.read_bytes())):
        result = run_dcs(tmp_path, *args, stdin=stdin)
        assert result.returncode == 2 and "larger than the 8 MiB" in result.stderr.decode()


def test_json_output_lists_each_problem_with_its_field(tmp_path: Path) -> None:
    result = run_dcs(tmp_path, "catalog", "import", "-", "--json", stdin=b"image = 5\nregistry = [1]\n")
    assert result.returncode == 2
    assert b'"field": "image"' in result.stdout and b'"field": "registry[0]"' in result.stdout


# ---------------------------------------------------------------- killed half-way

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from bot.compose import build_services
    from bot.config import load_config
    from bot.ops.catalog import import_catalog
    from bot.store.catalog import CatalogTables

    written = []
    add_image = CatalogTables.add_image

    def add_image_then_die(self, spec, **kwargs):
        add_image(self, spec, **kwargs)
        written.append(spec.name)
        if len(written) == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # half-way: some images written, the rest not

    CatalogTables.add_image = add_image_then_die
    services = build_services(load_config({"DCS_DB": sys.argv[1]}))
    import_catalog(services, sys.stdin.read(), source="catalog.toml", prune=True, actor="ci")
    print("finished")
    """
)


def test_an_import_killed_half_way_leaves_nothing_of_the_file(tmp_path: Path) -> None:
    db = str(tmp_path / "dcs.db")
    store = Store(db)
    before = run_dcs(tmp_path, "catalog", "import", "-", stdin=catalog(2).encode())
    assert before.returncode == 0, before.stderr
    exported = run_dcs(tmp_path, "catalog", "export", "-").stdout

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, db, "5"],
        input=catalog(10).replace('host = "r.io"', 'host = "r.io"\nusername = "sp"').encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert b"finished" not in killed.stdout
    assert store.image_names() == ["img-0", "img-1"]  # as before the import: nothing of the new file
    assert run_dcs(tmp_path, "catalog", "export", "-").stdout == exported
    assert len(store.audit_events(action="catalog.import")) == 1  # only the first import's

    again = run_dcs(tmp_path, "catalog", "import", "-", stdin=catalog(10).encode())
    assert again.returncode == 0 and len(store.image_names()) == 10


def test_registry_list_says_what_to_rename_for_an_entry_stored_before_the_rule(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "dcs.db"))
    legacy = {"name": "acr", "host": "myacr.azurecr.io", "username": "sp", "password_env": "ACR_PASSWORD"}
    with store.transaction() as conn:  # as an older version wrote it
        conn.execute(
            "INSERT INTO registries (name, spec, created_at, updated_at) VALUES ('acr', ?, '2025', '2025')",
            (json.dumps(legacy),),
        )
    store.close()
    result = run_dcs(tmp_path, "registry", "list")
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Registry 'acr' names password_env = 'ACR_PASSWORD'" in stderr and "DCS_SECRET_ACR_PASSWORD" in stderr
    rows = json.loads(run_dcs(tmp_path, "registry", "list", "--json").stdout)
    assert rows[0]["password_set"] is False and "DCS_SECRET_ACR_PASSWORD" in rows[0]["migration"]
