"""`/dcs <subcommand> ...`: one Bolt listener, a table of subcommands, parsing, permissions, errors.

A subcommand is a `Subcommand(name, help, usage, role, run)`; `run(cmd: CommandContext)` must return
within milliseconds (it runs before the ack): it validates, claims, hands long work to `ctx.workers`
and replies. Other modules add theirs from their own `register(app, ctx)` with `ctx.commands.add(...)`.
Arguments are `key=value` pairs and positionals; values with spaces are quoted with "...".
"""

from __future__ import annotations

import difflib
import html
import logging
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App

from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput
from handlers import blocks as bk
from handlers.context import AppContext, reference_id

log = logging.getLogger(__name__)

_OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$", re.S)
_SLACK_LINK = re.compile(r"<([#@!]?)([^<>|]+)(?:\|([^<>]*))?>")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True)
class ParsedText:
    words: tuple[str, ...]  # positionals in order (the subcommand name included)
    options: dict[str, str]  # key=value pairs, keys lower-cased


_PLAIN = re.compile(r"[^<>&“”„‘’\"'\\]*")  # nothing to undo or to unquote: no links, entities, quotes, escapes
_SPACES = re.compile(r"[ \t\r\n]+")  # what shlex splits words at


def normalize(text: str) -> str:
    """Undo Slack's formatting of command text: entities, smart quotes, <#C123|name>, <@U123>, <url|label>."""
    if _PLAIN.fullmatch(text):
        return text.strip()

    def link(match: re.Match[str]) -> str:
        sigil, target, _label = match.groups()
        if sigil == "#":
            return target  # channel id
        if sigil == "@":
            return target  # user id
        if sigil == "!":
            return match.group(0)
        return target.removeprefix("mailto:")

    return html.unescape(_SLACK_LINK.sub(link, text.translate(_SMART_QUOTES))).strip()


def split_words(text: str) -> list[str]:
    """shlex's POSIX split (quotes, backslashes); plain text, the common case, without its tokenizer."""
    if _PLAIN.fullmatch(text):
        return [word for word in _SPACES.split(text) if word]
    return shlex.split(text)


def parse_text(text: str) -> ParsedText:
    try:
        tokens = split_words(normalize(text))
    except ValueError:
        raise InvalidInput(
            "command text", text, "has an unbalanced quote", 'Close every quote, e.g. schedule="0 3 * * 1".'
        ) from None
    words: list[str] = []
    options: dict[str, str] = {}
    for token in tokens:
        match = _OPTION.match(token)
        if match and words:  # the first word is always the subcommand
            key = match.group(1).lower()
            if key in options:
                raise InvalidInput(key, match.group(2), "is given twice", f"Give {key}=... once.")
            options[key] = match.group(2)
        else:
            words.append(token)
    return ParsedText(tuple(words), options)


@dataclass
class CommandContext:
    """One `/dcs` invocation, as a subcommand sees it."""

    app: AppContext
    name: str
    user_id: str
    channel_id: str
    args: list[str]  # positionals after the subcommand name
    options: dict[str, str]
    text: str
    trigger_id: str
    response_url: str | None
    claim_key: str  # unique per interaction: a retried request carries the same trigger_id
    retry_num: int = 0
    _ack: Callable[..., Any] | None = field(default=None, repr=False)
    _respond: Callable[..., Any] | None = field(default=None, repr=False)
    acked: bool = False

    def reply(self, content: dict[str, Any], *, public: bool = False) -> None:
        """Answer the user: in the ack while it is still open, through the response_url afterwards."""
        kind = "in_channel" if public else "ephemeral"
        if not self.acked and self._ack is not None:
            self.acked = True
            self._ack(response_type=kind, **content)
        elif self._respond is not None:
            self._respond(response_type=kind, replace_original=False, **content)

    def ack(self) -> None:
        """Ack with no message now (before a network call such as views.open)."""
        if not self.acked and self._ack is not None:
            self.acked = True
            self._ack()

    def claim(self, kind: str) -> bool:
        return self.app.store.claim(self.claim_key, kind)

    def reject_unknown(self, allowed_options: tuple[str, ...] = (), max_args: int | None = None) -> None:
        unknown = [k for k in self.options if k not in allowed_options]
        if unknown:
            known = ", ".join(f"{k}=" for k in allowed_options) or "no key=value options"
            raise InvalidInput(
                unknown[0], self.options[unknown[0]], f"is not an option of `{self.name}`", f"Use {known}."
            )
        if max_args is not None and len(self.args) > max_args:
            raise InvalidInput(
                f"{self.name} arguments",
                " ".join(self.args[max_args:]),
                "is more than expected",
                f"Usage: `/dcs {self.app.commands.get(self.name).usage}`.",
            )


CommandFn = Callable[[CommandContext], None]


@dataclass(frozen=True)
class Subcommand:
    name: str  # one or two words: "build", "image add"
    help: str  # one line
    usage: str  # "build NAME [push]"
    role: Role
    run: CommandFn
    placeholder: bool = False  # a stand-in until its feature is configured; `add` replaces it silently
    hidden: bool = False


