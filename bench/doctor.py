"""Benchmark: the doctor on the realistic base (~130 Python distributions) next to a bare `docker run --rm IMAGE true`.

    ./scripts/test bench/doctor.py -s -q          # engine provided; the realistic base comes from the test cache

Cases, measured in the same run, interleaved round by round (median of DCS_BENCH_ROUNDS, default 5):
  anchor         – `docker run --rm IMAGE true` through the docker SDK (create, start, wait, remove),
  doctor         – `Builder.probe` of a catalog entry without pip requirements: the one probe container (tools,
                   environment, os-release, java/python versions, dpkg-query, every distribution's metadata and
                   requirements, notebook packages, sudo) plus the inventory, and the size row,
  doctor+imports – the same entry with 10 pip requirements (numpy, pandas, pyarrow, matplotlib, …): the import
                   smoke test of their top-level modules added,
  pip check      – `docker run --rm IMAGE /databricks/python3/bin/python -m pip check`, for the dependency row's
                   alternative (what the doctor does in-process from importlib.metadata).
Target: doctor ≤ 3× the anchor; doctor+imports is reported next to it (the imports cost what they cost).
Writes bench/results/doctor.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.ops.build import Builder
from tests.conftest import engine  # noqa: F401 - the session's engine fixture
from tests.support.infra import infra_namespace, python_base, python_rootfs, realistic_base, test_ca  # noqa: F401
from tests.support.namespace import local

IMPORTS = [
    "numpy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "jinja2",
    "grpcio",
    "databricks-sdk",
    "requests",
    "pyyaml",
    "six",
]
RESULTS = Path(__file__).with_name("results") / "doctor.md"
TARGET = 3.0


def bare_run(client: docker.DockerClient, image: str, command: list[str]) -> None:
    container = client.containers.create(image, command=command)
    try:
        container.start()
        status = container.wait(timeout=120)["StatusCode"]
        assert status == 0, container.logs().decode()[-500:]
    finally:
        container.remove(force=True)


def measure(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm: page cache, first container of the image
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return times


def test_doctor_benchmark(engine, realistic_base, tmp_path) -> None:  # noqa: F811
    environ = {"DCS_DB": str(tmp_path / "bench.db")}
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    builder = Builder(build_services(load_config(environ)))
    entry = {"name": "bench", "base": "databricksruntime/standard:15.4-LTS", "repository": local("bench/doctor")}
    plain, with_imports = image_from_dict(entry), image_from_dict({**entry, "pip": IMPORTS})
    report, inventory = builder.probe(realistic_base, plain)
    assert report.ok and len(inventory.python_packages) >= 125, report.to_rows()
    imports = next(c for c in builder.probe(realistic_base, with_imports)[0].checks if c.name == "imports")
    assert imports.status == "pass", imports

    rounds = int(os.environ.get("DCS_BENCH_ROUNDS", "5"))
    times = measure(
        {
            "anchor": lambda: bare_run(engine, realistic_base, ["true"]),
            "doctor": lambda: builder.probe(realistic_base, plain),
            "doctor+imports": lambda: builder.probe(realistic_base, with_imports),
            "pip check": lambda: bare_run(
                engine, realistic_base, ["/databricks/python3/bin/python", "-m", "pip", "check"]
            ),
        },
        rounds,
    )
    median = {name: statistics.median(values) for name, values in times.items()}
    anchor = median["anchor"]
    lines = [
        f"### bench/doctor.py — {time.strftime('%Y-%m-%d')}",
        "",
        f"{rounds} rounds; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Docker "
        f"{engine.version().get('Version')}; realistic base: {len(inventory.python_packages)} Python distributions, "
        f"{len(inventory.os_packages)} OS packages, {inventory.summary().rsplit(', ', 1)[-1]}.",
        "",
        "| case | median (s) | min (s) | max (s) | vs anchor |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {median[name]:.3f} | {min(values):.3f} | {max(values):.3f} | {median[name] / anchor:.2f}× |"
            for name, values in times.items()
        ),
        "",
        f"Target doctor ≤ {TARGET:g}× anchor: {'met' if median['doctor'] <= TARGET * anchor else 'NOT met'} "
        f"({median['doctor'] / anchor:.2f}×); the import smoke test of {len(IMPORTS)} requirements adds "
        f"{median['doctor+imports'] - median['doctor']:.2f} s; a container running `pip check` alone takes "
        f"{median['pip check'] / anchor:.2f}× the anchor.",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n" + "\n".join(lines))
