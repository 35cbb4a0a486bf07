"""Pure Block Kit builders: data in, JSON-ready dicts out. No Slack client, no store, no clock.

Everything that leaves here respects Slack's limits (3000 characters per section, 50 blocks per
message, 4000 characters of fallback text); user-supplied text is escaped for mrkdwn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.domain.ansi import plain
from bot.domain.build_failure import failure_summary
from bot.domain.build_steps import describe_step
from bot.domain.catalog import ImageSpec
from bot.domain.catalog_search import ImagePage
from bot.domain.clock import ago, parse_time
from bot.domain.cron import describe_times, upcoming
from bot.domain.inventory import PackageInventory
from bot.domain.refs import short_digest
from bot.store import Build, ImageStatus, PushRecord

SECTION_LIMIT = 3000
TEXT_LIMIT = 4000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
BAR_WIDTH = 20
STATUS_EMOJI = {
    "queued": ":hourglass_flowing_sand:",
    "running": ":gear:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "interrupted": ":warning:",
}
CHECK_EMOJI = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "➖", "waived": "☑️"}
PHASE_LABEL = {
    "resolve": "Checking the base",
    "queue": "Waiting for a build engine",
    "pull": "Pulling the base",
    "build": "Building",
    "doctor": "Doctor checks",
    "push": "Pushing",
    "promote": "Moving the tag",
    "done": "Finishing",
}

Block = dict[str, Any]


# ---------------------------------------------------------------- primitives
def escape(text: str) -> str:
    """mrkdwn control characters; Slack wants exactly these three escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int, *, keep: str = "head") -> str:
    """Shorten to `limit` characters with a visible marker; `keep="tail"` keeps the end (log tails)."""
    if len(text) <= limit:
        return text
    marker = "…"
    return marker + text[-(limit - 1) :] if keep == "tail" else text[: limit - 1] + marker


def cut_words(text: str, limit: int) -> str:
    """Like `cut`, but at a word boundary (modal error texts: Slack shows at most 150 characters)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.") + "…"


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}, **extra}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": cut(text, 150), "emoji": True}}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": cut(text, 75)},
        "action_id": action_id,
        "value": cut(value, 2000),
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm(title: str, text: str, yes: str, *, no: str = "Cancel", danger: bool = False) -> dict[str, Any]:
    """The "Are you sure?" dialog Slack shows before sending a click with consequences (Block Kit limits:
    title 100, text 300, buttons 30 characters)."""
    dialog: dict[str, Any] = {
        "title": {"type": "plain_text", "text": cut(title, 100)},
        "text": {"type": "mrkdwn", "text": cut(text, 300)},
        "confirm": {"type": "plain_text", "text": cut(yes, 30)},
        "deny": {"type": "plain_text", "text": cut(no, 30)},
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def actions(block_id: str, *elements: dict[str, Any]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def option(value: str, text: str) -> dict[str, Any]:
    """A select/radio option (Slack caps option text at 75 characters)."""
    return {"text": {"type": "plain_text", "text": cut(text, 75)}, "value": value}


def input_block(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str | None = None
) -> Block:
    """A modal input; every element's action_id is "value" so submissions read state.values[block]["value"]."""
    block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {**element, "action_id": "value"},
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def text_input(placeholder: str, *, multiline: bool = False, initial: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "placeholder": {"type": "plain_text", "text": placeholder},
    }
    if initial is not None:
        element["initial_value"] = initial
    return element


def code(text: str, limit: int = SECTION_LIMIT) -> str:
    """A ``` block whose whole (fences included) fits in `limit`; long text keeps its end."""
    body = cut(text.replace("```", "'''"), limit - 8, keep="tail")
    return f"```\n{body}\n```"


def fit(blocks: Sequence[Block], limit: int = MESSAGE_BLOCKS, what: str = "items") -> list[Block]:
    """At most `limit` blocks; the last one says how many were left out."""
    blocks = list(blocks)
    if len(blocks) <= limit:
        return blocks
    dropped = len(blocks) - (limit - 1)
    return [*blocks[: limit - 1], context(f"…and {dropped} more {what} not shown (Slack shows at most {limit}).")]


