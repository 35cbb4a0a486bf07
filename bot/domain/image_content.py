"""What an image holds beyond pip and apt: requirements and constraints files, init scripts, files, jars,
R packages, Alpine packages, and where an own base's Python lives.

Catalog as code: requirements, constraints, init scripts and local files are files next to the catalog file,
named by relative paths. `dcs catalog import` reads them (bot/ops/catalog_files.py), checks them here and
records each one's sha256 (`sources`), so the spec hash changes when a file does; the build copies them into
the build context as data. Remote files and jars are https URLs with a mandatory sha256, or Maven
coordinates checked against the repository's published checksum; the build verifies every byte it gets.

Every value is checked to a character set that needs no quoting where it goes (a Dockerfile COPY line, an
exec-form RUN, a requirements file line); every rejection names the field, the value and the fix.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.domain.build_settings import check_url
from bot.domain.packages import validate_pip
from bot.errors import InvalidInput, InvalidInputs

INIT_SCRIPT_DIR = "/opt/dcs/init-scripts"
JARS_DIR = "/databricks/jars"
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TEXT_BYTES = 1024 * 1024
CONTENT_KEYS = ("python", "requirements", "constraints", "init_scripts", "files", "jars", "r_packages", "apk")

_RELATIVE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}\Z")
_ABSOLUTE = re.compile(r"^/[A-Za-z0-9._/+-]{1,1023}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_MAVEN_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_R_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,99}[A-Za-z0-9]\Z")
_APK = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,99}(?:(?:=|~=|>=|<=|>|<)[A-Za-z0-9._+-]{1,64})?\Z")
_PYTHON = re.compile(r"^/[A-Za-z0-9._/+-]*/python[0-9.]*\Z")
_HASH_OPTION = re.compile(r"^--hash[= ]sha256:([0-9a-f]{64})\Z")
# Where files may not go without `allow_system = true` (the runtime's own environment and the OS), and where
# they never may (kernel file systems; the directories other fields own).
_SYSTEM = ("/databricks/python3", "/databricks/conda", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
           "/etc", "/boot", "/var/lib/dpkg", "/var/lib/apt", "/root")  # fmt: skip
_NEVER = ("/proc", "/sys", "/dev", JARS_DIR, INIT_SCRIPT_DIR, "/dcs-install", "/dcs-ship")


@dataclass(frozen=True)
class FileEntry:
    destination: str
    source: str | None = None  # a path relative to the catalog file
    url: str | None = None  # or an https URL (with sha256)
    sha256: str | None = None
    mode: int = 0o644
    allow_system: bool = False

    def to_value(self) -> str | dict[str, Any]:
        if self.source and self.mode == 0o644 and not self.allow_system and not self.sha256:
            return self.source
        out: dict[str, Any] = {"source": self.source} if self.source else {"url": self.url, "sha256": self.sha256}
        if self.mode != 0o644:
            out["mode"] = f"0{self.mode:o}"
        if self.allow_system:
            out["allow_system"] = True
        return out


@dataclass(frozen=True)
class JarEntry:
    coordinates: str | None = None  # group:artifact:version
    url: str | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        if self.coordinates:
            _, artifact, version = self.coordinates.split(":")
            return f"{artifact}-{version}.jar"
        return posixpath.basename(self.url or "")

    def maven_path(self) -> str:
        group, artifact, version = (self.coordinates or "").split(":")
        return f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"

    def to_value(self) -> str | dict[str, Any]:
        if self.coordinates and not self.sha256:
            return self.coordinates
        out: dict[str, Any] = {"coordinates": self.coordinates} if self.coordinates else {"url": self.url}
        out["sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class ImageContent:
    python: str | None = None  # an own base's interpreter
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    init_scripts: tuple[str, ...] = ()
    files: tuple[FileEntry, ...] = ()
    jars: tuple[JarEntry, ...] = ()
    r_packages: tuple[str, ...] = ()
    apk: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()  # (relative path, sha256) of the catalog's files, from the import

    def local_paths(self) -> list[str]:
        """The catalog-directory files this content needs, in a stable order, each once."""
        paths = [*self.requirements, *self.constraints, *self.init_scripts, *(f.source for f in self.files if f.source)]
        return list(dict.fromkeys(p for p in paths if p))

    def sha256_of(self, path: str) -> str | None:
        return dict(self.sources).get(path)

    def with_sources(self, sources: Mapping[str, str]) -> ImageContent:
        return replace(self, sources=tuple(sorted(sources.items())))

    def init_script_paths(self) -> list[str]:
        """Where the init scripts are in the image (what every launch runs as `file:` init scripts)."""
        return [f"{INIT_SCRIPT_DIR}/{posixpath.basename(p)}" for p in self.init_scripts]

    @property
    def empty(self) -> bool:
        return not content_to_dict(self, record=True)


NO_CONTENT = ImageContent()


def content_to_dict(content: ImageContent, *, record: bool = False) -> dict[str, Any]:
    """The catalog-file form (set keys only); `record` adds the sources' sha256 (what the store keeps)."""
    out: dict[str, Any] = {}
    if content.python:
        out["python"] = content.python
    for key in ("requirements", "constraints", "init_scripts", "r_packages", "apk"):
        if getattr(content, key):
            out[key] = list(getattr(content, key))
    if content.files:
        out["files"] = {f.destination: f.to_value() for f in content.files}
    if content.jars:
        out["jars"] = [j.to_value() for j in content.jars]
    if record and content.sources:
        out["sources"] = dict(content.sources)
    return out


