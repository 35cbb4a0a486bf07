"""A Dockerfile step in words, for progress messages: "installing Python packages: pandas, numpy".

Progress shows what the build is doing, not the instruction itself: the rendered LABEL carries the spec hash
and the RUN lines are long shell or JSON commands nobody needs to read while waiting.
"""

from __future__ import annotations

import json
import re
import shlex

_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
    "--cert",
    "--proxy",
    "--target",
    "-t",
    "--root",
    "--prefix",
}
_KEYWORDS = {
    "FROM": "starting from the base image",
    "ENV": "setting environment variables",
    "LABEL": "labelling the image",
    "COPY": "copying files into the image",
    "ADD": "adding files to the image",
    "USER": "setting the user",
    "WORKDIR": "setting the working directory",
    "ARG": "reading build arguments",
    "SHELL": "setting the shell",
    "ENTRYPOINT": "setting the entry point",
    "CMD": "setting the default command",
    "EXPOSE": "declaring ports",
    "HEALTHCHECK": "setting the health check",
    "VOLUME": "declaring volumes",
}
MAX_NAMES = 3
_ECHO = re.compile(r"^Step \d+/\d+ : ")  # the classic builder's echo, when a caller passes the whole line


def describe_step(instruction: str) -> str:
    """Words for one Dockerfile instruction as the engine echoes it ("RUN …", "FROM base AS build")."""
    keyword, _, rest = _ECHO.sub("", instruction.strip()).partition(" ")
    keyword = keyword.upper()
    if keyword != "RUN":
        return _KEYWORDS.get(keyword, f"{keyword.lower()} step" if keyword else "working")
    words = _words(rest)
    joined = " ".join(words)
    if "pip" in joined and "install" in words:
        return _with_names("installing Python packages", _packages(words, after="install"))
    if "apt-get" in joined or re.search(r"\bapt\b", joined):
        return _with_names("installing OS packages", _packages(words, after="install"))
    if "apk" in words and "add" in words:
        return _with_names("installing OS packages", _packages(words, after="add"))
    if "install.packages" in joined:
        return "installing R packages"
    if "mvn" in words or ".jar" in joined:
        return "adding Java libraries"
    return "running a setup command"


def _words(command: str) -> list[str]:
    command = command.strip()
    if command.startswith("["):
        try:
            parsed = json.loads(command)
            if isinstance(parsed, list):
                return [str(x) for x in parsed]
        except json.JSONDecodeError:
            pass
    try:
        return shlex.split(command.replace("\\\n", " "))
    except ValueError:
        return command.split()


def _packages(words: list[str], *, after: str) -> list[str]:
    names: list[str] = []
    try:
        start = words.index(after) + 1
    except ValueError:
        return names
    skip = False
    for word in words[start:]:
        if word in ("&&", ";", "||", "|"):
            break
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _VALUE_OPTIONS
            continue
        if "=" in word and not re.match(r"^[A-Za-z0-9_.\-\[\]]+(==|>=|<=|~=|!=|=)", word):
            continue
        names.append(word)
    return names


def _with_names(what: str, names: list[str]) -> str:
    if not names:
        return what
    shown = ", ".join(names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return f"{what}: {shown}{more}"
