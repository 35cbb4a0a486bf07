"""The local fakes speak the real wire formats: the real client libraries work against them unmodified."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import WebClient

from tests.fakes.databricks import DCS_OFF, DEFAULT_TOKEN, DEFAULT_USER, FakeDatabricks, dcs_spec
from tests.fakes.dockerhub import PULL_LIMIT_MESSAGE, RATELIMIT_PREVIEW, FakeDockerHub, PullBudget
from tests.fakes.slack import (
    FakeSlack,
    FakeSocketModeServer,
    block_actions_body,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    socket_mode_envelope,
    view_submission_body,
)

TIMEOUT = 5


# ---- Slack ----------------------------------------------------------------------------------------
@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def web(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT)


def test_slack_post_then_update_keeps_current_message_state(slack: FakeSlack, web: WebClient) -> None:
    assert web.auth_test()["user_id"] == "U0BOT0001"
    first = web.chat_postMessage(
        channel="C1", text="Building…", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "step 1"}}]
    )
    second = web.chat_postMessage(channel="C1", text="other")
    assert first["ts"] != second["ts"] and first["channel"] == "C1"

    web.chat_update(channel="C1", ts=first["ts"], text="Built")

    by_ts = {m.ts: m for m in slack.messages("C1")}
    assert by_ts[first["ts"]].text == "Built" and by_ts[first["ts"]].updates == 1
    assert by_ts[first["ts"]].blocks[0]["text"]["text"] == "step 1"  # blocks kept when not resent
    call = slack.calls("chat.postMessage")[0]
    assert call.token == "xoxb-test" and call.params["blocks"][0]["type"] == "section"
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_slack_dm_to_user_id_lands_in_a_dm_channel(web: WebClient) -> None:
    assert web.chat_postMessage(channel="U1", text="hi")["channel"] == "D1"


def test_slack_form_encoded_lookups_and_their_errors(web: WebClient) -> None:
    user = web.users_info(user="U1")["user"]
    assert user["profile"]["email"] == "alice@example.com" and user["real_name"] == "Alice Example"
    assert web.conversations_info(channel="C1")["channel"]["name"] == "dcs-builds"
    for call, error in [
        (lambda: web.users_info(user="U404"), "user_not_found"),
        (lambda: web.conversations_info(channel="C404"), "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as err:
            call()
        assert err.value.response["error"] == error


def test_slack_accepts_token_in_form_and_decodes_json_form_fields(slack: FakeSlack) -> None:
    blocks = json.dumps([{"type": "divider"}])
    answer = requests.post(
        slack.api_url + "chat.postMessage",
        timeout=TIMEOUT,
        data={"token": "xoxb-form", "channel": "C1", "text": "t", "blocks": blocks},
    ).json()
    assert answer["ok"] is True
    call = slack.calls("chat.postMessage")[0]
    assert call.token == "xoxb-form" and call.params["blocks"] == [{"type": "divider"}]
    assert "token" not in call.params


def test_slack_views_open_update_publish(slack: FakeSlack, web: WebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "dcs_build",
        "title": {"type": "plain_text", "text": "Build"},
        "blocks": [],
    }
    view = web.views_open(trigger_id="t-1", view=modal)["view"]
    web.views_update(view_id=view["id"], hash=view["hash"], view={**modal, "private_metadata": "x"})
    assert slack.views()[view["id"]]["private_metadata"] == "x"
    web.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert slack.home_view("U1")["type"] == "home"

    for kwargs, error in [
        ({"trigger_id": "t-1", "view": modal}, "exchanged_trigger_id"),
        (
            {"trigger_id": "t-2", "view": {**modal, "title": {"type": "plain_text", "text": "x" * 25}}},
            "invalid_arguments",
        ),
    ]:
        with pytest.raises(SlackApiError) as err:
            web.views_open(**kwargs)
        assert err.value.response["error"] == error


def test_slack_fault_injection_and_unknown_methods(slack: FakeSlack, web: WebClient) -> None:
    slack.fail_next("chat.postMessage", error="not_in_channel")
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 200 and err.value.response["error"] == "not_in_channel"
    assert web.chat_postMessage(channel="C1", text="x")["ok"]

    with pytest.raises(SlackApiError) as err:
        web.api_call("nope.nope")
    assert err.value.response["error"] == "unknown_method"
    with pytest.raises(SlackApiError) as err:
        web.apps_connections_open(app_token="xoxb-not-an-app-token")
    assert err.value.response["error"] == "not_allowed_token_type"


def test_slack_rate_limit_carries_retry_after_and_the_retry_handler_honours_it(
    slack: FakeSlack, web: WebClient
) -> None:
    slack.rate_limit_next("chat.update", retry_after=1)
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel="C1", ts="1.1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["retry-after"] == "1" and err.value.response["error"] == "ratelimited"

    slack.rate_limit_next("chat.postMessage", retry_after=1)
    patient = WebClient(
        token="xoxb-test",
        base_url=slack.api_url,
        timeout=TIMEOUT,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    assert patient.chat_postMessage(channel="C1", text="x")["ok"]
    assert time.monotonic() - started >= 1
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]


def test_slack_response_url_sink_and_wait_for(slack: FakeSlack, web: WebClient) -> None:
    url = slack.response_url("cmd-1")
    assert requests.post(url, json={"text": "done"}, timeout=TIMEOUT).text == "ok"
    assert slack.response_posts("cmd-1")[0].body == {"text": "done"}

    threading.Timer(0.2, lambda: web.chat_postMessage(channel="C1", text="late")).start()
    assert slack.wait_for(lambda c: c.params.get("text") == "late")[0].method == "chat.postMessage"
    with pytest.raises(AssertionError, match="chat.postMessage"):
        slack.wait_for("chat.update", timeout=0.2)


def test_signed_headers_match_slack_sdk_verifier() -> None:
    body = slash_command_body("build standard")
    headers = signed_headers("secret", body)
    verifier = SignatureVerifier("secret")
    timestamp, signature = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    assert verifier.is_valid(body, timestamp, signature)
    assert not verifier.is_valid(body + b"x", timestamp, signature)


def test_payload_builders_drive_a_real_bolt_app(slack: FakeSlack, web: WebClient) -> None:
    from slack_bolt import App, BoltRequest

    app = App(client=web, signing_secret="secret")
    seen: dict[str, Any] = {}

    @app.command("/dcs")
    def command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        ack()
        seen["command"] = command["text"]
        respond("on it")

    @app.action("approve")
    def approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="approved")

    @app.view("dcs_build")
    def submit(ack: Any, view: dict[str, Any]) -> None:
        ack(response_action="errors", errors={"tag": view["state"]["values"]["tag"]["tag_input"]["value"]})

    def dispatch(body: bytes, signing_secret: str | None = None) -> Any:
        headers = signed_headers(signing_secret or "secret", body)
        return app.dispatch(BoltRequest(body=body.decode(), headers=headers))

    assert dispatch(slash_command_body("doctor", response_url=slack.response_url("c")), "wrong").status == 401
    assert dispatch(slash_command_body("doctor", response_url=slack.response_url("c"))).status == 200
    posted = web.chat_postMessage(channel="C1", text="approve?")
    assert dispatch(block_actions_body("approve", "b-1", message_ts=posted["ts"])).status == 200
    state = {"tag": {"tag_input": {"type": "plain_text_input", "value": "bad tag"}}}
    answer = dispatch(view_submission_body("dcs_build", state, private_metadata="m"))

    assert json.loads(answer.body) == {"response_action": "errors", "errors": {"tag": "bad tag"}}
    slack.wait_for("chat.update")
    assert [m.text for m in slack.messages("C1")] == ["approved"]
    assert seen["command"] == "doctor"
    assert slack.wait_for_response_post("c").body["text"] == "on it"
    assert slack.calls()[0].method == "auth.test"  # the App checks its token at construction


def test_socket_mode_handshake_envelope_and_ack_with_bolt() -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    with FakeSocketModeServer() as ws, FakeSlack(socket_mode_url=ws.url) as slack:
        app = App(client=WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT))

        @app.command("/dcs")
        def command(ack: Any, respond: Any) -> None:
            ack()
            respond("from socket mode")

        handler = SocketModeHandler(app, app_token="xapp-1-test")
        handler.connect()
        try:
            payload = slash_command_payload("status", response_url=slack.response_url("sm"))
            envelope = socket_mode_envelope(payload)
            ws.send(envelope)
            assert ws.wait_for_ack(envelope["envelope_id"])["envelope_id"] == envelope["envelope_id"]
            assert slack.wait_for_response_post("sm").body["text"] == "from socket mode"
            assert ws.connections == 1 and slack.calls("apps.connections.open")[0].token == "xapp-1-test"
        finally:
            handler.close()


# ---- Databricks -----------------------------------------------------------------------------------
@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=1) as fake:
        yield fake


def _client(fake: FakeDatabricks, token: str = DEFAULT_TOKEN, retry_timeout_seconds: int = 5) -> Any:
    return fake.client(token, retry_timeout_seconds)


DCS_SPEC: dict[str, Any] = dcs_spec(
    custom_tags={"dcs-bot": "1"},
    docker_image={"url": "registry.example.com/team/img:1", "basic_auth": {"username": "u", "password": "s3cret"}},
)


def _create(w: Any, **overrides: Any) -> Any:
    from databricks.sdk.service.compute import ClusterSpec

    spec = ClusterSpec.from_dict({**DCS_SPEC, **overrides})
    kwargs = {k: v for k, v in vars(spec).items() if v is not None}
    return w.clusters.create(**kwargs)


def test_databricks_cluster_goes_pending_then_running_and_hides_password(dbx: FakeDatabricks) -> None:
    from databricks.sdk.service.compute import State

    w = _client(dbx)
    cluster_id = _create(w).cluster_id
    first, second = w.clusters.get(cluster_id), w.clusters.get(cluster_id)

    assert (first.state, second.state) == (State.PENDING, State.RUNNING)
    assert second.docker_image.url == DCS_SPEC["docker_image"]["url"]
    assert second.docker_image.basic_auth.username == "u" and second.docker_image.basic_auth.password is None
    raw = w.api_client.do("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id})
    assert "s3cret" not in json.dumps(raw)
    assert second.default_tags["ClusterId"] == cluster_id and second.creator_user_name == DEFAULT_USER
    assert [c.cluster_id for c in w.clusters.list()] == [cluster_id]
    assert dbx.created_specs()[0]["docker_image"]["basic_auth"]["password"] == "s3cret"


def test_databricks_waiter_and_scripted_launch_failure(dbx: FakeDatabricks) -> None:
    from databricks.sdk.service.compute import State, TerminationReasonCode

    w = _client(dbx)
    dbx.script_next_cluster(pending_polls=0)
    assert _create(w).result().state == State.RUNNING

    dbx.script_next_cluster(
        final="TERMINATED",
        termination_code="DOCKER_IMAGE_PULL_FAILURE",
        termination_type="CLIENT_ERROR",
        parameters={"databricks_error_message": "pull failed"},
    )
    cluster_id = _create(w).cluster_id
    states = [w.clusters.get(cluster_id).state for _ in range(3)]
    final = w.clusters.get(cluster_id)
    assert states == [State.PENDING, State.TERMINATING, State.TERMINATED]
    assert final.termination_reason.code == TerminationReasonCode.DOCKER_IMAGE_PULL_FAILURE
    assert final.termination_reason.parameters == {"databricks_error_message": "pull failed"}
    assert final.state_message == "pull failed"


def test_databricks_catalogues(dbx: FakeDatabricks) -> None:
    w = _client(dbx)
    keys = {v.key: v.name for v in w.clusters.spark_versions().versions}
    wanted = {"17.3.x-scala2.13", "16.4.x-scala2.12", "16.4.x-scala2.13", "15.4.x-gpu-ml-scala2.12"}
    assert wanted <= keys.keys()
    assert keys["15.4.x-scala2.12"] == "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"
    nodes = w.clusters.list_node_types().node_types
    assert any(n.is_graviton for n in nodes) and any(n.is_deprecated for n in nodes)
    assert any(n.num_gpus for n in nodes)
    for version in ("2.0", "2.1"):
        answer = requests.get(
            f"{dbx.url}/api/{version}/clusters/spark-versions",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        assert answer.status_code == 200 and answer.json()["versions"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"spark_version": "15.4.x-cpu-ml-scala2.12"}, "Machine Learning"),
        ({"spark_version": "17.3.x-gpu-ml-scala2.13", "node_type_id": "g5.xlarge"}, "Machine Learning"),
        ({"spark_version": "10.4.x-hls-scala2.12"}, "Genomics"),
        ({"spark_version": "apache-spark-2.4.x-scala2.11"}, "Light"),
        ({"spark_version": "15.4.x-aarch64-scala2.12"}, "Graviton"),
        ({"node_type_id": "m6gd.large"}, "Graviton"),
        ({"data_security_mode": "USER_ISOLATION"}, "data_security_mode USER_ISOLATION"),
        ({"single_user_name": None}, "single_user_name"),
        ({"spark_version": None}, "spark_version"),
        ({"node_type_id": "z9.huge"}, "Node type z9.huge is not supported"),
        ({"custom_tags": {f"t{i}": "v" for i in range(46)}}, "45"),
        ({"autotermination_minutes": 5}, "between 10 and 10000"),
    ],
)
def test_databricks_rejects_what_dcs_rejects(dbx: FakeDatabricks, overrides: dict[str, Any], message: str) -> None:
    from databricks.sdk.errors import InvalidParameterValue

    w = _client(dbx)
    body = {k: v for k, v in {**DCS_SPEC, **overrides}.items() if v is not None}
    with pytest.raises(InvalidParameterValue, match=message):
        w.api_client.do("POST", "/api/2.1/clusters/create", body=body)
    assert dbx.clusters == {}


def test_databricks_dcs_switched_off_and_unknown_fields(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import InvalidParameterValue

    w = _client(dbx)
    with pytest.raises(InvalidParameterValue, match="unknown field in request: docker_image.user"):
        body = {**DCS_SPEC, "docker_image": {"url": "x", "user": "y"}}
        w.api_client.do("POST", "/api/2.1/clusters/create", body=body)
    dbx.workspace_conf["enableDcs"] = "false"
    with pytest.raises(InvalidParameterValue) as err:
        _create(w)
    assert str(err.value) == DCS_OFF


def test_databricks_unknown_cluster_maps_to_resource_does_not_exist(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import ResourceDoesNotExist

    with pytest.raises(ResourceDoesNotExist, match="Cluster 0101-000000-nothere does not exist"):
        _client(dbx).clusters.get("0101-000000-nothere")


def test_databricks_workspace_conf_and_me_depend_on_admin(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import PermissionDenied

    dbx.tokens["dapi-bob"] = "bob@example.com"
    admin, bob = _client(dbx), _client(dbx, "dapi-bob")
    assert [g.display for g in admin.current_user.me().groups] == ["users", "admins"]
    assert [g.display for g in bob.current_user.me().groups] == ["users"]

    assert admin.workspace_conf.get_status(keys="enableDcs") == {"enableDcs": "true"}
    with pytest.raises(PermissionDenied):
        bob.workspace_conf.set_status({"enableDcs": "false"})
    admin.workspace_conf.set_status({"enableDcs": "false"})
    assert bob.workspace_conf.get_status(keys="enableDcs") == {"enableDcs": "false"}
    assert dbx.workspace_conf_patches == 2


def test_databricks_auth_failures(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import PermissionDenied

    answer = requests.get(f"{dbx.url}/api/2.1/clusters/list", timeout=TIMEOUT)
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        _client(dbx, "dapi-wrong").current_user.me()


def test_databricks_injected_faults_map_to_sdk_errors_and_retries(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import InternalError, PermissionDenied

    w = _client(dbx)
    dbx.fail_next("/clusters/spark-versions", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=1)
    dbx.fail_next("/clusters/spark-versions", 503, "TEMPORARILY_UNAVAILABLE", "busy", retry_after=1)
    assert w.clusters.spark_versions().versions  # both retried by the SDK, honouring Retry-After
    assert len(dbx.requests_matching("GET", path_contains="spark-versions")) == 3

    dbx.fail_next("/clusters/list-node-types", 500, "INTERNAL_ERROR", "boom")
    with pytest.raises(InternalError):
        w.clusters.list_node_types()
    assert len(dbx.requests_matching(path_contains="list-node-types")) == 1  # 500 is not retried
    dbx.fail_next("/clusters/create", 403, "PERMISSION_DENIED", "no cluster create")
    with pytest.raises(PermissionDenied, match="no cluster create"):
        _create(w)


def test_databricks_too_many_requests_surfaces_when_retries_run_out(dbx: FakeDatabricks) -> None:
    from databricks.sdk.errors import TooManyRequests

    dbx.fail_next("/clusters/list", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=1, times=100)
    with pytest.raises(TimeoutError) as err:
        list(_client(dbx, retry_timeout_seconds=1).clusters.list())
    assert isinstance(err.value.__cause__, TooManyRequests)


# ---- Docker Hub -----------------------------------------------------------------------------------
@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as fake:
        yield fake


def _token(hub: FakeDockerHub, repo: str = RATELIMIT_PREVIEW, auth: tuple[str, str] | None = None) -> str:
    params = {"service": "registry.docker.io", "scope": f"repository:{repo}:pull"}
    answer = requests.get(hub.realm, params=params, auth=auth, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300 and body["issued_at"]
    return body["token"]


def _manifest(
    hub: FakeDockerHub, token: str | None, method: str = "HEAD", repo: str = RATELIMIT_PREVIEW, ref: str = "latest"
) -> requests.Response:
    headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{hub.url}/v2/{repo}/manifests/{ref}", headers=headers, timeout=TIMEOUT)


def test_dockerhub_head_reads_the_limit_without_spending_a_pull(hub: FakeDockerHub) -> None:
    token = _token(hub)
    head = _manifest(hub, token)
    assert head.status_code == 200
    assert head.headers["ratelimit-limit"] == "100;w=21600"
    assert head.headers["ratelimit-remaining"] == "76;w=21600"
    assert head.headers["docker-ratelimit-source"] == "203.0.113.7"
    assert _manifest(hub, token).headers["ratelimit-remaining"] == "76;w=21600"
    assert _manifest(hub, token, "GET").headers["ratelimit-remaining"] == "75;w=21600"
    assert _manifest(hub, token).headers["ratelimit-remaining"] == "75;w=21600"
    assert hub.counts() == {"HEAD": 3, "GET": 1}


def test_dockerhub_challenges_without_a_token(hub: FakeDockerHub) -> None:
    answer = _manifest(hub, None, "GET")
    assert answer.status_code == 401 and answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer realm="{hub.url}/token",service="registry.docker.io",scope="repository:{RATELIMIT_PREVIEW}:pull"'
    )
    other = _manifest(hub, _token(hub), repo="databricksruntime/standard", ref="15.4-LTS")
    assert other.status_code == 401 and 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]


def test_dockerhub_basic_auth_token_and_login_failures(hub: FakeDockerHub) -> None:
    token = _token(hub, auth=("dcsbot", "dckr_pat_test"))
    head = _manifest(hub, token)
    assert head.headers["ratelimit-limit"] == "200;w=21600"
    assert head.headers["docker-ratelimit-source"] != "203.0.113.7"

    params = {"service": "registry.docker.io", "scope": f"repository:{RATELIMIT_PREVIEW}:pull"}
    wrong = requests.get(hub.realm, params=params, auth=("dcsbot", "nope"), timeout=TIMEOUT)
    assert wrong.status_code == 401
    hub.too_many_failed_logins = True
    locked = requests.get(hub.realm, params=params, auth=("dcsbot", "nope"), timeout=TIMEOUT)
    assert locked.status_code == 429 and "too many failed login attempts" in locked.text


def test_dockerhub_unlimited_exhausted_and_scripted_limits(hub: FakeDockerHub) -> None:
    token = _token(hub)
    hub.set_unlimited()
    assert "ratelimit-limit" not in _manifest(hub, token, "GET").headers

    hub.set_rate_limit(100, 0)
    assert _manifest(hub, token).headers["ratelimit-remaining"] == "0;w=21600"
    refused = _manifest(hub, token, "GET")
    assert refused.status_code == 429
    assert refused.json() == {"errors": [{"code": "TOOMANYREQUESTS", "message": PULL_LIMIT_MESSAGE}]}

    hub.set_exhausted()
    assert _manifest(hub, token).status_code == 429

    hub.set_rate_limit(100, 50)
    hub.queue_rate_limit(PullBudget(limit=10, remaining=3, window=3600))
    assert _manifest(hub, token).headers["ratelimit-limit"] == "10;w=3600"
    assert _manifest(hub, token).headers["ratelimit-remaining"] == "50;w=21600"


def test_dockerhub_serves_base_image_digests(hub: FakeDockerHub) -> None:
    repo = "databricksruntime/standard"
    token = _token(hub, repo)
    got = _manifest(hub, token, "GET", repo, "15.4-LTS")
    digest = got.headers["Docker-Content-Digest"]
    assert digest == "sha256:" + hashlib.sha256(got.content).hexdigest() == hub.digest_of(repo, "15.4-LTS")
    assert got.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert _manifest(hub, token, "HEAD", repo, digest).status_code == 200

    new = hub.push_new_digest(repo, "15.4-LTS")
    assert new != digest
    assert _manifest(hub, token, "HEAD", repo, "15.4-LTS").headers["Docker-Content-Digest"] == new
    missing = _manifest(hub, token, "HEAD", repo, "99.9-LTS")
    assert missing.status_code == 404


def test_dockerhub_private_repository_needs_credentials(hub: FakeDockerHub) -> None:
    hub.add_manifest("team/private", "1", private=True)
    assert _manifest(hub, _token(hub, "team/private"), repo="team/private", ref="1").status_code == 401
    token = _token(hub, "team/private", auth=("dcsbot", "dckr_pat_test"))
    assert _manifest(hub, token, repo="team/private", ref="1").status_code == 200
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "team/private", "actions": ["pull"]}]


def _all_tags(hub: FakeDockerHub, repo: str, token: str, first: str) -> tuple[list[str], int]:
    """Follow `Link: <...>; rel="next"` as a compliant client does; returns the tags and the request count."""
    from urllib.parse import urljoin

    url, tags, requests_made = urljoin(hub.url, first), [], 0
    while url:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == repo
        tags += answer.json()["tags"]
        requests_made += 1
        link = answer.headers.get("Link")
        url = urljoin(url, link.split(";")[0].strip("<> ")) if link else ""
    return tags, requests_made


def test_dockerhub_tags_list_pages_with_link_headers(hub: FakeDockerHub) -> None:
    repo = "databricksruntime/standard"
    token = _token(hub, repo)
    budget = hub.budget()
    everything = ["15.4-LTS", "16.4-LTS", "17.3-LTS", "experimental", "latest"]
    assert _all_tags(hub, repo, token, f"/v2/{repo}/tags/list?n=2") == (everything, 3)
    first = requests.get(f"{hub.url}/v2/{repo}/tags/list?n=2", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert first.headers["Link"] == f'</v2/{repo}/tags/list?n=2&last=16.4-LTS>; rel="next"'

    hub.add_manifest(repo, "18.4-LTS")
    hub.tags_link, hub.tags_page_size = "absolute", 4
    tags, pages = _all_tags(hub, repo, token, f"/v2/{repo}/tags/list")
    assert "18.4-LTS" in tags and len(tags) == 6 and pages == 2  # the server caps pages even without n
    assert hub.budget() == budget and len(hub.tags_requests(repo)) == 6  # listing tags spends no pull

    no_token = requests.get(f"{hub.url}/v2/{repo}/tags/list", timeout=TIMEOUT)
    assert no_token.status_code == 401 and f'scope="repository:{repo}:pull"' in no_token.headers["WWW-Authenticate"]
    bad_n = requests.get(f"{hub.url}/v2/{repo}/tags/list?n=x", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert bad_n.status_code == 400 and bad_n.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


# ---- the shared server base -------------------------------------------------------------------------
def test_base_server_reports_fake_bugs_as_500_and_frees_its_port() -> None:
    from tests.fakes.http import FakeHTTPServer, RecordedRequest, Response

    class Broken(FakeHTTPServer):
        def handle(self, request: RecordedRequest) -> Response:
            raise KeyError("oops")

    with Broken() as fake:
        answer = requests.put(f"{fake.url}/x?a=1&a=2", json={"k": "v"}, timeout=TIMEOUT)
        url = fake.url
    assert answer.status_code == 500 and "KeyError" in answer.json()["fake_error"]
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.query, seen.query_multi["a"], seen.body) == (
        "PUT",
        "/x",
        {"a": "1"},
        ["1", "2"],
        {"k": "v"},
    )
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=TIMEOUT)
