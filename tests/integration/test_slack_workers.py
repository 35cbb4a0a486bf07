"""The bot's worker pool (queue positions, de-duplication, bounds) and the throttled progress message
(against FakeSlack over real HTTP)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from bot.clients.slack import SlackError, call, make_web_client
from bot.clients.slack_progress import MIN_INTERVAL_SECONDS, ProgressMessage
from bot.config import load_config
from bot.workers import QueueFull, Workers
from tests.fakes.slack import FakeSlack


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers(2, max_queued=3)
    yield pool
    pool.shutdown(wait=True, timeout=5)


def test_jobs_beyond_the_pool_size_wait_in_line_and_know_their_position(workers: Workers) -> None:
    gate = threading.Event()
    tickets = [workers.submit(f"job-{i}", gate.wait, 10) for i in range(5)]
    assert [t.position for t in tickets] == [0, 0, 1, 2, 3]
    assert [t.queued for t in tickets] == [False, False, True, True, True]
    time.sleep(0.1)
    assert workers.snapshot() == {"job-0": 0, "job-1": 0, "job-2": 1, "job-3": 2, "job-4": 3}
    gate.set()
    assert workers.wait_idle(5)
    assert workers.position("job-4") is None


def test_a_key_already_queued_or_running_is_not_started_twice(workers: Workers) -> None:
    gate = threading.Event()
    runs: list[int] = []

    def job() -> None:
        runs.append(1)
        gate.wait(10)

    first = workers.submit("build:1", job)
    again = workers.submit("build:1", job)
    assert again.duplicate and again.future is first.future
    gate.set()
    workers.wait_idle(5)
    assert runs == [1]


def test_a_full_line_is_refused_with_a_clear_message(workers: Workers) -> None:
    gate = threading.Event()
    for i in range(5):
        workers.submit(f"job-{i}", gate.wait, 10)
    with pytest.raises(QueueFull, match="3 jobs are already waiting for the bot's 2 worker"):
        workers.submit("one-too-many", gate.wait, 10)
    gate.set()


def test_a_crashing_job_is_logged_with_a_reference_and_the_pool_goes_on(workers: Workers, caplog) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom")

    ticket = workers.submit("boom", boom)
    with pytest.raises(RuntimeError):
        ticket.future.result(5)
    reference = ticket.future.exception().reference
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records if r.levelno == logging.ERROR)
    assert workers.submit("after", lambda: 42).future.result(5) == 42


# ---------------------------------------------------------------- ProgressMessage against FakeSlack
@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, object]]:
    with FakeSlack() as fake:
        client = make_web_client(load_config({"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.api_url}))
        yield fake, client


def posted(fake: FakeSlack, client) -> str:
    return call(client, "chat.postMessage", channel="C1", text="starting")["ts"]


def update_times(fake: FakeSlack) -> list[float]:
    return [r.at for r in fake.requests_matching(path="/api/chat.update")]


def test_updates_are_spaced_and_the_final_one_always_arrives(slack) -> None:
    fake, client = slack
    ts = posted(fake, client)
    message = ProgressMessage(client, "C1", ts, interval=0.5)
    started = time.monotonic()
    for i in range(200):  # a chatty build: far more reports than Slack may receive
        message.update(f"step {i}", [{"type": "section", "text": {"type": "mrkdwn", "text": f"step {i}"}}])
        time.sleep(0.01)
    assert time.monotonic() - started < 4, "update() must never block the build"
    assert message.finish("done", [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}])
    times = update_times(fake)
    assert 2 <= len(times) <= 2 + (times[-1] - times[0]) / 0.5
    assert all(b - a >= 0.45 for a, b in zip(times, times[1:], strict=False)), times
    (final,) = fake.messages("C1")
    assert final.text == "done"
    intermediate = [c.params["text"] for c in fake.calls("chat.update")][:-1]
    assert intermediate and all(t.startswith("step ") for t in intermediate)


def test_default_spacing_is_two_seconds(slack) -> None:
    fake, client = slack
    ts = posted(fake, client)
    message = ProgressMessage(client, "C1", ts)
    assert message.interval == MIN_INTERVAL_SECONDS == 2.0
    message.update("one", [])
    time.sleep(0.2)
    message.update("two", [])
    message.finish("final", [])
    times = update_times(fake)
    assert len(times) == 2 and times[1] - times[0] >= 1.95  # "two" was superseded, "final" waited its turn
    assert fake.messages("C1")[0].text == "final"


def test_a_rate_limited_update_waits_retry_after_and_still_lands(slack) -> None:
    fake, client = slack
    ts = posted(fake, client)
    fake.rate_limit_next("chat.update", retry_after=1)
    message = ProgressMessage(client, "C1", ts, interval=0.1)
    assert message.finish("final", [])
    first, second = fake.requests_matching(path="/api/chat.update")
    assert second.at - first.at >= 1.0  # Retry-After honoured
    assert fake.messages("C1")[0].text == "final" and message.failures == 0


def test_a_deleted_message_is_logged_and_does_not_raise(slack, caplog) -> None:
    fake, client = slack
    message = ProgressMessage(client, "C1", "123.456", interval=0.1, label="build #7")
    assert message.finish("final", []) is False
    assert message.last_error == "message_not_found"
    assert any("build #7" in r.getMessage() and "message_not_found" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("invalid_auth", "SLACK_BOT_TOKEN"),
        ("channel_not_found", "invite me"),
        ("not_in_channel", "/invite"),
        ("msg_too_long", "too long"),
    ],
)
def test_slack_errors_are_explained(slack, error: str, words: str) -> None:
    fake, client = slack
    fake.fail_next("chat.postMessage", error)
    with pytest.raises(SlackError) as caught:
        call(client, "chat.postMessage", channel="C1", text="hi")
    assert caught.value.code == error and words in caught.value.message


def test_a_retry_after_beyond_the_cap_is_not_waited_for(slack) -> None:
    fake, client = slack
    fake.rate_limit_next("chat.postMessage", retry_after=3600)
    started = time.monotonic()
    with pytest.raises(SlackError) as caught:
        call(client, "chat.postMessage", channel="C1", text="hi")
    assert caught.value.code == "ratelimited" and time.monotonic() - started < 5
