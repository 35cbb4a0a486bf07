"""Ack latency of `/dcs help` and `/dcs images` under load, while two builds run, next to a bare Bolt app.

What is measured: the full round trip of a correctly signed slash-command POST (what Slack waits for),
from 20 concurrent clients with keep-alive connections, against
  * dcs-bot: the real `dcs-bot --http` process (waitress + Bolt + our handlers, SQLite catalog of 1,000
    images), while it runs two real builds on the Docker engine whose pip step streams a log line every
    50 ms for the whole measurement (the bot reads, redacts and keeps every line, and updates each build's
    Slack message), and while another process writes the catalog (one image changed every 200 ms, as a
    catalog import or `dcs image add` would), so the bot's catalog cache keeps going cold; and
  * bare: a Bolt app with one trivial `/dcs` listener (`ack("ok")`), default Bolt settings, served by the
    same WSGI server with the same thread count, in its own process; and
  * bare-same-answer: the same bare app, acking each command with the very answer dcs-bot gave to it (captured
    at the start: the help text, the first `/dcs images` page), so the payload's size is the same and only
    dcs-bot's own work differs.
Both servers talk to the same FakeSlack (auth.test, chat.postMessage/update). The apps are measured
alternately, in rounds, in the same run, all while the builds stream and the catalog is written, in two phases:
  * paced (the verdict): the clients together send --rate requests per second (default 500) on a fixed
    schedule, the same for every app, as Slack sends commands whatever the bot is doing; latency counts from
    when each request was due (no coordinated omission);
  * flat out: each client sends its next request when it has the last answer, so each app is measured at its
    own saturation; the report gives each app's requests per second next to its latencies.

Needs a Docker engine (DOCKER_HOST or the default socket) and a static busybox, like the integration
tests. `./scripts/test bench/ack.py -s -q` provides both and runs `test_ack_benchmark` below; or
`DOCKER_HOST=... python bench/ack.py [--requests N] [--clients N] [--rate R] [--out bench/results/ack.md]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.fakes.slack import FakeSlack, signed_headers, slash_command_body  # noqa: E402
from tests.support.namespace import local, remove_namespace  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-bench-token"
BASE = local("databricksruntime/standard:15.4-LTS")  # this run's own tag, never the real image
THREADS = 16  # WSGI server threads, the same for both apps
TARGET_P99_MS = 100.0
TARGET_RATIO = 1.2
BUILD_SECONDS = 900  # the builds' pip step streams for this long: longer than any measurement
WRITE_EVERY = 0.2  # seconds between two catalog writes by the writer process


# ---------------------------------------------------------------- the bare app (run in a subprocess)
def serve_bare(api_url: str, answers_file: str | None = None) -> None:
    """A bare Bolt app: `ack("ok")`, or with `answers_file` the answer dcs-bot gave to the same command (a canned
    dict per first word: what a Bolt app costs to send an answer of that size, with none of our work)."""
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.http import create_server

    app = App(client=WebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET, token_verification_enabled=False)
    answers = json.loads(Path(answers_file).read_text()) if answers_file else None

    @app.command("/dcs")
    def dcs(ack, body) -> None:
        if answers is None:
            ack("ok")
        else:
            ack(**answers[(body.get("text") or "help").split()[0]])

    from slack_bolt.adapter.wsgi import SlackRequestHandler

    server = create_server(SlackRequestHandler(app), "127.0.0.1", 0, THREADS)
    print(f"listening on http://127.0.0.1:{server.effective_port}/slack/events", file=sys.stderr, flush=True)
    server.run()


# ---------------------------------------------------------------- processes
@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(name: str, argv: list[str], env: dict[str, str], cwd: str) -> Server:
    """Start a server process and wait (bounded) for its "listening on" line; stderr is drained for good."""
    process = subprocess.Popen(argv, env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/slack/events", line)
        if match:
            return Server(name, process, match.group(1))
    process.kill()
    process.wait()
    raise RuntimeError(f"{name} did not start:\n{''.join(seen)}")


def catalog_entry(i: int, revision: int = 0) -> dict:
    pip = [f"dcs-test-chatty-{BUILD_SECONDS}"] if i < 2 else ["pandas==2.2.2", f"rev-{revision}==1.0"]
    name = f"bench-{i:04d}"
    return {"name": name, "base": BASE, "repository": f"127.0.0.1:9/bench/{name}", "pip": pip, "schedule": "0 3 * * 1"}


def write_catalog(db: str, images: int) -> None:
    """The writer process: change one image every WRITE_EVERY seconds until stopped; print how many."""
    import signal

    from bot.domain.catalog import image_from_dict
    from bot.store import Store

    store = Store(db)
    written = 0

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            i = 2 + written % max(1, images - 2)
            store.add_image(image_from_dict(catalog_entry(i, revision=written + 1)), replace=True)
            written += 1
            time.sleep(WRITE_EVERY)
    finally:
        print(f"catalog writes: {written}", flush=True)
        store.close()


def prepare_engine_and_catalog(db: str, images: int) -> list[str]:
    """A local fake Databricks base, and a catalog whose first two images stream log lines in pip."""
    import docker

    from bot.domain.catalog import image_from_dict
    from bot.store import Store
    from tests.support.images import base_archive, ensure_image
    from tests.support.rootfs import BaseSpec, read_static_busybox

    engine = docker.from_env(timeout=120)
    engine.ping()
    ensure_image(engine, base_archive(BaseSpec(), read_static_busybox(), ref=BASE, arch=engine.version()["Arch"]), BASE)
    store = Store(db)
    names = []
    for i in range(images):
        entry = catalog_entry(i)
        store.add_image(image_from_dict(entry))
        names.append(entry["name"])
    store.close()
    return names


# ---------------------------------------------------------------- load
def post(session: requests.Session, url: str, text: str, user: str = "U1") -> tuple[float, int]:
    body = slash_command_body(text, user_id=user)
    headers = signed_headers(SECRET, body)
    started = time.perf_counter()
    response = session.post(f"{url}/slack/events", data=body, headers=headers, timeout=10)
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, response.status_code


class Client:
    """One keep-alive connection with http.client: a lean client, so the load generator (sharing the CPU
    with the servers) adds as little as possible to what is measured."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def post(self, text: str) -> tuple[float, int]:
        body = slash_command_body(text, user_id="U1")
        headers = {**signed_headers(SECRET, body), "Content-Length": str(len(body))}
        started = time.perf_counter()
        self.connection.request("POST", "/slack/events", body=body, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return (time.perf_counter() - started) * 1000, response.status


def load(url: str, clients: int, per_client: int, rate: float | None = None) -> dict[str, list[float]]:
    """Each client alternates help and images; returns latencies (ms) per command, errors under 'errors'.

    rate None ("flat out"): each client sends its next request as soon as it has the answer to the last one.
    rate R ("paced"): the clients together send R requests per second on a fixed schedule, client i's k-th
    request due at start + (k + i / clients) * clients / R, as Slack sends users' commands whatever the bot
    is doing; the latency counts from when the request was due, so a request sent late because the one
    before it was slow counts that wait too (no coordinated omission).
    """
    results: dict[str, list[float]] = {"help": [], "images": [], "errors": []}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    interval = clients / rate if rate else 0.0

    def client(index: int) -> None:
        connection = Client(url)
        for _ in range(3):  # warm the connection and the server's first-request work (auth.test)
            connection.post("help")
        barrier.wait()
        start = time.perf_counter() + 0.05
        for i in range(per_client):
            text = "help" if (i + index) % 2 == 0 else "images"
            late = 0.0
            if rate:
                due = start + (i + index / clients) * interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                late = max(0.0, time.perf_counter() - due) * 1000
            elapsed, status = connection.post(text)
            with lock:
                results[text if status == 200 else "errors"].append(elapsed + late)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


# ---------------------------------------------------------------- report
def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    from importlib.metadata import version

    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores visible{memory}",
        f"- OS: {platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"slack_bolt {version('slack_bolt')}; waitress {version('waitress')}",
        f"- Load average (1/5/15 min) at the start: {load_avg}",
    ]


