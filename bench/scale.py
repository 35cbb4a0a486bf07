"""Scale: a 5,000-image catalog with 100,000 builds and 300,000 recorded runs, every target next to its anchor.

What is measured, each case side by side with its anchor in the same run (A B A B …, medians, ratios taken
pair by pair, so a machine whose speed drifts hits both alike):
  * `dcs --help` vs `python -c pass`;
  * `dcs image list` on the big catalog vs `python -c pass` (and vs the same command on an empty catalog);
  * start-to-ready of `dcs-bot --http` (process start → "listening on", scheduler included) on the big catalog
    vs on an empty one;
  * the ack of `/dcs images` and `/dcs images pandas` vs `/dcs help`, signed slash commands over HTTP to that
    running bot (Slack is tests/fakes' FakeSlack);
  * in one process: reading the catalog as stored vs validating every definition again (the old read); the
    rebuild lock's claim with 300,000 runs in `job_runs` vs with none; one LTS check of all 5,000 images
    (due-queue, one HEAD per distinct base, against tests/fakes' local Docker Hub); database bytes per build
    with its log tail, and after retention cleared old tails.
`--before DIR` also runs the process cases with the code of another checkout (e.g. the commit before issue 12)
on the same database, for the before/after table.

Run: `python bench/scale.py [--images 5000] [--builds 100000] [--rounds 7] [--before DIR] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ack import start as start_server  # noqa: E402
from bot.compose import build_services  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.domain.catalog import image_from_dict  # noqa: E402
from bot.domain.clock import stamp  # noqa: E402
from bot.domain.dockerfile import spec_hash  # noqa: E402
from bot.ops.build import log_tail  # noqa: E402
from bot.ops.retention import prune_store  # noqa: E402
from bot.ops.runs import claim_run  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.store.rows import encode_log_tail  # noqa: E402
from jobs.scheduler import QUEUE_JOB, drain_queue  # noqa: E402
from tests.fakes.dockerhub import FakeDockerHub  # noqa: E402
from tests.fakes.slack import FakeSlack, signed_headers, slash_command_body  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-bench-token"
BASES = ("databricksruntime/standard:15.4-LTS", "databricksruntime/python:15.4-LTS")
CRONS = ("0 3 * * 1", "30 4 * * *", None, None)
LOG = [f"Step {i}/40 : RUN pip install --no-cache-dir package-{i}==1.{i}.0  # {'x' * 60}" for i in range(200)]


# ---------------------------------------------------------------- the database
def make_catalog(db: str, images: int, builds: int, runs: int) -> None:
    """The catalog, and a history in which every image's last build is up to date with its spec and its base
    as tests/fakes' Docker Hub serves it (so a check finds nothing due and builds nothing)."""
    store = Store(db)
    now = stamp(datetime.now(UTC))
    with FakeDockerHub() as hub:
        digests = {base: hub.digest_of(*base.split(":")) for base in BASES}
    hashes: dict[str, str] = {}
    with store.write_transaction():
        for i in range(images):
            data = {
                "name": f"team-{i:05d}",
                "base": BASES[i % 2],
                "repository": f"myacr.azurecr.io/team/img-{i:05d}",
                "pip": [f"{'pandas' if i % 3 == 0 else 'polars'}==2.{i % 3}.{i % 10}", "numpy<2", "requests>=2.31"],
                "apt": ["curl"],
                "env": {"TZ": "UTC"},
            }
            if CRONS[i % 4]:
                data["schedule"] = CRONS[i % 4]
            spec = image_from_dict(data)
            hashes[spec.name] = spec_hash(spec)
            store.add_image(spec)
    tail = log_tail(LOG)
    rows = []
    for j in range(builds):
        name = f"team-{j % images:05d}"
        latest = j >= builds - images
        rows.append(
            {
                "image": name,
                "status": "succeeded" if latest or j % 10 else "failed",
                "requester": "U1",
                "source": "schedule",
                "requested_at": now,
                "started_at": now,
                "finished_at": now,
                "spec_hash": hashes[name],
                "base_ref": "docker.io/" + BASES[(j % images) % 2],
                "base_digest": digests[BASES[(j % images) % 2]],
                "tags": json.dumps(["latest", f"latest-20260101-b{j}"]),
                "pushed_digest": "sha256:" + "c" * 64,
                "push_requested": 1,
                "log_tail": encode_log_tail(tail) if latest else None,  # old tails pruned, as retention does
            }
        )
    store.db["builds"].insert_all(rows, batch_size=2000)
    run_rows = [
        {"job_id": "rebuild:queue", "started_at": now, "finished_at": now, "outcome": "succeeded", "detail": "ok"}
        for _ in range(runs)
    ]
    store.db["job_runs"].insert_all(run_rows, batch_size=5000)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


