"""Before a launch: run its `file:` init scripts (paths inside the image) the way Databricks will, in a throw-away
container on a build engine that has the image (bash, as root, DCS_INIT_SCRIPT_TIMEOUT). A failing script
refuses the launch with its last output lines, instead of a cluster that ends in INIT_SCRIPT_FAILURE minutes
later. An image no engine has locally is not pulled for this (a pull spends the Docker Hub budget): the launch
goes ahead and says the scripts were not tried.
"""

from __future__ import annotations

from bot.domain.checks import FAIL
from bot.domain.clusterspec import ImageSource, LaunchRequest
from bot.domain.image_checks import INIT_ENV, INIT_RUNNER, InitRun, init_scripts_check
from bot.errors import InvalidInput
from bot.services import Services


def file_scripts(request: LaunchRequest) -> list[str]:
    """The image paths of the request's `file:` init scripts (file:/opt/x.sh → /opt/x.sh)."""
    return [s.strip()[len("file:") :] for s in request.init_scripts if s.strip().startswith("file:/")]


def check_file_init_scripts(services: Services, source: ImageSource, request: LaunchRequest) -> str | None:
    """Raise InvalidInput when one fails; return a warning when they could not be tried, else None."""
    scripts = file_scripts(request)
    if not scripts:
        return None
    wanted = (f"{source.spec.repository_ref.repository}@{source.digest}", source.url)
    for engine in services.engines.answering():
        image = next((ref for ref in wanted if engine.inspect(ref) is not None), None)
        if image is None:
            continue
        timeout = services.config.init_script_timeout
        run = InitRun(scripts, engine.run_init_scripts(image, INIT_RUNNER, scripts, timeout, INIT_ENV), timeout)
        check = init_scripts_check(run)
        if check.status == FAIL:
            raise InvalidInput("init_scripts", ", ".join(f"file:{s}" for s in scripts), check.detail, check.fix)
        return None
    return "The file: init scripts were not tried before the launch: no build engine has this image locally."
