"""The fake Slack's threads, file uploads, Block Kit checks and external-select requests, driven by slack_sdk
3.48's WebClient and a real Bolt app (HTTP and Socket Mode)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    ExternalDataSelectElement,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.web import WebClient

from tests.fakes.blockkit import options_problems
from tests.fakes.slack import (
    SCOPES,
    FakeSlack,
    FakeSocketModeServer,
    block_suggestion_body,
    block_suggestion_payload,
    signed_headers,
    socket_mode_envelope,
    view_submission_payload,
)

TIMEOUT = 5
WITH_FILES = SCOPES + ",files:write,channels:history"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(scopes=WITH_FILES) as fake:
        yield fake


@pytest.fixture
def web(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT)


# ---- threads --------------------------------------------------------------------------------------
def test_thread_replies_and_mentions(slack: FakeSlack, web: WebClient) -> None:
    parent = web.chat_postMessage(channel="C1", text="Building standard…")["ts"]
    web.chat_update(channel="C1", ts=parent, text="Built standard")  # edits notify nobody
    web.chat_postMessage(channel="C1", thread_ts=parent, text="<@U1> build #7 finished")
    web.chat_postMessage(channel="C1", thread_ts=parent, text="log tail", reply_broadcast=True)
    web.chat_postMessage(channel="C1", text="unrelated <@U2>")

    replies = slack.replies("C1", parent)
    assert [m.text for m in replies] == ["<@U1> build #7 finished", "log tail"]
    assert [m.reply_broadcast for m in replies] == [False, True]
    assert [m.text for m in slack.mentions("U1", threaded=True)] == ["<@U1> build #7 finished"]
    assert slack.mentions("U1", threaded=False) == [] and slack.wait_for_mention("U2").thread_ts is None

    thread = web.conversations_replies(channel="C1", ts=parent)["messages"]
    assert [m["text"] for m in thread] == ["Built standard", "<@U1> build #7 finished", "log tail"]
    assert thread[0]["reply_count"] == 2 and thread[1]["thread_ts"] == parent
    with pytest.raises(SlackApiError) as err:
        web.conversations_replies(channel="C1", ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


def test_mentions_inside_blocks_count(slack: FakeSlack, web: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Failed — <@U1>, pip could not find x"}}]
    web.chat_postMessage(channel="C1", thread_ts="1.1", text="Build failed", blocks=blocks)
    assert slack.wait_for_mention("U1", threaded=True).blocks == blocks


def test_missing_history_scope() -> None:
    with FakeSlack() as slack:
        web = WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT)
        ts = web.chat_postMessage(channel="C1", text="x")["ts"]
        with pytest.raises(SlackApiError) as err:
            web.conversations_replies(channel="C1", ts=ts)
    assert err.value.response["error"] == "missing_scope" and err.value.response["needed"] == "channels:history"


# ---- files ----------------------------------------------------------------------------------------
def test_files_upload_v2_in_a_thread(slack: FakeSlack, web: WebClient) -> None:
    parent = web.chat_postMessage(channel="C1", text="Build failed")["ts"]
    answer = web.files_upload_v2(
        channel="C1",
        thread_ts=parent,
        content="Step 5/9 : RUN pip install x\nERROR: No matching distribution found for x\n",
        filename="build-7.log",
        title="Build #7 log",
        initial_comment="<@U1> the log",
    )

    (uploaded,) = slack.files("C1", thread_ts=parent)
    assert answer["file"] == {"id": uploaded.file_id, "title": "Build #7 log"}
    assert uploaded.content.endswith(b"No matching distribution found for x\n")
    assert uploaded.length == len(uploaded.content) and uploaded.initial_comment == "<@U1> the log"
    assert uploaded.upload_authorization is None
    slack.assert_no_token_outside_api()
    assert [c.method for c in slack.calls()][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_files_need_the_files_write_scope() -> None:
    with FakeSlack() as slack:
        web = WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT)
        with pytest.raises(SlackApiError) as err:
            web.files_upload_v2(channel="C1", content="x", filename="x.log")
    assert err.value.response["error"] == "missing_scope"
    assert err.value.response["needed"] == "files:write" and "files:write" not in err.value.response["provided"]
    assert slack.files() == []


def test_a_token_sent_to_the_upload_url_is_caught(slack: FakeSlack, web: WebClient) -> None:
    import requests

    ticket = web.files_getUploadURLExternal(filename="a.log", length=1)
    requests.post(ticket["upload_url"], data=b"x", headers={"Authorization": "Bearer xoxb-test"}, timeout=TIMEOUT)
    with pytest.raises(AssertionError, match="tokens sent outside the Web API"):
        slack.assert_no_token_outside_api()
    web.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "a"}], channel_id="C1")
    assert slack.files()[0].upload_authorization == "Bearer xoxb-test"
    with pytest.raises(SlackApiError) as err:  # completing twice
        web.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "a"}], channel_id="C1")
    assert err.value.response["error"] == "file_not_found"


# ---- Block Kit ------------------------------------------------------------------------------------
def _confirm(**overrides: Any) -> dict[str, Any]:
    confirm = {
        "title": {"type": "plain_text", "text": "Launch anyway?"},
        "text": {"type": "mrkdwn", "text": "The pull budget is low."},
        "confirm": {"type": "plain_text", "text": "Launch"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    }
    confirm.update(overrides)
    return {k: v for k, v in confirm.items() if v is not None}


def _button(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}, **overrides}],
    }


def _select(n: int) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": f"o{i}"}, "value": f"v{i}"} for i in range(n)]
    return {"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": options}]}


def _section(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    return {"type": "section", "text": {"type": kind, "text": text}}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        (
            [_button(confirm=_confirm(title={"type": "plain_text", "text": "t" * 101}))],
            "/elements/0/confirm/title/text",
        ),
        ([_button(confirm=_confirm(text={"type": "plain_text", "text": "t" * 301}))], "/elements/0/confirm/text/text"),
        ([_button(confirm=_confirm(confirm={"type": "plain_text", "text": "c" * 31}))], "/confirm/confirm/text"),
        ([_button(confirm=_confirm(deny={"type": "plain_text", "text": "d" * 31}))], "/confirm/deny/text"),
        ([_button(confirm=_confirm(style="warning"))], "/elements/0/confirm/style"),
        ([_button(confirm=_confirm(deny=None))], "/elements/0/confirm/deny"),
        ([_button(confirm=_confirm(title={"type": "mrkdwn", "text": "*t*"}))], "/confirm/title/type"),
        ([_button(text={"type": "plain_text", "text": "b" * 76})], "/blocks/0/elements/0/text/text"),
        ([_button(value="v" * 2001)], "/blocks/0/elements/0/value"),
        ([_button(action_id="a" * 256)], "/blocks/0/elements/0/action_id"),
        ([_button(style="warning")], "/blocks/0/elements/0/style"),
        ([_section("s" * 3001)], "/blocks/0/text/text"),
        ([_section("")], "/blocks/0/text/text"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x", "emoji": True}}], "/blocks/0/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([_select(101)], "/blocks/0/elements/0/options"),
        (
            [
                {
                    **_select(1),
                    "elements": [
                        {
                            **_select(1)["elements"][0],
                            "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "v"}],
                        }
                    ],
                }
            ],
            "/options/0/text/text",
        ),
        ([_section("x")] * 51, "/blocks"),
        ([{**_section("x"), "block_id": "b"}, {**_section("y"), "block_id": "b"}], "/blocks/1/block_id"),
    ],
)
def test_blocks_slack_refuses(web: WebClient, blocks: list[dict[str, Any]], pointer: str) -> None:
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    answer = err.value.response
    assert answer["error"] == "invalid_blocks"
    assert any(pointer in e for e in answer["errors"]), answer["errors"]
    assert all(m.startswith("[ERROR] ") for m in answer["response_metadata"]["messages"])


def test_blocks_built_with_the_sdk_models_pass(slack: FakeSlack, web: WebClient) -> None:
    confirm = ConfirmObject(title="Approve build?", text="Pushes :latest", confirm="Approve", deny="Cancel")
    options = [Option(text=f"node {i}", value=f"n{i}") for i in range(100)]
    blocks = [
        HeaderBlock(text="Build #7"),
        SectionBlock(text=MarkdownTextObject(text="*standard* ✓"), fields=[PlainTextObject(text="a")] * 10),
        ContextBlock(elements=[MarkdownTextObject(text="doctor 11/11")]),
        ActionsBlock(
            elements=[
                ButtonElement(text="Approve", action_id="approve", value="b-7", style="primary", confirm=confirm),
                StaticSelectElement(action_id="node", placeholder="Node type", options=options),
                ExternalDataSelectElement(action_id="nodes", placeholder="Search", min_query_length=1),
            ]
        ),
    ]
    payload = [b.to_dict() for b in blocks]
    assert web.chat_postMessage(channel="C1", text="Build #7", blocks=payload)["ok"]
    assert slack.block_kit_problems() == []


def test_views_are_checked_too(web: WebClient) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Launch"}, "blocks": [_section("x")] * 101}
    with pytest.raises(SlackApiError) as err:
        web.views_open(trigger_id="t", view=view)
    assert err.value.response["error"] == "invalid_arguments"
    assert (
        "no more than 100 items allowed [json-pointer:/view/blocks]"
        in err.value.response["response_metadata"]["messages"][0]
    )
    view["blocks"] = [_button(confirm=_confirm(text={"type": "mrkdwn", "text": "t" * 301}))]
    with pytest.raises(SlackApiError, match="/view/blocks/0/elements/0/confirm/text/text"):
        web.views_open(trigger_id="t2", view=view)


def test_recorded_bodies_can_be_audited(slack: FakeSlack, web: WebClient) -> None:
    import requests

    requests.post(slack.response_url("r"), json={"blocks": [_section("s" * 3001)]}, timeout=TIMEOUT)
    web.chat_postMessage(channel="C1", text="clean")
    assert slack.block_kit_problems() == [
        "response_url r: must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    slack.assert_no_escape_characters()
    web.chat_postMessage(channel="C1", text="Step 3/9 \x1b[31mERROR\x1b[0m")
    with pytest.raises(AssertionError, match="chat.postMessage /text"):
        slack.assert_no_escape_characters()


# ---- external select (block_suggestion) -----------------------------------------------------------
def _bolt_app(web: WebClient) -> Any:
    from slack_bolt import App

    app = App(client=web, signing_secret="secret")

    @app.options("node_type")
    def options(ack: Any, payload: dict[str, Any]) -> None:
        typed = payload["value"]
        found = [n for n in ("i3.xlarge", "i3.2xlarge", "m5d.large") if typed in n]
        ack(options=[{"text": {"type": "plain_text", "text": n}, "value": n} for n in found])

    return app


def test_block_suggestion_over_http(slack: FakeSlack, web: WebClient) -> None:
    from slack_bolt import BoltRequest

    app = _bolt_app(web)
    view = view_submission_payload("dcs_launch", {})["view"]
    body = block_suggestion_body("node_type", "i3", view=view)
    answer = app.dispatch(BoltRequest(body=body.decode(), headers=signed_headers("secret", body)))

    assert answer.status == 200
    options = json.loads(answer.body)
    assert [o["value"] for o in options["options"]] == ["i3.xlarge", "i3.2xlarge"]
    assert options_problems(options) == []
    assert options_problems({"options": [{"text": {"type": "plain_text", "text": "x"}, "value": "v"}] * 101})


def test_block_suggestion_over_socket_mode() -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    with FakeSocketModeServer() as ws, FakeSlack(socket_mode_url=ws.url) as slack:
        app = _bolt_app(WebClient(token="xoxb-test", base_url=slack.api_url, timeout=TIMEOUT))
        handler = SocketModeHandler(app, app_token="xapp-1-test")
        handler.connect()
        try:
            envelope = socket_mode_envelope(block_suggestion_payload("node_type", "m5", channel_id="C1"))
            assert envelope["accepts_response_payload"] is True
            ws.send(envelope)
            ack = ws.wait_for_ack(envelope["envelope_id"])
        finally:
            handler.close()
    assert [o["value"] for o in ack["payload"]["options"]] == ["m5d.large"]
    assert ws.block_kit_problems() == [] and ws.escape_characters() == []
