"""One server during a command: its transport, its compose project and what a deploy changes there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from . import compose
from .config import Config
from .output import Output
from .server import Server
from .switch import WebState
from .transport import SshTransport, Transport, for_server


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


def targets_for(config: Config, out: Output, compose_files: tuple[str, ...], dry_run: bool = False) -> list[Target]:
    """A Target for every configured server."""
    return [make_target(config, transport_for(config, s, out, dry_run), compose_files) for s in config.servers]


def connect(target: Target) -> None:
    """Open the server's shared SSH connection (nothing to do for `local`)."""
    if isinstance(target.transport, SshTransport):
        target.transport.connect()