def content_inputs(content: ImageContent) -> dict[str, Any]:
    """What changes the built image: every field and the content of every file (by sha256)."""
    return content_to_dict(content, record=True)


# ---------------------------------------------------------------- validation


def check_relative_path(value: object, field: str) -> str:
    fix = "Give a path relative to the catalog file, e.g. requirements/team.txt (no '..', no leading '/')."
    if not isinstance(value, str) or not _RELATIVE.match(value):
        raise InvalidInput(field, value, "is not a relative path", fix)
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(field, value, "leaves or skips through directories", fix)
    return value


def check_destination(value: object, field: str, allow_system: bool) -> str:
    fix = "Give an absolute path like /opt/team/config.yaml (letters, digits, . _ - + /)."
    if not isinstance(value, str) or not _ABSOLUTE.match(value) or value.endswith("/"):
        raise InvalidInput(field, value, "is not an absolute file path", fix)
    if posixpath.normpath(value) != value or "/./" in value or "/../" in value:
        raise InvalidInput(field, value, "is not a normalized path (no '..', '.' or '//')", fix)
    for root in _NEVER:
        if value == root or value.startswith(root + "/"):
            raise InvalidInput(
                field,
                value,
                f"is inside {root}, where files cannot go",
                "Use jars for /databricks/jars, init_scripts for init scripts, another directory otherwise.",
            )
    if not allow_system:
        for root in _SYSTEM:
            if value == root or value.startswith(root + "/"):
                raise InvalidInput(
                    field,
                    value,
                    f"would change {root}, which belongs to the base image",
                    "Put it elsewhere (e.g. under /opt), or set allow_system = true on this file if you mean it.",
                )
    return value


