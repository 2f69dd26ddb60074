"""`tagship deploy`: version from git, build and push locally, then every server's plan."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import partial

from tagship.config import Config
from tagship.engine import local_hooks, outcome, rollout
from tagship.engine.connections import Connections, connections
from tagship.engine.plan import Interruption, Plan, all_undone, apply
from tagship.engine.session import Session, check_lock_wait, recorded
from tagship.errors import ConfigError, TagshipError
from tagship.messages import t
from tagship.output import Output
from tagship.release import image as build
from tagship.release import settings
from tagship.release import version as release_mod
from tagship.release.image import Source
from tagship.release.shipping import LocalRegistry, cache_dir, loopback_ref
from tagship.release.version import Release
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport
from tagship.runtime import App, BatchOptions, Runtime, Target, runtime_for


@dataclass(frozen=True)
class DeployOptions:
    version: str = ""
    allow_dirty: bool = False
    dry_run: bool = False
    lock_wait: float = 0.0
    force: bool = False


def run(config: Config, out: Output, options: DeployOptions) -> Release:
    """The whole deploy; with dry_run, print the plan and run nothing (no build, no connection)."""
    if not config.servers:
        raise ConfigError(t("deploy.no_servers_configured"), hint=t("deploy.add_servers_tagship_toml"))
    check_lock_wait(options.lock_wait)  # before git, the build or any connection
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    version, commit = release_mod.resolve_version(local, str(config.root), options.version, options.allow_dirty)
    build.check_local_tools(local)
    with connections(config, out) as conns:
        if not options.dry_run:
            conns.connect_soon(config.servers)  # the SSH handshakes run while the image builds
        tree = release_mod.export_tree(local, str(config.root), commit)
        try:
            source = build.read_source(config, local, tree)
            repository = release_mod.repository(config, source.raw_image, source.local_env)
            deployer = release_mod.deployer_name(local, str(config.root))
            release = Release(version, commit, repository, deployer, pinned=config.image.pin_digest)
            _check_registry_needed(config, release)
            _deploy(config, out, options, local, conns, source, release)
        finally:
            release_mod.remove_tree(tree)
    return release


def _deploy(
    config: Config,
    out: Output,
    options: DeployOptions,
    local: LocalTransport,
    conns: Connections,
    source: Source,
    release: Release,
) -> None:
    runtime = runtime_for(config)
    targets = runtime.targets(config, conns, source.compose_files)
    reserved = tuple(key for key in (source.tag_key, source.image_key) if key)
    app = runtime.app_from_source(config, source, release, settings.server_values(config, local, out, reserved))
    session = Session(
        targets,
        out,
        "deploy",
        release.version,
        release.deployer,
        options.lock_wait,
        environment=config.environment,
        keep=config.releases.keep,
    )
    runs = rollout.batches(config.rollout, targets)
    ledger = rollout.Ledger.of(release.version, [t.name for t in targets])
    opening = Plan(out=out)
    # image.transport = "ssh": a registry on this machine for the run, which the servers pull from over ssh.
    registry = LocalRegistry(cache_dir()) if config.image.over_ssh else None
    report = outcome.report_for("deploy", release, config.servers, config.environment)
    hooks = config.local_hooks
    local_hooks.plan_before(opening, "before_build", hooks.before_build, local, config.root, report)
    plan_build(config, local, source, release, options.force, opening, registry)
    # Before the servers' lock: a hook that says no leaves no trace on any server.
    local_hooks.plan_before(opening, "before_deploy", hooks.before_deploy, local, config.root, report)
    session.plan_open(opening, ready=runtime.check_server)
    if len(targets) > 1:
        opening.add_each(t("deploy.read_each_server_s"), targets, partial(note_release, runtime, config, ledger))
    shipping = Shipping(local, registry, options.force)
    plans = [batch_plan(runtime, config, out, app, source, release, shipping, batch, len(runs)) for batch in runs]
    if options.dry_run:
        _show(out, release, opening, runs, plans)
        return
    how = t("deploy.how", how=rollout.describe(config.rollout, runs)) if len(targets) > 1 else ""
    out.info(
        t(
            "deploy.deploying_commit_server_s",
            image=release.image,
            commit=release.commit[:12],
            count=len(config.servers),
            how=how,
        )
    )
    interruption = Interruption()
    switched = 0  # batches that went live for good: a Ctrl-C in a later one leaves them on the new release
    try:
        with (
            interruption.said(),
            outcome.reported(config, out, local, report, session.started),
            recorded(session, release, lambda: app.env_for(release), ledger.results),
            interruption.learnt(lambda: switched == 0 and all_undone(opening, *plans)),
        ):
            apply(opening, out)
            for batch, plan in zip(runs, plans, strict=True):
                _run_batch(out, batch, len(runs), plan, ledger)
                switched += 1
    finally:
        for target in targets:  # the registry credential leaves the servers with the run
            with contextlib.suppress(TagshipError):
                runtime.forget_login(target)
        if registry is not None:
            registry.stop()  # also on a failure or Ctrl-C before its own step stopped it
        ledger.show(out)


@dataclass(frozen=True)
class Shipping:
    """How the image reaches the servers: this machine, the registry on it (image.transport = "ssh")
    or None (the user's registry), and --force."""

    local: LocalTransport
    registry: LocalRegistry | None
    force: bool


def batch_plan(
    runtime: Runtime,
    config: Config,
    out: Output,
    app: App,
    source: Source,
    release: Release,
    shipping: Shipping,
    batch: rollout.Batch[Target],
    count: int,
) -> Plan:
    """One batch's servers, from the check to the prune; hooks.before_switch with the first batch only,
    unless it runs on every server."""
    plan = Plan(out=out)
    targets = list(batch.targets)
    options = BatchOptions(
        local=shipping.local,
        hooks=batch.number == 1 or config.hooks.where == "every",
        watch=batch.watch,
        registry=shipping.registry,
        force=shipping.force,
        last=batch.number == count,
    )
    runtime.plan_deploy(config, targets, app, source, release, plan, options)
    plan.add_each(
        t("deploy.prune_images_beyond_last", keep=config.releases.keep),
        targets,
        partial(prune_quietly, runtime, config, deploying=release.version),
    )
    return plan


def _run_batch(out: Output, batch: rollout.Batch[Target], count: int, plan: Plan, ledger: rollout.Ledger) -> None:
    """Apply one batch's plan (its own undo on failure), noting how it ended for each of its servers."""
    if batch.pause:
        out.info(t("deploy.waiting_s_before_next", pause=batch.pause))
        time.sleep(batch.pause)
    if count > 1:
        what = t("deploy.the_canary") if batch.canary else t("deploy.batch_of", number=batch.number, count=count)
        out.info(t("deploy.batch_servers", what=what, servers=", ".join(batch.names)))
    with ledger.track(batch):
        apply(plan, out)


def note_release(runtime: Runtime, config: Config, ledger: rollout.Ledger, target: Target) -> None:
    """The release a server runs before this run (for the summary); never fails the run."""
    with contextlib.suppress(TagshipError):
        ledger.note_old(target.name, runtime.read_state(config, target).current)


def _show(out: Output, release: Release, opening: Plan, runs: list[rollout.Batch[Target]], plans: list[Plan]) -> None:
    out.info(t("deploy.plan_deploy_commit_nothing", image=release.image, commit=release.commit[:12]))
    for line in opening.render():
        out.info(line)
    first = opening.numbered + 1
    for batch, plan in zip(runs, plans, strict=True):
        if len(runs) > 1:
            what = (
                t("deploy.the_canary") if batch.canary else t("deploy.batch_of", number=batch.number, count=len(runs))
            )
            pause = t("deploy.after_pause", pause=batch.pause) if batch.pause else ""
            watch = t("deploy.watched", watch=batch.watch) if batch.watch else ""
            out.info(t("deploy.batch_plan", what=what, servers=", ".join(batch.names), pause=pause, watch=watch))
        for line in plan.render(first):
            out.info(line)
        first += plan.numbered


def plan_build(
    config: Config,
    local: LocalTransport,
    source: Source,
    release: Release,
    force: bool,
    plan: Plan,
    registry: LocalRegistry | None = None,
) -> None:
    """On this machine: registry login, the tag's immutability check, build, push (with a registry
    on this machine, for image.transport = "ssh": build, start it, push there)."""
    if registry is not None:
        plan.add(t("deploy.build_2", image=release.image), partial(build.build_image, config, local, source, release))
        plan.add(
            t("deploy.start_registry_this_machine"),
            partial(registry.start, local),
            shows=[f"docker-registry serve: 127.0.0.1:<port>, storage {registry.directory}"],
        )
        plan.add(
            t("deploy.push_2", image=release.image),
            partial(registry.push, local, release.image),
            shows=[f"docker push {loopback_ref(release.image, '<port>')}"],
        )
        return
    if config.registry.url:
        plan.add(t("deploy.registry_login", url=config.registry.url), partial(build.login_local, config, local))
        plan.add(t("deploy.check_registry", image=release.image), partial(build.check_tag, local, release, force))
    plan.add(t("deploy.build", image=release.image), partial(build.build_image, config, local, source, release))
    if config.registry.url:
        plan.add(t("deploy.push", image=release.image), partial(build.push_image, config, local, release))


def prune_quietly(runtime: Runtime, config: Config, target: Target, *, deploying: str) -> None:
    """Prune old images after a good deploy; a failure here is only a warning."""
    try:
        runtime.prune(config, target, deploying)
    except TagshipError as exc:
        target.transport.out.warn(t("deploy.prune_failed", name=target.name, exc=exc))


def _check_registry_needed(config: Config, release: Release) -> None:
    remote = [s.raw for s in config.servers if not s.is_local]
    if remote and not config.image.over_ssh and not config.registry.url and "/" not in release.repository.split(":")[0]:
        raise ConfigError(
            t("deploy.no_registry_configured_cannot", remote=", ".join(remote), image=release.image),
            hint=t("deploy.set_registry_url_tagship"),
        )
