"""The realistic base: ~130 real distributions in /databricks/python3, built through the local index."""

from __future__ import annotations

import json

from tests.support.containers import run_script
from tests.support.python_base import realistic_packages
from tests.support.wheels import normalize

PY = "/databricks/python3/bin/python"
SITE = "/databricks/python3/lib/python3.11/site-packages"


def test_every_locked_distribution_is_installed_at_its_version(engine, realistic_base):
    result = run_script(engine, realistic_base, f"{PY} -m pip list --format=json")

    assert result.exit_code == 0, result.stderr
    installed = {normalize(p["name"]): p["version"] for p in json.loads(result.stdout)}
    locked = {normalize(name): version for name, version in realistic_packages().items()}
    assert len(locked) >= 125
    assert {name: installed.get(name) for name in locked} == locked
    assert set(installed) - set(locked) == {"pip", "setuptools"}


def test_pip_check_passes_and_the_notebook_stack_imports(engine, realistic_base):
    result = run_script(
        engine,
        realistic_base,
        f"{PY} -m pip check && {PY} -c 'import IPython, ipykernel, numpy, pandas, pyarrow, matplotlib, grpc, "
        'databricks.sdk; print(ipykernel.__version__ > "6", pandas.DataFrame({"a": [1, 2]}).a.sum())\'',
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "No broken requirements found.\nTrue 3\n"


def test_nothing_of_the_build_reaches_the_image(engine, python_base, realistic_base):
    image = engine.images.get(realistic_base)
    # what each layer was made by (a layer's Tags are the names other tests give the base, not its content)
    history = json.dumps([{k: layer.get(k) for k in ("CreatedBy", "Comment")} for layer in image.history()])

    files = run_script(engine, realistic_base, "ls /etc/pip.conf /etc/dcs-test-ca.pem /tmp/requirements.txt 2>&1")

    assert files.stdout.count("No such file or directory") == 3
    assert "127.0.0.1" not in history and "pip.conf" not in history and "ca.pem" not in history
    base_layers = engine.images.get(python_base).attrs["RootFS"]["Layers"]
    assert image.attrs["RootFS"]["Layers"][:-1] == base_layers  # one layer on top: the virtualenv


def test_variant_without_ipykernel_by_a_real_pip_uninstall(engine, realistic_base, build_image):
    ref = build_image(
        "realistic-no-ipykernel",
        f"FROM {realistic_base}\nRUN {PY} -m pip uninstall -y -q ipykernel\n",
        network_mode="none",
    )

    result = run_script(engine, ref, f"{PY} -c 'import ipykernel' 2>&1 | tail -1; {PY} -c 'import IPython; print(1)'")

    assert result.stdout == "ModuleNotFoundError: No module named 'ipykernel'\n1\n"


def test_variant_with_a_broken_pip_check_as_a_thin_layer(engine, realistic_base, python_variant):
    dist_info = f"{SITE}/dcs_test_needy-1.0.dist-info"
    ref = python_variant(
        "realistic-broken-pip-check",
        parent=realistic_base,
        files={
            f"{dist_info}/METADATA": "Metadata-Version: 2.1\nName: dcs-test-needy\nVersion: 1.0\n"
            "Requires-Dist: dcs-test-absent>=1\nRequires-Dist: numpy<1\n",
            f"{dist_info}/RECORD": "",
            f"{dist_info}/INSTALLER": "pip\n",
        },
    )

    result = run_script(engine, ref, f"{PY} -m pip check")

    assert result.exit_code == 1
    assert "dcs-test-needy 1.0 requires dcs-test-absent, which is not installed." in result.stdout
    assert "dcs-test-needy 1.0 has requirement numpy<1, but you have numpy " in result.stdout
