"""`tagship rollback`: switch every server back to a retained release, restoring the .env values it recorded.

Needs only tagship.toml and SSH: the history, the .env and the compose project are read on the servers.
"""

from __future__ import annotations

from tagship.builders import history
from tagship.builders.history import Record
from tagship.builders.report import Report
from tagship.builders.untrusted import printable
from tagship.config import Config
from tagship.engine import local_hooks, outcome, rollout
from tagship.engine.connections import connections
from tagship.engine.plan import Interruption, Plan, all_undone, apply
from tagship.engine.session import Session, check_lock_wait, recorded
from tagship.errors import ConfigError, InterruptedUndone
from tagship.messages import t
from tagship.output import Output
from tagship.release import version as release_mod
from tagship.release.version import Release
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, Transport
from tagship.runtime import ServerReleases, Target, runtime_for


def rollback(config: Config, out: Output, version: str = "", lock_wait: float = 0.0) -> Release:
    """Switch every server back to the previous release (by history), or to `version`."""
    check_lock_wait(lock_wait)  # before any connection
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        deployer = release_mod.deployer_name(local, str(config.root))
        runtime = runtime_for(config)
        targets = runtime.targets(config, conns)
        session = Session(
            targets,
            out,
            "rollback",
            version or "previous",
            deployer,
            lock_wait,
            environment=config.environment,
            keep=config.releases.keep,
        )
        opening = Plan(out=out)
        session.plan_open(opening)
        try:
            apply(opening, out)
            states = [runtime.read_state(config, target) for target in targets]
            record = choose(states, version)
            app = runtime.discover(config, targets, states, record)
        except BaseException as exc:
            session.release_locks()
            if isinstance(exc, KeyboardInterrupt) and all_undone(opening):  # nothing changed yet
                raise InterruptedUndone from None
            raise
        release = Release(
            record.version,
            record.commit,
            record.repository,
            deployer,
            record.digest,
            pinned=config.image.pin_digest,
        )
        out.info(t("rollback.rolling_back_server_s", version=record.version, image=record.image, count=len(targets)))
        plan = Plan(out=out)
        runtime.plan_switch(config, targets, app, release, plan)
        report = outcome.report_for("rollback", release, config.servers, config.environment)
        interruption = Interruption()
        with interruption.said(), outcome.reported(config, out, local, report, session.started):
            _before_deploy(config, local, session, report)
            with (
                recorded(session, release, lambda: app.env_for(release)),
                interruption.learnt(lambda: all_undone(plan)),
            ):
                _apply(out, plan, targets, states, release)
    return release


def _apply(out: Output, plan: Plan, targets: list[Target], states: list[ServerReleases], release: Release) -> None:
    """Run the switch; with several servers, end with the summary table (every server at once: one batch)."""
    ledger = rollout.Ledger.of(release.version, [t.name for t in targets])
    for state in states:
        ledger.note_old(state.server, printable(state.current))
    everyone = rollout.Batch(1, tuple(targets), 0.0)
    try:
        with ledger.track(everyone):
            apply(plan, out)
    finally:
        ledger.show(out)


def _before_deploy(config: Config, local: Transport, session: Session, report: Report) -> None:
    """The before_deploy hooks, once the servers said which release it is; one that fails frees the
    locks and records nothing (nothing changed on the servers)."""
    try:
        local_hooks.run_before("before_deploy", config.local_hooks.before_deploy, local, config.root, report)
    except BaseException:
        session.release_locks()
        raise


def choose(states: list[ServerReleases], version: str) -> Record:
    """The record to roll back to: the same on every server."""
    chosen: dict[str, Record | None] = {}
    for state in states:
        if version:
            chosen[state.server] = history.find(state.records, version)
        else:
            chosen[state.server] = history.previous(state.records, state.current)
    versions = {r.version if r else None for r in chosen.values()}
    if None in versions or len(versions) != 1:
        what = version or t("rollback.previous_release")
        listing = "; ".join(
            t(
                "rollback.server_history",
                server=s.server,
                current=printable(s.current) or "?",
                history=", ".join(r.version for r in history.deployed_versions(s.records)) or t("rollback.empty"),
            )
            for s in states
        )
        raise ConfigError(t("rollback.cannot_roll_back_every", what=what), detail=listing)
    return next(r for r in chosen.values() if r is not None)
