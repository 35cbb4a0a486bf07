"""The workspace-wide Slack budget against FakeSlack enforcing a limit like Slack does (429 + Retry-After).

Many builds' progress messages update at once: their updates together stay within the method's limit (no
429), progress coalesces (only the latest content goes when the budget is spent), and every final message
arrives with its final content. The limit is scaled down (per second instead of per minute) so the test
takes seconds; the budget and the fake use the same numbers, as the bot and Slack do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.clients.slack import call, make_web_client
from bot.clients.slack_budget import SlackBudget
from bot.clients.slack_progress import ProgressMessage
from bot.config import load_config
from bot.domain.rate_budget import Limit
from tests.fakes.slack import FakeSlack

BUILDS = 12
WINDOW = 1.0
UPDATE_LIMIT = Limit(per_minute=480, burst=3)  # 8 a second: any 1 s window sees at most 3 + 8 = 11
MOST_PER_WINDOW = int(UPDATE_LIMIT.burst + UPDATE_LIMIT.per_second * WINDOW)


def section(text: str) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


@pytest.fixture
def limited_slack() -> Iterator[FakeSlack]:
    with FakeSlack(rate_limits={"chat.update": (MOST_PER_WINDOW, WINDOW)}) as fake:
        yield fake


def client_for(fake: FakeSlack, budget: SlackBudget | None):
    config = load_config({"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.api_url})
    return make_web_client(config, budget=budget)


def run_builds(client, fake: FakeSlack, seconds: float) -> list[ProgressMessage]:
    """BUILDS chatty builds at once, each reporting every 10 ms, then all finishing together."""
    messages = [
        ProgressMessage(client, "C1", call(client, "chat.postMessage", channel="C1", text=f"build {i}")["ts"])
        for i in range(BUILDS)
    ]
    for message in messages:
        message.interval = 0.2  # alone, each would send 5 a second: 60 a second together
    start = threading.Barrier(BUILDS)

    def build(i: int, message: ProgressMessage) -> None:
        start.wait()
        deadline = time.monotonic() + seconds
        step = 0
        while time.monotonic() < deadline:
            step += 1
            message.update(f"build {i} step {step}", section(f"build {i} step {step}"))
            time.sleep(0.01)
        assert message.finish(f"build {i} done", section(f"build {i} done")), message.last_error

    threads = [threading.Thread(target=build, args=(i, m)) for i, m in enumerate(messages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return messages


def test_many_builds_progress_stays_within_the_budget_and_every_final_arrives(limited_slack: FakeSlack) -> None:
    fake = limited_slack
    budget = SlackBudget({"chat.update": UPDATE_LIMIT}, {})
    messages = run_builds(client_for(fake, budget), fake, seconds=1.5)

    updates = fake.calls("chat.update")
    assert [c for c in updates if c.status == 429] == [], "Slack had to rate-limit the bot"
    assert fake.busiest_window("chat.update", WINDOW) <= MOST_PER_WINDOW
    # Every build's message ends with its final content.
    finals = {m.text for m in fake.messages("C1")}
    assert finals == {f"build {i} done" for i in range(BUILDS)}
    # Progress coalesced: far fewer sends than the builds wanted, yet every build showed some progress.
    assert sum(m.deferred for m in messages) > 0
    assert all(m.sent >= 2 for m in messages), [m.sent for m in messages]  # some progress, then the final


def test_without_the_budget_the_same_load_is_rate_limited_by_slack(limited_slack: FakeSlack) -> None:
    """The control: the fake's limit is real, so the test above could fail."""
    fake = limited_slack
    run_builds(client_for(fake, SlackBudget({}, {})), fake, seconds=0.3)
    assert [c for c in fake.calls("chat.update") if c.status == 429]


def test_a_429_pauses_the_method_for_every_thread_until_its_retry_after() -> None:
    with FakeSlack() as fake:
        client = client_for(fake, SlackBudget({"chat.update": Limit(per_minute=6000, burst=50)}, {}))
        first = call(client, "chat.postMessage", channel="C1", text="a")["ts"]
        other = call(client, "chat.postMessage", channel="C1", text="b")["ts"]
        fake.rate_limit_next("chat.update", retry_after=1)
        retried = threading.Thread(
            target=call, args=(client, "chat.update"), kwargs={"channel": "C1", "ts": first, "text": "a2"}
        )
        retried.start()
        (limited,) = fake.wait_for(lambda c: c.method == "chat.update" and c.status == 429)
        call(client, "chat.update", channel="C1", ts=other, text="b2")  # another thread's call, right after
        retried.join(10)
        ok = [c for c in fake.calls("chat.update") if c.status == 200]
        assert len(ok) == 2
        assert min(c.at for c in ok) - limited.at >= 0.95  # neither went out before Retry-After had passed
