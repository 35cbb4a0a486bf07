"""`dcs image …`, `dcs registry …`, `dcs catalog import|export`, `dcs render`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.cli.context import CliContext, read_only
from bot.cli.table import cell, print_table
from bot.domain.catalog import MAX_CATALOG_BYTES, decode_catalog, image_to_dict, registry_to_dict
from bot.domain.cron import describe_times, upcoming
from bot.domain.image_content import MAX_FILE_BYTES
from bot.domain.packages import split_requirements
from bot.domain.records import ImageStatus
from bot.domain.refs import short_digest
from bot.errors import InvalidInput, NotFound
from bot.ops.catalog import (
    add_image,
    add_registry,
    export_catalog,
    image_details,
    image_overview,
    import_catalog,
    list_registries,
    remove_image,
    remove_registry,
    update_image,
)
from bot.ops.catalog_files import FileReader, no_files


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    image = sub.add_parser("image", help="add, update, list, show or remove image definitions", parents=[common])
    isub = image.add_subparsers(dest="image_command", metavar="ACTION", required=True)

    add = isub.add_parser("add", help="add an image definition", parents=[common])
    add.add_argument("name")
    _spec_options(add, required=True)
    add.set_defaults(handler=cmd_image_add)

    upd = isub.add_parser("update", help="change fields of an image definition", parents=[common])
    upd.add_argument("name")
    _spec_options(upd, required=False)
    upd.set_defaults(handler=cmd_image_update)

    isub.add_parser("list", help="list the catalog with the last build of each image", parents=[common]).set_defaults(
        handler=cmd_image_list
    )
    show = isub.add_parser("show", help="show one image definition and its recent builds", parents=[common])
    show.add_argument("name")
    show.add_argument(
        "--packages", action="store_true", help="list every OS and Python package of the last successful build"
    )
    show.set_defaults(handler=cmd_image_show)
    rm = isub.add_parser("rm", help="remove an image definition (builds stay in the history)", parents=[common])
    rm.add_argument("name")
    rm.set_defaults(handler=cmd_image_rm)

    reg = sub.add_parser("registry", help="registries to push to (passwords are named, never stored)", parents=[common])
    rsub = reg.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    radd = rsub.add_parser("add", help="add or replace a registry", parents=[common])
    radd.add_argument("name")
    radd.add_argument("--host", required=True, help="registry host[:port], e.g. myacr.azurecr.io or docker.io")
    radd.add_argument("--username")
    radd.add_argument("--password-env", metavar="VAR", help="NAME of the DCS_SECRET_* variable with the password")
    radd.add_argument("--cluster-username", help="username clusters pull with (default: --username)")
    radd.add_argument(
        "--cluster-password-secret",
        metavar="REF",
        help="Databricks secret reference for clusters, {{secrets/scope/key}}",
    )
    radd.add_argument(
        "--allow-plaintext-password",
        action="store_true",
        help="allow sending the password itself in cluster specs (not recommended)",
    )
    radd.set_defaults(handler=cmd_registry_add)
    rsub.add_parser("list", help="list registries", parents=[common]).set_defaults(handler=cmd_registry_list)
    rrm = rsub.add_parser("rm", help="remove a registry", parents=[common])
    rrm.add_argument("name")
    rrm.set_defaults(handler=cmd_registry_rm)

    cat = sub.add_parser("catalog", help="import or export the catalog as a TOML file", parents=[common])
    csub = cat.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    imp = csub.add_parser("import", help="add or replace the images and registries of a TOML file", parents=[common])
    imp.add_argument("file", help="TOML file, or - for standard input")
    imp.add_argument("--prune", action="store_true", help="also remove images and registries not in the file")
    imp.set_defaults(handler=cmd_catalog_import)
    exp = csub.add_parser("export", help="write the catalog as TOML", parents=[common])
    exp.add_argument("file", help="TOML file, or - for standard output")
    exp.set_defaults(handler=cmd_catalog_export)

    render = sub.add_parser("render", help="print the Dockerfile an image definition produces", parents=[common])
    render.add_argument("name")
    group = render.add_mutually_exclusive_group()
    group.add_argument("--resolve", action="store_true", help="pin FROM to the base's current registry digest")
    group.add_argument("--base-digest", metavar="sha256:…", help="pin FROM to this digest")
    render.set_defaults(handler=cmd_render)


def _spec_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--base", required=required, help="base image, e.g. databricksruntime/standard:15.4-LTS")
    parser.add_argument(
        "--repo", dest="repository", required=required, help="repository to push to, e.g. myacr.azurecr.io/team/pandas"
    )
    parser.add_argument("--pip", action="append", metavar="REQ", help="pip requirement (repeat, or comma-separated)")
    parser.add_argument("--apt", action="append", metavar="PKG", help="apt package (repeat, or comma-separated)")
    parser.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable baked in")
    parser.add_argument("--registry", help="registry entry to push with (default: matched by host)")
    parser.add_argument("--tag", help="moving tag (default latest)")
    parser.add_argument("--immutable-tag", help="tag template per build, e.g. '{tag}-{date}-b{build}'")
    parser.add_argument("--schedule", help="rebuild schedule, five-field cron in UTC")
    parser.add_argument("--notify", dest="notify_channel", help="Slack channel for notices (C… or #name)")
    parser.add_argument("--owner", help="Slack user id of the owner")
    parser.add_argument("--description")


def _options_to_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in (
        "base",
        "repository",
        "registry",
        "tag",
        "immutable_tag",
        "schedule",
        "notify_channel",
        "owner",
        "description",
    ):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    for key in ("pip", "apt"):
        values = getattr(args, key, None)
        if values is not None:
            changes[key] = [item for value in values for item in split_requirements(value)]
    if args.env is not None:
        env: dict[str, str] = {}
        for item in args.env:
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidInput("env", item, "is not KEY=VALUE", "Write it like --env TZ=UTC.")
            env[key] = value
        changes["env"] = env
    return changes


def cmd_image_add(ctx: CliContext) -> int:
    spec = add_image(ctx.services, {"name": ctx.args.name, **_options_to_changes(ctx.args)}, actor="cli")
    runs = upcoming(spec.schedule, datetime.now(UTC))

    def human() -> None:
        print(f"Added image {spec.name} ({spec.base} → {spec.repository}).")
        if runs:
            print(f"Schedule {spec.schedule} (UTC) next runs: {describe_times(runs)}.")

    ctx.emit(image_to_dict(spec) | _next_runs(runs), human)
    return 0


def cmd_image_update(ctx: CliContext) -> int:
    changes = _options_to_changes(ctx.args)
    spec = update_image(ctx.services, ctx.args.name, changes, actor="cli")
    runs = upcoming(spec.schedule, datetime.now(UTC)) if "schedule" in changes else []

    def human() -> None:
        print(f"Updated image {spec.name}: {', '.join(sorted(changes))}.")
        if runs:
            print(f"Schedule {spec.schedule} (UTC) next runs: {describe_times(runs)}.")

    ctx.emit(image_to_dict(spec) | _next_runs(runs), human)
    return 0


def _next_runs(runs: list[datetime]) -> dict[str, Any]:
    return {"next_runs": [t.isoformat().replace("+00:00", "Z") for t in runs]} if runs else {}


def _overview_row(row: ImageStatus) -> dict[str, Any]:
    last = row.last
    return {
        "name": row.name,
        "base": row.base,
        "repository": row.repository,
        "schedule": row.schedule,
        "last_build": last.id if last else None,
        "status": last.status if last else None,
        "digest": last.pushed_digest if last else None,
        "finished_at": last.finished_at if last else None,
    }


@read_only
def cmd_image_list(ctx: CliContext) -> int:
    rows = [_overview_row(r) for r in image_overview(ctx.services)]

    def human() -> None:
        if not rows:
            print(
                f"The catalog in {ctx.database} is empty. Add an image with `dcs image add NAME --base … --repo …` "
                "or import a file with `dcs catalog import catalog.toml`."
            )
            return
        lines = []
        for r in rows:
            state = (
                f"#{r['last_build']} {r['status']} {ctx.when(r['finished_at'])}" if r["last_build"] else "never built"
            )
            digest = short_digest(r["digest"]) if r["digest"] else ""
            lines.append((r["name"], r["repository"], state, digest, r["base"], r["schedule"]))
        # Narrow terminals drop the schedule, then the base, then the digest; the name is never cut.
        print_table(
            ("image", "repository", "last build", "digest", "base", "schedule"),
            lines,
            width=ctx.width,
            optional=(5, 4, 3),
        )

    ctx.emit(rows, human, quiet=lambda: print("\n".join(r["name"] for r in rows)) if rows else None)
    return 0


@read_only
def cmd_image_show(ctx: CliContext) -> int:
    details = image_details(ctx.services, ctx.args.name)
    spec, info, builds, check = details.spec, details.base, details.builds, details.check
    data = {
        "image": image_to_dict(spec),
        "last_checked": (
            {"at": check.checked_at, "status": check.status, "note": check.note, "source": check.source}
            if check
            else None
        ),
        **_next_runs(details.next_runs),
        "base": {"flavour": info.flavour, "runtime": info.runtime_label, "lts": info.lts, "python": info.python},
        "registry": details.registry.name if details.registry else None,
        "builds": [
            {
                "id": b.id,
                "status": b.status,
                "finished_at": b.finished_at,
                "digest": b.pushed_digest,
                "tags": list(b.tags),
                "error": b.error,
            }
            for b in builds
        ],
        "inventory": details.inventory.to_dict() if details.inventory else None,
        "inventory_build": details.inventory_build,
        "release": spec.release.promote,
        "promoted": {"build": details.promoted.id, "digest": details.promoted.pushed_digest}
        if details.promoted
        else None,
        "candidate": {
            "build": details.candidate.build_id,
            "digest": details.candidate.digest,
            "status": details.candidate.status,
            "expires_at": details.candidate.expires_at,
        }
        if details.candidate
        else None,
    }
    inventory = details.inventory

    def human() -> None:
        console = ctx.console()
        console.print(f"[bold]{spec.name}[/bold]  {spec.description}")
        for key, value in image_to_dict(spec).items():
            if key != "name" and value not in (None, "", [], {}):
                console.print(f"  {key:15} {cell(value)}", markup=False)
        console.print(
            f"  {'base is':15} {info.flavour}, runtime {info.runtime_label or '?'}, "
            f"{'LTS (patched by Databricks)' if info.lts else 'not LTS (not patched)'}, python {info.python}"
        )
        console.print(f"  {'release':15} {spec.release.describe()}")
        promoted, candidate = details.promoted, details.candidate
        if promoted:
            console.print(f"  {'promoted':15} build #{promoted.id} {promoted.pushed_digest} ({spec.tag})")
        if candidate:
            until = (
                f", expires {candidate.expires_at}" if candidate.expires_at and candidate.status == "waiting" else ""
            )
            console.print(
                f"  {'candidate':15} build #{candidate.build_id} {candidate.digest} ({candidate.status}{until}); "
                f"`dcs promote {spec.name} {candidate.build_id}` moves {spec.tag} to it"
            )
        if details.next_runs:
            console.print(f"  {'next runs':15} {describe_times(details.next_runs)}")
        if check:
            note = f": {check.note}" if check.note else ""
            console.print(f"  {'last checked':15} {ctx.when(check.checked_at)} ({check.source}) {check.status}{note}")
        else:
            console.print(f"  {'last checked':15} never (no rebuild run has looked at it yet)")
        console.print("  builds:" if builds else "  never built")
        for b in builds:
            when = ctx.when(b.finished_at or b.started_at)
            console.print(f"    #{b.id} {b.status:11} {when:12} {b.pushed_digest or b.error or ''}", markup=False)
        if inventory is not None:
            console.print(f"  {'contents':15} build #{details.inventory_build}: {inventory.summary()}", markup=False)
            if ctx.args.packages:
                for title, packages in (("OS packages", inventory.os_packages), ("Python", inventory.python_packages)):
                    console.print(f"  {title}:", markup=False)
                    for package, version in sorted(packages.items(), key=lambda kv: kv[0].lower()):
                        console.print(f"    {package:40} {version}", markup=False)

    ctx.emit(data, human)
    return 0


def cmd_image_rm(ctx: CliContext) -> int:
    remove_image(ctx.services, ctx.args.name, actor="cli")
    ctx.emit({"removed": ctx.args.name}, lambda: print(f"Removed image {ctx.args.name}."))
    return 0


def cmd_registry_add(ctx: CliContext) -> int:
    a = ctx.args
    entry = add_registry(
        ctx.services,
        {
            "name": a.name,
            "host": a.host,
            "username": a.username,
            "password_env": a.password_env,
            "cluster_username": a.cluster_username,
            "cluster_password_secret": a.cluster_password_secret,
            "allow_plaintext_password": bool(a.allow_plaintext_password),
        },
        actor="cli",
    )
    spec = entry.spec
    warn = (
        ""
        if entry.password_set or not spec.password_env
        else (f" Note: {spec.password_env} is not set in this environment yet.")
    )
    ctx.emit(registry_to_dict(spec), lambda: print(f"Saved registry {spec.name} ({spec.host}).{warn}"))
    return 0


@read_only
def cmd_registry_list(ctx: CliContext) -> int:
    entries = list_registries(ctx.services)
    rows = [
        registry_to_dict(e.spec)
        | {"kind": e.spec.kind, "password_set": e.password_set}
        | ({"migration": e.migration} if e.migration else {})
        for e in entries
    ]
    for entry in entries:
        if entry.migration:
            print(f"warning: {entry.migration}", file=sys.stderr)

    def human() -> None:
        if not rows:
            print(
                "No registries. Add one with `dcs registry add NAME --host … --username … --password-env DCS_SECRET_…`."
            )
            return
        lines = [
            (r["name"], r["host"], r["kind"], r.get("username"), r.get("password_env"), r["password_set"]) for r in rows
        ]
        print_table(("name", "host", "kind", "username", "password from", "set?"), lines, width=ctx.width)

    ctx.emit(rows, human, quiet=lambda: print("\n".join(r["name"] for r in rows)) if rows else None)
    return 0


def cmd_registry_rm(ctx: CliContext) -> int:
    remove_registry(ctx.services, ctx.args.name, actor="cli")
    ctx.emit({"removed": ctx.args.name}, lambda: print(f"Removed registry {ctx.args.name}."))
    return 0


def cmd_catalog_import(ctx: CliContext) -> int:
    path = ctx.args.file
    text = decode_catalog(_read_bytes(path), source=path)
    files = catalog_dir_reader(Path(path).parent) if path != "-" else no_files
    result = import_catalog(ctx.services, text, source=path, prune=ctx.args.prune, actor="cli", files=files)
    data = {
        "added": result.added,
        "updated": result.updated,
        "removed": result.removed,
        "registries": result.registries,
    }
    ctx.emit(
        data,
        lambda: print(
            f"Imported {path}: {len(result.added)} added, {len(result.updated)} updated, "
            f"{len(result.removed)} removed, {len(result.registries)} registries."
        ),
    )
    return 0


@read_only
def cmd_catalog_export(ctx: CliContext) -> int:
    text = export_catalog(ctx.services)
    if ctx.args.file == "-":
        sys.stdout.write(text)
    else:
        Path(ctx.args.file).write_text(text, encoding="utf-8")
        if not ctx.json:
            print(f"Wrote {ctx.args.file}.", file=sys.stderr)
        else:
            print(json.dumps({"written": ctx.args.file}))
    return 0


@read_only
def cmd_render(ctx: CliContext) -> int:
    # Imported here on purpose: rendering loads the build plan and the builder (the release gate, launches),
    # which the other commands of this module, `dcs image list` first, do not need.
    from bot.ops.render import render_image

    rendered = render_image(ctx.services, ctx.args.name, base_digest=ctx.args.base_digest, resolve=ctx.args.resolve)
    ctx.emit(
        {"image": rendered.image, "base_digest": rendered.base_digest, "dockerfile": rendered.dockerfile},
        lambda: print(rendered.dockerfile, end=""),
    )
    return 0


def catalog_dir_reader(directory: Path) -> FileReader:
    """Reads the files a catalog names, relative to its directory; a path that resolves outside it (a symlink
    to /etc, say) is refused, and so is a file larger than a catalog may name."""
    root = directory.resolve()

    def read(relative: str) -> bytes:
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise InvalidInput(relative, str(target), "is outside the catalog's directory", "Keep the file next to it.")
        try:
            with target.open("rb") as handle:
                return handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidInput(
                relative, str(target), f"cannot be read ({exc.strerror or exc})", "Add the file next to the catalog."
            ) from None

    return read


def _read_bytes(path: str) -> bytes:
    """At most one byte more than a catalog may have (decode_catalog refuses it), from a file or stdin."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_CATALOG_BYTES + 1)
    try:
        with Path(path).open("rb") as handle:
            return handle.read(MAX_CATALOG_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file.") from None
    except OSError as exc:
        raise NotFound(f"{path}: cannot read it ({exc.strerror}).") from None
