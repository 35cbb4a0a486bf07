"""The image catalog: image definitions and registries, validated, and their TOML file form.

A catalog file round-trips exactly: `export(import(text)) == text` for a file written by export, and
the data of any valid file survives import → export → import unchanged.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import tomli_w

from bot.config import SLACK_CHANNEL, SLACK_USER_ID
from bot.domain.bases import BaseInfo, classify_base
from bot.domain.build_settings import NO_SETTINGS, BuildSettings, content_inputs, settings_from_dict
from bot.domain.cron import CronError, check_cron
from bot.domain.doctor_policy import NO_POLICY, DoctorPolicy, policy_from_dict
from bot.domain.image_content import CONTENT_KEYS, NO_CONTENT, ImageContent, content_from_dict, content_to_dict
from bot.domain.image_content import content_inputs as files_inputs
from bot.domain.packages import apt_name, pip_key, split_requirements, validate_apt, validate_env, validate_pip
from bot.domain.refs import ImageRef, is_valid_tag, parse_ref, parse_repository, same_registry_host
from bot.domain.release import DEFAULT_POLICY, RELEASE_FIELDS, ReleasePolicy, release_from_dict, release_to_dict
from bot.domain.secrets import check_secret_env_name, legacy_secret_name, migration_message, renamed_secret_env
from bot.errors import InvalidInput, InvalidInputs

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")  # \Z: "$" allows a trailing newline
SECRET_REF = re.compile(r"^\{\{secrets/[A-Za-z0-9_.-]{1,128}/[A-Za-z0-9_.-]{1,128}\}\}\Z")
TAG_FIELDS = ("tag", "date", "build", "spec", "base")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
DEFAULT_IMMUTABLE_TAG = "{tag}-{date}-b{build}"
_CRON_FIX = (
    "Use five cron fields (minute hour day-of-month month day-of-week), e.g. '0 3 * * 1' for Mondays at "
    "03:00 UTC, or a macro such as @daily."
)
_CRON_NEVER_FIX = "Pick days that exist in the months you name, e.g. '0 3 28 2 *' for the end of February."
_CRON_REASONS = {
    "fields": "is not a five-field cron expression",
    "value": "is not a valid cron expression",
    "never": "never fires",
}
# A catalog file may be at most this big: 5,000 images with long package lists stay under 4 MiB.
MAX_CATALOG_BYTES = 8 * 1024 * 1024
# A catalog needs four levels ([[image]] → its table → env/pip → value); anything deeper is a mistake.
MAX_NESTING = 8
# Text fields whose own checks would misread a number or an array (tag, schedule, description and host
# have checks of their own that say what is wrong with such a value).
IMAGE_TEXT_FIELDS = ("name", "base", "repository", "registry", "immutable_tag", "notify_channel", "owner")
PIN_MODES = ("digest", "tag")
REGISTRY_TEXT_FIELDS = ("name", "username", "password_env", "cluster_username")


@dataclass(frozen=True)
class ImageSpec:
    name: str
    base: str
    repository: str
    pip: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    registry: str | None = None
    tag: str = "latest"
    immutable_tag: str = DEFAULT_IMMUTABLE_TAG
    schedule: str | None = None
    notify_channel: str | None = None
    owner: str | None = None
    description: str = ""
    build: BuildSettings = NO_SETTINGS  # this image's own build settings (over the catalog's and the bot's)
    release: ReleasePolicy = DEFAULT_POLICY  # when the moving tag moves (bot/domain/release.py)
    content: ImageContent = NO_CONTENT  # requirements, files, jars, init scripts… (bot/domain/image_content.py)
    doctor: DoctorPolicy = NO_POLICY  # waived checks, size budget (bot/domain/doctor_policy.py)
    public: bool = False  # a public repository: launches carry no basic_auth, whatever its registry says

    # computed once per spec (a frozen dataclass keeps them in its __dict__; equality still compares fields):
    # the scheduler and `/dcs images` ask every spec of a 5,000-image catalog
    @cached_property
    def base_ref(self) -> ImageRef:
        return parse_ref(self.base, "base")

    @cached_property
    def base_info(self) -> BaseInfo:
        return classify_base(self.base_ref)

    @cached_property
    def repository_ref(self) -> ImageRef:
        return parse_repository(self.repository)

    def build_inputs(self) -> dict[str, Any]:
        """The fields that change what gets built (schedules, owners and channels do not)."""
        inputs: dict[str, Any] = {
            "base": self.base,
            "pip": sorted(self.pip),
            "apt": sorted(self.apt),
            "env": sorted(self.env),
        }
        if content_inputs(self.build):
            inputs["build"] = content_inputs(self.build)
        if not self.content.empty:
            inputs["content"] = files_inputs(self.content)
        return inputs

    def immutable_tag_for(self, *, build_id: int, date: str, spec_hash: str, base_digest: str | None) -> str:
        base = (base_digest or "local").removeprefix("sha256:")[:12]
        return self.immutable_tag.format(tag=self.tag, date=date, build=build_id, spec=spec_hash[:12], base=base)


@dataclass(frozen=True)
class RegistrySpec:
    """A registry the bot pushes to. Holds no secret: passwords are named, not stored."""

    name: str
    host: str
    username: str | None = None
    password_env: str | None = None  # the NAME of the environment variable holding the password
    cluster_username: str | None = None  # defaults to username
    cluster_password_secret: str | None = None  # Databricks secret reference {{secrets/scope/key}}
    allow_plaintext_password: bool = False
    public: bool = False  # clusters pull anonymously: launches carry no basic_auth (pushes still log in)
    pin: str = "digest"  # how launches reference a build: repo@sha256:… or, with "tag", its immutable tag

    @property
    def legacy_password_env(self) -> bool:
        """Stored before the DCS_SECRET_ rule: names a variable the bot no longer reads (rename it)."""
        return legacy_secret_name(self.password_env)

    @property
    def kind(self) -> str:
        host = self.host.lower()
        if same_registry_host(host, "docker.io"):
            return "dockerhub"
        if host.endswith(".azurecr.io"):
            return "acr"
        return "basic"


# ---------------------------------------------------------------- validation


def _collect(collect: list[InvalidInput], fn, *args):
    """`fn(*args)`, or None with its problem(s) added to `collect` (one InvalidInput or several)."""
    try:
        return fn(*args)
    except InvalidInputs as exc:
        collect.extend(exc.problems)
        return None
    except InvalidInput as exc:
        collect.append(exc)
        return None


def content_problems(
    base: BaseInfo, pip: list[str], apt: list[Any], content: ImageContent, f: Callable[[str], str]
) -> list[InvalidInput]:
    """Rules between the content and the base: an own base says where its Python is; apk or apt, not both;
    R packages on R bases."""
    p: list[InvalidInput] = []
    wants_pip = bool(pip or content.requirements)
    if wants_pip and not base.is_databricks and not content.python:
        p.append(
            InvalidInput(
                f("python"),
                None,
                "is missing: the base is not a Databricks image, so where pip installs is unknown",
                'Say where the base\'s Python is, e.g. python = "/usr/bin/python3" (pip runs as python -m pip).',
            )
        )
    if content.python and base.is_databricks:
        p.append(
            InvalidInput(
                f("python"),
                content.python,
                "is for own bases only",
                "Remove it: Databricks bases have their Python at /databricks/python3.",
            )
        )
    if content.constraints and not wants_pip:
        p.append(InvalidInput(f("constraints"), list(content.constraints), "constrain nothing", "Add pip entries."))
    if content.apk and apt:
        p.append(
            InvalidInput(f("apk"), list(content.apk), "next to apt", "Use apk on Alpine bases and apt on the others.")
        )
    if content.apk and base.is_databricks:
        p.append(
            InvalidInput(
                f("apk"), list(content.apk), "is for Alpine bases", "Databricks bases are Ubuntu: use apt instead."
            )
        )
    if content.r_packages and base.is_databricks and base.flavour != "rbase":
        p.append(
            InvalidInput(
                f("r_packages"),
                list(content.r_packages),
                f"cannot be installed: {base.flavour} has no R",
                "Use databricksruntime/rbase (or an own base with R) for R packages.",
            )
        )
    return p


def _problems(collect: list[InvalidInput], fn, *args):
    try:
        return fn(*args)
    except InvalidInput as exc:
        collect.append(exc)
        return None


def kind_of(value: object) -> str:
    """What a TOML value is, in the words of the TOML spec (for error messages)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return "a date or time" if type(value).__module__ == "datetime" else type(value).__name__


