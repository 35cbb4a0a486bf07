"""Property: no user input yields an extra Dockerfile instruction or shell command.

Arbitrary text (control characters, quotes, `$()`, backticks, newlines, backslashes, `&&`, `;`, unicode)
goes into the name, base, repository, pip, apt and env fields. Either validation refuses it
(InvalidInput/InvalidInputs), or the rendered Dockerfile, read the way Docker's parser reads it, holds
exactly the expected instructions with exactly the expected arguments.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.catalog import ImageSpec, image_from_dict
from bot.domain.dockerfile import (
    LABEL_BASE,
    LABEL_IMAGE,
    LABEL_INSTALL_STAGE,
    LABEL_SPEC,
    render_build,
    render_dockerfile,
    spec_hash,
)
from bot.domain.packages import validate_pip
from bot.domain.refs import parse_ref
from bot.errors import InvalidInput, InvalidInputs

DIGEST = "sha256:" + "d" * 64
PIP_FLAGS = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", "/dcs-install/requirements.txt"]
APT_BEFORE = [
    "apt-get",
    "update",
    "&&",
    "DEBIAN_FRONTEND=noninteractive",
    "apt-get",
    "install",
    "-y",
    "--no-install-recommends",
]
APT_AFTER = ["&&", "apt-get", "clean", "&&", "rm", "-rf", "/var/lib/apt/lists/*"]
# A Docker parser directive on the first lines (`# syntax=…`, `# escape=…`) would change how the rest is read.
DIRECTIVE = re.compile(r"^#\s*[a-zA-Z][a-zA-Z0-9]*\s*=")

DANGER = [
    "\n",
    "\r",
    "\r\n",
    "\t",
    " ",
    ";",
    "&&",
    "&",
    "||",
    "|",
    "`",
    "$(",
    "$",
    "${",
    "(",
    ")",
    "'",
    '"',
    "\\",
    "\\\n",
    "#",
    "{",
    "}",
    "<",
    ">",
    "<<EOF",
    "*",
    "?",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "é",
    "中",
    "=",
    ":",
    "@",
    ",",
    "-",
    "--",
    "~",
    "!",
    "[",
    "]",
    "/",
    "%",
    "\nRUN id\n",
    "\nFROM x\n",
]
PIP_OK = [
    "pandas==2.2.2",
    "numpy>=1.26,<2",
    "requests[socks,security]>=2.31",
    "torch==2.3.*",
    "pkg @ https://example.com/pkg-1.0-py3-none-any.whl",
    "scikit-learn~=1.5",
    "polars!=1.0",
]
APT_OK = ["curl", "libgomp1", "g++", "libc6:amd64", "zlib1g=1:1.2.11.dfsg-2ubuntu9", "openssh-server=1:8.9p1-3"]
ENV_KEYS = ["TZ", "LANG", "SPARK_OPTS", "_X", "A1"]
ENV_VALUES = ["UTC", "C.UTF-8", "a b c", "it's", "x && y ; z", "ünï ✓", ""]
BASES = [
    "databricksruntime/standard:15.4-LTS",
    "databricksruntime/standard:8.x",
    "databricksruntime/minimal:15.4-LTS",
    "ubuntu:22.04",
    f"databricksruntime/python:15.4-LTS@{DIGEST}",
    "127.0.0.1:5000/mirror/base:1",
    "myacr.azurecr.io/databricksruntime/standard:15.4-LTS",
]
NAMES = ["team-pandas", "a", "r-minimal-2"]
REPOSITORIES = ["myacr.azurecr.io/team/pandas", "team/app", "127.0.0.1:5000/app"]


def mutated(valid: list[str]) -> st.SearchStrategy[str]:
    """Valid values with dangerous text spliced in, mixtures of both, and arbitrary text."""
    piece = st.one_of(st.sampled_from(valid), st.sampled_from(DANGER), st.text(max_size=4))
    return st.one_of(
        st.sampled_from(valid),  # sometimes harmless, so specs with several "hostile" fields still get rendered
        st.tuples(st.sampled_from(valid), st.sampled_from(DANGER), st.sampled_from([*valid, ""])).map("".join),
        st.tuples(st.sampled_from(["", *DANGER]), st.sampled_from(valid), st.sampled_from(DANGER)).map("".join),
        st.lists(piece, min_size=1, max_size=5).map("".join),
        st.text(),
    )


CLEAN = {
    "name": st.sampled_from(NAMES),
    "base": st.sampled_from(BASES),
    "repository": st.sampled_from(REPOSITORIES),
    "pip": st.lists(st.sampled_from(PIP_OK), max_size=3, unique=True),
    "apt": st.lists(st.sampled_from(APT_OK), max_size=3, unique=True),
    "env": st.dictionaries(st.sampled_from(ENV_KEYS), st.sampled_from(ENV_VALUES), max_size=2),
}
FUZZY = {
    "name": mutated(NAMES),
    "base": mutated(BASES),
    "repository": mutated(REPOSITORIES),
    "pip": st.lists(st.one_of(st.sampled_from(PIP_OK), mutated(PIP_OK)), min_size=1, max_size=3),
    "apt": st.lists(st.one_of(st.sampled_from(APT_OK), mutated(APT_OK)), min_size=1, max_size=3),
    "env": st.dictionaries(
        st.one_of(st.sampled_from(ENV_KEYS), mutated(ENV_KEYS)),
        st.one_of(st.sampled_from(ENV_VALUES), mutated(ENV_VALUES)),
        min_size=1,
        max_size=2,
    ),
}


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one to three fields replaced by hostile text."""
    hostile = draw(st.sets(st.sampled_from(sorted(CLEAN)), min_size=1, max_size=3))
    return {key: draw(FUZZY[key] if key in hostile else CLEAN[key]) for key in CLEAN}


