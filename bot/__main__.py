"""`dcs-bot`: run the Slack bot. Socket Mode by default; `--http` serves Slack's HTTP requests.

The only place (with the CLI) that reads the environment, configures logging and starts threads.
Start-up refuses to run with a configuration the chosen mode cannot work with, naming what is missing,
so a missing signing secret never turns into a 500 on Slack's first request.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from types import FrameType

from slack_bolt.error import BoltError

import jobs.approvals
import jobs.clusters
import jobs.release
import jobs.scheduler
from bot.app import app_context, create_app
from bot.clients.slack_socket_mode import socket_mode_handler
from bot.compose import build_services
from bot.config import Config, load_config, read_environment
from bot.domain.redact import RedactingFilter, Redactor
from bot.errors import ConfigError
from bot.http import DEFAULT_THREADS, create_server, make_wsgi_app
from bot.ops.catalog import registry_migrations
from bot.ops.liveness import sweep_interrupted_builds
from bot.services import Services
from bot.workers import Workers
from handlers.builds import close_interrupted

Starter = Callable[[Services, Workers, argparse.Namespace], Callable[[], None] | None]

log = logging.getLogger("bot")

# Background work started next to the bot (scheduled rebuilds, cluster tracking, approval expiry). Each
# starter is `starter(services, workers, args)` and returns a stop function or None; `args.no_scheduler` is
# True when the operator asked for no scheduled jobs. Features append their starter here (one line).
BACKGROUND_STARTERS: list[Starter] = [
    jobs.scheduler.starter,
    jobs.clusters.resume_tracking,
    jobs.approvals.start_expiry_sweep,
    jobs.release.start,
]

EX_CONFIG = 78
DEFAULT_PORT = 3000


def package_version() -> str:
    try:
        return version("dcs-bot")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "dev"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcs-bot", description="The DCS Slack bot (Socket Mode by default).")
    parser.add_argument("--version", action="version", version=f"dcs-bot {package_version()}")
    parser.add_argument("--http", action="store_true", help="serve Slack's HTTP requests instead of Socket Mode")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=None, help="HTTP mode: port (default 3000)")
    parser.add_argument("--threads", type=int, default=None, help="HTTP mode: server threads (default 16)")
    parser.add_argument("--no-scheduler", action="store_true", help="do not start scheduled background jobs")
    parser.add_argument("--env-file", default=".env", help="read variables from this file too (default .env)")
    args = parser.parse_args(argv)
    if not args.http and (args.port is not None or args.threads is not None or args.host != "0.0.0.0"):  # noqa: S104
        parser.error("--host, --port and --threads only apply with --http")
    return args


def configure_logging(config: Config) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(config.secret_values())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    # Bolt and slack_sdk log request bodies at DEBUG; keep them at INFO even when we debug.
    for noisy in ("slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(config.log_level)))


def startup_problems(config: Config, mode: str) -> list[str]:
    problems = list(config.missing_for(mode))
    if mode == "socket" and config.slack_app_token and not config.slack_app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope")
    return problems


def start_background(services: Services, workers: Workers, args: argparse.Namespace) -> list[Callable[[], None]]:
    stops = []
    for starter in BACKGROUND_STARTERS:
        stop = starter(services, workers, args)
        if stop is not None:
            stops.append(stop)
    return stops


def fail(message: str, code: int = EX_CONFIG) -> int:
    print(f"dcs-bot: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "http" if args.http else "socket"
    try:
        config = load_config(read_environment(os.environ, args.env_file))
    except ConfigError as exc:
        return fail(exc.message)
    problems = startup_problems(config, mode)
    if problems:
        lines = "\n".join(f"- {p}" for p in problems)
        hint = "" if args.http else "\n(HTTP mode instead: dcs-bot --http, which needs SLACK_SIGNING_SECRET.)"
        return fail(
            f"cannot start in {mode} mode:\n{lines}\nSet them in the environment or in .env; the README's "
            f"'Create the Slack app' shows where each one comes from (slack-manifest.yml).{hint}"
        )
    configure_logging(config)

    services = build_services(config)
    _redact_registry_passwords(services)
    for message in registry_migrations(services):  # entries from before the DCS_SECRET_ rule: say what to rename
        log.warning("%s", message)
    interrupted = sweep_interrupted_builds(services)  # a `dcs build` still running next to the bot is kept
    if interrupted:
        log.warning("builds %s were cut short (their process is gone or silent); marked interrupted", interrupted)
    workers = Workers(config.workers)
    try:
        app = create_app(config, services, workers, verify_token=True)  # auth.test: a bad token stops us here
    except BoltError as exc:
        workers.shutdown(wait=False)
        return fail(f"Slack refused the bot token ({exc}). Check SLACK_BOT_TOKEN and SLACK_API_URL.")
    ctx = app_context(app)
    close_interrupted(ctx, interrupted)
    stops = start_background(services, workers, args)
    _stop_on_sigterm()
    _settle_memory(services)
    socket_handler = None
    try:
        if args.http:
            port = args.port if args.port is not None else DEFAULT_PORT
            server = create_server(make_wsgi_app(app, services), args.host, port, args.threads or DEFAULT_THREADS)
            log.info("dcs-bot listening on http://%s:%s/slack/events", args.host, server.effective_port)
            server.run()
        else:
            socket_handler = socket_mode_handler(app, config.slack_app_token)
            log.info("dcs-bot connecting to Slack in Socket Mode")
            socket_handler.connect()
            threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        log.info("dcs-bot stopping")
    finally:
        if socket_handler is not None:
            socket_handler.close()
        for stop in stops:
            stop()
        workers.shutdown(wait=True, timeout=10)
    return 0


def _redact_registry_passwords(services: Services) -> None:
    """Logs also mask the registry passwords the catalog names (known only once the store is open)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(services.redactor))


def _settle_memory(services: Services) -> None:
    """Read the catalog once, then freeze what start-up made (modules, the app, the catalog) out of the garbage
    collector's sight. A full collection otherwise walks every one of those objects, a pause of tens of
    milliseconds that lands on whichever Slack request happens to allocate at that moment (the ack's tail)."""
    services.store.list_images()
    gc.collect()
    gc.freeze()


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
