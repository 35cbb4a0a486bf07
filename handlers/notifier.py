"""The Slack notifier: delivers the core's reports (bot/ops/notify.py) as Slack messages.

Wired in by the composition root (bot/compose.py) when the bot has a Slack token. Rendering is the pure
Block Kit in handlers/notices.py, handlers/launch.py and handlers/enable.py; this module only posts and
updates. Failures come back as SlackError (a DcsError), which the caller reports or retries.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.clients.slack import SlackError, call
from bot.domain.notify import BudgetAlert
from bot.domain.rebuild import ChannelReport
from bot.services import Services
from bot.store import ApprovalRequest, Launch, Release
from handlers.enable import approval_message
from handlers.launch import cluster_url, launch_finished_note, launch_message
from handlers.notices import changes_thread, pull_all_clear, pull_warning, rebuild_notice
from handlers.release import release_content

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(self, client: WebClient, services: Services) -> None:
        self.client = client
        self.services = services

    def rebuild_report(self, report: ChannelReport) -> bool:
        posted = self._post(report.channel, rebuild_notice(report))
        thread = changes_thread(report)
        if thread is not None and posted.get("ts"):
            self._post(report.channel, thread, thread_ts=posted["ts"])
        return True

    def budget_alert(self, alert: BudgetAlert) -> bool:
        warning = alert.kind == "warning"
        self._post(alert.channel, pull_warning(alert.report, alert.reason) if warning else pull_all_clear(alert.report))
        return True

    def launch_changed(self, launch: Launch) -> bool:
        if not (launch.slack_channel and launch.slack_ts):
            return False
        url = cluster_url(self.services, launch)
        call(
            self.client,
            "chat.update",
            channel=launch.slack_channel,
            ts=launch.slack_ts,
            **launch_message(launch, url),
        )
        if launch.finished:
            self._tell_requester(launch, url)
        return True

    def _tell_requester(self, launch: Launch, url: str | None) -> None:
        """Once per launch (claimed in the store): a threaded mention, since an edit notifies nobody."""
        if not (launch.requester and launch.requester[:1] in "UW" and launch.slack_channel and launch.slack_ts):
            return
        if not self.services.store.claim(f"notify:launch:{launch.id}", "notify"):
            return
        try:
            call(
                self.client,
                "chat.postMessage",
                channel=launch.slack_channel,
                thread_ts=launch.slack_ts,
                **launch_finished_note(launch, url),
            )
        except SlackError as exc:
            log.warning("launch #%s: could not tell %s in the thread: %s", launch.id, launch.requester, exc.code)

    def approval_changed(self, request: ApprovalRequest) -> bool:
        if not (request.slack_channel and request.slack_ts):
            return False
        call(
            self.client,
            "chat.update",
            channel=request.slack_channel,
            ts=request.slack_ts,
            **approval_message(request, self.services.workspace(request.workspace).label),
        )
        return True

    def release_changed(self, release: Release) -> bool:
        """A candidate waiting for approval gets its message (image channel, else DCS_NOTIFY_CHANNEL); later
        states update that message."""
        msg = release_content(self.services, release)
        if release.slack_channel and release.slack_ts:
            call(self.client, "chat.update", channel=release.slack_channel, ts=release.slack_ts, **msg)
            return True
        if release.status != "waiting":
            return False
        spec = self.services.store.get_image(release.image)
        channel = spec.notify_channel or self.services.config.notify_channel
        if not channel:
            return False
        posted = self._post(channel, msg)
        if posted.get("ts"):
            self.services.store.attach_release_message(release.build_id, posted.get("channel") or channel, posted["ts"])
        return True

    def _post(self, channel: str, msg: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Post; the answer (with the message's `ts`), truthy."""
        answer = call(
            self.client,
            "chat.postMessage",
            channel=channel,
            text=msg["text"],
            blocks=msg["blocks"],
            unfurl_links=False,
            unfurl_media=False,
            **extra,
        )
        return answer or {"ok": True}
