"""Pure Block Kit builders for scheduled notices: the rebuild summary and pull-budget warnings.

One rebuild notice per run and channel, not one per image. Everything here is data in, message out
(`{"text": ..., "blocks": [...]}`), within Slack's limits (handlers.blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.ratelimit import BudgetReport, format_window
from bot.domain.rebuild import ChannelReport, RebuildResult, StaleCluster
from bot.domain.refs import short_digest
from handlers.blocks import (
    SECTION_LIMIT,
    Block,
    actions,
    button,
    confirm,
    context,
    cut,
    divider,
    escape,
    header,
    message,
    section,
    user,
    when,
)

FLEET_MOVE = "fleet_move"  # the action handlers/fleet.py answers with the rollout modal
MAX_LINES = 25  # per section: beyond that, a count (a catalog of hundreds must not blow the 3000-char limit)


def _lines(items: Sequence[str], what: str, budget: int = SECTION_LIMIT - 200) -> str:
    """As many whole lines as fit one section (and MAX_LINES), then a count of the rest."""
    shown: list[str] = []
    used = 0
    for line in items:
        if len(shown) == MAX_LINES or used + len(line) + 1 > budget:
            break
        shown.append(line)
        used += len(line) + 1
    if len(shown) < len(items):
        shown.append(f"…and {len(items) - len(shown)} more {what}")
    return "\n".join(shown)


def _pick_up(cluster: StaleCluster, moving_url: str | None) -> str:
    if cluster.kind == "pool":
        return f"a pool cannot change its preloaded images: `/dcs fleet {escape(cluster.image)}` says what to do"
    if cluster.kind != "cluster":
        return f"`/dcs fleet {escape(cluster.image)}` moves it (or `dcs rollout {escape(cluster.image)}`)"
    if cluster.moving:
        return "restart it: it pulls the moving tag again at start"
    # Pinned by digest on purpose: it moves when someone changes the pin, to the new digest (not a moving tag).
    repository = (moving_url or cluster.image_url).rsplit("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    pinned = f"{escape(repository)}@{cluster.new_digest}"
    return f"it is pinned by digest: when it should move, edit it to `{pinned}` and restart"


# What became of each rebuilt image, in the words of the release gate (bot/domain/release.py).
OUTCOME_TITLES = {
    "promoted": "promoted",
    "waiting": "waiting for approval",
    "canary_failed": "canary failed",
    "candidate": "candidate(s)",
}
OUTCOME_HEADINGS = {
    "promoted": "Promoted",
    "waiting": "Waiting for approval — the moving tag is unchanged until approved",
    "canary_failed": "Canary failed — the moving tag is unchanged",
    "candidate": "Candidates — pushed, not promoted",
}
MAX_BUTTON_ROWS = 10  # Approve/Reject rows per notice (Slack allows 50 blocks)


def outcome_of(result: RebuildResult) -> str:
    if result.promoted:
        return "promoted"
    status = result.release.status if result.release else "candidate"
    return status if status in OUTCOME_TITLES else "candidate"


def outcome_groups(report: ChannelReport) -> dict[str, list[RebuildResult]]:
    groups: dict[str, list[RebuildResult]] = {k: [] for k in OUTCOME_TITLES}
    for result in report.rebuilt:
        groups[outcome_of(result)].append(result)
    return groups


def _outcome_line(kind: str, r: RebuildResult, where: str) -> str:
    d, build = r.decision, (r.build.id if r.build else "?")
    why = ", ".join(d.reasons) or "rebuilt"
    base = f"base `{short_digest(d.old_base_digest)}` → `{short_digest(d.new_base_digest)}`"
    immutable = f"`{escape(r.immutable_tag or '?')}` = `{short_digest(r.pushed_digest)}`"
    release = r.release
    if kind == "promoted":
        line = (
            f":white_check_mark: *{escape(r.image)}* ({escape(why)}): {base}; `{escape(where)}` now points to "
            f"{immutable} (build #{build})"
        )
    elif kind == "waiting":
        assert release is not None
        line = (
            f":hourglass_flowing_sand: *{escape(r.image)}* ({escape(why)}): {base}; pushed {immutable} (build "
            f"#{build}); needs {release.approvals_needed} approval(s) by {when(release.expires_at)}"
        )
    elif kind == "canary_failed":
        assert release is not None
        reason = (release.canary.get("why") or release.reason or "the canary failed").removeprefix("canary failed: ")
        cluster = release.canary.get("cluster_id")
        ended = f"; cluster `{escape(cluster)}` terminated" if cluster and release.canary.get("terminated") else ""
        line = (
            f":x: *{escape(r.image)}* ({escape(why)}): pushed {immutable} (build #{build}), but "
            f"{escape(cut(reason, 400))}{ended}. `{escape(where)}` stays where it was"
        )
    else:
        state = f" ({escape(release.reason)})" if release and release.reason else ""
        line = (
            f":package: *{escape(r.image)}* ({escape(why)}): {base}; pushed {immutable} (build #{build}){state}; "
            f"`dcs promote {escape(r.image)} {build}` moves `{escape(where)}` to it"
        )
    if r.changes is not None:
        line += f"\n      _What changed_ (vs build #{r.previous_build}): {escape(cut(r.changes.summary(), 400))}"
    return line


def _outcome_text(kind: str, r: RebuildResult) -> str:
    build = r.build.id if r.build else "?"
    return f"{r.image}: {OUTCOME_TITLES[kind]} (build #{build})"


def promote_button(image: str, build_id: int) -> dict[str, Any]:
    """ "Promote anyway" for admins and approvers (a candidate whose canary failed, one that expired or was never
    gated); handled by handlers/release.py."""
    return button(
        f"Promote {image} #{build_id}",
        "release_promote",
        str(build_id),
        confirm=confirm(
            f"Promote {image} build #{build_id}?",
            "Its policy did not pass: clusters started from the moving tag get this build anyway. Audited.",
            "Promote",
            danger=True,
        ),
    )


def _vote_buttons(r: RebuildResult) -> Block:
    build = str(r.build.id if r.build else 0)
    return actions(
        f"release_{build}",
        button(
            f"Approve {r.image} #{build}",
            "release_approve",
            build,
            style="primary",
            confirm=confirm(
                f"Promote {r.image}?", f"Clusters started from its moving tag get build #{build}.", "Approve"
            ),
        ),
        button(f"Reject #{build}", "release_reject", build),
    )


def _doctor_failure(r: RebuildResult) -> bool:
    return "doctor found problems" in (r.error or "")


def rebuild_notice(report: ChannelReport) -> dict[str, Any]:
    """The summary of one rebuild run for one channel."""
    groups = outcome_groups(report)
    n_fail = len(report.failed)
    parts = [f"{len(groups[k])} {label}" for k, label in OUTCOME_TITLES.items() if groups[k]]
    if n_fail:
        parts.append(f"{n_fail} failed")
    if report.base_errors and not parts:
        parts.append("base check failed")
    if report.lts_proposals:
        parts.append(f"a newer LTS runtime for {len(report.lts_proposals)} image(s)")
    title = ("Rebuild" if report.requested_by else "Scheduled rebuild") + ": " + ", ".join(parts)
    blocks: list[Block] = [header(title)]
    text_lines = [title + "."]
    if report.requested_by:  # a mention: the person who asked is notified when the run is done
        blocks.append(context(f"Requested by {user(report.requested_by)}"))

    for kind, heading in OUTCOME_HEADINGS.items():
        results = groups[kind]
        if not results:
            continue
        lines = [_outcome_line(kind, r, report.repositories.get(r.image, r.image)) for r in results]
        blocks.append(section(f"*{heading}*\n" + _lines(lines, "images")))
        text_lines.extend(_outcome_text(kind, r) for r in results)
        if kind == "waiting":
            blocks.extend(_vote_buttons(r) for r in results[:MAX_BUTTON_ROWS])
        elif kind in ("canary_failed", "candidate"):
            rows = [r for r in results[:MAX_BUTTON_ROWS] if r.build]
            if rows:
                blocks.append(
                    actions(f"promote_{kind}", *(promote_button(r.image, r.build.id) for r in rows if r.build))
                )
    if report.failed:
        lines = []
        for r in report.failed:
            label = ":stethoscope: doctor failed" if _doctor_failure(r) else ":x:"
            facts = [", ".join(r.decision.reasons)] if r.decision.reasons else []
            if r.build:
                facts.append(f"build #{r.build.id}")
            about = f" ({escape('; '.join(facts))})" if facts else ""
            lines.append(f"{label} *{escape(r.image)}*{about}: {escape(cut(r.error or 'failed', 400))}")
            text_lines.append(f"{r.image} failed: {cut(r.error or 'failed', 200)}")
        blocks.append(section("*Failed* — the published image is unchanged\n" + _lines(lines, "failures")))
        if report.pull_budget:
            blocks.append(
                section(
                    f":warning: A registry refused with *toomanyrequests* (pull rate limit). Docker Hub "
                    f"budget at the last check: {escape(report.pull_budget)}. `/dcs ratelimit` shows "
                    "more; the next run tries again."
                )
            )
        first = next((r for r in report.failed if r.build), None)
        log_hint = f"`/dcs log {first.build.id}`" if first and first.build else "`/dcs status`"
        again = f"`/dcs rebuild {escape(report.failed[0].image)}`"
        blocks.append(context(f"Details: {log_hint}. After fixing, {again} runs it again."))
    if report.base_errors:
        lines = [
            f":warning: `{escape(check.base_ref)}` could not be checked ({escape(cut(check.error or '', 300))});"
            f" affects {escape(', '.join(names))}"
            for check, names in report.base_errors
        ]
        blocks.append(section("*Base checks*\n" + _lines(lines, "bases")))
        text_lines.extend(f"base {check.base_ref} not checked" for check, _ in report.base_errors)
    if report.lts_proposals:
        lines = [
            f":sparkles: *{escape(p.image)}* is on `{escape(p.current_tag)}`; `{escape(p.new_tag)}` is out "
            f"(`{escape(p.new_base)}`). Upgrade makes a new catalog entry on it (a name you choose) and builds it "
            "through the release gate; nothing changes for the existing image."
            for p in report.lts_proposals
        ]
        blocks.append(section("*New LTS runtime*\n" + _lines(lines, "images")))
        shown = report.lts_proposals[:MAX_BUTTON_ROWS]
        blocks.append(actions("lts_upgrades", *(button(f"Upgrade {p.image}…", "lts_upgrade", p.image) for p in shown)))
        text_lines.extend(f"{p.image}: {p.new_tag} is out" for p in report.lts_proposals)
    if report.stale:
        lines = []
        for c in report.stale:
            running = short_digest(c.running_digest) if c.running_digest else "an older build"
            what = "" if c.kind == "cluster" else f"{c.kind} "
            about = ", ".join(
                escape(part)
                for part in (c.cluster_id, c.workspace if c.workspace != "default" else None, c.state)
                if part
            )
            lines.append(
                f"• {what}*{escape(c.cluster_name or c.cluster_id)}* ({about}) "
                f"runs {escape(c.image)} at `{running}`, new is `{short_digest(c.new_digest)}`: "
                f"{_pick_up(c, report.repositories.get(c.image))}"
            )
        blocks.append(divider())
        kinds = {c.kind for c in report.stale}
        heading = "Clusters" if kinds == {"cluster"} else "Clusters, jobs, pools and policies"
        blocks.append(section(f"*{heading} still on an older digest*\n" + _lines(lines, "items")))
        text_lines.append(f"{len(report.stale)} item(s) still on an older digest")
        counts: dict[str, int] = {}
        for c in report.stale:
            counts[c.image] = counts.get(c.image, 0) + 1
        moves = [
            button(f"Move {n} item(s) of {image}", FLEET_MOVE, image, style="primary")
            for image, n in sorted(counts.items())[:5]
        ]
        blocks.append(actions("fleet_moves", *moves))  # handlers/fleet.py opens the rollout modal
    if report.unpatched:
        names = ", ".join(f"{escape(image)} (`{escape(base)}`)" for image, base in report.unpatched[:MAX_LINES])
        blocks.append(
            context(
                f":information_source: Not on an -LTS tag, so Databricks does not patch the base: "
                f"{names}. Move them to an -LTS base to receive fixes."
            )
        )
    return message("\n".join(text_lines), blocks)


def changes_thread(report: ChannelReport) -> dict[str, Any] | None:
    """The full "what changed" lists of a rebuild notice, for its thread (None when no image has one)."""
    with_changes = [r for r in report.rebuilt if r.changes is not None and not r.changes.empty]
    if not with_changes:
        return None
    blocks: list[Block] = []
    for r in with_changes[:MAX_LINES]:
        assert r.changes is not None
        title = f"*{escape(r.image)}*: build #{r.previous_build} → #{r.build.id if r.build else '?'}"
        body = "\n".join(escape(line) for line in r.changes.lines())
        blocks.append(section(f"{title}\n```{cut(body, SECTION_LIMIT - len(title) - 20)}```"))
    more = len(with_changes) - MAX_LINES
    if more > 0:
        blocks.append(context(f"…and {more} more images: `dcs diff NAME` shows each."))
    blocks.append(context("`dcs diff NAME [BUILD_A BUILD_B]` prints the same (`--json` too)."))
    return message("What changed inside, package by package", blocks)


# ---------------------------------------------------------------- pull budget


def budget_lines(report: BudgetReport) -> list[str]:
    """The facts, as short mrkdwn lines (the /dcs ratelimit answer and the App Home section)."""
    if report.budget is None:
        why = escape(report.error) if report.error else "no sample yet: the periodic check has not run"
        return [f"Docker Hub pull budget: unknown ({why})."]
    b = report.budget
    lines = []
    if b.unlimited:
        lines.append("*Docker Hub pulls:* unlimited (no rate-limit headers)")
    else:
        pct = f" ({b.percent_remaining:.0f}%)" if b.percent_remaining is not None else ""
        lines.append(
            f"*Docker Hub pulls left:* {b.remaining if b.remaining is not None else '?'}"
            f"/{b.limit if b.limit is not None else '?'}{pct} per {format_window(b.window_seconds)}"
        )
    who = report.account or "anonymous (this machine's IP)"
    lines.append(f"Counted for {escape(who)}; checked {escape(report.checked_ago or 'just now')}")
    if report.spark.strip():
        lines.append(f"Last 24 h: `{report.spark}`")
    lines.append(
        f"Launches in this window need {report.recent_pulls} pull(s); planned ones {report.planned_pulls} more"
    )
    if report.error:
        lines.append(f":warning: Last check failed: {escape(report.error)}")
    if report.state == "low":
        lines.append(f":warning: Below the warning line ({report.warn_below} pulls)")
    return lines


def budget_blocks(report: BudgetReport) -> list[Block]:
    return [section("\n".join(budget_lines(report)))]


def budget_message(report: BudgetReport) -> dict[str, Any]:
    lines = budget_lines(report)
    return message(lines[0].replace("*", ""), budget_blocks(report))


def pull_warning(report: BudgetReport, reason: str) -> dict[str, Any]:
    b = report.budget
    numbers = b.describe() if b else "unknown"
    text = f":warning: Docker Hub pulls are running low: {numbers}."
    blocks = [
        section(
            f"{text}\n{escape(reason)}.\nEvery cluster node pulls its image at start; once the budget is "
            "spent, launches fail with DOCKER_IMAGE_PULL_FAILURE until the window resets."
        ),
        section("\n".join(budget_lines(report)[1:])),
        context(
            "Fixes: set DOCKERHUB_USERNAME/DOCKERHUB_TOKEN for the bot and basic auth on clusters (an "
            "account has a higher limit), or push images to your own registry. One all-clear follows "
            "when the budget recovers."
        ),
    ]
    return message(text, blocks)


def pull_all_clear(report: BudgetReport) -> dict[str, Any]:
    b = report.budget
    numbers = b.describe() if b else "unknown"
    text = f":white_check_mark: Docker Hub pull budget recovered: {numbers}."
    return message(text, [section(text)])