def _wrong_types(
    data: Mapping[str, Any], names: Iterable[str], f: Callable[[str], str], p: list[InvalidInput]
) -> set[str]:
    """Fields that must be text but are not (a number, an array, a table): one problem each, named by field."""
    bad = set()
    for name in names:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            p.append(
                InvalidInput(
                    f(name), value, f"is {kind_of(value)}, not text", f'Write it as a quoted string: {name} = "…".'
                )
            )
            bad.add(name)
    return bad


def validate_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            field,
            name,
            "is not a valid name",
            "Use 1-63 lowercase letters, digits and '-', starting with a letter or digit.",
        )
    return name


def validate_cron(expr: object, field: str = "schedule") -> str | None:
    """A crontab(5) schedule (UTC), whitespace normalised; one that never fires is refused with the reason."""
    if expr in (None, ""):
        return None
    if not isinstance(expr, str):
        raise InvalidInput(field, expr, f"{_CRON_REASONS['fields']} (it is {kind_of(expr)})", _CRON_FIX)
    try:
        return check_cron(expr).text
    except CronError as exc:
        fix = _CRON_NEVER_FIX if exc.kind == "never" else _CRON_FIX
        raise InvalidInput(field, expr, f"{_CRON_REASONS[exc.kind]} ({exc})", fix) from None


