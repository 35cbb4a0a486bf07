"""Benchmark: cold build vs cached rebuild vs unchanged spec, on the real Docker engine.

    DOCKER_HOST=unix:///path/to/docker.sock python bench/build.py [--rounds 3] [--write bench/RESULTS.md]

Each round defines a fresh image (unique pip and apt entries, so no layer of it is cached) on a fake
`databricksruntime/standard:15.4-LTS` base made like the tests make theirs and pushed to the local registry
(DCS_TEST_REGISTRY, basic auth, as ./scripts/test starts it), then measures:
  cold      – the first build of that spec (every layer built),
  cached    – `--force` rebuild of the same spec (the engine reuses every layer),
  unchanged – a plain build of the unchanged spec: one real manifest HEAD of the base against the registry
              (basic auth), which finds the same digest, so nothing is built.
Targets: unchanged → zero engine build calls and exactly the registry's manifest HEAD; cached well under cold.

    ./scripts/test bench/build.py -s -q     # engine and registry provided; runs test_build_benchmark
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

from bot.clients.registry import RegistryClient
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.ops.build import Builder
from tests.support.images import base_archive, ensure_image, push_image
from tests.support.namespace import NAMESPACE, local, remove_namespace
from tests.support.rootfs import BaseSpec, read_static_busybox

LOCAL_BASE = local("databricksruntime/standard:15.4-LTS")  # this run's own tag, never the real image
BASE_PATH = f"{NAMESPACE}/databricksruntime/standard"  # on the registry: recognised as that Databricks base
PASSWORD_VAR = "DCS_SECRET_BENCH_REGISTRY_PASSWORD"


def registry_from_environment() -> tuple[str, str, str]:
    host = os.environ.get("DCS_TEST_REGISTRY", "")
    if not host:
        raise SystemExit("bench/build.py needs the local registry: run it with ./scripts/test bench/build.py -s -q")
    return host, os.environ.get("DCS_TEST_REGISTRY_USER", ""), os.environ.get("DCS_TEST_REGISTRY_PASSWORD", "")


def make_base(client: docker.DockerClient, host: str, user: str, password: str) -> str:
    """The fake base, pushed to the registry; returns the reference the catalog uses."""
    arch = client.version()["Arch"]
    ensure_image(client, base_archive(BaseSpec(), read_static_busybox(), ref=LOCAL_BASE, arch=arch), LOCAL_BASE)
    push_image(client, LOCAL_BASE, host=host, username=user, password=password, repo_path=BASE_PATH, tag="15.4-LTS")
    return f"{host}/{BASE_PATH}:15.4-LTS"


class CountingRegistry(RegistryClient):
    """The real registry client, counting the manifest HEADs it sends."""

    heads = 0

    def head_manifest(self, ref, credentials=None):  # type: ignore[no-untyped-def]
        CountingRegistry.heads += 1
        return super().head_manifest(ref, credentials)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(rounds: int) -> dict[str, list[float] | int]:
    host, user, password = registry_from_environment()
    environ = {k: v for k, v in os.environ.items() if k == "DOCKER_HOST"}
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(load_config({**environ, "DCS_DB": f"{tmp}/bench.db", PASSWORD_VAR: password}))
        services._registry = CountingRegistry(dockerhub_registry_url=services.config.dockerhub_registry_url)
        base = make_base(services.engine.client, host, user, password)
        services.store.add_registry(
            registry_from_dict({"name": "bench", "host": host, "username": user, "password_env": PASSWORD_VAR})
        )
        builder = Builder(services)
        results: dict[str, list[float] | int] = {
            "cold": [],
            "cached": [],
            "unchanged": [],
            "unchanged_calls": 0,
            "unchanged_heads": 0,
        }
        for _ in range(rounds):
            tag = uuid.uuid4().hex[:8]
            name = f"bench-{tag}"
            services.store.add_image(
                image_from_dict(
                    {
                        "name": name,
                        "base": base,
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
            before, heads = services.engine.build_calls, CountingRegistry.heads
            seconds, unchanged = timed(lambda: builder.build(name))  # noqa: B023
            assert unchanged.skipped, unchanged.error
            results["unchanged"].append(seconds)
            results["unchanged_calls"] += services.engine.build_calls - before
            results["unchanged_heads"] += CountingRegistry.heads - heads
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
    rows.append("")
    rows.append(
        f"unchanged: {results['unchanged_heads']} manifest HEAD(s) of the base against the local registry in "
        f"{rounds} round(s) (basic auth); the same digest, so nothing was built."
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", metavar="FILE", help="append the result table to FILE")
    args = parser.parse_args(argv)
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
    ok = (
        results["unchanged_calls"] == 0
        and results["unchanged_heads"] == args.rounds
        and statistics.median(results["cached"]) < statistics.median(results["cold"])
    )
    return 0 if ok else 1


def test_build_benchmark() -> None:
    """`./scripts/test bench/build.py -s -q`: run the benchmark with the test engine and registry."""
    assert main(["--rounds", os.environ.get("DCS_BENCH_ROUNDS", "3")]) == 0


if __name__ == "__main__":
    sys.exit(main())