# ---------------------------------------------------------------- timing helpers
def paired(a: Callable[[], float], b: Callable[[], float], rounds: int) -> dict[str, float]:
    """Run a and b in turn `rounds` times (after one warm-up each); medians and the median pairwise ratio."""
    a(), b()
    pairs = [(a(), b()) for _ in range(rounds)]
    return {
        "a": statistics.median(x for x, _ in pairs),
        "b": statistics.median(y for _, y in pairs),
        "ratio": statistics.median(x / y for x, y in pairs),
    }


def timed_process(argv: list[str], env: dict[str, str]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        # from a neutral directory: `python -m` puts the working directory first on sys.path, before PYTHONPATH
        done = subprocess.run(argv, env=env, cwd=tempfile.gettempdir(), capture_output=True, timeout=120, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{argv} failed: {done.stderr.decode()[-800:]}")
        return elapsed

    return run


def environment(db: str, code: Path, **extra: str) -> dict[str, str]:
    """The variables of a user's shell: no bot settings but these, and bytecode written and used as usual (an
    installed `dcs` has its modules compiled at install time; PYTHONDONTWRITEBYTECODE, set on some CI
    machines, would have every process compile the bot from source again)."""
    drop = ("DCS_", "SLACK_", "DATABRICKS_", "DOCKERHUB", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"DCS_DB": db, "PYTHONPATH": str(code), **extra})
    return env


def compiled(code: Path, db: str) -> Path:
    """`code` with its modules compiled, as `pip install` leaves them (a fresh clone has no __pycache__)."""
    folders = [str(code / name) for name in ("bot", "handlers", "jobs") if (code / name).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], env=environment(db, code), check=True)
    return code


