"""Benchmark: cold build vs cached rebuild vs unchanged spec, on the real Docker engine.

    DOCKER_HOST=unix:///path/to/docker.sock python bench/build.py [--rounds 3] [--write bench/RESULTS.md]

Each round defines a fresh image (unique pip and apt entries, so no layer of it is cached) on a fake
`databricksruntime/standard:15.4-LTS` base made like the tests make theirs, then measures:
  cold      – the first build of that spec (every layer built),
  cached    – `--force` rebuild of the same spec (the engine reuses every layer),
  unchanged – a plain build of the unchanged spec (the builder decides there is nothing to do).
Targets: unchanged → zero engine build calls; cached well under cold.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.ops.build import Builder
from tests.support.images import base_archive, ensure_image
from tests.support.namespace import local, remove_namespace
from tests.support.rootfs import BaseSpec, read_static_busybox

BASE = local("databricksruntime/standard:15.4-LTS")  # this run's own tag, never the real image


def make_base(client: docker.DockerClient) -> None:
    arch = client.version()["Arch"]
    ensure_image(client, base_archive(BaseSpec(), read_static_busybox(), ref=BASE, arch=arch), BASE)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(rounds: int) -> dict[str, list[float] | int]:
    environ = {k: v for k, v in os.environ.items() if k == "DOCKER_HOST"}
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(load_config({**environ, "DCS_DB": f"{tmp}/bench.db"}))
        make_base(services.engine.client)
        builder = Builder(services)
        results: dict[str, list[float] | int] = {"cold": [], "cached": [], "unchanged": [], "unchanged_calls": 0}
        for _ in range(rounds):
            tag = uuid.uuid4().hex[:8]
            name = f"bench-{tag}"
            services.store.add_image(
                image_from_dict(
                    {
                        "name": name,
                        "base": BASE,
                        "repository": f"bench/{name}",
                        "pip": [f"pkg-a-{tag}==1.0", f"pkg-b-{tag}>=2"],
                        "apt": [f"lib-{tag}"],
                        "env": {"BENCH": tag},
                    }
                )
            )
            seconds, cold = timed(lambda: builder.build(name))  # noqa: B023
            assert cold.ok and not cold.skipped, cold.error
            results["cold"].append(seconds)
            seconds, cached = timed(lambda: builder.build(name, force=True))  # noqa: B023
            assert cached.ok and not cached.skipped, cached.error
            results["cached"].append(seconds)
            before = services.engine.build_calls
            seconds, unchanged = timed(lambda: builder.build(name))  # noqa: B023
            assert unchanged.skipped
            results["unchanged"].append(seconds)
            results["unchanged_calls"] += services.engine.build_calls - before
        return results


def table(results: dict[str, list[float] | int], rounds: int) -> str:
    cold = statistics.median(results["cold"])
    rows = [
        "| case | median (s) | min (s) | max (s) | vs cold | engine build calls |",
        "|---|---|---|---|---|---|",
    ]
    for case in ("cold", "cached", "unchanged"):
        values = results[case]
        calls = results["unchanged_calls"] if case == "unchanged" else rounds
        rows.append(
            f"| {case} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} | "
            f"{statistics.median(values) / cold:.2f}× | {calls} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", metavar="FILE", help="append the result table to FILE")
    args = parser.parse_args()
    try:
        results = run(args.rounds)
    finally:
        remove_namespace(docker.from_env())  # the base tag this run made
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    engine = docker.from_env().version()
    text = (
        f"### bench/build.py — {time.strftime('%Y-%m-%d')}\n\n{args.rounds} rounds; {machine}; Docker engine "
        f"{engine['Version']} (legacy builder, overlay2).\n\n{table(results, args.rounds)}\n"
    )
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as out:
            out.write("\n" + text)
    ok = results["unchanged_calls"] == 0 and statistics.median(results["cached"]) < statistics.median(results["cold"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
