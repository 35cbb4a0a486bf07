"""`dcs image …`, `dcs registry …`, `dcs catalog import|export`, `dcs render`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.catalog import (
    Catalog,
    ImageSpec,
    check_registry_known,
    dump_catalog,
    image_from_dict,
    image_to_dict,
    parse_catalog,
    registry_from_dict,
    registry_to_dict,
    update_image,
)
from bot.dockerfile import render_dockerfile
from bot.errors import InvalidInput, NotFound
from bot.refs import is_sha256_digest


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
    radd.add_argument("--password-env", metavar="VAR", help="NAME of the environment variable with the password")
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
    from bot.packages import split_requirements

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


def cmd_image_add(ctx) -> int:  # noqa: ANN001 - CliContext
    spec = image_from_dict({"name": ctx.args.name, **_options_to_changes(ctx.args)})
    store = ctx.services.store
    check_registry_known(spec, store.list_registries())
    store.add_image(spec)
    store.audit(actor="cli", action="image.add", target=spec.name, outcome="ok")
    ctx.emit(image_to_dict(spec), lambda: print(f"Added image {spec.name} ({spec.base} → {spec.repository})."))
    return 0


def cmd_image_update(ctx) -> int:  # noqa: ANN001
    store = ctx.services.store
    changes = _options_to_changes(ctx.args)
    if not changes:
        raise InvalidInput(
            "options", "", "are empty", "Give at least one option to change, e.g. --pip 'pandas==2.2.3'."
        )
    spec = update_image(store.get_image(ctx.args.name), changes)
    check_registry_known(spec, store.list_registries())
    store.add_image(spec, replace=True)
    store.audit(actor="cli", action="image.update", target=spec.name, outcome="ok", detail=",".join(sorted(changes)))
    ctx.emit(image_to_dict(spec), lambda: print(f"Updated image {spec.name}: {', '.join(sorted(changes))}."))
    return 0


def _last_build_row(ctx, spec: ImageSpec) -> dict[str, Any]:  # noqa: ANN001
    last = ctx.services.store.last_build(spec.name)
    return {
        "name": spec.name,
        "base": spec.base,
        "repository": spec.repository,
        "schedule": spec.schedule,
        "last_build": last.id if last else None,
        "status": last.status if last else None,
        "digest": last.pushed_digest if last else None,
        "finished_at": last.finished_at if last else None,
    }


def cmd_image_list(ctx) -> int:  # noqa: ANN001
    rows = [_last_build_row(ctx, s) for s in ctx.services.store.list_images()]

    def human() -> None:
        if not rows:
            print(
                "The catalog is empty. Add an image with `dcs image add NAME --base … --repo …` "
                "or import a file with `dcs catalog import catalog.toml`."
            )
            return
        from rich.table import Table

        table = Table("image", "base", "repository", "last build", "digest", "schedule")
        for r in rows:
            state = f"#{r['last_build']} {r['status']}" if r["last_build"] else "never built"
            digest = (r["digest"] or "")[:19]
            table.add_row(r["name"], r["base"], r["repository"], state, digest, r["schedule"] or "")
        ctx.console().print(table)

    ctx.emit(rows, human)
    return 0


def cmd_image_show(ctx) -> int:  # noqa: ANN001
    store = ctx.services.store
    spec = store.get_image(ctx.args.name)
    builds = store.builds(spec.name, limit=5)
    info = spec.base_info
    data = {
        "image": image_to_dict(spec),
        "base": {"flavour": info.flavour, "runtime": info.runtime_label, "lts": info.lts, "python": info.python},
        "registry": (lambda r: r.name if r else None)(ctx.services.push_registry(spec)),
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
    }

    def human() -> None:
        console = ctx.console()
        console.print(f"[bold]{spec.name}[/bold]  {spec.description}")
        for key, value in image_to_dict(spec).items():
            if key != "name":
                console.print(f"  {key:15} {value}")
        console.print(
            f"  {'base is':15} {info.flavour}, runtime {info.runtime_label or '?'}, "
            f"{'LTS (patched by Databricks)' if info.lts else 'not LTS (not patched)'}, python {info.python}"
        )
        console.print("  builds:" if builds else "  never built")
        for b in builds:
            console.print(f"    #{b.id} {b.status:11} {b.finished_at or '':28} {b.pushed_digest or b.error or ''}")

    ctx.emit(data, human)
    return 0


def cmd_image_rm(ctx) -> int:  # noqa: ANN001
    store = ctx.services.store
    store.remove_image(ctx.args.name)
    store.audit(actor="cli", action="image.remove", target=ctx.args.name, outcome="ok")
    ctx.emit({"removed": ctx.args.name}, lambda: print(f"Removed image {ctx.args.name}."))
    return 0


def cmd_registry_add(ctx) -> int:  # noqa: ANN001
    a = ctx.args
    spec = registry_from_dict(
        {
            "name": a.name,
            "host": a.host,
            "username": a.username,
            "password_env": a.password_env,
            "cluster_username": a.cluster_username,
            "cluster_password_secret": a.cluster_password_secret,
            "allow_plaintext_password": bool(a.allow_plaintext_password),
        }
    )
    store = ctx.services.store
    store.add_registry(spec, replace=True)
    store.audit(actor="cli", action="registry.add", target=spec.name, outcome="ok")
    warn = ""
    if spec.password_env and not ctx.config.secret(spec.password_env):
        warn = f" Note: {spec.password_env} is not set in this environment yet."
    ctx.emit(registry_to_dict(spec), lambda: print(f"Saved registry {spec.name} ({spec.host}).{warn}"))
    return 0


def cmd_registry_list(ctx) -> int:  # noqa: ANN001
    regs = ctx.services.store.list_registries()
    rows = [
        registry_to_dict(r)
        | {"kind": r.kind, "password_set": bool(r.password_env and ctx.config.secret(r.password_env))}
        for r in regs
    ]

    def human() -> None:
        if not rows:
            print("No registries. Add one with `dcs registry add NAME --host … --username … --password-env VAR`.")
            return
        from rich.table import Table

        table = Table("name", "host", "kind", "username", "password from", "set?")
        for r in rows:
            table.add_row(
                r["name"],
                r["host"],
                r["kind"],
                r.get("username", ""),
                r.get("password_env", ""),
                "yes" if r["password_set"] else "no",
            )
        ctx.console().print(table)

    ctx.emit(rows, human)
    return 0


def cmd_registry_rm(ctx) -> int:  # noqa: ANN001
    ctx.services.store.remove_registry(ctx.args.name)
    ctx.services.store.audit(actor="cli", action="registry.remove", target=ctx.args.name, outcome="ok")
    ctx.emit({"removed": ctx.args.name}, lambda: print(f"Removed registry {ctx.args.name}."))
    return 0


def cmd_catalog_import(ctx) -> int:  # noqa: ANN001
    path = ctx.args.file
    text = sys.stdin.read() if path == "-" else _read(path)
    catalog = parse_catalog(text, source=path)  # everything validated before anything is written
    store = ctx.services.store
    known = {s.name for s in store.list_images()}
    for reg in catalog.registries:
        store.add_registry(reg, replace=True)
    for spec in catalog.images:
        store.add_image(spec, replace=True)
    removed: list[str] = []
    if ctx.args.prune:
        names = {s.name for s in catalog.images}
        for name in sorted(known - names):
            store.remove_image(name)
            removed.append(name)
        reg_names = {r.name for r in catalog.registries}
        for reg in store.list_registries():
            if reg.name not in reg_names:
                store.remove_registry(reg.name)
                removed.append(f"registry {reg.name}")
    added = [s.name for s in catalog.images if s.name not in known]
    updated = [s.name for s in catalog.images if s.name in known]
    store.audit(
        actor="cli",
        action="catalog.import",
        target=path,
        outcome="ok",
        detail=f"added={len(added)} updated={len(updated)} removed={len(removed)}",
    )
    result = {
        "added": added,
        "updated": updated,
        "removed": removed,
        "registries": [r.name for r in catalog.registries],
    }
    ctx.emit(
        result,
        lambda: print(
            f"Imported {path}: {len(added)} added, {len(updated)} updated, "
            f"{len(removed)} removed, {len(catalog.registries)} registries."
        ),
    )
    return 0


def cmd_catalog_export(ctx) -> int:  # noqa: ANN001
    store = ctx.services.store
    text = dump_catalog(Catalog(images=tuple(store.list_images()), registries=tuple(store.list_registries())))
    if ctx.args.file == "-":
        sys.stdout.write(text)
    else:
        Path(ctx.args.file).write_text(text, encoding="utf-8")
        if not ctx.json:
            print(f"Wrote {ctx.args.file}.", file=sys.stderr)
        else:
            print(json.dumps({"written": ctx.args.file}))
    return 0


def cmd_render(ctx) -> int:  # noqa: ANN001
    store = ctx.services.store
    spec = store.get_image(ctx.args.name)
    digest = ctx.args.base_digest
    if digest and not is_sha256_digest(digest):
        raise InvalidInput("--base-digest", digest, "is not a sha256 digest", "Use sha256: followed by 64 hex digits.")
    if ctx.args.resolve:
        from bot.builder import Builder

        digest = Builder(ctx.services).resolve_base(spec).digest
    text = render_dockerfile(spec, digest)
    ctx.emit({"image": spec.name, "base_digest": digest, "dockerfile": text}, lambda: sys.stdout.write(text))
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file.") from None
    except OSError as exc:
        raise NotFound(f"{path}: cannot read it ({exc.strerror}).") from None
