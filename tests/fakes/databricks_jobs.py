"""Jobs API 2.2 of the fake workspace: list, get, update and reset, plus seeding of jobs.

Wire semantics (SDK 0.162 `jobs.py` docstrings and `mixins/jobs.py`, see /work/notes/databricks-api.md (c)):
- `jobs/list`: `limit` 1..100 (default 20), `page_token`, `name` (exact, case-insensitive), `expand_tasks`.
  Without `expand_tasks` the settings carry no `tasks`/`job_clusters`; with it the first 100 entries of each
  array and `has_more: true` when any array is longer. `next_page_token` is omitted on the last page.
- `jobs/get`: the arrays `tasks`, `job_clusters`, `environments`, `parameters` are paged at 100 (`page_token`);
  later pages carry the next slice of each array (finished arrays are omitted); the last page has no
  `next_page_token` (an empty string would make `JobsExt.get` loop forever).
- `jobs/update`: `new_settings` replaces each top-level field it names; `tasks` and `job_clusters` entries are
  merged by `task_key`/`job_cluster_key` (a sent entry replaces the stored one whole, others stay);
  `fields_to_remove` takes top-level names, `tasks/<task_key>` and `job_clusters/<job_cluster_key>`.
  Whether `environments`/`parameters` merge by key is UNVERIFIED: here they are replaced whole.
- `jobs/reset`: `new_settings` replaces everything.
- Bodies are checked through the SDK's `JobSettings` round trip. `deployment.kind = BUNDLE` and
  `edit_mode = UI_LOCKED` are stored and returned as sent; the API itself does not refuse updates of such jobs
  (bundle deploys use the same API), so deciding not to edit them is the caller's job.
- Every applied update/reset is recorded in `fake.writes` (kind "job") with the settings before and after.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

from databricks.sdk.service.jobs import JobSettings

from tests.fakes.databricks_wire import WriteLog, bad, malformed, page_offset, page_token, roundtrip_problem
from tests.fakes.http import RecordedRequest, Response

DEFAULT_USER = "alice@example.com"
PAGED_ARRAYS = ("tasks", "job_clusters", "environments", "parameters")
MERGE_KEYS = {"tasks": "task_key", "job_clusters": "job_cluster_key"}
_SETTINGS_FIELDS = {f.name for f in dataclasses.fields(JobSettings)}


@dataclass
class FakeJob:
    job_id: int
    settings: dict[str, Any]
    creator: str
    created_time: int
    run_as: str


class JobsMixin:
    """Job endpoints of `FakeDatabricks`; state lives on the fake (`jobs`, `writes`)."""

    jobs: dict[int, FakeJob]
    writes: WriteLog
    job_array_page_size: int
    _job_ids: itertools.count[int]

    def _job_routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "jobs/list"): self._jobs_list,
            ("GET", "jobs/get"): self._jobs_get,
            ("POST", "jobs/update"): self._jobs_update,
            ("POST", "jobs/reset"): self._jobs_reset,
        }

    @staticmethod
    def _new_job_ids() -> itertools.count[int]:
        return itertools.count(10**14 + secrets.randbelow(10**13))

    # seeding --------------------------------------------------------------------------------------
    def add_job(self, settings: dict[str, Any], *, creator: str = DEFAULT_USER, job_id: int | None = None) -> int:
        """Put a job in the workspace (any settings the SDK's `JobSettings` accepts); returns its id."""
        problem = _settings_problem(settings)
        if problem:
            raise ValueError(problem)
        with self._lock:  # type: ignore[attr-defined]
            jid = job_id if job_id is not None else next(self._job_ids)
            created = int(time.time() * 1000) - 86_400_000 + len(self.jobs)
            self.jobs[jid] = FakeJob(jid, copy.deepcopy(settings), creator, created, creator)
        return jid

    # reads ----------------------------------------------------------------------------------------
    def _job_or_error(self, raw: Any) -> FakeJob | Response:
        try:
            job = self.jobs.get(int(raw))
        except (TypeError, ValueError):
            return bad(f"Invalid job_id: {raw!r}")
        return job if job is not None else bad(f"Job {raw} does not exist.")

    def _jobs_list(self, request: RecordedRequest, user: str) -> Response:
        q = request.query
        try:
            limit = int(q.get("limit") or 20)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return bad(f"The limit must be greater than 0 and less than or equal to 100, got {q.get('limit')}.")
        offset = page_offset(q.get("page_token")) if "page_token" in q else int(q.get("offset") or 0)
        if offset is None:
            return bad(f"Invalid page token: {q['page_token']}")
        expand = q.get("expand_tasks") == "true"
        name = (q.get("name") or "").lower()
        found = sorted(self.jobs.values(), key=lambda j: j.created_time, reverse=True)  # most recent first
        if name:
            found = [j for j in found if (j.settings.get("name") or "").lower() == name]
        jobs = []
        for job in found[offset : offset + limit]:
            base = self._job_json(job, 0)
            settings = base["settings"]
            if expand:
                if any(len(job.settings.get(a) or []) > self.job_array_page_size for a in PAGED_ARRAYS):
                    base["has_more"] = True
            else:
                settings.pop("tasks", None)
                settings.pop("job_clusters", None)
            base.pop("next_page_token", None)
            jobs.append(base)
        answer: dict[str, Any] = {"jobs": jobs, "has_more": offset + limit < len(found)}
        if offset + limit < len(found):
            answer["next_page_token"] = page_token(offset + limit)
        if offset > 0:
            answer["prev_page_token"] = page_token(max(offset - limit, 0))
        return Response(200, answer)

    def _jobs_get(self, request: RecordedRequest, user: str) -> Response:
        job = self._job_or_error(request.query.get("job_id"))
        if isinstance(job, Response):
            return job
        page = page_offset(request.query.get("page_token"))
        if page is None:
            return bad(f"Invalid page token: {request.query.get('page_token')}")
        paged = request.path.startswith("/api/2.2/")  # API 2.1 returns whole arrays
        return Response(200, self._job_json(job, page, paged))

    def _job_json(self, job: FakeJob, page: int, paged: bool = True) -> dict[str, Any]:
        settings = copy.deepcopy(job.settings)
        size = self.job_array_page_size
        more = False
        if paged:
            for key in PAGED_ARRAYS:
                entries = settings.pop(key, None) or []
                chunk = entries[page * size : (page + 1) * size]
                if chunk:
                    settings[key] = chunk
                more = more or len(entries) > (page + 1) * size
        body: dict[str, Any] = {
            "job_id": job.job_id,
            "creator_user_name": job.creator,
            "run_as_user_name": job.run_as,
            "created_time": job.created_time,
            "settings": settings,
        }
        if more:
            body["next_page_token"] = page_token(page + 1)
        return body

    # writes ---------------------------------------------------------------------------------------
    def _job_target(self, request: RecordedRequest) -> tuple[dict[str, Any], FakeJob] | Response:
        body = request.body
        if not isinstance(body, dict):
            return malformed()
        job = self._job_or_error(body.get("job_id"))
        return job if isinstance(job, Response) else (body, job)

    def _jobs_update(self, request: RecordedRequest, user: str) -> Response:
        target = self._job_target(request)
        if isinstance(target, Response):
            return target
        body, job = target
        new = body.get("new_settings") or {}
        problem = _settings_problem(new)
        if problem:
            return bad(problem)
        settings = copy.deepcopy(job.settings)
        for key, value in new.items():
            if key in MERGE_KEYS:
                settings[key] = _merged(settings.get(key) or [], value, MERGE_KEYS[key])
            else:
                settings[key] = copy.deepcopy(value)
        for name in body.get("fields_to_remove") or []:
            problem = _remove(settings, name)
            if problem:
                return bad(problem)
        problem = _settings_problem(settings)
        if problem:
            return bad(problem)
        self.writes.add("job", job.job_id, "update", body, job.settings, settings, user)
        job.settings = settings
        return Response(200, {})

    def _jobs_reset(self, request: RecordedRequest, user: str) -> Response:
        target = self._job_target(request)
        if isinstance(target, Response):
            return target
        body, job = target
        new = body.get("new_settings")
        problem = "Missing required field: new_settings" if not isinstance(new, dict) else _settings_problem(new)
        if problem:
            return bad(problem)
        self.writes.add("job", job.job_id, "reset", body, job.settings, new, user)
        job.settings = copy.deepcopy(new)
        return Response(200, {})


def _settings_problem(settings: Any) -> str | None:
    problem = roundtrip_problem(JobSettings, settings, "new_settings")
    if problem:
        return problem
    for key, field_name in MERGE_KEYS.items():
        names = [entry.get(field_name) for entry in settings.get(key) or []]
        if any(not n for n in names):
            return f"Missing required field: {key}[].{field_name}"
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            return f"{field_name} {dup!r} is not unique in {key}."
    return None


def _merged(old: list[dict[str, Any]], new: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    by_key = {entry.get(key): copy.deepcopy(entry) for entry in new}
    merged = [by_key.pop(entry.get(key), entry) for entry in old]
    return merged + list(by_key.values())


def _remove(settings: dict[str, Any], name: str) -> str | None:
    kind, _, key = name.partition("/")
    if key:
        if kind not in MERGE_KEYS:
            return f"Invalid field in fields_to_remove: {name}"
        entries = settings.get(kind) or []
        kept = [e for e in entries if e.get(MERGE_KEYS[kind]) != key]
        if len(kept) == len(entries):
            return f"{MERGE_KEYS[kind]} {key!r} not found in {kind} (fields_to_remove: {name})."
        settings[kind] = kept
        return None
    if name not in _SETTINGS_FIELDS:
        return f"Invalid field in fields_to_remove: {name}"
    settings.pop(name, None)
    return None
