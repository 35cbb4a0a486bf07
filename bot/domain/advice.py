"""Termination codes in plain words: what happened to a cluster and what to do next.

Pure. Codes and parameters come from `clusters/get` → `termination_reason {code, type, parameters}`;
Databricks puts its own sentence in `parameters.databricks_error_message` (for INIT_SCRIPT_FAILURE:
"Cluster scoped init script <destination> failed: ..."). Facts: ../shared/reference/databricks.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_PULL_LIMIT = re.compile(r"toomanyrequests|pull rate limit|rate limit", re.IGNORECASE)
_AUTH = re.compile(
    r"unauthori[sz]ed|authentication required|denied|401|403|incorrect username|"
    r"secret",
    re.IGNORECASE,
)
_MISSING = re.compile(r"manifest unknown|not found|404|no such image|does not exist", re.IGNORECASE)
_INIT_SCRIPT = re.compile(r"init script (\S+) failed", re.IGNORECASE)

DOCTOR = (
    "Run `dcs doctor {image}` to check the image against DCS requirements (the build message's Details show "
    "the doctor of its last build)."
)


@dataclass(frozen=True)
class Advice:
    headline: str
    steps: tuple[str, ...] = ()

    def text(self) -> str:
        return "\n".join([self.headline, *(f"• {s}" for s in self.steps)])


def failing_init_script(message: str, scripts: Sequence[str] = ()) -> str | None:
    """Which init script failed: named in Databricks' message, else the only one there is."""
    match = _INIT_SCRIPT.search(message or "")
    if match:
        return match.group(1).rstrip(":,.")
    return scripts[0] if len(scripts) == 1 else None


def advise(
    code: str | None,
    *,
    state_message: str = "",
    parameters: Mapping[str, str] | None = None,
    image: str = "IMAGE",
    image_url: str = "",
    on_docker_hub: bool = False,
    auth: str = "none",
    init_scripts: Sequence[str] = (),
) -> Advice:
    """Advice for one termination. `auth` is how the cluster logs in: "none", "secret" or "plaintext"."""
    params = dict(parameters or {})
    said = params.get("databricks_error_message") or state_message or ""
    doctor = DOCTOR.format(image=image)
    code = (code or "UNKNOWN").upper()
    if code == "DOCKER_IMAGE_PULL_FAILURE":
        return _pull_failure(said, image_url, on_docker_hub, auth)
    if code == "DOCKER_INVALID_OS_EXCEPTION":
        return Advice(
            "The image's operating system is not one Databricks can run a cluster on.",
            (
                "Build from a databricksruntime/* base (Ubuntu) — or Alpine with the documented packages.",
                "Build for linux/amd64: Databricks runs x86_64 nodes only.",
                doctor,
            ),
        )
    if code == "DOCKER_IMAGE_TOO_LARGE_FOR_INSTANCE_EXCEPTION":
        return Advice(
            "The image does not fit on the node's disk.",
            (
                "Choose a node type with more local disk (for example an i3/d-series type).",
                "Or make the image smaller: fewer packages, clean apt/pip caches, no build tools left behind.",
            ),
        )
    if code in ("DOCKER_CONTAINER_CREATION_EXCEPTION", "CONTAINER_LAUNCH_FAILURE"):
        return Advice(
            "Databricks pulled the image but could not start its container.",
            (
                "The image probably lacks something Databricks needs (bash, iproute2, sudo, coreutils, procps, "
                "acl, a JDK, /databricks/python3 for Python notebooks).",
                doctor,
                "Check the workspace network does not use 172.17.0.0/16, Docker's default bridge range.",
            ),
        )
    if code == "INIT_SCRIPT_FAILURE":
        script = failing_init_script(said, init_scripts)
        which = f"The init script {script} failed" if script else "An init script failed"
        return Advice(
            f"{which} (it exited with a non-zero status), so Databricks stopped the cluster.",
            (
                "Run it in the image to see the error: `docker run --rm -it IMAGE bash -x SCRIPT`.",
                "Set cluster log delivery to read the script's stdout/stderr from the next launch.",
                "Init scripts run after the image's own setup: a file: script must exist inside the image.",
            ),
        )
    if code == "GLOBAL_INIT_SCRIPT_FAILURE":
        return Advice(
            "A workspace-wide (global) init script failed on this image.",
            ("Ask a workspace admin which global init script failed; it may assume packages the image lacks.",),
        )
    if code == "USER_REQUEST":
        who = params.get("username")
        return Advice(f"The cluster was terminated by {who or 'a user'}.")
    if code == "INACTIVITY":
        return Advice("The cluster stopped after its autotermination period without activity.")
    if code in (
        "CLOUD_PROVIDER_LAUNCH_FAILURE",
        "CLOUD_PROVIDER_RESOURCE_STOCKOUT",
        "INSTANCE_UNREACHABLE",
        "INSTANCE_POOL_CLUSTER_FAILURE",
        "AWS_INSUFFICIENT_INSTANCE_CAPACITY_FAILURE",
        "AZURE_VM_EXTENSION_FAILURE",
        "CLOUD_PROVIDER_SHUTDOWN",
    ):
        return Advice(
            f"The cloud provider could not provide or keep the nodes ({code}).",
            ("Try again in a few minutes, or pick another node type.",),
        )
    if code in ("REQUEST_LIMIT_EXCEEDED", "DATABRICKS_REQUEST_LIMIT_EXCEEDED"):
        return Advice(
            "Databricks throttled cluster launches in this workspace.",
            ("Launch again in a few minutes, or with fewer nodes.",),
        )
    if code in ("SPARK_STARTUP_FAILURE", "DRIVER_UNREACHABLE", "SPARK_ERROR", "DRIVER_UNRESPONSIVE"):
        return Advice(
            f"Spark did not come up inside the container ({code}).",
            (
                "The runtime may not match the image's base (OS, Java, Python): pick the runtime of the base tag.",
                doctor,
            ),
        )
    detail = f": {said}" if said else "."
    return Advice(
        f"Databricks stopped the cluster with code {code}{detail}",
        ("Open the cluster's event log (link above) for details.",),
    )


def _pull_failure(said: str, image_url: str, on_docker_hub: bool, auth: str) -> Advice:
    headline = f"Databricks could not pull the image {image_url or ''}".rstrip() + "."
    limit = (
        "Docker Hub's pull limit: every node start is a pull. Wait for the window to reset, or pull "
        "with a paid account (set its credentials on the registry entry)."
    )
    creds = (
        "The credentials: the registry entry's cluster_password_secret must name a Databricks secret "
        "the launching user can read, holding a valid password or token."
        if auth == "secret"
        else "The credentials: the image may be private while the cluster pulls without a login; set "
        "username and cluster_password_secret on the registry entry."
        if auth == "none"
        else "The credentials: the plaintext password in the bot's environment may be wrong or expired."
    )
    url = (
        "The URL: the digest must still exist in the repository (retention policies delete old "
        "tags); push again with `dcs build NAME --push` if it is gone."
    )
    if _PULL_LIMIT.search(said) and on_docker_hub:
        return Advice(f"{headline} Docker Hub refused: the pull limit is reached.", (limit,))
    if _AUTH.search(said):
        return Advice(f"{headline} The registry refused the login.", (creds,))
    if _MISSING.search(said):
        return Advice(f"{headline} The registry does not have it.", (url,))
    steps = [url, creds] + ([limit] if on_docker_hub else [])
    return Advice(f"{headline} Check, in this order:", tuple(steps))
