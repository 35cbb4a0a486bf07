"""HTTP mode: a WSGI app (Slack events + health check) served by waitress with several threads.

`POST /slack/events` goes to Bolt's WSGI adapter (signature and timestamp checks, 401 on failure).
`GET /healthz` answers 200 with `{"status", "database", "docker", "engines"}` while the database answers
(Slack commands still work with an engine down; builds go to the engines that answer, or fail with a clear
message when none does), 503 when it does not. `docker` is true while at least one build engine answers;
`engines` lists each one (name, url, reachable, running, concurrency, and the error of one that does not
answer); `status` is "degraded" while any of them is unreachable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.services import Services

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_THREADS = 16
DOCKER_CHECK_SECONDS = 5.0
HEALTH_CACHE_SECONDS = 5.0

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Health:
    """Database and engine reachability, cached briefly so a busy probe cannot hammer dockerd."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def check(self) -> dict[str, Any]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < HEALTH_CACHE_SECONDS:
                return self._cached[1]
        engines = self._engines()
        result: dict[str, Any] = {
            "database": self._database(),
            "docker": any(e["reachable"] for e in engines),
            "engines": engines,
        }
        healthy = result["database"] and engines and all(e["reachable"] for e in engines)
        result["status"] = "ok" if healthy else "degraded"
        with self._lock:
            self._cached = (time.monotonic(), result)
        return result

    def _database(self) -> bool:
        try:
            return self.services.store.ping()
        except Exception as exc:
            log.warning("health: database check failed: %s", type(exc).__name__)
            return False

    def _engines(self) -> list[dict[str, Any]]:
        # Connecting to an engine the first time, or pinging one, can hang on a dead host: bound it.
        answer: list[list[dict[str, Any]]] = []

        def check() -> None:
            try:
                answer.append(self.services.engines.health())
            except Exception as exc:
                log.warning("health: engine check failed: %s", type(exc).__name__)

        thread = threading.Thread(target=check, daemon=True, name="health-docker")
        thread.start()
        thread.join(DOCKER_CHECK_SECONDS)
        if answer:
            return answer[0]
        names = self.services.engines.names
        return [{"name": name, "reachable": False, "error": "no answer in time"} for name in names]


def make_wsgi_app(app: App, services: Services) -> WsgiApp:
    slack = SlackRequestHandler(app, path=EVENTS_PATH)
    health = Health(services)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            result = health.check()
            body = json.dumps(result).encode()
            status = "200 OK" if result["database"] else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body] if method == "GET" else []
        if path == EVENTS_PATH and method != "POST":
            body = b"Slack sends POST requests here."
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "POST")])
            return [body]
        return slack(environ, start_response)

    return wsgi


def create_server(wsgi: WsgiApp, host: str, port: int, threads: int = DEFAULT_THREADS) -> Any:
    """A waitress server (not yet running): `.effective_port`, `.run()`, `.close()`."""
    from waitress import create_server as waitress_server

    return waitress_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="dcs-bot",
        channel_timeout=30,
        clear_untrusted_proxy_headers=True,
    )


class ServerThread:
    """Runs a waitress server in a daemon thread (tests, benchmarks); `stop()` shuts it down cleanly."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="waitress")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.effective_port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self.server.close()
        self.server.task_dispatcher.shutdown(timeout=5)
        self._thread.join(5)

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            # Closing the listening socket under select() ends the loop this way.
            if not self._stopping:
                raise