def validate_channel(value: object, field: str = "notify_channel") -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not SLACK_CHANNEL.match(value):
        raise InvalidInput(field, value, "is not a Slack channel", "Use a channel id like C012AB3CD or #channel-name.")
    return value


def validate_owner(value: object, field: str = "owner") -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not (SLACK_USER_ID.match(value) or re.match(r"^[\w.+-]+@[\w.-]+\Z", value)):
        raise InvalidInput(field, value, "is not a Slack user id or an email", "Use a Slack user id like U012AB3CD.")
    return value


def validate_immutable_tag(template: object, moving: str, field: str = "immutable_tag") -> str:
    fix = f"Use a tag template with placeholders from {{{', '.join(TAG_FIELDS)}}}, e.g. '{DEFAULT_IMMUTABLE_TAG}'."
    if not isinstance(template, str) or not template:
        raise InvalidInput(field, template, "is empty", fix)
    names = _TEMPLATE_FIELD.findall(template)
    unknown = [n for n in names if n not in TAG_FIELDS]
    if unknown:
        raise InvalidInput(field, template, f"uses unknown placeholder(s) {unknown}", fix)
    if "build" not in names and "spec" not in names:
        raise InvalidInput(
            field,
            template,
            "does not change between builds",
            "Include {build} (or {spec}) so every build gets its own immutable tag.",
        )
    literal = _TEMPLATE_FIELD.sub("", template)
    if "{" in literal or "}" in literal:
        # str.format would raise on it (or index into a value): only plain {placeholder}s may reach it
        raise InvalidInput(field, template, "has a stray '{' or '}'", fix)
    sample = template.format(tag=moving, date="20260101", build=12345, spec="0" * 12, base="0" * 12)
    if not is_valid_tag(sample) or template.count("{") != template.count("}"):
        raise InvalidInput(field, template, "does not produce a valid Docker tag", fix)
    return template


