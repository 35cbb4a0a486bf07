"""Build → doctor → push for one catalog image, and the other build operations (doctor, digest, status, log).

Used by the CLI, the Slack bot and scheduled rebuilds.

Progress goes to a callback (`BuildProgress`), so each surface draws it its own way. A spec and base
that have not changed since the last successful build are not built again (no engine call) unless
forced. Logs are redacted before they are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.domain.bases import classify_base
from bot.domain.catalog import ImageSpec
from bot.domain.clock import utcnow
from bot.domain.dockerfile import LABEL_INSTALL_STAGE, count_steps, spec_hash
from bot.domain.doctor import PROBE_SCRIPT, DoctorReport, evaluate, parse_probe
from bot.domain.doctor_policy import apply_waivers
from bot.domain.image_checks import INIT_ENV, INIT_RUNNER, InitRun, baked_scripts
from bot.domain.inventory import PackageInventory, parse_inventory
from bot.domain.packages import pip_name
from bot.domain.python_checks import IMPORTS_ENV, imports_value
from bot.domain.refs import ImageRef, is_sha256_digest, parse_ref, short_digest
from bot.errors import (
    BuildFailed,
    DcsError,
    DoctorFailed,
    InvalidInput,
    ManifestNotFound,
    PullLimitReached,
    RegistryError,
    RegistryUnreachable,
)
from bot.ops.build_plan import explained, plan_build
from bot.ops.gate import advance
from bot.ops.liveness import death_reason_for, heartbeat_for, this_process
from bot.ops.release import open_candidate, promote_build
from bot.services import Services
from bot.store import Build, Release

if TYPE_CHECKING:
    from bot.clients.engine import DockerEngine

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 16 * 1024  # what the database keeps of a build's log at most (a few pip lines are long)


def log_tail(lines: list[str]) -> str:
    """The last LOG_TAIL_LINES lines, at most LOG_TAIL_BYTES of UTF-8 (whole lines, the newest kept)."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines[-LOG_TAIL_LINES:]):
        size += len(line.encode()) + 1
        if size > LOG_TAIL_BYTES and kept:
            break
        kept.append(line if size <= LOG_TAIL_BYTES else line[-LOG_TAIL_BYTES // 4 :])
    return "\n".join(reversed(kept))


@dataclass(frozen=True)
class BuildProgress:
    """One progress report. `fraction` is the whole job's progress, 0..1."""

    build_id: int | None
    phase: str  # resolve, queue (waiting for a free build engine), pull, build, doctor, push, done
    step: int = 0
    total: int = 0
    message: str = ""
    fraction: float = 0.0


ProgressCallback = Callable[[BuildProgress], None]


@dataclass(frozen=True)
class ResolvedBase:
    ref: ImageRef
    digest: str | None  # registry digest when known
    identity: str  # what change detection compares: the digest, or local:<image id>
    source: str  # pinned, registry, local


@dataclass
class BuildOutcome:
    build: Build | None
    skipped: bool = False
    reason: str = ""
    doctor: DoctorReport | None = None
    inventory: PackageInventory | None = None
    error: DcsError | None = None
    release: Release | None = None  # the pushed build's release-gate state (bot/ops/gate.py)
    dockerfile: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _noop(_: BuildProgress) -> None:
    return None


def stopped_message(exc: BaseException) -> str:
    """Why a build ended when its process was told to stop."""
    if isinstance(exc, KeyboardInterrupt):
        return "Stopped with Ctrl-C (SIGINT) while it was in progress."
    name = getattr(exc, "signal_name", None)
    return f"Stopped by {name} while it was in progress." if name else "Its process exited while it was in progress."


class Builder:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    # ------------------------------------------------------------ base resolution
    def resolve_base(self, spec: ImageSpec) -> ResolvedBase:
        """Find the base's current digest with a manifest HEAD (no pull spent); fall back to the local copy."""
        ref = spec.base_ref
        if ref.digest:
            return ResolvedBase(ref, ref.digest, ref.digest, "pinned")
        try:
            head = self.services.registry.head_manifest(ref, self.services.credentials_for_ref(ref))
            return ResolvedBase(ref, head.digest, head.digest, "registry")
        except (RegistryUnreachable, PullLimitReached, ManifestNotFound) as exc:
            # The local copy on any build engine that has it (the build then goes to one of those).
            pool = self.services.engines
            engines = list(pool.answering()) or [pool.default()]  # none answers: default() says why
            found = ((engine, engine.inspect(str(ref))) for engine in engines)
            engine, local = next(((e, info) for e, info in found if info is not None), (None, None))
            if engine is None or local is None:
                raise
            digest = engine.local_digest(ref)
            log.warning("base %s: registry check failed (%s); using the local copy", ref, type(exc).__name__)
            return ResolvedBase(ref, digest, digest or f"local:{local['Id']}", "local")

    def up_to_date(self, spec: ImageSpec, base: ResolvedBase, push: bool) -> Build | None:
        """The last successful build of this exact spec on this exact base, if any."""
        last = self.store.last_build(spec.name, status="succeeded")
        if last is None or last.spec_hash != spec_hash(spec) or last.base_digest != base.identity:
            return None
        if push and not last.pushed_digest:
            return None
        return last

    # ------------------------------------------------------------ entry points
    def enqueue(
        self,
        name: str,
        *,
        push: bool = False,
        force: bool = False,
        requester: str | None = None,
        source: str = "cli",
        slack_channel: str | None = None,
    ) -> Build:
        """Queue a build owned by this process; refuses while another build of the same image is in progress
        (they share tags), unless that one's process is gone or silent (it is then marked interrupted)."""
        self.store.get_image(name)  # NotFound early, before anything is queued
        build = self.store.create_build(
            name,
            requester=requester,
            source=source,
            push=push,
            forced=force,
            slack_channel=slack_channel,
            owner=this_process(),
            # rows of versions before owners: the old rule (queued longer ago than any build can take)
            death_reason=death_reason_for(
                self.services, unowned_stale_seconds=self.services.config.build_timeout + 600
            ),
        )
        heartbeat_for(self.services).hold(build.id)
        return build

    def discard_queued(self, build_id: int) -> bool:
        """Remove a queued build that turned out to be unnecessary (or was never handed to a worker)."""
        try:
            return self.store.discard_queued_build(build_id)
        finally:
            heartbeat_for(self.services).release(build_id)

    def abandon(self, build_id: int, reason: str) -> None:
        """A job that ends without finishing its build: end the build too, so that it blocks nobody."""
        heartbeat_for(self.services).release(build_id)
        if self.store.interrupt_build(build_id, reason):
            build = self.store.get_build(build_id)
            self.store.audit(
                actor=build.requester, action="build", target=f"{build.image}#{build.id}", outcome="interrupted"
            )

    def build(
        self,
        name: str,
        *,
        push: bool = False,
        force: bool = False,
        requester: str | None = None,
        source: str = "cli",
        progress: ProgressCallback = _noop,
    ) -> BuildOutcome:
        """Check whether anything changed; if so, queue and run a build."""
        base = None
        if not force:
            base, skipped = self.check_unchanged(name, push=push, force_hint="--force")
            if skipped is not None:
                progress(BuildProgress(None, "done", message=skipped.reason, fraction=1.0))
                return skipped
        build = self.enqueue(name, push=push, force=force, requester=requester, source=source)
        try:
            return self.run(build.id, progress, base=base)
        except (KeyboardInterrupt, SystemExit) as exc:  # before run() took it over
            self.abandon(build.id, stopped_message(exc))
            raise

    def check_unchanged(self, name: str, *, push: bool, force_hint: str) -> tuple[ResolvedBase, BuildOutcome | None]:
        """Resolve the base (one HEAD) and say whether a build would change nothing.

        Returns the resolved base (hand it to `run`) and, when nothing changed, a skipped outcome naming the
        build that is still current.
        """
        spec = self.store.get_image(name)
        base = self.resolve_base(spec)
        previous = self.up_to_date(spec, base, push)
        if previous is None:
            return base, None
        digest = f", digest {short_digest(previous.pushed_digest)}" if previous.pushed_digest else ""
        reason = (
            f"{name} is already up to date (build #{previous.id}{digest}): same spec and base "
            f"({short_digest(base.identity)}). Use {force_hint} to build anyway."
        )
        return base, BuildOutcome(build=previous, skipped=True, reason=reason)

    def run(
        self,
        build_id: int,
        progress: ProgressCallback = _noop,
        *,
        base: ResolvedBase | None = None,
        announce: bool = True,
    ) -> BuildOutcome:
        """Run a queued build to the end. DcsErrors end in a failed build, never in an exception.

        `base` may carry a base resolved moments ago (by `build` or a rebuild scan) to save a second HEAD.
        """
        heartbeat = heartbeat_for(self.services)
        heartbeat.hold(build_id)
        started = self.store.start_build(build_id, this_process())
        if started is None:  # ended meanwhile (interrupted by a sweep, discarded): nothing to run
            heartbeat.release(build_id)
            ended = self.store.get_build(build_id)
            error = BuildFailed(f"Build #{build_id} was not started: it is {ended.status}. {ended.error or ''}".strip())
            return BuildOutcome(build=ended, error=error)
        build = started
        redact = self.services.redactor
        lines: list[str] = []
        outcome = BuildOutcome(build=build, log=lines)
        try:
            self._run(build, outcome, progress, lines, base)
            if outcome.ok and self.store.find_release(build_id) is not None:
                progress(BuildProgress(build_id, "gate", message="release gate", fraction=0.97))
                # a rebuild run announces its candidates in its one notice per channel (announce=False)
                outcome.release = advance(self.services, build_id, announce=announce)
        except DcsError as exc:
            outcome.error = exc
            step = getattr(exc, "step", "") or None
            self.store.update_build(
                build_id,
                status="failed",
                finished_at=utcnow(),
                error=redact(exc.message),
                failed_step=redact(step) if step else None,
                log_tail=redact(log_tail(lines)),
            )
        except Exception:
            log.exception("build %s crashed", build_id)
            self.store.update_build(
                build_id,
                status="failed",
                finished_at=utcnow(),
                error=f"Internal error in build #{build_id}; see the bot's log.",
                log_tail=redact(log_tail(lines)),
            )
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            # Ctrl-C or SIGTERM: end the row now, so that the image can be built again at once.
            self.store.update_build(build_id, log_tail=redact(log_tail(lines)))
            self.store.interrupt_build(build_id, stopped_message(exc))
            raise
        finally:
            heartbeat.release(build_id)
            outcome.build = self.store.get_build(build_id)
            final = outcome.build
            self.store.audit(
                actor=final.requester,
                action="build",
                target=f"{final.image}#{final.id}",
                outcome=final.status,
                detail=final.error,
            )
            progress(BuildProgress(build_id, "done", message=final.status, fraction=1.0))
        return outcome

    # ------------------------------------------------------------ the pipeline
    def _run(
        self,
        build: Build,
        outcome: BuildOutcome,
        progress: ProgressCallback,
        lines: list[str],
        base: ResolvedBase | None,
    ) -> None:
        spec = self.store.get_image(build.image)
        progress(BuildProgress(build.id, "resolve", message=f"checking base {spec.base}", fraction=0.02))
        if base is None or base.ref != spec.base_ref:
            base = self.resolve_base(spec)
        resolved = base
        pool = self.services.engines

        def affinity(engine: DockerEngine) -> tuple[bool, bool]:
            """Whether this engine has the base already, and the image's previous build (its layers)."""
            if resolved.digest and resolved.source in ("registry", "pinned"):
                has_base = engine.has_repo_digest(resolved.ref, resolved.digest)
            else:
                has_base = engine.inspect(str(resolved.ref)) is not None
            return has_base, engine.inspect(f"{spec.repository_ref.repository}:{spec.tag}") is not None

        def waiting(message: str) -> None:
            progress(BuildProgress(build.id, "queue", message=message, fraction=0.03))

        with pool.lease(affinity, timeout=self.services.config.build_timeout, on_wait=waiting) as engine:
            if len(pool.names) > 1:
                lines.append(f"Building on engine {engine.name}")
            self._run_on(engine, build, spec, base, outcome, progress, lines)

    def _run_on(
        self,
        engine: DockerEngine,
        build: Build,
        spec: ImageSpec,
        base: ResolvedBase,
        outcome: BuildOutcome,
        progress: ProgressCallback,
        lines: list[str],
    ) -> None:
        services, store = self.services, self.store
        if base.digest and base.source == "registry" and not engine.has_repo_digest(base.ref, base.digest):
            progress(
                BuildProgress(
                    build.id, "pull", message=f"pulling {base.ref}@{short_digest(base.digest)}", fraction=0.05
                )
            )
            engine.pull(base.ref.with_digest(base.digest), services.credentials_for_ref(base.ref))
        digest = base.digest if base.digest and is_sha256_digest(base.digest) else None
        planned = plan_build(services, spec, digest, build.id)
        plan = planned.plan
        dockerfile = plan.dockerfile
        outcome.dockerfile = dockerfile
        hash_ = spec_hash(spec)
        date = datetime.now(UTC).strftime("%Y%m%d")
        immutable = spec.immutable_tag_for(build_id=build.id, date=date, spec_hash=hash_, base_digest=digest)
        repo = spec.repository_ref
        local_repo = repo.repository
        store.update_build(build.id, spec_hash=hash_, base_ref=spec.base, base_digest=base.identity)
        total = count_steps(dockerfile)

        def on_step(step: int, steps: int, line: str) -> None:
            progress(BuildProgress(build.id, "build", step, steps, line, 0.1 + 0.6 * (step - 1) / max(steps, 1)))

        progress(BuildProgress(build.id, "build", 0, total, "starting build", 0.1))
        try:
            result = engine.build(
                dockerfile,
                tag=f"{local_repo}:{immutable}",
                timeout=services.config.build_timeout,
                on_step=on_step,
                on_line=lines.append,
                context=plan.context,
                buildargs=plan.buildargs,
                network_mode=plan.network,
                modes=plan.modes,
            )
        except BuildFailed as exc:
            raise explained(exc, lines, spec, services) from None
        finally:
            if plan.install_stage:  # it held a credential: not even the engine's cache keeps it
                engine.remove_stage(LABEL_INSTALL_STAGE, plan.install_stage)
        engine.tag(result.image_id, local_repo, spec.tag)
        tags = [immutable, spec.tag]
        store.update_build(build.id, image_id=result.image_id, tags=tags)

        progress(BuildProgress(build.id, "doctor", message="checking DCS compatibility", fraction=0.75))
        report, inventory = self.probe(f"{local_repo}:{immutable}", spec, engine)
        outcome.doctor, outcome.inventory = report, inventory
        store.update_build(build.id, doctor=report.to_rows())
        pushed_digest = None
        if not report.ok:  # --force rebuilds; it never skips the doctor (a waiver is the team's recorded choice)
            names = ", ".join(c.name for c in report.failures)
            waive = f'doctor.waive = {{ {report.failures[0].name} = "why the team accepts it" }}'
            if build.push_requested:
                raise DoctorFailed(
                    f"The doctor found problems ({names}); the push was blocked so no cluster gets a broken image. "
                    f"Fix them, or record that the team accepts one in the catalog entry: {waive}."
                )
            raise DoctorFailed(
                f"Built, but the doctor found problems ({names}): Databricks would not run it. Fix them, or waive "
                f"one the team accepts: {waive}."
            )
        if build.push_requested:
            pushed_digest = self._push(engine, build, spec, local_repo, tags, progress, lines)
        with store.transaction():  # a succeeded build always has its inventory
            store.save_inventory(build.id, inventory)
            store.update_build(
                build.id,
                status="succeeded",
                finished_at=utcnow(),
                pushed_digest=pushed_digest,
                log_tail=services.redactor(log_tail(lines)),
            )

    def _push(
        self,
        engine: DockerEngine,
        build: Build,
        spec: ImageSpec,
        local_repo: str,
        tags: list[str],
        progress: ProgressCallback,
        lines: list[str],
    ) -> str:
        """Push the immutable tag, record the candidate, and promote it at once when the doctor is its policy.

        The moving tag (`tags[1]`) is never pushed from the engine: it moves by promotion only
        (bot/ops/release.py), so what clusters start from changes only when the image's policy passed."""
        services = self.services
        registry = services.push_registry(spec)
        credentials = services.credentials(registry, spec.repository_ref.domain)
        immutable = tags[0]
        progress(BuildProgress(build.id, "push", 1, 1, f"pushing {local_repo}:{immutable}", 0.8))
        digest = engine.push(local_repo, immutable, credentials, on_line=lines.append)
        verified = self.verify(spec.repository_ref.with_tag(immutable), digest)
        self.store.add_push(
            build.id,
            registry=registry.name if registry else None,
            repository=spec.repository,
            tag=immutable,
            digest=digest,
            verified=verified,
        )
        build = self.store.update_build(build.id, pushed_digest=digest)
        open_candidate(services, spec, build, digest)
        if spec.release.promote == "doctor":
            progress(
                BuildProgress(
                    build.id, "promote", message=f"moving {spec.tag} to {short_digest(digest)}", fraction=0.95
                )
            )
            promote_build(services, spec, build, actor=build.requester or build.source or "schedule", how="doctor")
        return digest

    def verify(self, ref: ImageRef, digest: str) -> bool:
        """Confirm with a manifest HEAD that the registry serves `digest` under `ref`."""
        head = self.services.registry.head_manifest(ref, self.services.credentials_for_ref(ref))
        if head.digest != digest:
            raise RegistryError(
                f"{ref} is served as {head.digest}, not the pushed {digest}: another push raced "
                "this one. Build again to get a consistent tag."
            )
        return True

    # ------------------------------------------------------------ doctor
    def doctor(self, image: str, spec: ImageSpec | None = None) -> DoctorReport:
        return self.probe(image, spec)[0]

    def probe(
        self,
        image: str,
        spec: ImageSpec | None = None,
        engine: DockerEngine | None = None,
        launch_scripts: tuple[str, ...] = (),
    ) -> tuple[DoctorReport, PackageInventory]:
        """The doctor's table and the package inventory, from one probe container (on `engine`, where the image
        was built; by default the first engine that answers), plus one container running the image's init scripts
        (those baked in, then `launch_scripts`, paths in the image) when there are any."""
        engine = engine or self.services.engine
        inspect = engine.inspect(image)
        if inspect is None:
            raise BuildFailed(f"{image} is not in the local engine; build or pull it first.")
        base = spec.base_info if spec else None
        if base is None:
            try:
                base = classify_base(parse_ref(image))
                if not base.is_databricks:
                    base = None
            except DcsError:
                base = None
        requested = tuple(sorted({pip_name(r) for r in spec.pip})) if spec else ()
        # as the image's default user (`sudo -n true` is checked for that user), the entry's packages to import
        output = engine.run_probe(image, PROBE_SCRIPT, environment={IMPORTS_ENV: imports_value(requested)}, user=None)
        inventory = parse_inventory(output or "", parse_probe(output or ""), inspect)
        baked = baked_scripts(output or "")
        scripts = [*baked, *(s for s in launch_scripts if s not in baked)]
        init = InitRun(scripts, "")
        if scripts and output is not None:
            timeout = self.services.config.init_script_timeout
            init = InitRun(scripts, engine.run_init_scripts(image, INIT_RUNNER, scripts, timeout, INIT_ENV), timeout)
        budget = spec.doctor.size_budget_mb if spec and spec.doctor.size_budget_mb else None
        report = evaluate(
            image,
            output,
            inspect,
            base,
            requested,
            init=init,
            size_budget_mb=budget or self.services.config.doctor_size_budget_mb,
        )
        return (apply_waivers(report, spec.doctor) if spec else report), inventory


# ---------------------------------------------------------------- the other build operations


@dataclass(frozen=True)
class BuildsOverview:
    """`status` without an id: what is building (running first, then queued) and the latest finished builds."""

    active: list[Build]
    recent: list[Build]


def builds_overview(services: Services, *, recent: int = 5) -> BuildsOverview:
    store = services.store
    active = [*store.builds(status="running", limit=20), *store.builds(status="queued", limit=20)]
    finished = [b for b in store.builds(limit=15) if b.finished][:recent]
    return BuildsOverview(active, finished)


def build_with_log(services: Services, build_id: int) -> Build:
    """One build, its stored log tail redacted again on the way out (secrets added since it was stored)."""
    build = services.store.get_build(build_id)
    if build.log_tail:
        build = replace(build, log_tail=services.redactor(build.log_tail))
    return build


def doctor_image(services: Services, image: str, *, pull: bool = False) -> DoctorReport:
    """`dcs doctor IMAGE_REF`: check any local image (pulling it first when asked)."""
    ref = parse_ref(image, "IMAGE_REF")
    if services.engine.inspect(image) is None:
        if not pull:
            raise InvalidInput(
                "IMAGE_REF",
                image,
                "is not in the local Docker engine",
                "Build it, or add --pull to pull it first (a Docker Hub pull counts against limits).",
            )
        services.engine.pull(ref, services.credentials_for_ref(ref))
    return Builder(services).doctor(image)


@dataclass(frozen=True)
class DigestAnswer:
    ref: ImageRef
    digest: str
    media_type: str

    @property
    def pinned(self) -> str:
        return f"{self.ref.repository}@{self.digest}"


def registry_digest(services: Services, image: str) -> DigestAnswer:
    """The registry digest of any reference, by a manifest HEAD (no pull spent)."""
    ref = parse_ref(image, "IMAGE_REF")
    head = services.registry.head_manifest(ref, services.credentials_for_ref(ref))
    return DigestAnswer(ref, head.digest, head.media_type)
