"""`dcs-bot` as an operator runs it: start-up validation and HTTP mode in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.fakes.slack import FakeSlack, signed_headers, slash_command_body
from tests.support.cli import dcs_bot_command

SECRET = "cli-signing-secret-0123456789"


def command() -> list[str]:
    return dcs_bot_command()


def environment(tmp_path: Path, **values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DCS_", "DATABRICKS_"))}
    return {**keep, "DCS_DB": str(tmp_path / "dcs.db"), "PYTHONUNBUFFERED": "1", **values}


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command(), *args], env=environment(tmp_path, **env), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_socket_mode_without_tokens_exits_naming_what_is_missing(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 78
    assert "cannot start in socket mode" in result.stderr
    assert "SLACK_BOT_TOKEN is required" in result.stderr and "SLACK_APP_TOKEN is required" in result.stderr
    assert "dcs-bot --http" in result.stderr  # the other way to run it


def test_http_mode_without_signing_secret_exits_before_serving(tmp_path: Path) -> None:
    result = run(tmp_path, "--http", SLACK_BOT_TOKEN="xoxb-1")
    assert result.returncode == 78
    assert "SLACK_SIGNING_SECRET is required for http mode" in result.stderr
    assert "SLACK_APP_TOKEN" not in result.stderr


def test_a_bad_variable_is_reported_without_its_secret_value(tmp_path: Path) -> None:
    result = run(tmp_path, "--http", SLACK_BOT_TOKEN="not-a-token-s3cr3t", SLACK_SIGNING_SECRET="x")
    assert result.returncode == 78
    assert "SLACK_BOT_TOKEN does not look like a Slack token" in result.stderr
    assert "s3cr3t" not in result.stderr


def test_port_without_http_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "--port", "8080")
    assert result.returncode == 2 and "only apply with --http" in result.stderr


def test_a_token_slack_rejects_stops_the_start(tmp_path: Path) -> None:
    with FakeSlack(valid_tokens={"xoxb-the-right-one"}) as fake:
        result = run(
            tmp_path,
            "--http",
            "--port",
            "0",
            SLACK_BOT_TOKEN="xoxb-wrong-one",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
        )
    assert result.returncode == 78
    assert "Slack refused the bot token" in result.stderr and "invalid_auth" in result.stderr


def test_http_mode_serves_signed_commands_and_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        env = environment(
            tmp_path,
            SLACK_BOT_TOKEN="xoxb-cli",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
            DOCKER_HOST="tcp://127.0.0.1:9",
        )
        process = subprocess.Popen(
            [*command(), "--http", "--host", "127.0.0.1", "--port", "0", "--no-scheduler"],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            port = None
            deadline = time.monotonic() + 30
            lines = []
            while port is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                if not line and process.poll() is not None:
                    break
                lines.append(line)
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/slack/events", line)
                port = int(match.group(1)) if match else None
            assert port, f"dcs-bot did not start: {''.join(lines)}"
            url = f"http://127.0.0.1:{port}"
            body = slash_command_body("help", user_id="U1")
            response = requests.post(f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=10)
            assert response.status_code == 200 and "/dcs build NAME" in response.json()["text"]
            forged = requests.post(f"{url}/slack/events", data=body, headers=signed_headers("wrong", body), timeout=10)
            assert forged.status_code == 401
            health = requests.get(f"{url}/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["database"] is True
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log = "".join(lines) + (process.stderr.read() if process.stderr else "")
        assert "xoxb-cli" not in log and SECRET not in log


ROOT = Path(__file__).parents[2]


def test_procfile_runs_both_modes() -> None:
    text = (ROOT / "Procfile").read_text()
    assert "worker: dcs-bot\n" in text and "web: dcs-bot --http --port $PORT" in text


@pytest.mark.parametrize(("path", "socket_mode"), [("slack-manifest.yml", True), ("slack-manifest.http.yml", False)])
def test_manifests_declare_what_the_bot_uses(path: str, socket_mode: bool) -> None:
    import yaml  # a dev dependency: the manifests must parse

    manifest = yaml.safe_load((ROOT / path).read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "users:read",
        "users:read.email",
        "im:write",
        "files:write",  # "Log in thread" attaches long logs with files_upload_v2
    }
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/dcs"
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is socket_mode
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    urls = [
        command.get("url"),
        settings["interactivity"].get("request_url"),
        settings["event_subscriptions"].get("request_url"),
    ]
    options_url = settings["interactivity"].get("message_menu_options_url")  # external selects (node types)
    if socket_mode:
        assert urls == [None, None, None] and options_url is None  # Socket Mode delivers options itself
    else:
        assert all(url and url.endswith("/slack/events") for url in [*urls, options_url])