def _string_list(value: object, field: str, problems: list[InvalidInput]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = split_requirements(value)
    if not isinstance(value, list | tuple):
        problems.append(InvalidInput(field, value, "is not a list", f"Give {field} as a list of strings."))
        return []
    return list(value)


def image_from_dict(data: Mapping[str, Any], field_prefix: str = "", *, stored: bool = False) -> ImageSpec:
    """Validate a mapping (catalog entry, CLI options, Slack form) into an ImageSpec.

    Collects every problem; raises InvalidInputs when there is more than one. `stored`: a record the store wrote,
    which also carries the sha256 of the catalog's files (`sources`, never accepted from a person).
    """
    p: list[InvalidInput] = []
    f = lambda name: f"{field_prefix}{name}"  # noqa: E731
    known = ({fl.name for fl in ImageSpec.__dataclass_fields__.values()} - {"release", "content"}) | set(RELEASE_FIELDS)
    known |= set(CONTENT_KEYS) | ({"sources"} if stored else set())
    for key in data:
        if key not in known:
            p.append(
                InvalidInput(f(key), key, "is not a known image field", f"Use one of: {', '.join(sorted(known))}.")
            )
    # A field of the wrong type is reported once, as such, and then treated as absent (no "is missing" too).
    bad = _wrong_types(data, IMAGE_TEXT_FIELDS, f, p)
    data = {k: v for k, v in data.items() if k not in bad}
    name = _problems(p, validate_name, data.get("name"), f("name")) if "name" not in bad else None
    base = data.get("base")
    base_ref = _problems(p, parse_ref, base, f("base")) if base else None
    if not base and "base" not in bad:
        p.append(InvalidInput(f("base"), base, "is missing", "Set base, e.g. databricksruntime/standard:15.4-LTS."))
    repo = data.get("repository")
    repo_ref = _problems(p, parse_repository, repo, f("repository")) if repo else None
    if not repo and "repository" not in bad:
        p.append(
            InvalidInput(
                f("repository"), repo, "is missing", "Set the repository to push to, e.g. myacr.azurecr.io/team/pandas."
            )
        )
    pip = [_problems(p, validate_pip, e, f("pip")) for e in _string_list(data.get("pip"), f("pip"), p)]
    apt = [_problems(p, validate_apt, e, f("apt")) for e in _string_list(data.get("apt"), f("apt"), p)]
    env_in = data.get("env")
    env_in = {} if env_in is None else env_in
    env: list[tuple[str, str]] = []
    if isinstance(env_in, Mapping):
        env_items = list(env_in.items())
    elif isinstance(env_in, list | tuple):
        env_items = [
            tuple(item) if isinstance(item, list | tuple) and len(item) == 2 else (str(item), None) for item in env_in
        ]
    else:
        env_items = []
        p.append(InvalidInput(f("env"), env_in, "is not a table", 'Give env as a table, e.g. env = { TZ = "UTC" }.'))
    for key, value in env_items:
        pair = _problems(p, validate_env, key, value, f("env"))
        if pair:
            env.append(pair)
    if base_ref is not None and pip and classify_base(base_ref).python == "none":
        p.append(
            InvalidInput(
                f("pip"),
                ", ".join(x for x in pip if x),
                f"cannot be installed: {base} has no Python",
                "Use a Python base (databricksruntime/python or standard) or remove the pip packages.",
            )
        )
    tag = data.get("tag")
    tag = "latest" if tag is None or tag == "" else tag  # 0 or false is a wrong value, not "no tag"
    if not isinstance(tag, str) or not is_valid_tag(tag):
        p.append(InvalidInput(f("tag"), tag, "is not a valid Docker tag", "Use letters, digits, '_', '.', '-'."))
        tag = "latest"
    immutable = _problems(
        p, validate_immutable_tag, data.get("immutable_tag") or DEFAULT_IMMUTABLE_TAG, tag, f("immutable_tag")
    )
    schedule = _problems(p, validate_cron, data.get("schedule"), f("schedule"))
    channel = _problems(p, validate_channel, data.get("notify_channel"), f("notify_channel"))
    owner = _problems(p, validate_owner, data.get("owner"), f("owner"))
    registry = data.get("registry") or None
    if registry is not None:
        _problems(p, validate_name, registry, f("registry"))
    description = data.get("description")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description) > 300 or "\n" in description:
        p.append(
            InvalidInput(
                f("description"), description, "is not one line of at most 300 characters", "Shorten the description."
            )
        )
        description = ""
    release = release_from_dict(data, f, p)
    public = data.get("public", False)
    if not isinstance(public, bool):
        p.append(InvalidInput(f("public"), public, "is not true or false", "Use public = true or false."))
        public = False
    for label, values, package in (("pip", pip, pip_key), ("apt", apt, apt_name)):
        # by package, not by text: pandas==2.1 next to pandas==2.2 would only fail deep into the build
        names = [package(v) for v in values if v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            p.append(InvalidInput(f(label), dupes, "lists the same package twice", "Remove the duplicates."))
    build = _collect(p, settings_from_dict, data.get("build", {}), f("build.")) or NO_SETTINGS
    content = _collect(p, content_from_dict, data, field_prefix) or NO_CONTENT
    if base_ref is not None:
        p.extend(content_problems(classify_base(base_ref), [x for x in pip if x], apt, content, f))
    doctor = _collect(p, policy_from_dict, data.get("doctor", {}), f("doctor.")) or NO_POLICY
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    assert name and base_ref and repo_ref and immutable
    return ImageSpec(
        name=name,
        base=str(base),
        repository=str(repo),
        pip=tuple(pip),
        apt=tuple(apt),
        env=tuple(env),
        registry=registry,
        tag=tag,
        immutable_tag=immutable,
        schedule=schedule,
        notify_channel=channel,
        owner=owner,
        description=description,
        build=build,
        release=release,
        content=content,
        doctor=doctor,
        public=public,
    )


def image_to_dict(spec: ImageSpec, *, record: bool = False) -> dict[str, Any]:
    """The catalog-file form: defaults and empty fields left out, env as a table; `record` is what the store
    keeps (the file form plus the sha256 of the catalog's files)."""
    out: dict[str, Any] = {"name": spec.name, "base": spec.base, "repository": spec.repository}
    if spec.registry:
        out["registry"] = spec.registry
    if spec.pip:
        out["pip"] = list(spec.pip)
    if spec.apt:
        out["apt"] = list(spec.apt)
    if spec.env:
        out["env"] = dict(spec.env)
    if spec.tag != "latest":
        out["tag"] = spec.tag
    if spec.immutable_tag != DEFAULT_IMMUTABLE_TAG:
        out["immutable_tag"] = spec.immutable_tag
    for key in ("schedule", "notify_channel", "owner", "description"):
        if getattr(spec, key):
            out[key] = getattr(spec, key)
    if not spec.build.empty:
        out["build"] = spec.build.to_dict()
    out.update(release_to_dict(spec.release))
    out.update(content_to_dict(spec.content, record=record))
    if not spec.doctor.empty:
        out["doctor"] = spec.doctor.to_dict()
    if spec.public:
        out["public"] = True
    return out


def image_from_stored(data: Mapping[str, Any]) -> ImageSpec:
    """An ImageSpec from the form `image_to_dict` stored, without validating it again (it was when written).

    A field this reader has no converter for (one added later, of another type) makes it fall back to the
    full validation of `image_from_dict`: slower, never wrong.
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        convert = _STORED_FIELDS.get(key)
        if convert is None:
            return image_from_dict(data, stored=True)
        values[key] = convert(value)
    return ImageSpec(**values)


def _as_is(value: Any) -> Any:
    return value


def _stored_converters() -> dict[str, Callable[[Any], Any]]:
    by_type: dict[str, Callable[[Any], Any]] = {
        "str": _as_is,
        "str | None": _as_is,
        "bool": _as_is,
        "int": _as_is,
        "tuple[str, ...]": tuple,
        "tuple[tuple[str, str], ...]": lambda env: tuple(env.items()),
    }
    fields = ImageSpec.__dataclass_fields__.values()
    return {f.name: by_type[str(f.type)] for f in fields if str(f.type) in by_type}


_STORED_FIELDS = _stored_converters()


def registry_from_dict(data: Mapping[str, Any], field_prefix: str = "", *, stored: bool = False) -> RegistrySpec:
    """Validate a registry entry (catalog file, CLI options). `stored`: a row the store wrote, which may name a
    password variable from before the DCS_SECRET_ rule (see `legacy_password_env`)."""
    p: list[InvalidInput] = []
    f = lambda name: f"{field_prefix}{name}"  # noqa: E731
    known = set(RegistrySpec.__dataclass_fields__)
    for key in data:
        if key not in known:
            if key in ("password", "token", "secret"):
                p.append(
                    InvalidInput(
                        f(key),
                        "***",
                        "would store a secret in the catalog",
                        "Set password_env to the NAME of an environment variable holding it.",
                    )
                )
            else:
                p.append(
                    InvalidInput(
                        f(key), key, "is not a known registry field", f"Use one of: {', '.join(sorted(known))}."
                    )
                )
    bad = _wrong_types(data, REGISTRY_TEXT_FIELDS, f, p)
    data = {k: v for k, v in data.items() if k not in bad}
    name = _problems(p, validate_name, data.get("name"), f("name")) if "name" not in bad else None
    host = data.get("host")
    if "host" in bad:
        pass
    elif not isinstance(host, str) or not host:
        p.append(InvalidInput(f("host"), host, "is missing", "Set host, e.g. docker.io or myacr.azurecr.io."))
    else:
        _problems(p, parse_ref, f"{host}/x", f("host"))
        if "/" in host or ("." not in host and ":" not in host and host != "localhost"):
            p.append(
                InvalidInput(
                    f("host"),
                    host,
                    "is not a registry host",
                    "Give the host (and port) only, e.g. myacr.azurecr.io or 127.0.0.1:5000.",
                )
            )
    username = data.get("username") or None
    password_env = data.get("password_env") or None
    if password_env is not None and not (stored and legacy_secret_name(password_env)):
        # A stored entry from before the DCS_SECRET_ rule still loads (so the bot can say what to rename);
        # its variable is never read (Services.credentials, Config.secret).
        entry = f"registry {name}" if name else "this registry entry"
        _problems(p, check_secret_env_name, password_env, f("password_env"), entry)
    if password_env and not username:
        p.append(InvalidInput(f("username"), username, "is missing", "A password needs a username."))
    secret = data.get("cluster_password_secret") or None
    if secret is not None and (not isinstance(secret, str) or not SECRET_REF.match(secret)):
        # what lands here instead of a reference is often the password itself: do not echo it
        shown = secret if isinstance(secret, str) and secret.startswith("{{") else "***"
        p.append(
            InvalidInput(
                f("cluster_password_secret"),
                shown,
                "is not a Databricks secret reference",
                "Use {{secrets/<scope>/<key>}}; create it with `databricks secrets put-secret`.",
            )
        )
    plaintext = data.get("allow_plaintext_password", False)
    if not isinstance(plaintext, bool):
        p.append(InvalidInput(f("allow_plaintext_password"), plaintext, "is not true or false", "Use true or false."))
        plaintext = False
    public = data.get("public", False)
    if not isinstance(public, bool):
        p.append(InvalidInput(f("public"), public, "is not true or false", "Use public = true or false."))
        public = False
    pin = data.get("pin", "digest") or "digest"
    if pin not in PIN_MODES:
        p.append(
            InvalidInput(
                f("pin"),
                pin,
                "is not digest or tag",
                'Use pin = "digest" (repo@sha256:…, the default) or pin = "tag" (the build\'s immutable tag).',
            )
        )
        pin = "digest"
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    return RegistrySpec(
        name=name or "",
        host=str(host),
        username=username,
        password_env=password_env,
        cluster_username=data.get("cluster_username") or None,
        cluster_password_secret=secret,
        allow_plaintext_password=plaintext,
        public=public,
        pin=pin,
    )


def registry_migration(spec: RegistrySpec) -> str:
    """What to do about an entry stored with a password variable from before the DCS_SECRET_ rule."""
    assert spec.password_env
    new = renamed_secret_env(spec.password_env)
    words = ["dcs", "registry", "add", spec.name, "--host", spec.host]
    for option, value in (("--username", spec.username), ("--password-env", new)):
        words += [option, value or ""]
    for option, value in (
        ("--cluster-username", spec.cluster_username),
        ("--cluster-password-secret", spec.cluster_password_secret),
    ):
        if value:
            words += [option, value]
    if spec.allow_plaintext_password:
        words.append("--allow-plaintext-password")
    return migration_message(f"Registry {spec.name!r}", "password_env", spec.password_env, command=shlex.join(words))


def registry_to_dict(spec: RegistrySpec) -> dict[str, Any]:
    out = {k: v for k, v in asdict(spec).items() if v not in (None, False, "")}
    if out.get("pin") == "digest":
        del out["pin"]  # the default
    return out


# ---------------------------------------------------------------- files


@dataclass(frozen=True)
class Catalog:
    images: tuple[ImageSpec, ...] = ()
    registries: tuple[RegistrySpec, ...] = field(default_factory=tuple)
    build: BuildSettings = NO_SETTINGS  # the top-level [build] table


def decode_catalog(data: bytes, source: str = "catalog") -> str:
    """The text of a catalog file: at most MAX_CATALOG_BYTES, UTF-8 (a BOM is allowed)."""
    _check_size(len(data), source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            source,
            f"byte 0x{data[exc.start]:02x} at offset {exc.start}",
            "is not UTF-8 text",
            "Save the file as UTF-8 (TOML files are UTF-8).",
        ) from None


def _check_size(size: int, source: str) -> None:
    if size > MAX_CATALOG_BYTES:
        raise InvalidInput(
            source,
            f"{size} bytes",
            f"is larger than the {MAX_CATALOG_BYTES // (1024 * 1024)} MiB a catalog file may be",
            "Split it, or remove what is not image or registry definitions.",
        )


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Parse a TOML catalog file; every problem in the file is reported at once, each under its field.

    Anything a file can hold is answered with field errors, never an exception of another kind: sections of
    the wrong shape (`image = 5`, `registry = [1]`), entries that are not tables, fields of the wrong type,
    nesting deeper than MAX_NESTING, files larger than MAX_CATALOG_BYTES.
    """
    _check_size(len(text), source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            source, source, f"is not valid TOML ({exc})", "Fix the TOML syntax at that position."
        ) from None
    except RecursionError:
        raise InvalidInput(
            source, source, "nests arrays or tables too deeply to read", f"Nest at most {MAX_NESTING} levels."
        ) from None
    p: list[InvalidInput] = []
    too_deep = _too_deep(data)
    if too_deep:
        raise InvalidInput(
            f"{source}: {too_deep}",
            "…",
            f"nests more than {MAX_NESTING} levels deep",
            "A catalog needs [[image]] and [[registry]] tables with text, arrays of text and one env table.",
        )
    for key in data:
        if key not in ("image", "registry", "build"):
            p.append(
                InvalidInput(
                    f"{source}: [{key}]", key, "is not a known section", "Use [build], [[image]] and [[registry]]."
                )
            )
    build = NO_SETTINGS
    try:
        build = settings_from_dict(data.get("build", {}), "build.")
    except InvalidInputs as exc:
        p.extend(exc.problems)
    except InvalidInput as exc:
        p.append(exc)
    registries: list[RegistrySpec] = []
    for i, item in enumerate(_entries(data, "registry", p)):
        try:
            registries.append(registry_from_dict(item, f"registry[{i}]."))
        except InvalidInputs as exc:
            p.extend(exc.problems)
        except InvalidInput as exc:
            p.append(exc)
    images: list[ImageSpec] = []
    for i, item in enumerate(_entries(data, "image", p)):
        label = item.get("name") if isinstance(item.get("name"), str) else str(i)
        try:
            images.append(image_from_dict(item, f"image[{label}]."))
        except InvalidInputs as exc:
            p.extend(exc.problems)
        except InvalidInput as exc:
            p.append(exc)
    p.extend(_duplicate_names("image", [s.name for s in images]))
    p.extend(_duplicate_names("registry", [r.name for r in registries]))
    by_name = {r.name: r for r in registries}
    for spec in images:
        if spec.registry and spec.registry not in by_name:
            p.append(
                InvalidInput(
                    f"image[{spec.name}].registry",
                    spec.registry,
                    "is not defined in this file",
                    "Add a [[registry]] with that name or remove the field.",
                )
            )
        elif spec.registry:
            _problems(p, check_registry_host, spec, by_name[spec.registry], f"image[{spec.name}].")
    if p:
        raise p[0] if len(p) == 1 else InvalidInputs(p)
    return Catalog(images=tuple(images), registries=tuple(registries), build=build)


def _entries(data: Mapping[str, Any], section: str, p: list[InvalidInput]) -> list[Mapping[str, Any]]:
    """The tables of an `[[image]]`/`[[registry]]` section; a section or entry of another shape is a problem."""
    value = data.get(section, [])
    fix = f"Write each entry as a [[{section}]] table (double brackets), with its fields below it."
    if not isinstance(value, list):
        p.append(InvalidInput(section, value, f"is {kind_of(value)}, not a list of [[{section}]] tables", fix))
        return []
    tables = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            tables.append(item)
        else:
            p.append(InvalidInput(f"{section}[{i}]", item, f"is {kind_of(item)}, not a table", fix))
    return tables


def _too_deep(data: Any) -> str | None:
    """The path of the first value nested deeper than MAX_NESTING, if any (iterative: no recursion limit)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_NESTING:
            return path
        if isinstance(value, Mapping):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _duplicate_names(kind: str, names: list[str]) -> list[InvalidInput]:
    dupes = sorted({n for n in names if names.count(n) > 1})
    return [InvalidInput(f"{kind}.name", n, "is defined twice", "Keep one definition per name.") for n in dupes]


def dump_catalog(catalog: Catalog) -> str:
    """The canonical TOML text: registries then images, each sorted by name."""
    doc: dict[str, Any] = {}
    if not catalog.build.empty:
        doc["build"] = catalog.build.to_dict()
    if catalog.registries:
        doc["registry"] = [registry_to_dict(r) for r in sorted(catalog.registries, key=lambda r: r.name)]
    if catalog.images:
        doc["image"] = [image_to_dict(s) for s in sorted(catalog.images, key=lambda s: s.name)]
    header = "# dcs-bot catalog: images and registries. Passwords are never stored here, only variable names.\n\n"
    return header + tomli_w.dumps(doc, multiline_strings=False)


def registry_for(spec: ImageSpec, registries: Iterable[RegistrySpec]) -> RegistrySpec | None:
    """The registry entry an image pushes with: named explicitly, else matched by host."""
    registries = list(registries)
    if spec.registry:
        return next((r for r in registries if r.name == spec.registry), None)
    domain = spec.repository_ref.domain
    return next((r for r in registries if same_registry_host(r.host, domain)), None)


def check_registry_known(spec: ImageSpec, registries: Iterable[RegistrySpec], field_prefix: str = "") -> None:
    """An image may only name a registry entry that exists, and only one for its repository's host (the entry's
    password is sent to that host: another host would receive it)."""
    registries = list(registries)
    names = sorted(r.name for r in registries)
    if spec.registry and spec.registry not in names:
        raise InvalidInput(
            f"{field_prefix}registry",
            spec.registry,
            "is not a configured registry",
            f"Use one of: {', '.join(names) or 'none configured yet'}, or leave it out to match by repository host.",
        )
    registry = next((r for r in registries if r.name == spec.registry), None)
    if registry is not None:
        check_registry_host(spec, registry, field_prefix)


def check_registry_host(spec: ImageSpec, registry: RegistrySpec, field_prefix: str = "") -> None:
    """The repository an image pushes to lives on the host of the registry entry it names."""
    host = spec.repository_ref.domain
    if not same_registry_host(registry.host, host):
        raise InvalidInput(
            f"{field_prefix}repository",
            spec.repository,
            f"is on {host}, but registry {registry.name} is for {registry.host} (its password goes only there)",
            f"Use a repository on {registry.host} (e.g. {registry.host}/{spec.repository_ref.path}), or name a "
            f"registry entry for {host}.",
        )


def check_registry_users(registry: RegistrySpec, images: Iterable[ImageSpec]) -> None:
    """Changing a registry entry's host would send its password to the hosts of the images that name it."""
    problems = []
    for spec in images:
        if spec.registry == registry.name:
            try:
                check_registry_host(spec, registry, f"image[{spec.name}].")
            except InvalidInput as exc:
                problems.append(
                    InvalidInput(
                        "host",
                        registry.host,
                        f"is not the host of image {spec.name} ({spec.repository}), which names registry "
                        f"{registry.name}",
                        f"Keep the host {spec.repository_ref.domain}, or move {spec.name} first. ({exc.reason})",
                    )
                )
    if problems:
        raise problems[0] if len(problems) == 1 else InvalidInputs(problems)


def update_image(spec: ImageSpec, changes: Mapping[str, Any]) -> ImageSpec:
    """Apply changes and re-validate the whole definition."""
    if "sources" in changes:
        raise InvalidInput("sources", "…", "is not a field to set", "Import the catalog file to change its files.")
    merged = image_to_dict(spec, record=True) | dict(changes)
    merged = {k: v for k, v in merged.items() if v is not None}
    return image_from_dict(merged, stored=True)


__all__ = [
    "MAX_CATALOG_BYTES",
    "Catalog",
    "ImageSpec",
    "RegistrySpec",
    "decode_catalog",
    "dump_catalog",
    "image_from_dict",
    "image_from_stored",
    "image_to_dict",
    "parse_catalog",
    "registry_for",
    "registry_from_dict",
    "registry_to_dict",
    "replace",
    "update_image",
]
