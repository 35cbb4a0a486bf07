"""The launch/enable test harness: the bot served over real HTTP by waitress, the real databricks-sdk against
FakeDatabricks, FakeSlack for the Web API, and helpers to send signed commands, clicks and form submissions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from bot.app import app_context, create_app
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import RegistrySpec, image_from_dict
from bot.domain.clusterspec import parse_launch_args
from bot.http import ServerThread, create_server, make_wsgi_app
from bot.ops.launch import Launcher, _meta
from bot.store import Launch
from bot.workers import Workers
from handlers.context import AppContext
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks
from tests.fakes.http import wait_until
from tests.fakes.slack import (
    FakeSlack,
    SlackMessage,
    block_actions_body,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

SECRET = "test-signing-secret-0123456789"
ADMIN, ADMIN2, BUILDER, OUTSIDER, NO_EMAIL = "UADMIN1", "UADMIN2", "UBUILD1", "UOUT001", "UNOMAIL1"
CHANNEL, NOTIFY = "C1", "CNOTIFY1"
DIGEST = "sha256:" + "5e" * 32
ACR = RegistrySpec("acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PUSH_PASSWORD", None, "{{secrets/dcs/acr}}")
USERS = {
    ADMIN: {"name": "ada", "profile": {"email": "ada@example.com"}},
    ADMIN2: {"name": "grace", "profile": {"email": "grace@example.com"}},
    BUILDER: {"name": "bob", "profile": {"email": "bob@example.com"}},
    OUTSIDER: {"name": "eve", "profile": {"email": "eve@example.com"}},
    NO_EMAIL: {"name": "nomail", "profile": {}},
}


@dataclass
class LaunchBot:
    url: str
    slack: FakeSlack
    databricks: FakeDatabricks
    ctx: AppContext
    server: ServerThread
    workers: Workers

    def post(self, body: bytes) -> requests.Response:
        response = requests.post(
            f"{self.url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=15
        )
        assert response.status_code == 200, response.text
        return response

    def command(self, text: str, user: str = BUILDER, channel: str = CHANNEL) -> tuple[dict[str, Any], str]:
        name = f"cmd-{uuid.uuid4().hex[:8]}"
        response = self.post(
            slash_command_body(text, user_id=user, channel_id=channel, response_url=self.slack.response_url(name))
        )
        return (response.json() if response.content else {}), name

    def click(
        self, action_id: str, value: str, user: str, message: SlackMessage | None = None, channel: str = CHANNEL
    ) -> str:
        name = f"click-{uuid.uuid4().hex[:8]}"
        self.post(
            block_actions_body(
                action_id,
                value,
                user_id=user,
                channel_id=channel,
                message_ts=message.ts if message else None,
                response_url=self.slack.response_url(name),
            )
        )
        return name

    def submit(self, view: dict[str, Any], values: dict[str, Any], user: str = BUILDER) -> dict[str, Any]:
        body = view_submission_body(
            view["callback_id"],
            state_values(values),
            user_id=user,
            private_metadata=view.get("private_metadata", ""),
            view_id=view["id"],
        )
        response = self.post(body)
        return response.json() if response.content else {}

    def open_form(self, text: str = "launch team-pandas", user: str = BUILDER) -> dict[str, Any]:
        """Run the command and return the filled-in launch form (views.open, then views.update)."""
        answer, _ = self.command(text, user=user)
        assert not answer.get("text"), answer  # the ack opens a form, no message
        calls = self.slack.wait_for("views.update", timeout=30)
        view_id = calls[-1].params["view_id"]
        return self.slack.views()[view_id]

    def message_of(self, launch: Launch) -> SlackMessage:
        return next(m for m in self.slack.messages() if m.ts == launch.slack_ts)

    def wait_launch(self, done: Callable[[Launch], bool], timeout: float = 30) -> Launch:
        def probe() -> Launch | None:
            found = self.ctx.store.launches(limit=1)
            return found[0] if found and done(found[0]) else None

        return wait_until(probe, timeout, lambda: f"launches: {self.ctx.store.launches()}")

    def wait_message(self, launch_id: int, words: str, timeout: float = 30) -> SlackMessage:
        def probe() -> SlackMessage | None:
            launch = self.ctx.store.get_launch(launch_id)
            found = [
                m
                for m in self.slack.messages()
                if m.ts == launch.slack_ts and words in (m.text or "") + json.dumps(m.blocks)
            ]
            return found[0] if found else None

        return wait_until(probe, timeout, lambda: f"messages: {[m.text for m in self.slack.messages()]}")

    def stop(self) -> None:
        tracker = self.ctx.services.tracker
        if tracker is not None:
            tracker.stop()
        self.server.stop()
        self.workers.shutdown(wait=True, timeout=30)


def state_values(values: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Form values as Slack's view.state.values: selects for runtime/node/size, text for the rest."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for block, value in values.items():
        if block in ("runtime", "node_type", "size_mode"):
            kind = "radio_buttons" if block == "size_mode" else "static_select"
            out[block] = {"value": {"type": kind, "selected_option": {"value": value} if value else None}}
        elif block in ("workers", "min_workers", "max_workers", "autotermination"):
            out[block] = {"value": {"type": "number_input", "value": value}}
        else:
            out[block] = {"value": {"type": "plain_text_input", "value": value}}
    return out


GOOD_FORM = {
    "runtime": "15.4.x-scala2.12",
    "node_type": "m5d.large",
    "size_mode": "fixed",
    "workers": "2",
    "autotermination": "60",
}


def start_launch_bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks, **env: str) -> LaunchBot:
    environ = {
        "DCS_DB": tmp_db,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "DCS_ADMINS": f"{ADMIN},{ADMIN2}",
        "DCS_BUILDERS": f"{BUILDER},{NO_EMAIL}",
        "DATABRICKS_HOST": databricks.url,
        "DATABRICKS_TOKEN": DEFAULT_TOKEN,
        "DCS_DATABRICKS_TIMEOUT": "4",
        "DOCKER_HOST": "tcp://127.0.0.1:9",
        "DCS_NOTIFY_CHANNEL": NOTIFY,
        **env,
    }
    config = load_config(environ)
    services = build_services(config)
    services.launcher = Launcher(services, poll_initial=0.05, poll_max=0.2)
    workers = Workers(config.workers)
    app = create_app(config, services, workers)
    server = ServerThread(create_server(make_wsgi_app(app, services), "127.0.0.1", 0, threads=8)).start()
    return LaunchBot(server.url, slack, databricks, app_context(app), server, workers)


def seed_image(
    ctx: AppContext,
    name: str = "team-pandas",
    base: str = "databricksruntime/standard:15.4-LTS",
    repository: str = "myacr.azurecr.io/team/pandas",
    registry: RegistrySpec | None = ACR,
    digest: str = DIGEST,
) -> int:
    """An image whose last build was pushed (the launch only needs its digest)."""
    store = ctx.store
    if registry is not None and registry.name not in [r.name for r in store.list_registries()]:
        store.add_registry(registry)
    store.add_image(image_from_dict({"name": name, "base": base, "repository": repository}), replace=True)
    build = store.create_build(name, requester=ADMIN, source="test", push=True)
    store.update_build(build.id, status="succeeded", pushed_digest=digest)
    return build.id


def new_slack() -> FakeSlack:
    return FakeSlack(users=USERS, channels={CHANNEL: {"name": "dcs"}, NOTIFY: {"name": "dcs-admins"}})


def left_creating(ctx: AppContext, launcher: Launcher, request_key: str) -> tuple[Launch, str]:
    """What a crash right after the POST leaves: a cluster with the request's tag, a `creating` row without its
    id, old enough that no live process can still be creating it. Returns the row and the cluster's id."""
    request = parse_launch_args("team-pandas", ["runtime=15.4.x-scala2.12", "node_type=m5d.large"])
    source, plan = launcher.plan(request, requester=BUILDER, user_email="bob@example.com", request_key=request_key)
    cluster_id = ctx.services.databricks.create_cluster(plan.body)
    meta = _meta(request, source, plan, launcher.check_budget(source, plan), "bob@example.com", request_key)
    row = ctx.store.insert_launch(
        image="team-pandas", build_id=source.build_id, requester=BUILDER, request=meta, status="creating"
    )
    with ctx.store.transaction() as conn:
        conn.execute("UPDATE launches SET updated_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (row.id,))
    return ctx.store.get_launch(row.id), cluster_id
