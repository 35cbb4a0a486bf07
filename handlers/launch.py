"""`/dcs launch NAME`: the launch form, `key=value` launches, the tracking message, "launch anyway".

Slack glue only; the rules live in bot/clusterspec.py and bot/launcher.py. The form opens at once with
a "loading" view (a trigger_id lives 3 s; the SDK import and two workspace calls can take longer) and
is filled in on the quick lane. Submissions are validated against the cached runtimes and node types,
so errors appear under their field within the ack. Creating and following clusters runs in the bot's
pool (jobs/clusters.py); one message per launch is kept current until the cluster runs or stops.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from dataclasses import replace as with_fields
from typing import Any

from slack_bolt import App

from bot.clients.databricks import databricks_configured
from bot.clients.slack import SlackError, call
from bot.domain.clusterspec import (
    LaunchRequest,
    check_secret_references,
    launch_request_from_dict,
    parse_launch_args,
)
from bot.domain.permissions import Role
from bot.domain.runtimes import parse_runtime, runtime_problem
from bot.errors import DcsError, InvalidInput, InvalidInputs, NotAllowed
from bot.ops.launch import LaunchOptions, launch_advice, launcher_for
from bot.services import Services
from bot.store import Launch
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.blocks import input_block as _input
from handlers.blocks import option as _option
from handlers.blocks import text_input as _text
from handlers.commands import CommandContext, Subcommand, normalize, now
from handlers.context import AppContext, reference_id
from handlers.respond import tell

log = logging.getLogger(__name__)

MODAL = "launch_modal"
FOLLOWED = ("checking", "pending")  # the tracker looks the cluster up, or follows it until it runs
ANYWAY = "launch_anyway"
MAX_OPTIONS = 100  # Slack's static_select limit
# Launch request field -> the form block its errors appear under.
FIELD_BLOCKS = {
    "runtime": "runtime",
    "node_type": "node_type",
    "driver_node_type": "node_type",
    "workers": "workers",
    "min_workers": "min_workers",
    "max_workers": "max_workers",
    "autotermination": "autotermination",
    "init_scripts": "init_scripts",
    "spark_conf": "spark_conf",
    "tags": "tags",
    "spark_env_vars": "spark_env_vars",
    "name": "name",
}
STATE_EMOJI = {
    "creating": ":hourglass_flowing_sand:",
    "checking": ":mag:",
    "blocked": ":no_entry:",
    "pending": ":hourglass_flowing_sand:",
    "running": ":white_check_mark:",
    "failed": ":x:",
    "unknown": ":grey_question:",
}


# ---------------------------------------------------------------- pure Block Kit


def _number(initial: str | None, minimum: int, maximum: int) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "number_input",
        "is_decimal_allowed": False,
        "min_value": str(minimum),
        "max_value": str(maximum),
    }
    if initial is not None:
        element["initial_value"] = initial
    return element


def loading_view(image: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": MODAL,
        "title": {"type": "plain_text", "text": "Launch a cluster"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            bk.section(
                f":hourglass_flowing_sand: Asking Databricks which runtimes and node types "
                f"*{bk.escape(image)}* can use…"
            )
        ],
    }


def error_view(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": MODAL,
        "title": {"type": "plain_text", "text": "Launch a cluster"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [bk.section(f":warning: {bk.escape(text)}")],
    }


def launch_modal(options: LaunchOptions, *, channel: str, email: str | None) -> dict[str, Any]:
    source = options.source
    runtimes = [_option(r.key, r.label) for r in options.runtimes[:MAX_OPTIONS]]
    nodes = [_option(n.node_type_id, n.label) for n in options.node_types[:MAX_OPTIONS]]
    runtime_el: dict[str, Any] = {"type": "static_select", "options": runtimes}
    node_el: dict[str, Any] = {"type": "static_select", "options": nodes}
    if len(options.node_types) > MAX_OPTIONS:
        # More than a static select holds: an external select searches them all (node_type_suggestions).
        node_el = {"type": "external_select", "min_query_length": 0}
    if options.preselected:
        runtime_el["initial_option"] = next(o for o in runtimes if o["value"] == options.preselected.key)
    if options.default_node and nodes:
        node_el["initial_option"] = nodes[0]
    modes = [_option("fixed", "Fixed number of workers"), _option("autoscale", "Autoscale between min and max")]
    base = source.spec.base_info
    gpu = " GPU node types only (GPU image)." if base.gpu else ""
    # for whoever reads the payload only: a submission is answered from the form the store keeps for this view
    meta = {"image": source.spec.name, "build": source.build_id}
    return {
        "type": "modal",
        "callback_id": MODAL,
        "title": {"type": "plain_text", "text": "Launch a cluster"},
        "submit": {"type": "plain_text", "text": "Launch"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(meta),
        "blocks": [
            bk.section(f"*{bk.escape(source.spec.name)}* at build #{source.build_id}\n`{source.url}`"),
            bk.context(
                f"Dedicated access mode for {bk.escape(email or 'you')}. Only runtimes that run custom "
                f"containers are listed (no ML, Genomics, Light or Graviton); LTS first.{gpu}"
            ),
            _input(
                "runtime",
                "Databricks runtime",
                runtime_el,
                hint=f"Preselected: the runtime of the image's base ({base.runtime_label or 'newest LTS'}).",
            ),
            _input("node_type", "Node type", node_el),
            _input("size_mode", "Size", {"type": "radio_buttons", "options": modes, "initial_option": modes[0]}),
            _input(
                "workers",
                "Workers (fixed size)",
                _number("1", 0, 1000),
                optional=True,
                hint="0 = a single-node cluster.",
            ),
            _input("min_workers", "Min workers (autoscale)", _number(None, 0, 1000), optional=True),
            _input("max_workers", "Max workers (autoscale)", _number(None, 1, 1000), optional=True),
            _input(
                "autotermination",
                "Terminate after idle minutes",
                _number("60", 0, 10000),
                hint="10 to 10000; 0 = never.",
            ),
            _input(
                "init_scripts",
                "Init scripts",
                _text("file:/databricks/scripts/setup.sh", multiline=True),
                optional=True,
                hint="One per line: file:/… (in the image), /Workspace/…, /Volumes/…, s3://…, "
                "abfss://…, gs://… — not dbfs. At most 10.",
            ),
            _input(
                "spark_conf",
                "Extra Spark conf",
                _text("spark.sql.shuffle.partitions=64", multiline=True),
                optional=True,
                hint="key=value, one per line.",
            ),
            _input(
                "tags",
                "Extra tags",
                _text("team=data", multiline=True),
                optional=True,
                hint="key=value, one per line (the bot adds who launched, image and digest).",
            ),
            _input(
                "spark_env_vars",
                "Environment variables",
                _text("TZ=UTC", multiline=True),
                optional=True,
                hint="NAME=value, one per line (Spark's environment on every node).",
            ),
            _input("name", "Cluster name", _text(f"dcs {source.spec.name} (you)"), optional=True),
        ],
    }


def node_type_suggestions(ctx: AppContext, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The node types matching what someone typed into the form's node type search (at most 100, Slack's cap).
    What the form is for comes from the stored form, never from the payload."""
    view_id = str((body.get("view") or {}).get("id") or "")
    user_id = str((body.get("user") or {}).get("id") or "")
    form = ctx.store.form(view_id, "launch")
    if form is None or form.user != user_id:
        return []
    state = form.state
    options = launcher_for(ctx.services).options(
        str(state["image"]),
        int(state["build"]),
        state.get("workspace"),  # cached: no call while typing
    )
    query = str(body.get("value") or "").strip().lower()
    found = [n for n in options.node_types if query in n.node_type_id.lower() or query in n.label.lower()]
    return [_option(n.node_type_id, n.label) for n in found[:MAX_OPTIONS]]


