"""How a release runs on a server, behind one interface: `Runtime`, and `runtime_for(config)`.

Compose (`runtime/compose/`) is the only runtime today; a second one (Docker Swarm) sits beside it and
implements the same methods. Commands reach a runtime only through this module (tests/unit/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tagship.builders.command import Command
from tagship.builders.history import Record
from tagship.builders.proxy import Listener
from tagship.builders.status import ContainerState
from tagship.config import Config
from tagship.engine.connections import Connections, connections
from tagship.engine.plan import Plan, apply
from tagship.engine.session import Host
from tagship.output import Output
from tagship.release.image import Source
from tagship.release.shipping import LocalRegistry
from tagship.release.version import Release
from tagship.remote.server import Server
from tagship.remote.transport import Transport


class Target(Host, Protocol):
    """One server during a command, as its runtime made it (the transport is opened on first use): a
    session's Host (name, transport, project directory) and its address."""

    @property
    def server(self) -> Server: ...


class App(Protocol):
    """What a runtime's switch knows of the app: from the tagged tree (deploy) or the servers (rollback)."""

    def env_for(self, release: Release) -> dict[str, str]:
        """The .env values the release sets (history records them)."""
        ...


@dataclass
class ServerReleases:
    """What one server says about its releases."""

    server: str
    current: str
    records: list[Record]
    env: str  # the server's .env text ("" if it has none)


@dataclass(frozen=True)
class AppStatus:
    """What a server runs of the app, for `tagship status` (no app before the first deploy)."""

    proxy_state: str  # the proxy container's state
    app: str = ""  # the app's name on the server ("" before the first deploy)
    service: str = ""  # the deployed service
    containers: list[ContainerState] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)  # this app's port listeners
    drift: list[str] = field(default_factory=list)  # what differs from the current release, one line each


@dataclass(frozen=True)
class BatchOptions:
    """How one batch of a deploy runs (commands/deploy.py makes one per batch of the rollout)."""

    local: Transport  # this machine: it ships the proxy image to servers that cannot pull it
    hooks: bool = True  # run hooks.before_switch (a rollout's later batches do not when it ran on its first server)
    watch: float = 0.0  # seconds the switched release is watched (rollout.watch, a canary's canary_watch)
    # image.transport = "ssh": the registry on this machine (running already) that the servers pull
    # from through their ssh connection, instead of the user's registry.
    registry: LocalRegistry | None = None
    force: bool = False  # --force: replace a server's image of the same tag built from another commit
    last: bool = True  # the run's last batch: the registry on this machine stops once it has the image


class Runtime(Protocol):
    """What commands need of a runtime: a deploy, a rollback, the releases a server keeps, and what
    `status`, `logs` and `exec` look at. Targets and apps passed in are ones this runtime made."""

    def targets(self, config: Config, connections: Connections, files: tuple[str, ...] = ()) -> list[Target]:
        """A Target for every configured server (no connection is opened); files: the app's files as
        the tagged tree names them (a deploy), else found on the servers."""
        ...

    def check_server(self, target: Target) -> None:
        """The server can run the app (its tools are there); MissingToolError says what to install."""
        ...

    def app_from_source(
        self, config: Config, source: Source, release: Release, settings: tuple[tuple[str, str], ...] = ()
    ) -> App:
        """The app as the tagged tree has it; settings: more .env values a deploy writes."""
        ...

    def plan_deploy(
        self,
        config: Config,
        targets: Sequence[Target],
        app: App,
        source: Source,
        release: Release,
        plan: Plan,
        batch: BatchOptions,
    ) -> None:
        """Add the steps that bring the release to these servers and switch them to it."""
        ...

    def forget_login(self, target: Target) -> None:
        """Remove the run's registry credential from the server (at the end of a deploy, also a failed one)."""
        ...

    def read_state(self, config: Config, target: Target) -> ServerReleases:
        """The server's history and the release it runs."""
        ...

    def discover(
        self, config: Config, targets: Sequence[Target], states: Sequence[ServerReleases], record: Record
    ) -> App:
        """The app as the servers have it, for a switch to `record`; ConfigError if a server no longer
        keeps its image or the servers disagree on what the switch does."""
        ...

    def plan_switch(self, config: Config, targets: Sequence[Target], app: App, release: Release, plan: Plan) -> None:
        """Add the steps that switch these servers to a release they keep (a rollback)."""
        ...

    def retained(self, target: Target, records: Sequence[Record]) -> list[bool]:
        """For each record, whether the server still keeps its image."""
        ...

    def prune(self, config: Config, target: Target, deploying: str = "") -> list[str]:
        """Remove the app's images beyond releases.keep; the removed tags (deploying: the release a
        deploy just switched to, not in the history yet)."""
        ...

    def status(self, config: Config, target: Target, state: ServerReleases) -> AppStatus:
        """What the server runs of the app, and what drifts from the current release."""
        ...

    def logs_command(
        self, config: Config, target: Target, service: str, *, follow: bool, since: str, tail: int | None
    ) -> Command:
        """The command that shows the deployed app's logs on the (connected) server ("" service: the
        deployed one); TagshipError if nothing was deployed there."""
        ...

    def exec_command(
        self, config: Config, target: Target, service: str, argv: tuple[str, ...], *, tty: bool, new: bool
    ) -> Command:
        """The command that runs argv in the app's running container on the (connected) server, or in a
        one-off one of the current release (new); tty: the command gets a pseudo-terminal."""
        ...


def runtime_for(config: Config) -> Runtime:
    """The runtime that runs the config's app (Compose: the only one today)."""
    from tagship.runtime.compose import COMPOSE  # here: compose's modules import this one's types

    return COMPOSE


T = TypeVar("T")


def read_each(config: Config, out: Output, title: str, read: Callable[[Target], T]) -> list[T]:
    """read(target) on every configured server at once, as one step; the results in the config's order."""
    found: dict[str, T] = {}
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        targets = runtime_for(config).targets(config, conns)
        plan = Plan(out=out)
        plan.add_each(title, targets, lambda target: found.__setitem__(target.name, read(target)))
        apply(plan, out)
    return [found[target.name] for target in targets]