class Bot:
    """`python -m bot --http` on a database; `ready` is the time from the process start to "listening on"
    (bench/ack.py's `start` waits for that line)."""

    def __init__(self, db: str, code: Path, api_url: str) -> None:
        env = environment(
            db,
            code,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=api_url,
            DCS_LOG_LEVEL="INFO",
            DOCKERHUB_REGISTRY_URL="http://127.0.0.1:9",
        )
        argv = [sys.executable, "-m", "bot", "--http", "--host", "127.0.0.1", "--port", "0", "--env-file", "/dev/null"]
        started = time.perf_counter()
        self.server = start_server("dcs-bot", argv, env, tempfile.gettempdir())
        self.ready = time.perf_counter() - started
        self.port = int(self.server.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.server.stop()


def ack_times(port: int, texts: list[str], rounds: int) -> dict[str, list[float]]:
    """Sequential signed slash commands over one keep-alive connection, the texts interleaved; ms each."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: dict[str, list[float]] = {t: [] for t in texts}
    for i in range(rounds + 3):
        for text in texts:
            body = slash_command_body(text, user_id="U1")
            headers = {**signed_headers(SECRET, body), "Content-Length": str(len(body))}
            started = time.perf_counter()
            connection.request("POST", "/slack/events", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"/dcs {text}: HTTP {response.status}")
            if i >= 3:  # the first rounds warm the connection and the caches
                out[text].append(elapsed)
    return out


# ---------------------------------------------------------------- the cases
def process_cases(db: str, empty_db: str, code: Path, rounds: int, fake: FakeSlack) -> dict[str, dict[str, float]]:
    python = [sys.executable]
    nothing = timed_process([*python, "-c", "pass"], environment(db, code))
    out = {
        "help": paired(timed_process([*python, "-m", "bot.cli", "--help"], environment(db, code)), nothing, rounds),
        "list": paired(
            timed_process([*python, "-m", "bot.cli", "image", "list"], environment(db, code)), nothing, rounds
        ),
        "list_empty": paired(
            timed_process([*python, "-m", "bot.cli", "image", "list"], environment(db, code)),
            timed_process([*python, "-m", "bot.cli", "image", "list"], environment(empty_db, code)),
            rounds,
        ),
    }
    ready: list[tuple[float, float]] = []
    for _ in range(max(3, rounds // 2)):
        big = Bot(db, code, fake.api_url)
        big.stop()
        small = Bot(empty_db, code, fake.api_url)
        small.stop()
        ready.append((big.ready, small.ready))
    out["ready"] = {
        "a": statistics.median(a for a, _ in ready),
        "b": statistics.median(b for _, b in ready),
        "ratio": statistics.median(a / b for a, b in ready),
    }
    bot = Bot(db, code, fake.api_url)
    try:
        acks = ack_times(bot.port, ["help", "images", "images pandas"], rounds * 6)
    finally:
        bot.stop()
    help_median = statistics.median(acks["help"])
    for text, key in (("images", "ack_images"), ("images pandas", "ack_filter")):
        pairs = list(zip(acks[text], acks["help"], strict=True))
        out[key] = {
            "a": statistics.median(acks[text]) / 1000,
            "b": help_median / 1000,
            "ratio": statistics.median(x / y for x, y in pairs),
        }
    return out


def in_process_cases(db: str, work: Path, rounds: int) -> dict[str, dict[str, float]]:
    store = Store(db)
    rows = store.query("SELECT spec FROM images ORDER BY name")

    def stored() -> float:
        started = time.perf_counter()
        fresh = Store(db)  # a new process's first read: nothing cached
        fresh.list_images()
        fresh.close()
        return time.perf_counter() - started

    def validating() -> float:
        started = time.perf_counter()
        fresh = Store(db)
        [image_from_dict(json.loads(r["spec"])) for r in fresh.query("SELECT spec FROM images ORDER BY name")]
        fresh.close()
        return time.perf_counter() - started

    out = {"read": paired(stored, validating, rounds)}
    empty = Store(str(work / "runs-empty.db"))

    def claim(where: Store) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            for _ in range(50):
                run_id = claim_run(where, "rebuild:queue")
                assert run_id is not None
                where.finish_run(run_id, "succeeded", "ok")
            return (time.perf_counter() - started) / 50

        return run

    out["lock"] = paired(claim(store), claim(empty), rounds)
    out["lock"]["rows"] = store.query("SELECT COUNT(*) AS n FROM job_runs")[0]["n"]
    with FakeDockerHub() as hub:
        services = build_services(
            load_config({"DCS_DB": db, "DOCKERHUB_AUTH_URL": hub.url, "DOCKERHUB_REGISTRY_URL": hub.url})
        )
        names = store.image_names()
        services.store.queue_images(names, "rebuild:lts")
        started = time.perf_counter()
        checked = drain_queue(services)
        seconds = time.perf_counter() - started
        run = services.store.job_runs(QUEUE_JOB, limit=1)[0]
        out["check"] = {"a": seconds, "images": checked, "heads": hub.counts().get("HEAD", 0), "detail": run.detail}
    out["bytes"] = bytes_per_build(work, len(rows))
    store.close()
    return out


def bytes_per_build(work: Path, images: int, count: int = 400) -> dict[str, float]:
    """File bytes per build written through the store (log tail, tags, doctor), before and after retention;
    the anchor is the same builds with the log tail stored as plain text (as before issue 12)."""

    def measure(db: str, plain: bool) -> tuple[float, float]:
        services = build_services(load_config({"DCS_DB": db, "DCS_KEEP_LOGS_DAYS": "1"}))
        store = services.store
        for i in range(20):
            store.add_image(image_from_dict({"name": f"b-{i}", "base": BASES[0], "repository": f"r.example/b-{i}"}))

        def size() -> int:
            """Bytes of the database's used pages (the file less its free pages), after a WAL checkpoint."""
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page = store.db.execute("PRAGMA page_size").fetchone()[0]
            pages = store.db.execute("PRAGMA page_count").fetchone()[0]
            free = store.db.execute("PRAGMA freelist_count").fetchone()[0]
            return int(page * (pages - free))

        before = size()
        doctor = [{"name": f"check-{k}", "status": "pass", "detail": "ok"} for k in range(12)]
        tail = log_tail(LOG)
        for i in range(count):
            build = store.create_build(f"b-{i % 20}", requester="U1", source="schedule", stale_after_seconds=60)
            store.update_build(
                build.id,
                status="succeeded",
                finished_at=stamp(datetime.now(UTC) - timedelta(days=3)),
                log_tail=tail,
                doctor=doctor,
                tags=["latest", f"latest-20260101-b{build.id}"],
                pushed_digest="sha256:" + "d" * 64,
            )
            if plain:
                store.db.execute("UPDATE builds SET log_tail = ? WHERE id = ?", (tail, build.id))
        kept = (size() - before) / count
        prune_store(services)
        store.db.execute("VACUUM")
        pruned = (size() - before) / count
        store.close()
        return kept, pruned

    kept, pruned = measure(str(work / "bytes.db"), plain=False)
    plain_kept, plain_pruned = measure(str(work / "bytes-plain.db"), plain=True)
    return {
        "with_log": kept,
        "after_retention": pruned,
        "plain_with_log": plain_kept,
        "log_bytes": len(log_tail(LOG).encode()),
    }


# ---------------------------------------------------------------- report
def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at the start"
    )


