"""Text that leaves the engine: terminal codes removed, the failure's cause found, steps said in words."""

from __future__ import annotations

import pytest

from bot.domain.ansi import plain
from bot.domain.build_failure import cause_in_log, failure_summary
from bot.domain.build_steps import describe_step


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[1;31mERROR\x1b[0m: no", "ERROR: no"),
        ("Collecting x\r\x1b[K 10%\r 100%", " 100%"),  # a redrawn progress line shows its last state
        ("\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink
        ("\x1b]0;title\x07after", "after"),
        ("\x1b(Bplain\x1b=", "plain"),
        ("tab\tand\nnewline stay\x00\x07", "tab\tand\nnewline stay"),
        ("\x9b31mC1 CSI\x9b0m", "C1 CSI"),
        ("", ""),
    ],
)
def test_plain_removes_every_terminal_sequence(raw: str, shown: str) -> None:
    assert plain(raw) == shown
    assert "\x1b" not in plain(raw)


PIP_LOG = """Step 3/5 : RUN ["/databricks/python3/bin/pip", "install", "nope==1.0"]
 ---> Running in 0123abcd
\x1b[33mCollecting nope==1.0\x1b[0m
ERROR: Could not find a version that satisfies the requirement nope==1.0 (from versions: none)
\x1b[1;31mERROR: No matching distribution found for nope==1.0\x1b[0m
ERROR: The command '/databricks/python3/bin/pip install nope==1.0' returned a non-zero code: 1"""
STEP = 'Step 3/5 : RUN ["/databricks/python3/bin/pip", "install", "nope==1.0"]'


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (PIP_LOG, "No matching distribution found for nope==1.0"),
        (
            "E: Unable to locate package nope\nERROR: The command 'apt-get' returned a non-zero code: 100",
            "E: Unable to locate package nope",
        ),
        (
            "curl: (6) Could not resolve host: pypi.internal\nERROR: The command …",
            "Could not resolve host: pypi.internal",
        ),
        ("something\nerror: subprocess-exited-with-error", "error: subprocess-exited-with-error"),
        ("ERROR: The command 'x' returned a non-zero code: 2", None),  # the engine's own line says no more
        ("", None),
    ],
)
def test_the_cause_is_the_tools_own_line(log: str, cause: str | None) -> None:
    assert cause_in_log(log) == cause


def test_the_summary_says_the_cause_first_and_the_step_once() -> None:
    error = (
        f"Build failed at {STEP}: "
        "The command '/databricks/python3/bin/pip install nope==1.0' returned a non-zero code: 1"
    )
    summary = failure_summary(error, STEP, PIP_LOG)
    assert summary.cause == "No matching distribution found for nope==1.0" and summary.cause_from_log
    assert summary.step == 'step 3 of 5: RUN ["/databricks/python3/bin/pip", "install", "nope==1.0"]'
    assert summary.exit_code == 1


def test_an_error_that_already_names_the_cause_is_kept() -> None:
    error = "pip could not install nope==1.0: No matching distribution found for nope==1.0 on https://pypi.internal"
    assert failure_summary(error, STEP, PIP_LOG).cause == error


def test_without_a_log_the_error_is_the_cause_without_the_repeated_step() -> None:
    summary = failure_summary(f"Build failed at {STEP}: The command … returned a non-zero code: 3", STEP, None)
    assert summary.cause == "The command … returned a non-zero code: 3" and summary.exit_code == 3


@pytest.mark.parametrize(
    ("instruction", "words"),
    [
        (
            'RUN ["/databricks/python3/bin/pip", "install", "--no-cache-dir", "pandas==2.2.2"]',
            "installing Python packages: pandas==2.2.2",
        ),
        (
            "RUN pip install -r /tmp/requirements.txt -c /tmp/c.txt a b c d",
            "installing Python packages: a, b, c and 1 more",
        ),
        (
            "RUN apt-get update  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl git"
            "  && apt-get clean",
            "installing OS packages: curl, git",
        ),
        ("RUN apk add --no-cache bash", "installing OS packages: bash"),
        ("RUN Rscript -e 'install.packages(\"x\")'", "installing R packages"),
        ('LABEL io.github.dcs-bot.spec-hash="3154"', "labelling the image"),
        ("FROM databricksruntime/standard:15.4-LTS AS build", "starting from the base image"),
        ("Step 2/7 : ENV A=1", "setting environment variables"),
        ("RUN echo hi", "running a setup command"),
        ("ONBUILD RUN x", "onbuild step"),
    ],
)
def test_steps_in_words(instruction: str, words: str) -> None:
    assert describe_step(instruction) == words


def test_an_explained_failure_keeps_its_explanation_first_and_drops_the_repeated_step() -> None:
    hint = "pip: 'nope==1.0' was not found (No matching distribution found for nope==1.0). Check the name."
    error = f"{hint}\nBuild failed at {STEP}: The command 'pip install nope==1.0' returned a non-zero code: 1"
    summary = failure_summary(error, STEP, PIP_LOG)
    assert summary.cause == hint and summary.exit_code == 1 and summary.step and "RUN" in summary.step