def _sha256(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise InvalidInput(
            field, value, "is not a sha256 checksum", "Give the 64 hex digits of `sha256sum FILE` for the file."
        )
    return value.lower()


def _https(value: object, field: str) -> str:
    url = check_url(value, field, "URL")
    if not url.startswith("https://"):
        raise InvalidInput(field, value, "is not https", "Download only over https:// (the sha256 is checked too).")
    return url


def _mode(value: object, field: str) -> int:
    fix = 'Give the mode as an octal string like "0755" or "0644".'
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        mode = int(value, 8)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        mode = value
    else:
        raise InvalidInput(field, value, "is not a file mode", fix)
    return mode


def _file_entry(destination: object, value: object, field: str) -> FileEntry:
    allow = isinstance(value, Mapping) and value.get("allow_system") is True
    dest = check_destination(destination, f"{field}.{destination}", allow)
    where = f"{field}.{dest}"
    if isinstance(value, str):
        return FileEntry(dest, source=check_relative_path(value, where))
    if not isinstance(value, Mapping):
        raise InvalidInput(
            where, value, "is not a path or a table", 'Give "relative/path" or { url = "https://…", sha256 = "…" }.'
        )
    unknown = sorted(set(value) - {"source", "url", "sha256", "mode", "allow_system"})
    if unknown:
        raise InvalidInput(
            f"{where}.{unknown[0]}", unknown[0], "is not a file setting", "Use source, url, sha256, mode, allow_system."
        )
    mode = _mode(value.get("mode", 0o644), f"{where}.mode")
    if value.get("source") is not None:
        if value.get("url") is not None:
            raise InvalidInput(where, value, "has both source and url", "Give one of them.")
        return FileEntry(
            dest, source=check_relative_path(value["source"], f"{where}.source"), mode=mode, allow_system=allow
        )
    if value.get("url") is None:
        raise InvalidInput(where, value, "has neither source nor url", 'Give source = "path" or url = "https://…".')
    if value.get("sha256") is None:
        raise InvalidInput(
            f"{where}.sha256", None, "is missing", "A downloaded file needs its sha256 (sha256sum FILE)."
        )
    url = _https(value["url"], f"{where}.url")
    return FileEntry(dest, url=url, sha256=_sha256(value["sha256"], f"{where}.sha256"), mode=mode, allow_system=allow)


def _jar(value: object, field: str) -> JarEntry:
    if isinstance(value, str):
        return JarEntry(coordinates=_coordinates(value, field))
    if not isinstance(value, Mapping):
        raise InvalidInput(
            field, value, "is not a jar", 'Give "group:artifact:version" or { url = "https://…", sha256 = "…" }.'
        )
    sha = _sha256(value["sha256"], f"{field}.sha256") if value.get("sha256") is not None else None
    if value.get("coordinates") is not None:
        return JarEntry(coordinates=_coordinates(value["coordinates"], f"{field}.coordinates"), sha256=sha)
    url = _https(value.get("url"), f"{field}.url")
    if not url.endswith(".jar"):
        raise InvalidInput(f"{field}.url", url, "does not name a .jar file", "Give the URL of the .jar itself.")
    if sha is None:
        raise InvalidInput(f"{field}.sha256", None, "is missing", "A jar from a URL needs its sha256 (sha256sum FILE).")
    return JarEntry(url=url, sha256=sha)


def _coordinates(value: object, field: str) -> str:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or not all(_MAVEN_PART.match(p) for p in parts):
        raise InvalidInput(
            field,
            value,
            "is not Maven coordinates",
            "Write group:artifact:version, e.g. org.postgresql:postgresql:42.7.3.",
        )
    return str(value)


def _strings(value: object, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidInput(field, value, "is not a list", f"Give {field.rsplit('.', 1)[-1]} as a list.")
    return list(value)


def _checked(pattern: re.Pattern[str], value: object, field: str, what: str, example: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidInput(field, value, f"is not {what}", f"Give names like {example}.")
    return value


def content_from_dict(data: Mapping[str, Any], field_prefix: str = "") -> ImageContent:
    """The content fields of one image entry (other keys are ignored here); every problem is reported."""
    p: list[InvalidInput] = []
    f = lambda name: f"{field_prefix}{name}"  # noqa: E731

    def each(key: str, check: Any) -> list[Any]:
        out = []
        try:
            items = _strings(data.get(key), f(key))
        except InvalidInput as exc:
            p.append(exc)
            return []
        for item in items:
            try:
                out.append(check(item, f(key)))
            except InvalidInput as exc:
                p.append(exc)
        return out

    python = None
    if data.get("python") is not None:
        try:
            python = _checked(_PYTHON, data["python"], f("python"), "a python interpreter path", "/usr/bin/python3")
        except InvalidInput as exc:
            p.append(exc)
    requirements = each("requirements", check_relative_path)
    constraints = each("constraints", check_relative_path)
    init_scripts = each("init_scripts", check_relative_path)
    names = [s.rsplit("/", 1)[-1] for s in init_scripts]
    if len(set(names)) != len(names):
        p.append(InvalidInput(f("init_scripts"), init_scripts, "has two scripts of the same name", "Rename one."))
    files: list[FileEntry] = []
    raw_files = data.get("files")
    if raw_files is not None and not isinstance(raw_files, Mapping):
        p.append(
            InvalidInput(f("files"), raw_files, "is not a table", 'Write files = { "/opt/x.yaml" = "conf/x.yaml" }.')
        )
    for destination, value in (raw_files or {}).items() if isinstance(raw_files, Mapping) else []:
        try:
            files.append(_file_entry(destination, value, f("files")))
        except InvalidInput as exc:
            p.append(exc)
    jars = each("jars", _jar)
    jar_names = [j.filename for j in jars]
    if len(set(jar_names)) != len(jar_names):
        p.append(InvalidInput(f("jars"), jar_names, "puts two jars under the same file name", "Remove one."))
    r_packages = each(
        "r_packages", lambda v, fl: _checked(_R_PACKAGE, v, fl, "an R package name", "data.table or arrow")
    )
    apk = each("apk", lambda v, fl: _checked(_APK, v, fl, "an Alpine package", "curl or openssl=3.1.4-r5"))
    sources: dict[str, str] = {}
    raw_sources = data.get("sources")
    if isinstance(raw_sources, Mapping):  # only in the store's records (image_from_dict refuses it elsewhere)
        sources = {str(k): _sha256(v, f("sources")) for k, v in raw_sources.items()}
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    return ImageContent(
        python=python,
        requirements=tuple(requirements),
        constraints=tuple(constraints),
        init_scripts=tuple(init_scripts),
        files=tuple(files),
        jars=tuple(jars),
        r_packages=tuple(r_packages),
        apk=tuple(apk),
        sources=tuple(sorted(sources.items())),
    )


# ---------------------------------------------------------------- the files themselves


def canonical_requirements(data: bytes, field: str, *, constraints: bool = False) -> bytes:
    """A requirements (or constraints) file checked line by line and written back in a canonical form.

    Allowed: PEP 508 requirements (markers included) and `--hash=sha256:…` after them; comments, blank lines,
    `\\` continuations. Refused: every other option (`-r`, `-c`, `-e`, `--index-url`, `--trusted-host`, …: the
    build settings decide where pip looks), `${VAR}` expansion, anything a requirement may not contain."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(field, "…", "is not UTF-8 text", "Save the file as UTF-8.") from None
    if len(data) > MAX_TEXT_BYTES:
        raise InvalidInput(field, f"{len(data)} bytes", "is larger than 1 MiB", "Split the file.")
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((start, pending + line))
        pending = ""
    if pending:
        logical.append((start, pending))
    out = []
    for number, line in logical:
        text_line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not text_line:
            continue
        where = f"{field} line {number}"
        if "${" in text_line:
            raise InvalidInput(where, text_line, "uses ${…} expansion", "Write the value itself.")
        tokens = text_line.split()
        first_option = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        requirement, options = " ".join(tokens[:first_option]), tokens[first_option:]
        if not requirement:
            raise InvalidInput(
                where,
                text_line,
                "is a pip option",
                "Only requirements and --hash=sha256:… are allowed: the build settings decide where pip looks.",
            )
        hashes = []
        for option in _joined_hash_options(options):
            match = _HASH_OPTION.match(option)
            if not match or constraints:
                raise InvalidInput(
                    where, option, "is not allowed here", "After a requirement only --hash=sha256:<64 hex> may follow."
                )
            hashes.append(match.group(1))
        canonical = validate_pip(requirement, where)
        out.append(" ".join([canonical, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "".join(f"{line}\n" for line in out).encode()


def _joined_hash_options(options: list[str]) -> list[str]:
    """`--hash sha256:…` (two tokens) as one, like pip reads it."""
    joined: list[str] = []
    for token in options:
        if joined and joined[-1] == "--hash":
            joined[-1] = f"--hash={token}"
        else:
            joined.append(token)
    return joined


def has_hashes(canonical: bytes) -> bool:
    return b"--hash=sha256:" in canonical


def check_text_file(data: bytes, field: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    if len(data) > limit:
        raise InvalidInput(
            field, f"{len(data)} bytes", f"is larger than {limit // (1024 * 1024)} MiB", "Make it smaller."
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(field, "…", "is not UTF-8 text", "Save it as UTF-8.") from None
    return data
