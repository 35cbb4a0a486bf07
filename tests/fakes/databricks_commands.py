"""Command execution API 1.2 of the fake workspace (`w.command_execution`): contexts create/status/destroy and
commands execute/status/cancel, scriptable per cluster.

Wire (SDK 0.162 `compute.CommandExecutionAPI`, /work/notes/databricks-api.md (a)): camelCase fields —
`POST /api/1.2/contexts/create {"clusterId","language"}` → `{"id"}`; `GET /api/1.2/contexts/status?clusterId=
&contextId=` → `{"id","status"}` (Pending/Running/Error); `POST /api/1.2/contexts/destroy {"clusterId",
"contextId"}`; `POST /api/1.2/commands/execute {"clusterId","contextId","command","language"}` → `{"id"}`;
`GET /api/1.2/commands/status?clusterId=&contextId=&commandId=` → `{"id","status","results"}` with status
Queued/Running/Finished/Error/Cancelled and results `{"resultType":"text","data":…}` or
`{"resultType":"error","summary":…,"cause":…}` — a failed Python command ends `Finished` with resultType error;
`POST /api/1.2/commands/cancel {"clusterId","contextId","commandId"}` → the command becomes Cancelled.

Rules: contexts and commands need a RUNNING cluster; on a dedicated (SINGLE_USER) cluster only its single user
may create contexts or run commands. The error bodies for these two refusals use the 1.2 style `{"error": …}`;
their exact wording and status are UNVERIFIED (the real service may answer `ClusterNotReadyException`, which the
SDK retries until its retry timeout).

Scripting: `fake.script_command(cluster_id, ...)` queues what the next matching command does — success text,
an error (`cause`, `summary`), `polls` status polls in Running first, or `hang=True` (Running forever, for
timeouts). Without a script a command finishes at the first status poll with empty text output. Every command
is recorded: `fake.commands(cluster_id)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from databricks.sdk.service.compute import Language

from tests.fakes.databricks_wire import bad, error, malformed
from tests.fakes.http import RecordedRequest, Response

DEDICATED_MODES = ("SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED")
_LANGUAGES = {language.value for language in Language}


@dataclass
class CommandScript:
    """What one command does. `when` picks commands by a substring of their text or a predicate."""

    text: str = ""
    cause: str | None = None  # set for a failed command: resultType "error"
    summary: str | None = None
    polls: int = 0  # status polls answered Running before the final status
    hang: bool = False
    when: str | Callable[[str], bool] | None = None

    def matches(self, command: str) -> bool:
        if self.when is None:
            return True
        return self.when in command if isinstance(self.when, str) else self.when(command)


@dataclass
class ExecutionContext:
    context_id: str
    cluster_id: str
    language: str
    user: str
    destroyed: bool = False


@dataclass
class ExecutedCommand:
    command_id: str
    cluster_id: str
    context_id: str
    command: str
    language: str
    user: str
    script: CommandScript
    status: str = "Queued"
    polls: int = 0


class CommandsMixin:
    """API 1.2 endpoints of `FakeDatabricks`; state lives on the fake (`contexts`, `_commands`)."""

    contexts: dict[str, ExecutionContext]
    _commands: dict[str, ExecutedCommand]
    _command_scripts: dict[str, list[CommandScript]]
    clusters: dict[str, Any]

    def _command_routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("POST", "1.2/contexts/create"): self._context_create,
            ("GET", "1.2/contexts/status"): self._context_status,
            ("POST", "1.2/contexts/destroy"): self._context_destroy,
            ("POST", "1.2/commands/execute"): self._command_execute,
            ("GET", "1.2/commands/status"): self._command_status,
            ("POST", "1.2/commands/cancel"): self._command_cancel,
        }

    # scripting and inspection ---------------------------------------------------------------------
    def script_command(
        self,
        cluster_id: str = "*",
        *,
        text: str = "",
        cause: str | None = None,
        summary: str | None = None,
        polls: int = 0,
        hang: bool = False,
        when: str | Callable[[str], bool] | None = None,
        times: int = 1,
    ) -> None:
        """Queue what the next `times` commands on `cluster_id` ("*" = any cluster) matching `when` do."""
        with self._lock:  # type: ignore[attr-defined]
            for _ in range(times):
                script = CommandScript(text, cause, summary, polls, hang, when)
                self._command_scripts.setdefault(cluster_id, []).append(script)

    def commands(self, cluster_id: str | None = None) -> list[ExecutedCommand]:
        with self._lock:  # type: ignore[attr-defined]
            return [c for c in self._commands.values() if cluster_id is None or c.cluster_id == cluster_id]

    def open_contexts(self, cluster_id: str | None = None) -> list[ExecutionContext]:
        with self._lock:  # type: ignore[attr-defined]
            return [
                c
                for c in self.contexts.values()
                if not c.destroyed and (cluster_id is None or c.cluster_id == cluster_id)
            ]

    # checks ---------------------------------------------------------------------------------------
    def _runnable(self, cluster_id: Any, user: str) -> Response | None:
        cluster = self.clusters.get(cluster_id or "")
        if cluster is None:
            return bad(f"Cluster {cluster_id} does not exist")
        if cluster.state != "RUNNING":
            return Response(400, {"error": f"Cluster {cluster_id} is not running (state: {cluster.state})."})
        spec = cluster.spec
        if spec.get("data_security_mode") in DEDICATED_MODES and spec.get("single_user_name") != user:
            message = (
                f"Single-user check failed: user '{user}' attempted to run a command on single-user cluster "
                f"{cluster_id}, but the single user of this cluster is '{spec.get('single_user_name')}'"
            )
            return error(403, "PERMISSION_DENIED", message)
        return None

    def _context_of(self, cluster_id: Any, context_id: Any) -> ExecutionContext | Response:
        context = self.contexts.get(context_id or "")
        if context is None or context.destroyed or context.cluster_id != cluster_id:
            return Response(400, {"error": f"ContextNotFound: Context {context_id} does not exist."})
        return context

    @staticmethod
    def _fields(body: Any, required: tuple[str, ...]) -> dict[str, Any] | Response:
        if not isinstance(body, dict):
            return malformed()
        missing = [k for k in required if not isinstance(body.get(k), str) or not body[k]]
        unknown = sorted(set(body) - set(required) - {"language"})
        if missing or unknown:
            return bad(f"Missing or unknown field in request: {(missing or unknown)[0]}")
        if "language" in body and body["language"] not in _LANGUAGES:
            return bad(f"Invalid language: {body['language']}; expected one of {sorted(_LANGUAGES)}")
        return body

    # contexts -------------------------------------------------------------------------------------
    def _context_create(self, request: RecordedRequest, user: str) -> Response:
        body = self._fields(request.body, ("clusterId",))
        if isinstance(body, Response):
            return body
        refused = self._runnable(body["clusterId"], user)
        if refused:
            return refused
        context_id = str(10**18 + secrets.randbelow(8 * 10**18))
        self.contexts[context_id] = ExecutionContext(
            context_id, body["clusterId"], body.get("language", "python"), user
        )
        return Response(200, {"id": context_id})

    def _context_status(self, request: RecordedRequest, user: str) -> Response:
        context = self._context_of(request.query.get("clusterId"), request.query.get("contextId"))
        if isinstance(context, Response):
            return context
        return Response(200, {"id": context.context_id, "status": "Running"})

    def _context_destroy(self, request: RecordedRequest, user: str) -> Response:
        body = self._fields(request.body, ("clusterId", "contextId"))
        if isinstance(body, Response):
            return body
        context = self._context_of(body["clusterId"], body["contextId"])
        if isinstance(context, Response):
            return context
        context.destroyed = True
        return Response(200, {"id": context.context_id})

    # commands -------------------------------------------------------------------------------------
    def _command_execute(self, request: RecordedRequest, user: str) -> Response:
        body = self._fields(request.body, ("clusterId", "contextId", "command"))
        if isinstance(body, Response):
            return body
        refused = self._runnable(body["clusterId"], user)
        context = refused or self._context_of(body["clusterId"], body["contextId"])
        if isinstance(context, Response):
            return context
        script = self._take_script(body["clusterId"], body["command"])
        command_id = secrets.token_hex(16)
        language = body.get("language", context.language)
        self._commands[command_id] = ExecutedCommand(
            command_id, body["clusterId"], context.context_id, body["command"], language, user, script
        )
        return Response(200, {"id": command_id})

    def _take_script(self, cluster_id: str, command: str) -> CommandScript:
        for key in (cluster_id, "*"):
            queue = self._command_scripts.get(key) or []
            script = next((s for s in queue if s.matches(command)), None)
            if script is not None:
                queue.remove(script)
                return script
        return CommandScript()

    def _command_or_error(self, q: dict[str, Any]) -> ExecutedCommand | Response:
        command = self._commands.get(q.get("commandId") or "")
        if command is None or command.cluster_id != q.get("clusterId") or command.context_id != q.get("contextId"):
            return Response(400, {"error": f"CommandNotFound: Command {q.get('commandId')} does not exist."})
        return command

    def _command_status(self, request: RecordedRequest, user: str) -> Response:
        command = self._command_or_error(request.query)
        if isinstance(command, Response):
            return command
        cluster = self.clusters.get(command.cluster_id)
        if command.status in ("Queued", "Running") and (cluster is None or cluster.state != "RUNNING"):
            command.status = "Error"  # the cluster went away under the command (answer shape UNVERIFIED)
        if command.status in ("Queued", "Running"):
            script = command.script
            command.polls += 1
            command.status = "Running" if script.hang or command.polls <= script.polls else "Finished"
        answer: dict[str, Any] = {"id": command.command_id, "status": command.status}
        if command.status == "Finished":
            script = command.script
            if script.cause is not None:
                summary = script.summary or script.cause.strip().splitlines()[-1]
                answer["results"] = {"resultType": "error", "summary": summary, "cause": script.cause}
            else:
                answer["results"] = {"resultType": "text", "data": script.text}
        elif command.status == "Error":
            state = cluster.state if cluster is not None else "deleted"
            cause = f"The cluster {command.cluster_id} is no longer running (state: {state})."
            answer["results"] = {"resultType": "error", "summary": "Cluster terminated", "cause": cause}
        elif command.status == "Cancelled":
            answer["results"] = {"resultType": "error", "summary": "Command cancelled", "cause": "CommandCancelled"}
        return Response(200, answer)

    def _command_cancel(self, request: RecordedRequest, user: str) -> Response:
        body = self._fields(request.body, ("clusterId", "contextId", "commandId"))
        if isinstance(body, Response):
            return body
        command = self._command_or_error(body)
        if isinstance(command, Response):
            return command
        if command.status in ("Queued", "Running"):
            command.status = "Cancelled"
        return Response(200, {"id": command.command_id})
