"""Cluster policies (API 2.0) of the fake workspace: list, get, edit, policy families, and policy enforcement
on cluster create/edit/update.

- `policies/clusters/list` is one unpaginated call (`sort_column` POLICY_CREATION_TIME|POLICY_NAME,
  `sort_order` ASC|DESC); `get` by `policy_id`; `edit` takes the fields of the SDK's
  `ClusterPoliciesAPI.edit`. `definition` and `policy_family_definition_overrides` are JSON *strings*;
  `policy_family_id` cannot be combined with `definition`. For a family policy `get` returns the effective
  `definition` (family rules with the overrides merged in), as Terraform's provider expects (it treats
  `definition` as computed and blanks it before an edit of a family policy).
- `edit` is a full replacement of the editable fields: omitted `description`, `max_clusters_per_user`,
  `libraries`, `definition`/overrides are cleared (UNVERIFIED, databricks-api.md (e): send back every field).
- Enforcement (create, edit, update of a cluster with `policy_id`): rule types `fixed` (+`value`), `forbidden`,
  `allowlist`/`blocklist` (`values`), `regex` (`pattern`), `range` (`minValue`/`maxValue`), `unlimited`;
  `isOptional`, `defaultValue` (applied when the spec sets `apply_policy_default_values`). Fixed values are
  applied to omitted fields. Paths are dotted (`docker_image.url`); `spark_conf.*`, `spark_env_vars.*` and
  `custom_tags.*` address map keys. A violation answers 400 INVALID_PARAMETER_VALUE with the message shape the
  service uses, e.g. `Validation failed for docker_image.url, the value must be x (is "y")` (several joined by
  "; "; wording seen in databricks/terraform-provider-databricks#403 for `fixed`; the other rule types' wording
  is modelled on it and UNVERIFIED).
- Every applied edit is recorded in `fake.writes` (kind "policy") with the policy before and after.
"""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any

from databricks.sdk.service.compute import ClusterPoliciesAPI, Library, Policy

from tests.fakes.databricks_wire import WriteLog, bad, error, malformed, method_parameters, unknown_field
from tests.fakes.http import RecordedRequest, Response

_EDIT_FIELDS = method_parameters(ClusterPoliciesAPI.edit)
_MAP_ATTRIBUTES = ("spark_conf", "spark_env_vars", "custom_tags")
_MISSING = object()