def report(args: argparse.Namespace, after: dict, before: dict | None, inproc: dict) -> str:
    def s(x: float) -> str:
        return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"

    lines = [
        f"### bench/scale.py — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"{args.images} images, {args.builds} builds, {inproc['lock']['rows']} job_runs rows; {args.rounds} rounds, "
        f"medians, ratios pair by pair; {machine()}.",
        "",
        "| case | anchor | result | anchor time | ratio | target | before (same run) |",
        "|---|---|---|---|---|---|---|",
    ]
    cases = [
        ("`dcs --help`", "`python -c pass`", "help", "≤ 3×"),
        ("`dcs image list`", "`python -c pass`", "list", "≤ 0.5 s"),
        ("`dcs image list`", "same on an empty catalog", "list_empty", "—"),
        ("bot start-to-ready", "same on an empty catalog", "ready", "≤ 1 s"),
        ("`/dcs images` ack", "`/dcs help` ack", "ack_images", "≤ 2×"),
        ("`/dcs images pandas` ack", "`/dcs help` ack", "ack_filter", "≤ 2×"),
    ]
    for label, anchor, key, target in cases:
        r = after[key]
        old = ""
        if before is not None and key in before:
            b = before[key]
            old = f"{s(b['a'])} ({b['ratio']:.2f}×)"
        lines.append(f"| {label} | {anchor} | {s(r['a'])} | {s(r['b'])} | {r['ratio']:.2f}× | {target} | {old} |")
    read, lock, check, size = inproc["read"], inproc["lock"], inproc["check"], inproc["bytes"]
    lines += [
        f"| catalog read in a new process | validating every definition (the old read) | {s(read['a'])} | "
        f"{s(read['b'])} | {read['ratio']:.2f}× | ≪ 1× | |",
        f"| rebuild-lock claim + finish | same with an empty `job_runs` | {lock['a'] * 1e6:.0f} µs | "
        f"{lock['b'] * 1e6:.0f} µs | {lock['ratio']:.2f}× | ≈ 1× (indexed) | |",
        "",
        f"- One LTS check of all {check['images']} images through the due-queue: {s(check['a'])}, "
        f"{check['heads']} manifest HEADs (2 distinct bases; the first also learns the token service), "
        f"run detail `{check['detail']}`.",
        f"- Database bytes per build written through the store: {size['with_log']:.0f} with its log tail "
        f"({size['log_bytes']} bytes of log, capped at 200 lines / 16 KiB, stored compressed) vs "
        f"{size['plain_with_log']:.0f} with the same tail as plain text (the anchor, as before); "
        f"{size['after_retention']:.0f} once retention cleared old tails (each image keeps its latest).",
    ]
    if before is not None:
        lines.append(f"- Before: the same process cases with the code of `{args.before_label}`, same database.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--builds", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300_000, help="job_runs rows for the lock case")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="a checkout whose code runs the process cases too")
    parser.add_argument("--out", type=Path, help="write the report here (default: print it)")
    args = parser.parse_args(argv)
    args.before_label = str(args.before) if args.before else ""
    work = Path(tempfile.mkdtemp(prefix="dcs-scale-"))
    try:  # the databases are ~130 MB: removed however the run ends
        db, empty = str(work / "big.db"), str(work / "empty.db")
        started = time.perf_counter()
        make_catalog(db, args.images, args.builds, args.runs)
        Store(empty).close()
        print(f"catalog made in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with FakeSlack() as fake:
            after = process_cases(db, empty, compiled(ROOT, db), args.rounds, fake)
            before = process_cases(db, empty, compiled(args.before, db), args.rounds, fake) if args.before else None
        inproc = in_process_cases(db, work, args.rounds)
        text = report(args, after, before, inproc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
