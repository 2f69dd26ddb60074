"""The Compose runtime: `tagship.runtime.Runtime` over the modules of this folder (prepare, switch,
verify, retention, discover, status), which commands never import themselves."""

from __future__ import annotations

from collections.abc import Sequence

from tagship import runtime
from tagship.builders import compose
from tagship.builders.command import Command
from tagship.builders.history import Record
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.engine.plan import Plan
from tagship.release.image import Source
from tagship.release.version import Release
from tagship.runtime import AppStatus, BatchOptions, ServerReleases
from tagship.runtime.compose import discover, prepare, retention, switch
from tagship.runtime.compose import status as status_mod
from tagship.runtime.compose.target import App, Target, app_from_source, targets_for


def own(target: runtime.Target) -> Target:
    """The Compose target a command passed back (a runtime only gets the targets it made)."""
    if not isinstance(target, Target):
        raise TypeError(f"not a Compose target: {target!r}")
    return target


def own_all(targets: Sequence[runtime.Target]) -> list[Target]:
    return [own(target) for target in targets]


def own_app(app: runtime.App) -> App:
    """The Compose app a command passed back."""
    if not isinstance(app, App):
        raise TypeError(f"not a Compose app: {app!r}")
    return app


class Compose:
    """Releases as Docker Compose projects: one directory per server, a .env holding the release's tag,
    the zero-downtime switch through the proxy."""

    def targets(self, config: Config, connections: Connections, files: tuple[str, ...] = ()) -> list[runtime.Target]:
        return list(targets_for(config, connections, files))

    def check_server(self, target: runtime.Target) -> None:
        prepare.check_server(own(target))

    def app_from_source(
        self, config: Config, source: Source, release: Release, settings: tuple[tuple[str, str], ...] = ()
    ) -> runtime.App:
        return app_from_source(config, source, release, settings)

    def plan_deploy(
        self,
        config: Config,
        targets: Sequence[runtime.Target],
        app: runtime.App,
        source: Source,
        release: Release,
        plan: Plan,
        batch: BatchOptions,
    ) -> None:
        for name in config.app.upload:  # before anything runs: a bad path is a config error, not a half deploy
            prepare.upload_file(source.tree, name)
            prepare.upload_place(name, source.subdir)
        switch.plan_deploy(config, own_all(targets), own_app(app), source.tree, release, plan, batch, source.subdir)

    def forget_login(self, target: runtime.Target) -> None:
        prepare.forget_login(own(target))

    def read_state(self, config: Config, target: runtime.Target) -> ServerReleases:
        return retention.read_state(config, own(target))

    def discover(
        self, config: Config, targets: Sequence[runtime.Target], states: Sequence[ServerReleases], record: Record
    ) -> runtime.App:
        mine = own_all(targets)
        retention.check_retained(mine, record)
        return discover.app_on_servers(config, mine, states, record)

    def plan_switch(
        self, config: Config, targets: Sequence[runtime.Target], app: runtime.App, release: Release, plan: Plan
    ) -> None:
        switch.plan_switch(config, own_all(targets), own_app(app), release, plan)

    def retained(self, target: runtime.Target, records: Sequence[Record]) -> list[bool]:
        images = retention.kept_images(own(target), list(records))
        return [retention.is_kept(record, images) for record in records]

    def prune(self, config: Config, target: runtime.Target, deploying: str = "") -> list[str]:
        return retention.prune_target(config, own(target), deploying)

    def status(self, config: Config, target: runtime.Target, state: ServerReleases) -> AppStatus:
        return status_mod.app_status(config, own(target), state)

    def logs_command(
        self, config: Config, target: runtime.Target, service: str, *, follow: bool, since: str, tail: int | None
    ) -> Command:
        running = discover.running_app(config, own(target))
        return compose.logs(running.project, running.pick(service), follow=follow, since=since, tail=tail)

    def exec_command(
        self, config: Config, target: runtime.Target, service: str, argv: tuple[str, ...], *, tty: bool, new: bool
    ) -> Command:
        running = discover.running_app(config, own(target))
        build = compose.run_once if new else compose.exec_in
        return build(running.project, running.pick(service), argv, tty=tty)


COMPOSE = Compose()
