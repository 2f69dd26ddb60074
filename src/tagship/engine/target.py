"""One server during a command: its transport, its compose project and what a deploy changes there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tagship.builders import compose
from tagship.builders.override import PublishedPort
from tagship.config import Config
from tagship.output import Output
from tagship.remote.server import Server
from tagship.remote.transport import Transport, for_server


@dataclass
class WebState:
    """What phase one learned and changed on one server (used by later steps and undos)."""

    rendered: dict[str, Any] = field(default_factory=dict)
    ports: tuple[PublishedPort, ...] = ()
    workers: tuple[str, ...] = ()
    others: tuple[str, ...] = ()
    old_names: dict[str, str] = field(default_factory=dict)  # the web's running containers: ID -> name
    old_workers: dict[str, list[str]] = field(default_factory=dict)
    stopped: dict[str, list[str]] = field(default_factory=dict)  # service -> containers that exist but do not run
    new_id: str = ""
    new_name: str = ""
    previous_override: str | None = None
    changed_tiers: tuple[str, ...] = ()  # proxy tiers the switch changed (for the undo)
    upstreams_at_switch: str = ""  # Caddy's upstreams right after the switch (requests in flight)
    migrate_ports: bool = False

    @property
    def old_ids(self) -> list[str]:
        return list(self.old_names)


@dataclass
class Target:
    """One server during a deploy: its transport, its compose project and what was there before."""

    transport: Transport
    project: compose.Project
    env_path: str
    previous_env: str | None = None
    proxy_name: str = "tagship-proxy"
    web: WebState = field(default_factory=WebState)

    @property
    def name(self) -> str:
        return self.transport.name

    def containers(self) -> compose.Containers:
        """The compose project's containers on the server, running and stopped (after observe)."""
        name = str(self.web.rendered.get("name") or "")
        return compose.parse_project_containers(self.transport.run(compose.project_containers(name), show=False).stdout)


def project_dir(config: Config, path: str) -> str:
    """Absolute project directory (a relative path is relative to the config root, for `local`)."""
    return path if path.startswith("/") else str((config.root / path).resolve())


def make_target(config: Config, transport: Transport, compose_files: tuple[str, ...]) -> Target:
    directory = project_dir(config, transport.server.path)
    return Target(
        transport=transport,
        project=compose.Project(directory, compose_files),
        env_path=str(PurePosixPath(directory) / config.env.file),
        proxy_name=config.proxy.name,
    )


def transport_for(config: Config, server: Server, out: Output, dry_run: bool) -> Transport:
    """The transport for a server with the configured ssh settings."""
    return for_server(
        server,
        out,
        dry_run=dry_run,
        ssh_config=config.ssh.config,
        ssh_options=config.ssh.options,
        connect_timeout=config.ssh.connect_timeout,
    )


def targets_for(
    config: Config,
    out: Output,
    compose_files: tuple[str, ...],
    dry_run: bool = False,
    transports: list[Transport] | None = None,
) -> list[Target]:
    """A Target for every configured server (on transports already made by connect_early, if given)."""
    if transports is None:
        transports = [transport_for(config, s, out, dry_run) for s in config.servers]
    return [make_target(config, t, compose_files) for t in transports]


def connect_early(config: Config, out: Output, dry_run: bool = False) -> list[Transport]:
    """Transports for every server, already connecting in the background while local work runs."""
    transports = [transport_for(config, s, out, dry_run) for s in config.servers]
    for transport in transports:
        transport.connect_soon()
    return transports


def connect(target: Target) -> None:
    """Open the server's shared SSH connection, or wait for the one connect_early started."""
    target.transport.connect()