def _values(view: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        element = actions.get("value") or {}
        if "selected_option" in element:
            out[block_id] = (element.get("selected_option") or {}).get("value")
        else:
            value = element.get("value")
            out[block_id] = value.strip() if isinstance(value, str) and value.strip() else None
    return out


def _lines_to_pairs(text: str | None, field: str) -> list[tuple[str, str]]:
    pairs = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(field, line.strip(), "is not key=value", "Write one key=value per line.")
        pairs.append((key.strip(), value.strip()))
    return pairs


# What a field the form got wrong is replaced with, so that the other fields can still be checked (and all the
# problems shown at once); a request with stand-ins is only ever planned, never launched.
_STAND_INS: dict[str, Any] = {
    "workers": "1",
    "min_workers": "1",
    "max_workers": "2",
    "autotermination": None,
    "init_scripts": "",
    "name": None,
}


def _root(field: str) -> str:
    return field.split(".")[0].split("[")[0]


def form_request_and_problems(image: str, view: dict[str, Any]) -> tuple[LaunchRequest | None, list[InvalidInput]]:
    """(a request to plan, the form's own problems): bad fields get stand-ins so the rest can be checked too."""
    values = _values(view)
    data: dict[str, Any] = {
        "image": image,
        "runtime": values.get("runtime"),
        "node_type": values.get("node_type"),
        "autotermination": values.get("autotermination"),
        "init_scripts": values.get("init_scripts") or "",
        "name": values.get("name"),
    }
    problems: list[InvalidInput] = []
    if values.get("size_mode") == "autoscale":
        data.update(min_workers=values.get("min_workers"), max_workers=values.get("max_workers"))
        for missing in ("min_workers", "max_workers"):
            if data[missing] is None:
                problems.append(InvalidInput(missing, None, "is missing for autoscaling", "Give both min and max."))
                data[missing] = _STAND_INS[missing]
    else:
        data["workers"] = values.get("workers") or "1"
    for field in ("spark_conf", "tags", "spark_env_vars"):
        try:
            data[field] = _lines_to_pairs(values.get(field), field)
        except InvalidInput as exc:
            problems.append(exc)
            data[field] = []
    for _ in range(len(_STAND_INS) + 1):
        try:
            return launch_request_from_dict(data), problems
        except (InvalidInput, InvalidInputs) as exc:
            found = exc.problems if isinstance(exc, InvalidInputs) else [exc]
            problems.extend(found)
            replace_ = {_root(p.field) for p in found} & set(_STAND_INS)
            if not replace_ or all(data.get(k) == _STAND_INS[k] for k in replace_):
                break
            data.update({k: _STAND_INS[k] for k in replace_})
    return None, problems


def inline_errors(exc: InvalidInput | InvalidInputs) -> dict[str, str]:
    problems = exc.problems if isinstance(exc, InvalidInputs) else [exc]
    errors: dict[str, str] = {}
    for problem in problems:
        root = problem.field.split(".")[0].split("[")[0]
        block = FIELD_BLOCKS.get(root, "runtime")
        text = (
            f"{problem.field}: {problem.reason}. {problem.fix}"
            if block == "runtime" and root != "runtime"
            else f"{problem.reason}. {problem.fix}"
        )
        errors.setdefault(block, bk.cut_words(text, 150))
    return errors


def launch_message(launch: Launch, cluster_url: str | None) -> dict[str, Any]:
    """The one message that follows a launch: state, where it runs, why it stopped and what to do."""
    meta = launch.request
    body = meta.get("body") or {}
    emoji = STATE_EMOJI.get(launch.status, "")
    state = {"blocked": "ON HOLD (pull budget)", "creating": "CREATING", "checking": "CHECKING"}.get(
        launch.status, launch.state or ""
    )
    title = f"Cluster for *{bk.escape(launch.image)}* (launch #{launch.id}): {state}"
    lines = [f"{emoji} {title}"]
    if launch.state_message:
        lines.append(f"_{bk.escape(bk.cut(launch.state_message, 500))}_")
    size = (
        f"{body['autoscale']['min_workers']}–{body['autoscale']['max_workers']} workers (autoscale)"
        if body.get("autoscale")
        else f"{body.get('num_workers', '?')} worker(s)"
    )
    facts = [
        f"*Image* `{launch.image_url or '?'}` (build #{launch.build_id})",
        f"*Runtime* `{body.get('spark_version', '?')}` on `{body.get('node_type_id', '?')}`, {size}, "
        f"stops after {body.get('autotermination_minutes', '?')} idle min",
        f"*Requested by* {bk.user(launch.requester)} · dedicated to {bk.escape(meta.get('user_email', '?'))}",
    ]
    if cluster_url:
        facts.append(f"<{cluster_url}|Open {bk.escape(launch.cluster_name or 'the cluster')} in Databricks>")
    blocks = [bk.section("\n".join(lines)), bk.section("\n".join(facts))]
    notes = [f":warning: {bk.escape(w)}" for w in meta.get("warnings") or []]
    if launch.duplicates_terminated:
        notes.append(
            f":broom: Databricks had made more than one cluster for this launch: the bot kept "
            f"`{bk.escape(launch.cluster_id or '?')}` and terminated "
            + ", ".join(f"`{bk.escape(c)}`" for c in launch.duplicates_terminated)
            + "."
        )
    budget = meta.get("budget") or {}
    if budget.get("status") in ("low", "blocked"):
        # Not small print: a low pull budget can stop the cluster's nodes from starting.
        blocks.append(bk.section(f":warning: *Docker Hub pulls* {bk.escape(budget.get('message', ''))}"))
    elif budget.get("status") == "unknown":
        notes.append(f":whale: {bk.escape(budget.get('message', ''))}")
    if notes:
        blocks.append(bk.context("\n".join(notes)))
    advice = launch_advice(launch)
    if advice is not None:
        blocks.append(bk.section(f"*Why* `{bk.escape(launch.termination_code or '')}` — " + bk.escape(advice.text())))
    if launch.status == "blocked":
        blocks.append(
            bk.actions(
                f"launch_{launch.id}",
                bk.button(
                    "Launch anyway",
                    ANYWAY,
                    str(launch.id),
                    style="danger",
                    confirm=bk.confirm(
                        "Launch despite the pull budget?",
                        "The cluster's nodes pull the image from Docker Hub now; if the budget runs out, nodes "
                        "fail to start (toomanyrequests) and the cluster may not come up.",
                        "Launch anyway",
                        danger=True,
                    ),
                ),
            )
        )
    return bk.message(f"Cluster for {launch.image} (launch #{launch.id}): {state}", blocks)


def launch_finished_note(launch: Launch, cluster_url: str | None) -> dict[str, Any]:
    """The thread reply that tells the requester their cluster is up, or why not (Slack notifies on mentions,
    never on the edits that follow a launch)."""
    emoji = STATE_EMOJI.get(launch.status, "")
    what = f"the cluster for *{bk.escape(launch.image)}* (launch #{launch.id})"
    if launch.status == "running":
        where = f": <{cluster_url}|open it in Databricks>" if cluster_url else ""
        body = f"{what} is running{where}."
    elif launch.status == "failed":
        advice = launch_advice(launch)
        why = advice.text() if advice is not None else (launch.state_message or "see the message above")
        body = f"{what} did not start: {bk.escape(bk.cut(why, 500))}"
    else:
        body = f"{what}: the bot stopped following it ({bk.escape(launch.state_message or launch.status)})."
    text = f"Cluster for {launch.image} (launch #{launch.id}): {launch.status}"
    return bk.message(text, [bk.section(f"{emoji} {bk.user(launch.requester)} {body}")])


# ---------------------------------------------------------------- Slack I/O


@dataclass(frozen=True)
class LaunchJob:
    request: LaunchRequest
    requester: str
    channel: str
    request_key: str
    build_id: int | None = None
    email: str | None = None  # None: look it up with users.info
    response_url: str | None = None


def user_email(ctx: AppContext, user_id: str) -> str:
    """The Slack user's email (users:read.email); '' when Slack does not share it."""
    user = call(ctx.client, "users.info", user=user_id).get("user") or {}
    return str((user.get("profile") or {}).get("email") or "")


def tell_user(ctx: AppContext, job: LaunchJob, content: dict[str, Any]) -> None:
    """An ephemeral note to the requester: response_url when there is one, else ephemeral, else a DM."""
    if job.response_url:
        tell(job.response_url, content)
        return
    try:
        call(ctx.client, "chat.postEphemeral", channel=job.channel, user=job.requester, **content)
    except SlackError:
        call(ctx.client, "chat.postMessage", channel=job.requester, **content)


def cluster_url(services: Services, launch: Launch) -> str | None:
    return services.workspace(launch.workspace).cluster_url(launch.cluster_id) if launch.cluster_id else None


def update_message(ctx: AppContext, launch: Launch) -> None:
    if launch.slack_channel and launch.slack_ts:
        call(
            ctx.client,
            "chat.update",
            channel=launch.slack_channel,
            ts=launch.slack_ts,
            **launch_message(launch, cluster_url(ctx.services, launch)),
        )


def follow(ctx: AppContext, launch_id: int) -> None:
    """Hand a created launch to the process's tracker (bot/compose.py puts it in `services.tracker`)."""
    if ctx.services.tracker is not None:
        ctx.services.tracker.follow(launch_id)


def run_launch(ctx: AppContext, job: LaunchJob) -> Launch | None:
    """The worker-pool job: validate with the workspace, create once, post the message, start following."""
    launcher = launcher_for(ctx.services)
    try:
        email = job.email if job.email is not None else user_email(ctx, job.requester)
        outcome = launcher.launch(
            job.request,
            requester=job.requester,
            user_email=email,
            request_key=job.request_key,
            build_id=job.build_id,
            slack_channel=job.channel,
        )
    except DcsError as exc:
        tell_user(ctx, job, bk.problem(f"Launching {job.request.image} failed: {exc.message}"))
        return None
    launch = outcome.launch
    if outcome.duplicate:
        where = f" as launch #{launch.id} ({launch.state or launch.status})" if launch else ""
        tell_user(ctx, job, bk.notice(f"This launch request was already handled{where}: nothing new was created."))
        return launch
    assert launch is not None
    try:
        content = launch_message(launch, cluster_url(ctx.services, launch))
        posted = call(ctx.client, "chat.postMessage", channel=job.channel, **content)
        launch = launcher.attach_message(launch.id, posted.get("channel") or job.channel, posted["ts"])
    except SlackError as exc:
        tell_user(
            ctx,
            job,
            bk.notice(f":warning: Launch #{launch.id} goes on, but I could not post its message here: {exc.message}"),
        )
    if launch.status in FOLLOWED:
        follow(ctx, launch.id)
    return launch


def open_form(
    ctx: AppContext,
    trigger_id: str,
    image: str,
    build_id: int | None,
    user_id: str,
    channel: str,
    workspace: str | None = None,
) -> None:
    source = launcher_for(ctx.services).image_source(image, build_id)  # no pushed build: say so before any form
    opened = call(ctx.client, "views.open", trigger_id=trigger_id, view=loading_view(image))
    view_id = (opened.get("view") or {}).get("id", "")
    # what this form launches, for whom and where: the submission reads it back from here
    state = {"image": image, "build": source.build_id, "channel": channel, "workspace": workspace}
    ctx.store.save_form(view_id, kind="launch", user=user_id, state=state)
    ctx.workers.quick(fill_form, ctx, view_id, image, source.build_id, user_id, channel, workspace)


def fill_form(
    ctx: AppContext,
    view_id: str,
    image: str,
    build_id: int | None,
    user_id: str,
    channel: str,
    workspace: str | None = None,
) -> None:
    try:
        options = launcher_for(ctx.services).options(image, build_id, workspace)
        email = user_email(ctx, user_id)
        ctx.store.save_form(
            view_id,
            kind="launch",
            user=user_id,
            state={
                "image": image,
                "build": options.source.build_id,
                "channel": channel,
                "email": email,
                "workspace": workspace,
            },
        )
        view = launch_modal(options, channel=channel, email=email)
    except DcsError as exc:
        view = error_view(exc.message)
    except Exception:
        ref = reference_id()
        log.exception("launch form for %s failed (ref %s)", image, ref)
        view = error_view(f"Sorry, something went wrong on my side (reference {ref}).")
    call(ctx.client, "views.update", view_id=view_id, view=view)


def option_tokens(text: str) -> list[str]:
    """key=value words of the command with their case kept (Spark conf keys and tags are case-sensitive)."""
    return [t for t in shlex.split(normalize(text)) if "=" in t]


def launch_command(ctx: AppContext, cmd: CommandContext) -> None:
    if not cmd.args:
        raise InvalidInput(
            "NAME",
            "",
            "is missing",
            "Usage: `/dcs launch NAME` (a form), or `/dcs launch NAME "
            "runtime=15.4.x-scala2.12 node_type=m5d.large workers=2` to skip it.",
        )
    # The dispatcher takes only plain keys as options: spark.conf=… and tag.X=… arrive as words.
    extra = [word for word in cmd.args[1:] if "=" not in word]
    if extra:
        raise InvalidInput(
            "launch arguments",
            " ".join(extra),
            "is more than one image name",
            "Give options as key=value, e.g. workers=2.",
        )
    image = cmd.args[0]
    launcher_for(ctx.services).image_source(image)  # unknown or never pushed: said in the ack itself
    tokens = option_tokens(cmd.text)
    only_workspace = [t for t in tokens if t.partition("=")[0].strip().lower() == "workspace"]
    if not tokens or tokens == only_workspace[:1]:
        workspace = ctx.config.workspace(only_workspace[0].partition("=")[2] if only_workspace else None).name
        cmd.ack()  # the trigger_id is valid 3 s: ack, then open the form at once
        try:
            open_form(ctx, cmd.trigger_id, image, None, cmd.user_id, cmd.channel_id, workspace)
        except DcsError as exc:
            cmd.reply(bk.problem(exc.message))
        return
    request = parse_launch_args(image, tokens)
    check_secret_references(request, ctx.config.launch_secret_scopes)  # said in the ack, before any work
    refused = runtime_problem(parse_runtime(request.runtime)) if request.runtime else None
    if refused is not None:  # the runtime's name alone decides: refuse in the ack, never "launching…" first
        raise InvalidInput("runtime", request.runtime or "", refused[0], refused[1])
    if request.allow_runtime_mismatch and ctx.role(cmd.user_id) < Role.ADMIN:
        raise NotAllowed(
            "Only a bot admin can launch an image on a runtime it was not made for (allow_runtime_mismatch=yes). "
            "Pick the runtime the image was built for, or ask an admin."
        )
    ctx.config.workspace(request.workspace)  # an unknown workspace is said in the ack
    job = LaunchJob(request, cmd.user_id, cmd.channel_id, cmd.claim_key, response_url=cmd.response_url)
    ticket = ctx.workers.submit(f"launch-request:{cmd.claim_key}", run_launch, ctx, job)
    if ticket.duplicate:
        cmd.reply(bk.notice("This launch is already being handled."))
        return
    where = f" ({bk.ordinal(ticket.position)} in line)" if ticket.queued else ""
    cmd.reply(
        bk.notice(
            f":rocket: Launching *{bk.escape(image)}*{where}: checking the request with Databricks. "
            "A message in this channel will follow the cluster."
        )
    )


def _submission_parts(body: object) -> tuple[str, dict[str, Any]]:
    """The submitting user and the view of a view_submission payload, or InvalidInput for a malformed one."""
    if not isinstance(body, dict):
        raise InvalidInput("payload", type(body).__name__, "is not a view submission", "Open the form again.")
    user = body.get("user")
    view = body.get("view")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id or not isinstance(view, dict) or not isinstance(view.get("id"), str):
        raise InvalidInput(
            "payload", "view_submission", "has no user or view of the expected shape", "Open the form again."
        )
    return user_id, view


def handle_submission(ctx: AppContext, body: dict[str, Any], ack: Any) -> None:
    """Who submitted is Slack's signed `user`; what the form launches — image, build, channel, the dedicated user
    — is what the bot stored when it opened the view (`store.form`), never `private_metadata`."""
    try:
        user_id, view = _submission_parts(body)
    except InvalidInput as exc:
        ack(response_action="errors", errors={"runtime": bk.cut_words(exc.message, 150)})
        return
    form = ctx.store.form(view["id"], "launch")
    if form is None or "email" not in form.state:
        ack(
            response_action="errors",
            errors={"runtime": "The bot does not know this form (it may be older than a day). Run /dcs launch again."},
        )
        return
    if form.user != user_id:
        ack(
            response_action="errors",
            errors={"runtime": "This form was opened for someone else: run /dcs launch to open your own."},
        )
        return
    image, build_id = str(form.state["image"]), int(form.state["build"])
    email, channel = str(form.state.get("email") or ""), str(form.state.get("channel") or user_id)
    refusal = ctx.permitted(user_id, Role.BUILDER, "launch.request", image, doing="launch clusters")
    if refusal:
        ack(response_action="errors", errors={"runtime": bk.cut_words(refusal.replace("*", ""), 150)})
        return
    request_key = f"view:{view['id']}"
    request, problems = form_request_and_problems(image, view)
    if request is not None:
        request = with_fields(request, workspace=form.state.get("workspace") or None)
    try:
        if request is not None:  # planned even when some fields were bad: every problem is shown at once
            launcher_for(ctx.services).plan(
                request,
                requester=user_id,
                user_email=email,
                request_key=request_key,
                build_id=build_id,
            )
    except (InvalidInput, InvalidInputs) as exc:
        bad = {_root(p.field) for p in problems}
        planned = exc.problems if isinstance(exc, InvalidInputs) else [exc]
        problems += [p for p in planned if _root(p.field) not in bad]
    except DcsError as exc:
        ack(response_action="errors", errors={"runtime": bk.cut_words(exc.message, 150)})
        return
    if problems or request is None:
        ack(response_action="errors", errors=inline_errors(InvalidInputs(problems)))
        return
    ack()
    job = LaunchJob(request, user_id, channel, request_key, build_id, email=email)
    ctx.workers.submit(f"launch-request:{request_key}", run_launch, ctx, job)


def run_anyway(ctx: AppContext, launch_id: int, user_id: str, response_url: str | None) -> None:
    launcher = launcher_for(ctx.services)
    job = LaunchJob(LaunchRequest(image=""), user_id, "", f"anyway:{launch_id}", response_url=response_url)
    try:
        outcome = launcher.launch_anyway(launch_id, user_id, is_admin=ctx.role(user_id) >= Role.ADMIN)
    except DcsError as exc:
        update_message(ctx, ctx.store.get_launch(launch_id))
        tell_user(ctx, job, bk.problem(exc.message))
        return
    if outcome.duplicate:
        tell_user(ctx, job, bk.notice(f"Launch #{launch_id} was already started: nothing new was created."))
        return
    assert outcome.launch is not None
    update_message(ctx, outcome.launch)
    if outcome.launch.status in FOLLOWED:
        follow(ctx, launch_id)


def _message_of(body: dict[str, Any]) -> tuple[str, str] | None:
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    return (channel, ts) if isinstance(channel, str) and isinstance(ts, str) and channel and ts else None


def launch_button_target(ctx: AppContext, body: dict[str, Any]) -> tuple[str, int]:
    """The image and build a "Launch cluster" click launches: the build whose message holds the button (from the
    store); on a message that is not one build's (an ephemeral "up to date" answer) the button's build, which
    `image_source` then checks against the store (that image's, pushed)."""
    raw = body["actions"][0].get("value", "")
    try:
        value = bk.LaunchButton.decode(raw)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("button value", raw, "is not a launch button", "Use `/dcs launch NAME`.") from None
    message = _message_of(body)
    build = ctx.store.build_of_message(*message) if message else None
    if build is None:
        return value.image, value.build
    if (build.image, build.id) != (value.image, value.build):
        raise InvalidInput(
            "button value", raw, f"does not match this message (build #{build.id} of {build.image})", "Click again."
        )
    return build.image, build.id


def anyway_target(ctx: AppContext, body: dict[str, Any]) -> int:
    """The launch a "Launch anyway" click is for: the launch whose message holds the button (from the store)."""
    raw = body["actions"][0].get("value", "")
    message = _message_of(body)
    launch = ctx.store.launch_of_message(*message) if message else None
    if launch is None or str(launch.id) != raw:
        raise InvalidInput(
            "button value", raw, "is not the launch of this message", "Use the button on the launch's own message."
        )
    return launch.id


def launches_home(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    launches = ctx.store.launches(limit=5)
    if not launches:
        return []
    stamp = now()
    lines = []
    for launch in launches:
        url = cluster_url(ctx.services, launch)
        name = bk.escape(launch.cluster_name or "(no cluster)")
        where = f"<{url}|{name}>" if url else name
        lines.append(
            f"{STATE_EMOJI.get(launch.status, '')} *#{launch.id}* {bk.escape(launch.image)} → {where} — "
            f"{bk.escape(launch.state or launch.status)}, {bk.ago(launch.created_at, stamp)} "
            f"({bk.user(launch.requester)})"
        )
    return [bk.header("Recent launches"), bk.section("\n".join(lines))]


def register(app: App, ctx: AppContext) -> None:
    if not databricks_configured(ctx.config):
        return  # handlers.placeholders answers that launching is not set up (no workspace configured)
    ctx.commands.add(
        Subcommand(
            "launch",
            "Launch a Databricks cluster on an image's pushed digest (a form; key=value skips it).",
            "launch NAME [runtime=… node_type=… workers=N | min_workers=N max_workers=M … workspace=W]",
            Role.BUILDER,
            lambda cmd: launch_command(ctx, cmd),
        )
    )
    ctx.set_home_section("launches", launches_home)

    @app.action("launch_cluster")
    @guarded(ctx, "launch_cluster")
    def launch_button(body: dict[str, Any], user_id: str) -> None:
        image, build_id = launch_button_target(ctx, body)
        refusal = ctx.permitted(user_id, Role.BUILDER, "launch.request", image, doing="launch clusters")
        if refusal:
            reply(ctx, body, bk.notice(refusal))
            return
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id") or user_id
        open_form(ctx, body.get("trigger_id", ""), image, build_id, user_id, channel)

    @app.action(ANYWAY)
    @guarded(ctx, ANYWAY)
    def launch_anyway(body: dict[str, Any], user_id: str) -> None:
        launch_id = anyway_target(ctx, body)
        ctx.workers.submit(f"launch-anyway:{launch_id}", run_anyway, ctx, launch_id, user_id, body.get("response_url"))

    @app.view(MODAL)
    def submitted(ack: Any, body: dict[str, Any]) -> None:
        handle_submission(ctx, body, ack)

    @app.options("value", matchers=[lambda body: body.get("block_id") == "node_type"])
    def node_type_search(ack: Any, body: dict[str, Any]) -> None:
        try:
            ack(options=node_type_suggestions(ctx, body))
        except DcsError as exc:
            log.warning("node type search failed: %s", exc.message)
            ack(options=[])
