"""The fake workspace's command execution API 1.2, driven by the SDK's `w.command_execution` and its waiters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from databricks.sdk.errors import BadRequest, OperationFailed, PermissionDenied
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType

from tests.fakes.databricks import FakeDatabricks, dcs_spec

TRACEBACK = (
    "---------------------------------------------------------------------------\n"
    "ModuleNotFoundError                       Traceback (most recent call last)\n"
    "File <command-1>, line 1\n----> 1 import pandas\n"
    "ModuleNotFoundError: No module named 'pandas'"
)


@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=0) as fake:
        yield fake


def _hanging_command(dbx: FakeDatabricks, command: str = "while True: pass") -> tuple[Any, str, str, Any]:
    """A running cluster with one context and one command that never finishes: (client, cluster, context, waiter)."""
    cid = dbx.add_cluster(dcs_spec())
    dbx.script_command(cid, hang=True)
    w = dbx.client()
    context = w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON)
    return w, cid, context.id, w.command_execution.execute(cluster_id=cid, context_id=context.id, command=command)


def test_context_and_command_round_trip_in_camel_case(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster(dcs_spec())
    dbx.script_command(cid, text="3.11.11", when="sys.version")
    w = dbx.client()

    context = w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON)
    assert context.status == ContextStatus.RUNNING
    done = w.command_execution.execute_and_wait(
        cluster_id=cid, context_id=context.id, command="import sys; print(sys.version)", language=Language.PYTHON
    )
    assert done.status == CommandStatus.FINISHED
    assert (done.results.result_type, done.results.data) == (ResultType.TEXT, "3.11.11")
    w.command_execution.destroy(cluster_id=cid, context_id=context.id)

    (run,) = dbx.commands(cid)
    assert (run.command, run.language, run.user) == ("import sys; print(sys.version)", "python", "alice@example.com")
    assert dbx.open_contexts() == []
    execute = next(r for r in dbx.requests if r.path == "/api/1.2/commands/execute")
    assert set(execute.body) == {"clusterId", "contextId", "command", "language"}
    status = next(r for r in dbx.requests if r.path == "/api/1.2/commands/status")
    assert set(status.query) == {"clusterId", "contextId", "commandId"}


def test_a_failed_command_finishes_with_an_error_result(dbx: FakeDatabricks) -> None:
    cid = dbx.add_cluster(dcs_spec())
    dbx.script_command(cid, cause=TRACEBACK, when="import pandas")
    w = dbx.client()
    context = w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON)

    ok = w.command_execution.execute_and_wait(cluster_id=cid, context_id=context.id, command="import numpy")
    failed = w.command_execution.execute_and_wait(cluster_id=cid, context_id=context.id, command="import pandas")

    assert ok.status == CommandStatus.FINISHED and ok.results.result_type == ResultType.TEXT
    assert failed.status == CommandStatus.FINISHED and failed.results.result_type == ResultType.ERROR
    assert failed.results.cause == TRACEBACK
    assert failed.results.summary == "ModuleNotFoundError: No module named 'pandas'"


def test_a_hanging_command_times_out_and_can_be_cancelled(dbx: FakeDatabricks) -> None:
    w, cid, context_id, waiter = _hanging_command(dbx)
    with pytest.raises(TimeoutError):
        waiter.result(timeout=timedelta(seconds=0.5))
    cancelled = w.command_execution.cancel_and_wait(cluster_id=cid, context_id=context_id, command_id=waiter.command_id)
    assert cancelled.status == CommandStatus.CANCELLED
    assert dbx.commands(cid)[0].status == "Cancelled"


def test_commands_need_a_running_cluster_and_its_single_user(dbx: FakeDatabricks) -> None:
    stopped = dbx.add_cluster(dcs_spec(), state="TERMINATED")
    bobs = dbx.add_cluster(dcs_spec(single_user_name="bob@example.com"))
    w = dbx.client()
    with pytest.raises(BadRequest, match="is not running"):
        w.command_execution.create(cluster_id=stopped, language=Language.PYTHON)
    with pytest.raises(PermissionDenied, match="Single-user check failed"):
        w.command_execution.create(cluster_id=bobs, language=Language.PYTHON)
    assert dbx.open_contexts() == []


def test_a_cluster_that_terminates_under_a_command_ends_it_in_error(dbx: FakeDatabricks) -> None:
    w, cid, context_id, waiter = _hanging_command(dbx)
    w.clusters.delete(cid)
    status = waiter.result()
    assert status.status == CommandStatus.ERROR and "no longer running" in status.results.cause
    with pytest.raises(BadRequest):
        w.command_execution.execute(cluster_id=cid, context_id=context_id, command="1")


def test_cancelled_command_fails_the_execute_waiter(dbx: FakeDatabricks) -> None:
    w, cid, context_id, waiter = _hanging_command(dbx)
    w.command_execution.cancel(cluster_id=cid, context_id=context_id, command_id=waiter.command_id)
    with pytest.raises(OperationFailed, match="got CommandStatus.CANCELLED"):
        waiter.result()