class PoliciesMixin:
    """Policy endpoints of `FakeDatabricks`; state lives on the fake (`policies`, `policy_families`, `writes`)."""

    policies: dict[str, dict[str, Any]]
    policy_families: dict[str, dict[str, Any]]
    writes: WriteLog

    def _policy_routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "policies/list"): self._policies_list,
            ("GET", "policies/get"): self._policies_get,
            ("POST", "policies/edit"): self._policies_edit,
            ("GET", "policy-families"): self._families_list,
        }

    # seeding --------------------------------------------------------------------------------------
    def add_policy_family(self, policy_family_id: str, name: str, definition: dict[str, Any]) -> None:
        with self._lock:  # type: ignore[attr-defined]
            self.policy_families[policy_family_id] = {
                "policy_family_id": policy_family_id,
                "name": name,
                "description": f"{name} policy family",
                "definition": json.dumps(definition),
            }

    def add_policy(
        self,
        name: str,
        definition: dict[str, Any] | str | None = None,
        *,
        policy_family_id: str | None = None,
        policy_family_definition_overrides: dict[str, Any] | str | None = None,
        description: str | None = None,
        max_clusters_per_user: int | None = None,
        creator: str = "alice@example.com",
        is_default: bool = False,
        policy_id: str | None = None,
    ) -> str:
        """Add a policy (a definition, or a family + overrides; dicts are JSON-encoded); returns its id."""
        policy: dict[str, Any] = {"name": name, "creator_user_name": creator, "is_default": is_default}
        for key, value in (
            ("definition", definition),
            ("policy_family_definition_overrides", policy_family_definition_overrides),
        ):
            if value is not None:
                policy[key] = value if isinstance(value, str) else json.dumps(value)
        for key, value in (
            ("policy_family_id", policy_family_id),
            ("description", description),
            ("max_clusters_per_user", max_clusters_per_user),
        ):
            if value is not None:
                policy[key] = value
        with self._lock:  # type: ignore[attr-defined]
            problem = self._policy_problem(policy)
            if problem:
                raise ValueError(problem)
            pid = policy_id or f"{0xD000000000000000 + len(self.policies) * 7919:016X}"
            policy["policy_id"] = pid
            policy["created_at_timestamp"] = int(time.time() * 1000) - 86_400_000 + len(self.policies)
            self.policies[pid] = policy
        return pid

    # endpoints ------------------------------------------------------------------------------------
    def _policies_list(self, request: RecordedRequest, user: str) -> Response:
        column = request.query.get("sort_column") or "POLICY_CREATION_TIME"
        if column not in ("POLICY_CREATION_TIME", "POLICY_NAME"):
            return bad(f"Invalid sort_column: {column}")
        key = "name" if column == "POLICY_NAME" else "created_at_timestamp"
        found = sorted(self.policies.values(), key=lambda p: p[key], reverse=request.query.get("sort_order") == "DESC")
        return Response(200, {"policies": [self._policy_json(p) for p in found]})

    def _policies_get(self, request: RecordedRequest, user: str) -> Response:
        policy = self.policies.get(request.query.get("policy_id") or "")
        if policy is None:
            return error(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Can't find a cluster policy with id: {request.query.get('policy_id')}.",
            )
        return Response(200, self._policy_json(policy))

    def _families_list(self, request: RecordedRequest, user: str) -> Response:
        return Response(200, {"policy_families": list(copy.deepcopy(self.policy_families).values())})

    def _family_get(self, request: RecordedRequest, user: str, family_id: str) -> Response:
        family = self.policy_families.get(family_id)
        if family is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"Policy family {family_id} does not exist.")
        return Response(200, copy.deepcopy(family))

    def _policies_edit(self, request: RecordedRequest, user: str) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return malformed()
        old = self.policies.get(body.get("policy_id") or "")
        if old is None:
            return error(
                404, "RESOURCE_DOES_NOT_EXIST", f"Can't find a cluster policy with id: {body.get('policy_id')}."
            )
        problem = unknown_field(body, _EDIT_FIELDS)
        if problem:
            return bad(problem)
        if old.get("is_default") and body.get("policy_family_id") != old.get("policy_family_id"):
            return bad("The policy family of a default policy cannot be changed.")
        keep = {k: old[k] for k in ("policy_id", "creator_user_name", "created_at_timestamp", "is_default", "name")}
        new = {**keep, **{k: copy.deepcopy(v) for k, v in body.items() if v not in (None, "")}}
        problem = self._policy_problem(new)
        if problem:
            return bad(problem)
        self.writes.add("policy", old["policy_id"], "edit", body, old, new, user)
        self.policies[old["policy_id"]] = new
        return Response(200, {})

    # definitions ----------------------------------------------------------------------------------
    def _policy_problem(self, policy: dict[str, Any]) -> str | None:
        if not 1 <= len(policy.get("name") or "") <= 100:
            return "Policy name must be between 1 and 100 characters."
        libraries = policy.get("libraries")
        if libraries is not None and (
            not isinstance(libraries, list) or any(Library.from_dict(x).as_dict() != x for x in libraries)
        ):
            return "Invalid value or unknown field in request: libraries"
        family = policy.get("policy_family_id")
        if family and "definition" in policy:
            return "policy_family_id cannot be used with definition; use policy_family_definition_overrides."
        if family and family not in self.policy_families:
            return f"Policy family {family} does not exist."
        if policy.get("policy_family_definition_overrides") and not family:
            return "policy_family_definition_overrides requires policy_family_id."
        for key in ("definition", "policy_family_definition_overrides"):
            if key in policy:
                problem = _definition_problem(policy[key], key)
                if problem:
                    return problem
        return None

    def _effective_definition(self, policy: dict[str, Any]) -> dict[str, Any]:
        family = self.policy_families.get(policy.get("policy_family_id") or "")
        if family is None:
            return json.loads(policy.get("definition") or "{}")
        return {
            **json.loads(family["definition"]),
            **json.loads(policy.get("policy_family_definition_overrides") or "{}"),
        }

    def _policy_json(self, policy: dict[str, Any]) -> dict[str, Any]:
        answer = copy.deepcopy(policy)
        answer["definition"] = json.dumps(self._effective_definition(policy))
        problem = _roundtrip(answer)
        assert problem is None, problem  # the fake must answer what the SDK can read
        return answer

    def _apply_policy(self, spec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """`spec` with the policy's fixed (and, if asked, default) values applied, and its violations."""
        policy_id = spec.get("policy_id")
        if not policy_id:
            return spec, None
        policy = self.policies.get(policy_id)
        if policy is None:
            return spec, f"Cluster policy {policy_id} does not exist."
        violations = []
        for path, rule in self._effective_definition(policy).items():
            value = _lookup(spec, path)
            kind = rule.get("type")
            if value is _MISSING:
                if kind == "fixed":
                    _assign(spec, path, rule.get("value"))
                    continue
                if "defaultValue" in rule and spec.get("apply_policy_default_values"):
                    _assign(spec, path, rule["defaultValue"])
                    continue
                if kind in ("allowlist", "blocklist", "regex", "range") and not rule.get("isOptional"):
                    violations.append(f"Validation failed for {path}, the value must be present")
                continue
            reason = _violation(kind, rule, value)
            if reason:
                violations.append(f"Validation failed for {path}, {reason} (is {json.dumps(_text(value))})")
        return spec, "; ".join(violations) or None


def _roundtrip(policy: dict[str, Any]) -> str | None:
    parsed = Policy.from_dict(policy).as_dict()
    return None if parsed == {k: v for k, v in policy.items() if v not in (None, [], {})} else f"policy drift: {policy}"


def _definition_problem(text: Any, key: str) -> str | None:
    if not isinstance(text, str):
        return f"{key} must be a JSON string, got {type(text).__name__}."
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"Invalid policy {key}: {exc.msg} at position {exc.pos}."
    if not isinstance(rules, dict) or not all(isinstance(r, dict) and "type" in r for r in rules.values()):
        return f"Invalid policy {key}: expected an object of attribute paths to rules with a 'type'."
    return None


def _split(path: str) -> list[str]:
    head, _, rest = path.partition(".")
    return [head, rest] if head in _MAP_ATTRIBUTES and rest else path.split(".")


def _lookup(spec: dict[str, Any], path: str) -> Any:
    value: Any = spec
    for key in _split(path):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _assign(spec: dict[str, Any], path: str, value: Any) -> None:
    keys = _split(path)
    target = spec
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _violation(kind: str | None, rule: dict[str, Any], value: Any) -> str | None:
    shown = _text(value)
    if kind == "fixed":
        expected = rule.get("value")
        return None if _text(expected) == shown else f"the value must be {_text(expected)}"
    if kind == "forbidden":
        return "the value must not be present"
    if kind == "allowlist":
        values = [_text(v) for v in rule.get("values") or []]
        return None if shown in values else f"the value must be one of {values}"
    if kind == "blocklist":
        values = [_text(v) for v in rule.get("values") or []]
        return f"the value must not be one of {values}" if shown in values else None
    if kind == "regex":
        try:
            matched = re.fullmatch(rule.get("pattern") or "", shown)
        except re.error:
            matched = None
        return None if matched else f"the value must match {rule.get('pattern')}"
    if kind == "range":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return "the value must be a number"
        low, high = rule.get("minValue"), rule.get("maxValue")
        if low is not None and number < low or high is not None and number > high:
            return f"the value must be between {low} and {high}"
    return None