class CommandTable:
    def __init__(self) -> None:
        self._commands: dict[str, Subcommand] = {}

    def add(self, command: Subcommand, *, replace: bool = False) -> None:
        existing = self._commands.get(command.name)
        if existing is not None and command.placeholder and not existing.placeholder:
            return  # the real implementation was registered first: keep it
        if existing is not None and not (replace or existing.placeholder):
            raise ValueError(f"/dcs {command.name} is already registered; pass replace=True to override it")
        self._commands[command.name] = command

    def get(self, name: str) -> Subcommand:
        return self._commands[name]

    def __contains__(self, name: str) -> bool:
        return name in self._commands

    def visible(self) -> list[Subcommand]:
        return [c for c in self._commands.values() if not c.hidden]

    def resolve(self, words: tuple[str, ...]) -> tuple[Subcommand | None, int]:
        """The subcommand the words name (two-word names first) and how many words it used."""
        lowered = [w.lower() for w in words]
        if len(lowered) >= 2 and " ".join(lowered[:2]) in self._commands:
            return self._commands[" ".join(lowered[:2])], 2
        if lowered and lowered[0] in self._commands:
            return self._commands[lowered[0]], 1
        return None, 0

    def closest(self, word: str) -> str | None:
        """The subcommand a typo most likely meant: whole names first, then first words of two-word names."""
        names = [c.name for c in self.visible()]
        match = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.6)
        if match:
            return match[0]
        first_words = {c.name.split()[0]: c.name for c in self.visible()}
        match = difflib.get_close_matches(word.lower(), list(first_words), n=1, cutoff=0.6)
        return first_words[match[0]] if match else None


# ---------------------------------------------------------------- dispatch
def register(app: App, ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "help",
            "What the bot can do; `help COMMAND` for one command.",
            "help [COMMAND]",
            Role.EVERYONE,
            lambda cmd: show_help(cmd, topic=" ".join(cmd.args) or None),
        )
    )

    @app.command("/dcs")
    def dcs(ack: Any, body: dict[str, Any], respond: Any, request: Any) -> None:
        retry = (request.headers.get("x-slack-retry-num") or ["0"])[0] if request is not None else "0"
        dispatch(ctx, body, ack, respond, int(retry) if str(retry).isdigit() else 0)


def dispatch(
    ctx: AppContext,
    body: dict[str, Any],
    ack: Callable[..., Any],
    respond: Callable[..., Any] | None,
    retry_num: int = 0,
) -> None:
    text = body.get("text") or ""
    cmd = CommandContext(
        app=ctx,
        name="help",
        user_id=body.get("user_id", ""),
        channel_id=body.get("channel_id", ""),
        args=[],
        options={},
        text=text,
        trigger_id=body.get("trigger_id", ""),
        response_url=body.get("response_url"),
        claim_key=f"command:{body.get('trigger_id', '')}",
        retry_num=retry_num,
        _ack=ack,
        _respond=respond,
    )
    try:
        parsed = parse_text(text)
        command, used = ctx.commands.resolve(parsed.words)
        if command is None:
            show_help(cmd, unknown=parsed.words[0] if parsed.words else None)
            return
        cmd.name = command.name
        cmd.args = list(parsed.words[used:])
        cmd.options = parsed.options
        refusal = ctx.permitted(
            cmd.user_id,
            command.role,
            f"dcs.{command.name.replace(' ', '_')}",
            " ".join(cmd.args) or None,
            doing=f"use `/dcs {command.name}`",
        )
        if refusal:
            cmd.reply(bk.notice(refusal))
            return
        command.run(cmd)
    except DcsError as exc:
        cmd.reply(bk.problem(exc.message))
    except Exception:
        ref = reference_id()
        log.exception("/dcs %s by %s failed (ref %s)", cmd.name, cmd.user_id, ref)
        cmd.reply(bk.apology(ref))
    finally:
        cmd.ack()


def show_help(cmd: CommandContext, unknown: str | None = None, topic: str | None = None) -> None:
    table = cmd.app.commands
    role = cmd.app.role(cmd.user_id)
    if topic:
        command, _ = table.resolve(tuple(topic.split()))
        if command is None:
            unknown = topic
        else:
            cmd.reply(bk.notice(f"`/dcs {command.usage}`\n{command.help}\n_Needs role: {command.role.label}_"))
            return
    lines = []
    if unknown:
        guess = table.closest(unknown)
        hint = f" Did you mean `{guess}`?" if guess else ""
        lines.append(f":thinking_face: I don't know `{bk.escape(unknown)}`.{hint}\n")
    lines.append("*DCS bot* — custom Databricks container images. Commands:")
    for command in table.visible():
        lock = "" if role >= command.role else f" _(needs {command.role.label})_"
        lines.append(f"• `/dcs {command.usage}` — {command.help}{lock}")
    lines.append('\nValues with spaces go in quotes: `schedule="0 3 * * 1"`. `/dcs help build` explains one command.')
    cmd.reply(bk.notice("\n".join(lines)))


def now() -> datetime:
    return datetime.now(UTC)