def message(text: str, blocks: Sequence[Block]) -> dict[str, Any]:
    """Keyword arguments for chat.postMessage / chat.update / ack()."""
    return {"text": cut(text, TEXT_LIMIT), "blocks": fit(blocks)}


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * width)
    return "█" * full + "░" * (width - full) + f" {round(fraction * 100):>3d}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def user(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id and user_id[:1] in "UW" else escape(user_id or "someone")


# ---------------------------------------------------------------- builds
@dataclass(frozen=True)
class LaunchButton:
    """The value of the "Launch cluster" button: JSON `{"image": NAME, "build": ID}`."""

    image: str
    build: int

    def encode(self) -> str:
        return json.dumps({"image": self.image, "build": self.build})

    @classmethod
    def decode(cls, value: str) -> LaunchButton:
        data = json.loads(value)
        return cls(str(data["image"]), int(data["build"]))


def build_title(build: Build) -> str:
    verb = "Build and push" if build.push_requested else "Build"
    return f"{verb} #{build.id} of *{escape(build.image)}*"


def build_queued(build: Build, position: int) -> dict[str, Any]:
    where = f"{ordinal(position)} in line" if position > 0 else "starting"
    text = f"{build_title(build)}: queued ({where})"
    return message(
        text,
        [
            section(
                f":hourglass_flowing_sand: {text}. The bot runs a limited number of builds at "
                "once; this message updates when it starts."
            ),
            context(f"Requested by {user(build.requester)}"),
        ],
    )


def build_progress(build: Build, phase: str, step: int, total: int, line: str, fraction: float) -> dict[str, Any]:
    """Progress in words: the phase, the step and what it does ("installing Python packages: pandas")."""
    label = PHASE_LABEL.get(phase, phase)
    step_text = f" — step {step} of {total}" if phase == "build" and total and step else ""
    doing = describe_step(line) if phase == "build" and step else line.strip()
    current = f"\n{escape(cut(plain(doing), 300))}" if doing else ""
    text = f"{build_title(build)}: {label}{step_text}"
    return message(
        text,
        [
            section(f":gear: {text}{current}\n{progress_bar(fraction)}"),
            context(f"Requested by {user(build.requester)}"),
        ],
    )


def doctor_table(rows: Iterable[dict[str, str]]) -> str:
    rows = list(rows)
    if not rows:
        return "_no doctor report_"
    width = max(len(r.get("name", "")) for r in rows)
    lines = [
        f"{CHECK_EMOJI.get(r.get('status', ''), '?')} {r.get('name', ''):<{width}}  {r.get('detail', '')}"
        + (f"  → {r['fix']}" if r.get("fix") and r.get("status") in ("fail", "warn") else "")
        + (f"  (waived: {r['waiver']})" if r.get("waiver") else "")
        for r in rows
    ]
    return code("\n".join(lines))


def doctor_summary(rows: Iterable[dict[str, str]]) -> str:
    """ "doctor 11/11 ✓, 2 warnings (acl, size)": checks that ran, how many passed, what needs a look."""
    rows = list(rows)
    if not rows:
        return "no doctor report"
    counted = [r for r in rows if r.get("status") in ("pass", "warn", "fail")]
    warnings = [r.get("name", "?") for r in rows if r.get("status") == "warn"]
    failures = [r.get("name", "?") for r in rows if r.get("status") == "fail"]
    passed = len(counted) - len(failures)
    text = f"doctor {passed}/{len(counted)} {'✗' if failures else '✓'}"
    if failures:
        text += f", {len(failures)} failed ({_names(failures)})"
    if warnings:
        text += f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''} ({_names(warnings)})"
    waived = [r.get("name", "?") for r in rows if r.get("status") == "waived"]
    if waived:
        text += f", {len(waived)} waived ({_names(waived)})"
    others = sorted({str(r.get("status")) for r in rows} - {"pass", "warn", "fail", "waived"})
    for status in others:
        count = sum(1 for r in rows if r.get("status") == status)
        text += f", {count} {'skipped' if status == 'skip' else status}"
    return text