def instructions(dockerfile: str) -> list[str]:
    """Logical instructions as Docker's parser sees them: comments and blank lines dropped, `\\` joins lines."""
    assert "\r" not in dockerfile, "a carriage return would end a line for Docker's parser"
    result: list[str] = []
    current: str | None = None
    for line in dockerfile.split("\n"):
        stripped = line.strip()
        if current is None and (not stripped or stripped.startswith("#")):
            continue
        if current is not None and (not stripped or stripped.startswith("#")):
            continue  # Docker skips these inside a continued instruction too
        text = line.rstrip()
        if text.endswith("\\"):
            current = (current or "") + text[:-1]
            continue
        result.append((current or "") + line)
        current = None
    assert current is None, "the file ends inside a continued instruction"
    return result


def shell_words(command: str) -> list[str]:
    """Words and operators as a POSIX shell splits them (operators like ; | & ( ) < > stand alone)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def check_dockerfile(
    spec: ImageSpec, digest: str | None, text: str, pip_inputs: list[str], context: dict[str, bytes] | None = None
) -> None:
    lines = text.split("\n")
    assert lines[0] == (f"# Rendered by dcs-bot for image {spec.name}. Do not edit: change the catalog entry instead.")
    assert not DIRECTIVE.match(lines[0])
    found = instructions(text)
    # BuildKit reads heredocs (`<<EOF`) in RUN, COPY and ADD only; a value such as ENV TZ="<<" is inert
    heredoc_able = [line for line in found if line.split(" ", 1)[0] in ("RUN", "COPY", "ADD")]
    assert not [line for line in heredoc_able if "<<" in line], "a heredoc marker would swallow the following lines"
    keywords = [line.split(" ", 1)[0] for line in found]
    install = ["FROM", "LABEL", "COPY", "ENV", "RUN", "RUN", "RUN"] if spec.pip else []
    final = ["FROM"] + ["RUN"] * bool(spec.apt) + ["COPY", "RUN"] * bool(spec.pip)
    expected = [*install, *final, *["ENV"] * len(spec.env), "LABEL"]
    assert keywords == expected
    rest = [line.split(" ", 1)[1] for line in found]

    base = spec.base_ref
    pinned = base.digest or digest
    stage_from = rest[0].removesuffix(" AS dcs-install") if spec.pip else None
    index = 0
    if spec.pip:
        python, pip = spec.base_info.python_path, spec.base_info.pip_path
        assert rest[1:7] == [
            f'{LABEL_INSTALL_STAGE}="shared"',
            "dcs-install/ /dcs-install/",
            "PIP_CONFIG_FILE=/dcs-install/pip.conf",
            json.dumps([python, "/dcs-install/ship.py", "snapshot"]),
            json.dumps([pip, *PIP_FLAGS]),
            json.dumps([python, "/dcs-install/ship.py", "collect"]),
        ]
        index = 7
    assert re.fullmatch(r"[A-Za-z0-9._/:@\[\]-]+", rest[index]), rest[index]
    assert "$" not in rest[index]
    assert parse_ref(rest[index]) == base.with_digest(pinned)
    assert stage_from in (None, rest[index])
    index += 1

    if spec.apt:
        words = shell_words(rest[index])
        assert words == ["set", "-e", "&&", *APT_BEFORE, *sorted(spec.apt), *APT_AFTER]
        for package in spec.apt:
            assert not package.startswith("-")
        index += 1

    if spec.pip:
        assert rest[index] == "--from=dcs-install /dcs-ship/ /"
        argv = json.loads(rest[index + 1])
        assert argv[:2] == [spec.base_info.python_path, "-c"] and len(argv) == 3
        # the requirements reach pip as a file (data, not argv): one validated requirement per line
        assert context is not None
        requirements = context["dcs-install/requirements.txt"].decode().splitlines()
        assert requirements == sorted(spec.pip)
        assert sorted(spec.pip) == sorted(validate_pip(entry) for entry in pip_inputs)
        assert all(not r.startswith("-") and not set(r) & set("#$\\\n\r") for r in requirements)
        index += 2

    for (key, value), env_line in zip(sorted(spec.env), rest[index : index + len(spec.env)], strict=True):
        match = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)="([^"\\$`]*)"', env_line)
        assert match, env_line
        assert match.groups() == (key, value)
    index += len(spec.env)

    labels = dict(re.findall(r'([a-z0-9.-]+)="([^"\\$`\n]*)"', rest[index]))
    assert rest[index] == " ".join(f'{k}="{v}"' for k, v in labels.items())
    assert labels == {LABEL_IMAGE: spec.name, LABEL_SPEC: spec_hash(spec), LABEL_BASE: pinned or "unknown"}


def render_or_refuse(data: dict[str, Any], digest: str | None) -> bool:
    """True when the input was rendered (and checked), False when validation refused it."""
    try:
        spec = image_from_dict(data)
        plan = render_build(spec, digest)
    except (InvalidInput, InvalidInputs) as refused:
        assert str(refused)
        return False
    check_dockerfile(spec, digest, plan.dockerfile, list(data["pip"]), plan.context)
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=specs(), digest=st.sampled_from([None, DIGEST]))
@example(
    data={"name": "x\n", "base": BASES[0], "repository": REPOSITORIES[0], "pip": [], "apt": [], "env": {}}, digest=None
)
@example(
    data={"name": "x", "base": BASES[0], "repository": REPOSITORIES[0], "pip": [], "apt": ["curl\n=1.0"], "env": {}},
    digest=None,
)
@example(
    data={"name": "x", "base": BASES[0], "repository": REPOSITORIES[0], "pip": [], "apt": [], "env": {"TZ\n": "UTC"}},
    digest=None,
)
@example(
    data={
        "name": "x",
        "base": BASES[0],
        "repository": REPOSITORIES[0],
        "pip": ["pandas\nRUN id"],
        "apt": ["curl;id"],
        "env": {"X": "a\nRUN id"},
    },
    digest=DIGEST,
)
def test_no_input_yields_an_extra_instruction_or_shell_command(data: dict[str, Any], digest: str | None) -> None:
    render_or_refuse(data, digest)


TRICKY_BUT_VALID = [
    {"pip": ["pkg @ https://example.com/a/b/pkg-1.0-py3-none-any.whl", "requests[socks,security]>=2.31"]},
    {"apt": ["g++", "libstdc++6", "libc6:amd64=2.35-0ubuntu3", "openssh-server=1:8.9p1-3"]},
    {"env": {"SPARK_OPTS": "--conf a=b && c ; d | e 'f'", "LANG": "C.UTF-8", "EMPTY": ""}},
    {"base": f"127.0.0.1:5000/mirror/databricksruntime/standard:15.4-LTS@{DIGEST}"},
    {"base": "databricksruntime/standard:8.x", "pip": ["pandas==1.5.3"]},
]


@pytest.mark.parametrize("changes", TRICKY_BUT_VALID)
def test_the_checker_accepts_tricky_but_valid_specs(changes: dict[str, Any]) -> None:
    data = {
        "name": "team-x",
        "base": BASES[0],
        "repository": REPOSITORIES[0],
        "pip": ["pandas"],
        "apt": ["curl"],
        "env": {"TZ": "UTC"},
    } | changes
    assert render_or_refuse(data, DIGEST) is True
    assert render_or_refuse(data, None) is True


def test_the_checker_itself_catches_an_injected_instruction() -> None:
    spec = image_from_dict({"name": "team-x", "base": BASES[0], "repository": REPOSITORIES[0], "apt": ["curl"]})
    good = render_dockerfile(spec, DIGEST)
    check_dockerfile(spec, DIGEST, good, [])
    for bad in (
        good.replace("curl", "curl\nRUN id"),
        good.replace("curl", "curl; id"),
        good.replace("curl", "curl $(id)"),
        good.replace("team-x.", "team-x\n."),
        good.replace("LABEL ", 'ENV X="1"\nLABEL '),
        good + "RUN id\n",
    ):
        with pytest.raises(AssertionError):
            check_dockerfile(spec, DIGEST, bad, [])


def test_the_strategy_reaches_accepted_specs_often_enough() -> None:
    """Guards the property against vacuity: a good share of generated specs must be rendered and checked."""
    outcomes: list[bool] = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)  # a fixed sample: no flakiness
    @given(data=specs())
    def run(data: dict[str, Any]) -> None:
        outcomes.append(render_or_refuse(data, DIGEST))

    run()
    assert sum(outcomes) >= len(outcomes) // 10, f"only {sum(outcomes)} of {len(outcomes)} specs were rendered"
