"""Benchmark: the fleet inventory (one pass per workspace) vs a naive per-image scan, against a fake workspace.

    python bench/fleet.py [--clusters 2000] [--jobs 1000] [--pools 100] [--policies 100] [--images 200]
                          [--rounds 3] [--naive-images N] [--write bench/results/fleet.md]

Starts the tests' FakeDatabricks (real HTTP, the SDK's wire format, paginated clusters/list and jobs/list) and
seeds it with clusters (running and terminated), jobs (1–3 tasks, some with a shared job cluster), instance
pools and cluster policies, most naming one of `--images` catalog images (a third on an older digest), the
rest an image outside the catalog. Then, with the real databricks-sdk through the bot's client:
  pass  – `bot.ops.fleet.scan_fleet`: each kind listed once, every image matched from that one listing;
  naive – for each image, list every kind again and keep what names that image (what looking up each image on
          its own costs). `--naive-images` measures the naive scan over the first N images only and says so
          (the per-image cost is constant, so the full figure is N × that); default: all images.
Both count the HTTP requests the fake answered and check they found the same items.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.clients.databricks_fleet import list_fleet
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.domain.fleet import RepoIndex, fleet_items
from bot.ops.fleet import current_digests, scan_fleet
from bot.services import Services
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks, dcs_spec

OLD, NEW = "sha256:" + "0d" * 32, "sha256:" + "1e" * 32


def repo(i: int) -> str:
    return f"myacr.azurecr.io/team/img{i:03d}"


def url(n: int, images: int) -> str:
    """Every 10th item names an image outside the catalog; a third of the rest an older digest."""
    if n % 10 == 9:
        return f"other.example.com/x/y{n % 7}:1"
    return f"{repo(n % images)}@{OLD if n % 3 == 0 else NEW}"


def seed(fake: FakeDatabricks, args: argparse.Namespace) -> None:
    for n in range(args.clusters):
        fake.add_cluster(
            dcs_spec(url(n, args.images), cluster_name=f"c{n}"), state="RUNNING" if n % 4 == 0 else "TERMINATED"
        )
    for n in range(args.jobs):
        tasks = [
            {
                "task_key": f"t{k}",
                "notebook_task": {"notebook_path": f"/Jobs/{n}/{k}"},
                "new_cluster": dcs_spec(url(n + k, args.images)),
            }
            for k in range(1 + n % 3)
        ]
        settings = {"name": f"job{n}", "tasks": tasks}
        if n % 5 == 0:
            settings["job_clusters"] = [{"job_cluster_key": "shared", "new_cluster": dcs_spec(url(n + 7, args.images))}]
        fake.add_job(settings)
    for n in range(args.pools):
        fake.add_instance_pool(f"pool{n}", preloaded_docker_images=[{"url": url(n, args.images)}])
    for n in range(args.policies):
        fake.add_policy(f"policy{n}", {"docker_image.url": {"type": "fixed", "value": url(n, args.images)}})


def catalog(services: Services, images: int) -> None:
    for i in range(images):
        spec = {"name": f"img{i:03d}", "base": "databricksruntime/standard:15.4-LTS", "repository": repo(i)}
        services.store.add_image(image_from_dict(spec))
        for digest in (OLD, NEW):
            build = services.store.create_build(spec["name"], requester="bench", source="bench", push=True)
            services.store.update_build(build.id, status="succeeded", pushed_digest=digest)


def measure_pass(services: Services, fake: FakeDatabricks) -> tuple[float, int, set[tuple[str, str]]]:
    before = len(fake.requests)
    started = time.perf_counter()
    report = scan_fleet(services)
    elapsed = time.perf_counter() - started
    assert not report.errors, report.errors
    return elapsed, len(fake.requests) - before, {(i.key, i.image) for i in report.items}


def measure_naive(
    services: Services, fake: FakeDatabricks, names: list[str]
) -> tuple[float, int, set[tuple[str, str]]]:
    client = services.workspace(None)
    specs = {s.name: s for s in services.store.list_images()}
    current = current_digests(services)
    before = len(fake.requests)
    started = time.perf_counter()
    found: set[tuple[str, str]] = set()
    for name in names:
        raw = list_fleet(client)  # everything again, for this one image
        index = RepoIndex({name: specs[name].repository_ref}, {name: current.get(name)})
        items = fleet_items(
            client.name, index, clusters=raw.clusters, jobs=raw.jobs, pools=raw.pools, policies=raw.policies
        )
        found |= {(i.key, i.image) for i in items}
    return time.perf_counter() - started, len(fake.requests) - before, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=100)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--naive-images", type=int, default=None, help="naive scan over the first N images only")
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()
    naive_n = min(args.naive_images or args.images, args.images)

    with tempfile.TemporaryDirectory() as tmp, FakeDatabricks() as fake:
        started = time.perf_counter()
        seed(fake, args)
        seeded = time.perf_counter() - started
        env = {"DATABRICKS_HOST": fake.url, "DATABRICKS_TOKEN": DEFAULT_TOKEN, "DCS_DB": f"{tmp}/dcs.db"}
        services = build_services(load_config({**env, "DCS_DATABRICKS_TIMEOUT": "120"}))
        catalog(services, args.images)
        measure_pass(services, fake)  # warm-up: SDK import, the client's config probe
        passes = [measure_pass(services, fake) for _ in range(args.rounds)]
        pass_time = statistics.median(p[0] for p in passes)
        pass_requests, pass_items = passes[0][1], passes[0][2]
        names = sorted(s.name for s in services.store.list_images())[:naive_n]
        naive_time, naive_requests, naive_items = measure_naive(services, fake, names)
        expected = {item for item in pass_items if item[1] in set(names)}
        assert naive_items == expected, "the naive scan found other items than the pass"
    scale = args.images / naive_n
    full_naive_time, full_naive_requests = naive_time * scale, int(naive_requests * scale)
    lines = [
        f"### bench/fleet.py — {time.strftime('%Y-%m-%d')}",
        "",
        f"Fake workspace: {args.clusters} clusters, {args.jobs} jobs, {args.pools} pools, {args.policies} policies "
        f"(seeded in {seeded:.1f} s); {args.images} catalog images; {len(pass_items)} items found. "
        f"{platform.machine()}, Python {platform.python_version()}; {args.rounds} rounds of the pass (median).",
        "",
        "| case | HTTP requests | wall time (s) | vs pass |",
        "|---|---|---|---|",
        f"| one pass (`scan_fleet`) | {pass_requests} | {pass_time:.2f} | 1.00× |",
    ]
    label = "naive, per image" + (f" ({naive_n} of {args.images} images measured, scaled)" if scale != 1 else "")
    lines.append(
        f"| {label} | {full_naive_requests} | {full_naive_time:.2f} | {full_naive_time / pass_time:.1f}× time, "
        f"{full_naive_requests / max(1, pass_requests):.0f}× requests |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