def report(
    rows: dict[str, dict[str, dict[str, float]]],
    args: argparse.Namespace,
    builds: dict[str, str],
    errors: dict[str, int],
    machine_lines: list[str],
    writes: int,
    lines_streamed: str,
    cpu_ms: dict[str, float],
    idle_cpu: dict[str, float],
    throughput: dict[str, float],
) -> str:
    lines = [
        "# Ack latency: `/dcs help` and `/dcs images` under load",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `bench/ack.py --clients {args.clients} "
        f"--requests {args.requests} --rounds {args.rounds} --rate {args.rate:g}`.",
        "",
        "## Machine",
        *machine_lines,
        "",
        "## Method",
        f"- {args.clients} concurrent clients (threads, one keep-alive `http.client` connection each), each sending "
        f"{args.requests} correctly signed slash commands per app in each of two phases, alternating `/dcs help` "
        "and `/dcs images`, after 3 warm-up requests per connection; latency is the client-side round trip of "
        "the POST, i.e. what Slack waits for before its 3 s timeout.",
        f"- **paced** (the target): the clients together send {args.rate:g} requests per second on a fixed "
        "schedule, the same for every app, as Slack sends users' commands whatever the bot is doing; latency "
        "counts from when a request was due, so one sent late because the one before it was slow counts that "
        "wait too (no coordinated omission).",
        "- **flat out**: each client sends its next request as soon as it has the last answer. The server is "
        "then saturated (the GIL), and a faster server is sent more requests per second: each app's p99 here "
        "is at its own load, given with that load.",
        f"- The apps are measured alternately in {args.rounds} rounds in the same run (the machine is shared, "
        "so noise hits all alike); the load generator runs on the same 2 cores as the servers.",
        f"- dcs-bot: the real `dcs-bot --http` process, {THREADS} waitress threads, catalog of {args.images} images, "
        "while it runs two real builds on the Docker engine whose pip step streams a log line every 50 ms "
        f"(the bot reads each one from the engine's build stream; {lines_streamed}), and while a second process "
        f"changes one catalog image every {WRITE_EVERY:g} s ({writes} catalog writes during the run), so the "
        "catalog cache keeps going cold.",
        f'- bare: Bolt `App` with one `/dcs` listener doing `ack("ok")`, default settings, same waitress '
        f"({THREADS} threads), own process. Same FakeSlack, same load generator, same two builds running.",
        "- bare-same-answer: the bare app acking each command with the answer dcs-bot gave to it at the start "
        "(same size on the wire, same JSON encoding by Bolt).",
        f"- Build states at the end of each phase: {json.dumps(builds)}",
        "",
    ]
    for phase, by_app in rows.items():
        lines += [f"## Results, {phase} (milliseconds)", ""]
        if phase == "flat out":
            lines += ["Requests per second: " + ", ".join(f"{a} {r:.0f}" for a, r in throughput.items()) + ".", ""]
        lines += ["| app | command | n | p50 | p90 | p99 | max | mean |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for app, by_command in by_app.items():
            for command, s in by_command.items():
                lines.append(
                    f"| {app} | {command} | {s['n']} | {s['p50']:.1f} | {s['p90']:.1f} | {s['p99']:.1f} | "
                    f"{s['max']:.1f} | {s['mean']:.1f} |"
                )
        lines.append("")
    lines += [
        "",
        "CPU per request (user + system of the whole server process, all threads, while its clients ran; "
        "with no requests: "
        + ", ".join(f"{app} {pct:.1f} %" for app, pct in idle_cpu.items())
        + " of a core): "
        + ", ".join(f"{app} {ms:.3f} ms" for app, ms in cpu_ms.items())
        + ".",
        "",
        "Errors (non-200): " + ", ".join(f"{app} {n}" for app, n in errors.items()) + ".",
        "",
        "## Verdict",
    ]
    paced, flat = rows["paced"], rows["flat out"]
    ours = paced["dcs-bot"]["all"]["p99"]
    lines.append(
        f"- p99 dcs-bot {ours:.1f} ms vs target < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if ours < TARGET_P99_MS else 'NOT met'}"
    )
    for anchor in ("bare", "bare-same-answer"):
        theirs = paced[anchor]["all"]["p99"]
        ratio = ours / theirs if theirs else float("nan")
        lines.append(
            f"- paced, p99 ratio dcs-bot / {anchor} = {ratio:.2f} vs target ≤ {TARGET_RATIO}: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}"
        )
    for anchor in ("bare", "bare-same-answer"):
        ratio = flat["dcs-bot"]["all"]["p99"] / flat[anchor]["all"]["p99"]
        load = throughput["dcs-bot"] / throughput[anchor]
        lines.append(
            f"- flat out (each at its own load), p99 ratio dcs-bot / {anchor} = {ratio:.2f}, "
            f"serving {load:.2f}× its requests per second"
        )
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    # 400 x 20 clients = 8,000 requests per app: a p99 of 2,000 rests on 20 samples and moved by 0.3x between runs
    parser.add_argument("--requests", type=int, default=400, help="per client and app")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20, help="alternate the apps this many times")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="paced phase: requests per second from all clients together"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ack.md"))
    parser.add_argument("--serve-bare", metavar="API_URL", help=argparse.SUPPRESS)
    parser.add_argument("--answers", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--write-catalog", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, args.answers)
        return 0
    if args.write_catalog:
        write_catalog(args.write_catalog, args.images)
        return 0

    machine_lines = machine()
    work = tempfile.mkdtemp(prefix="dcs-bench-")
    db = str(Path(work) / "dcs.db")
    names = prepare_engine_and_catalog(db, args.images)
    with FakeSlack() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DCS_"))}
        env.update(
            {
                "DCS_DB": db,
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.api_url,
                "DCS_WORKERS": "2",
                "DCS_LOG_LEVEL": "INFO",
                # No internet: the base check fails fast and the builds use the local base.
                "DOCKERHUB_REGISTRY_URL": "http://127.0.0.1:9",
                "PYTHONPATH": str(ROOT),
            }
        )
        servers: list[Server] = []
        try:
            dcs = start(
                "dcs-bot",
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "--http",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--threads",
                    str(THREADS),
                    "--no-scheduler",
                ],
                env,
                work,
            )
            servers.append(dcs)
            bare = start(
                "bare", [sys.executable, str(Path(__file__).resolve()), "--serve-bare", fake.api_url], env, work
            )
            servers.append(bare)
            answers = Path(work) / "answers.json"
            answers.write_text(json.dumps(captured_answers(dcs.url)))
            same = start(
                "bare-same-answer",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-bare",
                    fake.api_url,
                    "--answers",
                    str(answers),
                ],
                env,
                work,
            )
            servers.append(same)
            measured = (dcs, bare, same)
            session = requests.Session()
            for name in names[:2]:
                _, status = post(session, dcs.url, f"build {name}")
                assert status == 200, status
            deadline = time.monotonic() + 120
            while state_of_builds(db).count("running") < 2:  # both builds are in the engine before we measure
                assert time.monotonic() < deadline, state_of_builds(db)
                time.sleep(0.2)
            while wait_for_streaming(fake) < 4:  # and their progress reaches Slack (the pip step streams)
                assert time.monotonic() < deadline, "the builds did not report progress"
                time.sleep(0.2)
            writer = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--write-catalog", db, "--images", str(args.images)],
                env=env,
                cwd=work,
                stdout=subprocess.PIPE,
                text=True,
            )
            builds: dict[str, str] = {}
            phases = {"paced": args.rate, "flat out": None}
            rows: dict[str, dict[str, dict[str, dict[str, float]]]] = {phase: {} for phase in phases}
            errors: dict[str, int] = {s.name: 0 for s in measured}
            collected = {
                phase: {s.name: {"help": [], "images": [], "errors": []} for s in measured} for phase in phases
            }
            seconds = {s.name: 0.0 for s in measured}  # flat out: time the clients took
            # Alternate the apps (and the two phases) in rounds so background noise on a shared machine hits
            # all alike.
            per_round = max(1, args.requests // args.rounds)
            cpu = {s.name: 0.0 for s in measured}
            quiet = {s.name: process_cpu(s.process.pid) for s in measured}
            time.sleep(3)
            idle_cpu = {s.name: 100 * (process_cpu(s.process.pid) - quiet[s.name]) / 3 for s in measured}
            for _ in range(args.rounds):
                for phase, rate in phases.items():
                    for server in measured:
                        cpu_before, started = process_cpu(server.process.pid), time.perf_counter()
                        result = load(server.url, args.clients, per_round, rate)
                        if rate is None:  # CPU per request: flat out, where the servers do nothing else
                            seconds[server.name] += time.perf_counter() - started
                            cpu[server.name] += process_cpu(server.process.pid) - cpu_before
                        for key, values in result.items():
                            collected[phase][server.name][key] += values
                        builds[server.name] = state_of_builds(db)
            assert writer.poll() is None, "the catalog writer stopped during the measurement: see its error above"
            writer.terminate()
            out, _ = writer.communicate(timeout=30)
            writes = int(re.search(r"catalog writes: (\d+)", out or "").group(1)) if out else 0
            lines_streamed = f"{len(fake.calls('chat.update'))} Slack progress updates in all"
            for phase in phases:
                for name, result in collected[phase].items():
                    rows[phase][name] = {
                        "help": summary(result["help"]),
                        "images": summary(result["images"]),
                        "all": summary(result["help"] + result["images"]),
                    }
                    errors[name] += len(result["errors"])
            throughput = {name: args.clients * per_round * args.rounds / t for name, t in seconds.items()}
            cpu_ms = {k: 1000 * v / (args.clients * per_round * args.rounds) for k, v in cpu.items()}
            text = report(
                rows, args, builds, errors, machine_lines, writes, lines_streamed, cpu_ms, idle_cpu, throughput
            )
        finally:
            for server in servers:
                server.stop()
            remove_namespace(prepared_engine())  # the base tag this run made
            shutil.rmtree(work, ignore_errors=True)  # the database and the servers' working folder
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


def prepared_engine():  # the docker SDK is imported lazily here, like in prepare_engine_and_catalog
    import docker

    return docker.from_env(timeout=120)


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def captured_answers(url: str) -> dict[str, dict]:
    """What dcs-bot answers to `/dcs help` and `/dcs images` now (the ack's JSON body), by first word."""
    session = requests.Session()
    answers = {}
    for text in ("help", "images"):
        body = slash_command_body(text, user_id="U1")
        response = session.post(f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=10)
        assert response.status_code == 200 and response.json().get("blocks"), response.text
        answers[text] = response.json()
    return answers


def wait_for_streaming(fake: FakeSlack) -> int:
    """How many progress updates the builds sent so far."""
    return len(fake.calls("chat.update"))


def state_of_builds(db: str) -> str:
    from bot.store import Store

    store = Store(db)
    try:
        return ", ".join(f"#{b.id} {b.status}" for b in reversed(store.builds(limit=2)))
    finally:
        store.close()


def test_ack_benchmark() -> None:
    """`./scripts/test bench/ack.py -s -q`: run the benchmark with the test engine."""
    assert main([]) == 0


if __name__ == "__main__":
    sys.exit(main())