def _names(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(escape(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pushed_ref(build: Build, pushes: Sequence[PushRecord]) -> str | None:
    """The reference people pull: the moving tag's push, else the first one."""
    if not pushes:
        return None
    moving = build.tags[-1] if build.tags else None
    chosen = next((p for p in pushes if p.tag == moving), pushes[0])
    return f"{chosen.repository}:{chosen.tag}"


def build_result(build: Build, pushes: Sequence[PushRecord] = (), *, log_lines: int = 10) -> dict[str, Any]:
    """The final message, short: the result, where the image is, the doctor in one line, what to do next.

    The doctor table, both tags and the full digest are behind "Details"; the log behind "Show log"
    (and "Log in thread", so a team can discuss a failure)."""
    emoji = STATUS_EMOJI.get(build.status, "")
    text = f"{build_title(build)} {build.status} in {duration(build.duration_seconds)}"
    lines = [f"{emoji} {text}"]
    if build.status == "succeeded":
        where = pushed_ref(build, pushes)
        facts = (
            [f"`{escape(where)}`"] if where else ([f"`{escape(build.tags[-1])}` (not pushed)"] if build.tags else [])
        )
        if build.pushed_digest:
            facts.append(f"`{short_digest(build.pushed_digest)}`")
        if build.doctor:
            facts.append(doctor_summary(build.doctor))
        if facts:
            lines.append(" · ".join(facts))
    blocks: list[Block] = [section("\n".join(lines))]
    if build.status != "succeeded":
        why = failure_summary(build.error, build.failed_step, build.log_tail)
        reason = [f"*Why* {escape(cut(why.cause, 1500))}"]
        if why.step:
            exit_code = f" (exit code {why.exit_code})" if why.exit_code is not None else ""
            reason.append(f"*Failed at* {escape(cut(why.step, 300))}{exit_code}")
        if build.doctor and any(r.get("status") == "fail" for r in build.doctor):
            reason.append(doctor_summary(build.doctor))
        blocks.append(section("\n".join(reason)))
        if build.log_tail:
            tail = "\n".join(plain(build.log_tail).splitlines()[-log_lines:])
            blocks.append(section("*Last log lines*\n" + code(tail, SECTION_LIMIT - 20)))
    buttons = [
        button("Details", "build_details", str(build.id)),
        button("Show log", "build_show_log", str(build.id)),
        button("Log in thread", "build_share_log", str(build.id)),
    ]
    if build.status == "succeeded":
        buttons.insert(
            0, button("Launch cluster", "launch_cluster", LaunchButton(build.image, build.id).encode(), style="primary")
        )
    else:
        buttons.append(button("Retry", "build_retry", json.dumps({"image": build.image, "push": build.push_requested})))
    blocks.append(actions(f"build_{build.id}", *buttons))
    blocks.append(context(f"Requested by {user(build.requester)}"))
    return message(text, blocks)


def build_finished_note(build: Build) -> dict[str, Any]:
    """The thread reply that tells the requester their build ended (Slack notifies on mentions, not edits)."""
    verb = "Build and push" if build.push_requested else "Build"
    head = f"{user(build.requester)} {verb.lower()} #{build.id} of *{escape(build.image)}* {build.status}"
    if build.status == "succeeded":
        extra = [f"`{short_digest(build.pushed_digest)}`"] if build.pushed_digest else []
        if build.doctor:
            extra.append(doctor_summary(build.doctor))
        body = f"{head}: {', '.join(extra)}." if extra else f"{head}."
    else:
        why = failure_summary(build.error, build.failed_step, build.log_tail)
        body = f"{head}: {escape(cut(why.cause, 500))}"
    emoji = STATUS_EMOJI.get(build.status, "")
    return message(f"{verb} #{build.id} of {build.image} {build.status}", [section(f"{emoji} {body}")])


def up_to_date(build: Build, force_hint: str) -> dict[str, Any]:
    """The direct answer when nothing changed: which build is current, its digest, how to build anyway."""
    digest = f", digest `{short_digest(build.pushed_digest)}`" if build.pushed_digest else ""
    text = (
        f"*{escape(build.image)}* is already up to date (build #{build.id}{digest}): its spec and base have not "
        f"changed since. {force_hint} builds it anyway."
    )
    buttons = [button("Details", "build_details", str(build.id))]
    if build.pushed_digest:
        buttons.insert(0, button("Launch cluster", "launch_cluster", LaunchButton(build.image, build.id).encode()))
    return message(
        f"{build.image} is already up to date (build #{build.id})",
        [section(f":white_check_mark: {text}"), actions(f"uptodate_{build.id}", *buttons)],
    )


def build_log(build: Build, lines: int = 60, inventory: PackageInventory | None = None) -> dict[str, Any]:
    contents = [context(f"Contains: {escape(inventory.summary())}")] if inventory is not None else []
    if not build.log_tail:
        text = f"Build #{build.id} of {escape(build.image)} has no log yet (status: {build.status})."
        return message(text, [section(text), *contents])
    tail = "\n".join(plain(build.log_tail).splitlines()[-lines:])
    text = f"Last log lines of build #{build.id} of {escape(build.image)} ({build.status})"
    return message(text, [section(f"*{text}*"), section(code(tail)), *contents])


def build_line(build: Build, now: datetime, position: int | None = None) -> str:
    emoji = STATUS_EMOJI.get(build.status, "")
    state: str = build.status
    if build.status == "queued" and position:
        state = f"queued, {ordinal(position)} in line"
    when = ago(build.finished_at or build.started_at or build.requested_at, now)
    extra = f" `{short_digest(build.pushed_digest)}`" if build.pushed_digest else ""
    return f"{emoji} *#{build.id}* {escape(build.image)} — {state}, {when}{extra} ({user(build.requester)})"


def build_detail(
    build: Build,
    now: datetime,
    position: int | None = None,
    pushes: Sequence[PushRecord] = (),
    inventory: PackageInventory | None = None,
) -> dict[str, Any]:
    """One build in full: what the short result message keeps behind "Details"."""
    lines = [build_line(build, now, position)]
    if build.finished:
        lines.append(f"Duration {duration(build.duration_seconds)}")
    if build.error:
        why = failure_summary(build.error, build.failed_step, build.log_tail)
        lines.append(f"*Why* {escape(cut(why.cause, 1000))}")
        if why.step:
            lines.append(f"*Failed at* {escape(cut(why.step, 300))}")
    if build.base_ref:
        lines.append(f"*Base* `{escape(build.base_ref)}`")
    if build.tags:
        lines.append("*Tags* " + ", ".join(f"`{escape(t)}`" for t in build.tags))
    if build.pushed_digest:
        lines.append(f"*Pushed digest* `{build.pushed_digest}`")
        for push in pushes:
            lines.append(f"• `{escape(push.repository)}:{escape(push.tag)}`" + (" (verified)" if push.verified else ""))
    blocks = [section("\n".join(lines))]
    if build.doctor:
        blocks.append(section(f"*Doctor* ({doctor_summary(build.doctor)})\n" + doctor_table(build.doctor)))
    if inventory is not None:
        blocks.append(section(f"*Contains* {escape(inventory.summary())}"))
    blocks.append(context(f"Its log: `/dcs log {build.id}`"))
    return message(f"Build #{build.id} of {build.image}: {build.status}", blocks)


def builds_overview(
    active: Sequence[Build], recent: Sequence[Build], now: datetime, positions: dict[int, int]
) -> dict[str, Any]:
    blocks: list[Block] = []
    if active:
        blocks.append(section("*In progress*\n" + "\n".join(build_line(b, now, positions.get(b.id)) for b in active)))
    else:
        blocks.append(section("*In progress*\nNothing is building right now."))
    if recent:
        blocks.append(section("*Recent*\n" + "\n".join(build_line(b, now) for b in recent)))
    example = next(iter([*active, *recent]), None)
    number = str(example.id) if example else "BUILD_ID"
    blocks.append(context(f"Details of one build: `/dcs status {number}`; its log: `/dcs log {number}`."))
    return message(f"{len(active)} build(s) in progress", blocks)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------- errors
def apology(reference: str) -> dict[str, Any]:
    text = (
        f":warning: Sorry, something went wrong on my side (reference `{reference}`). The details are in the "
        "bot's log; please pass the reference to whoever runs the bot."
    )
    return message(text, [section(text)])


def problem(text: str) -> dict[str, Any]:
    return message(text, [section(f":warning: {escape(text)}")])


def when(stamp: str | None) -> str:
    """A moment in each reader's own time zone (Slack date formatting), with a UTC fallback."""
    moment = parse_time(stamp)
    if moment is None:
        return "an unknown time"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def notice(text: str) -> dict[str, Any]:
    """Plain mrkdwn text we wrote ourselves (not escaped: it may contain links and formatting)."""
    return message(text, [section(text)])


# ---------------------------------------------------------------- catalog
def image_line(row: ImageStatus, now: datetime) -> str:
    head = f"*{escape(row.name)}*  `{escape(row.base)}` → `{escape(row.repository)}`"
    if row.last is None:
        state = "never built"
    else:
        state = (
            f"{STATUS_EMOJI.get(row.last.status, '')} #{row.last.id} {row.last.status} "
            f"{ago(row.last.finished_at or row.last.started_at or row.last.requested_at, now)}"
        )
    digest = row.last_good.pushed_digest if row.last_good else None
    pushed = f" · pushed `{short_digest(digest)}`" if digest else ""
    schedule = f" · rebuilds `{escape(row.schedule)}`" if row.schedule else ""
    checked = f" · checked {ago(row.check.checked_at, now)}" if row.check else " · not checked yet"
    candidate = ""
    if row.candidate is not None:
        c = row.candidate
        what = {"waiting": "waiting for approval", "canary": "canary running"}.get(c.status, "not promoted")
        candidate = f"\n:package: candidate #{c.build_id} `{short_digest(c.digest)}` ({what})"
    return f"{head}\n{state}{pushed}{schedule}{checked}{candidate}"


EMPTY_CATALOG = (
    "The catalog is empty. An admin adds the first image with `/dcs image add` (a form) or "
    "`/dcs image add NAME base=databricksruntime/standard:15.4-LTS repository=REGISTRY/REPO`."
)


IMAGES_HELP = "Build one: `/dcs build NAME [push]`. Details of a build: `/dcs status BUILD_ID`."


def images_list(rows: Sequence[ImageStatus], now: datetime) -> dict[str, Any]:
    if not rows:
        return message(EMPTY_CATALOG, [section(EMPTY_CATALOG)])
    # the header and the help line are not images: room for MESSAGE_BLOCKS - 3 images and the "…more" line
    shown = rows if len(rows) <= MESSAGE_BLOCKS - 2 else rows[: MESSAGE_BLOCKS - 3]
    blocks = [section(f"*{len(rows)} image(s) in the catalog*")]
    blocks += [section(image_line(row, now)) for row in shown]
    if len(shown) < len(rows):
        blocks.append(context(f"…and {len(rows) - len(shown)} more images not shown; `/dcs images WORD` filters."))
    blocks.append(context(IMAGES_HELP))
    return message(f"{len(rows)} image(s) in the catalog", blocks)


def images_page(page: ImagePage, now: datetime) -> dict[str, Any]:
    """One page of `/dcs images [filter]`, with Previous/Next buttons carrying the filter and the offset."""
    if page.total == 0:
        if not page.query:
            return message(EMPTY_CATALOG, [section(EMPTY_CATALOG)])
        text = f"No image matches `{escape(page.query)}`. `/dcs images` lists the whole catalog."
        return message(text, [section(text)])
    first, last = page.offset + 1, page.offset + len(page.rows)
    what = f"matching `{escape(page.query)}`" if page.query else "in the catalog"
    title = f"{page.total} image(s) {what}" + (f", {first}–{last} shown" if page.total > len(page.rows) else "")
    blocks = [section(f"*{title}*")]
    blocks += [section(image_line(row, now)) for row in page.rows]
    buttons = []
    if page.previous_offset is not None:
        buttons.append(button("◀ Previous", "images_page_previous", _page_value(page.query, page.previous_offset)))
    if page.next_offset is not None:
        buttons.append(button("Next ▶", "images_page_next", _page_value(page.query, page.next_offset)))
    if buttons:
        blocks.append(actions("images_pages", *buttons))
    blocks.append(context(IMAGES_HELP + (" Filter: `/dcs images WORD`." if not page.query else "")))
    return message(title, blocks)


def _page_value(query: str, offset: int) -> str:
    return json.dumps({"q": query, "offset": offset})


def image_added(spec: ImageSpec, now: datetime | None = None) -> str:
    runs = upcoming(spec.schedule, now or datetime.now(UTC))
    schedule = f" Schedule `{escape(spec.schedule or '')}` next runs: {describe_times(runs)}." if runs else ""
    return (
        f":white_check_mark: Added *{escape(spec.name)}* (`{escape(spec.base)}` → "
        f"`{escape(spec.repository)}`).{schedule} Build it with `/dcs build {spec.name}` or "
        f"`/dcs build {spec.name} push`."
    )
