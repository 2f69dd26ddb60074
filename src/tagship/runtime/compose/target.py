"""One server during a command: its compose project, the app being switched, and what phase one learned."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tagship.builders import compose, docker, override
from tagship.builders.override import PublishedPort
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.messages import t
from tagship.release import image
from tagship.release.image import Source
from tagship.release.version import Release
from tagship.remote.server import Server
from tagship.remote.transport import Transport


@dataclass(frozen=True)
class App:
    """What a switch needs to know of the app: from the tagged tree (deploy) or the servers (rollback)."""

    name: str  # the compose project name, as on the server: the app's name in the proxy
    service: str  # the web service (the one deployed)
    compose_files: tuple[str, ...]
    tag_key: str  # "" with image_in_override
    image_key: str  # the .env key of the image's name ("" if the compose file spells the name out)
    proxied: bool  # the zero-downtime switch through the proxy (else a plain recreate)
    consumers: tuple[str, ...] = ()  # services that call the web service by name: they go through the gate
    recorded_env: tuple[tuple[str, str], ...] = ()  # a rollback: the .env values history recorded
    # The compose file spells out a fixed tag (image: registry/ns/app:latest): tagship's override sets
    # the release's image for the web service and its workers, and .env keeps its values.
    image_in_override: bool = False
    # More .env values a deploy writes (env.values, env.secrets_file): key and value as it goes on the
    # line (quoted as needed). Never recorded in history, never shown: they may be secrets.
    settings: tuple[tuple[str, str], ...] = ()

    def env_for(self, release: Release) -> dict[str, str]:
        """The .env values the release sets: none when the override sets the image, as recorded
        (rollback), else its tag and image name.

        Asked when the values are written, not when the plan is made: a pinned tag's digest is known
        only once the image is pushed.
        """
        if self.image_in_override:
            return {}
        if self.recorded_env:
            return dict(self.recorded_env)
        values = {self.tag_key: release.tag_value}
        if self.image_key:
            values[self.image_key] = release.repository
        return values


@dataclass
class CoWeb:
    """Another service of the release's image that publishes ports: switched with the web service
    (new containers beside the old, gated, one proxy switch for both), on its own route."""

    ports: tuple[PublishedPort, ...]
    networks: list[str]
    old_names: dict[str, str] = field(default_factory=dict)  # ID -> name
    new: dict[str, str] = field(default_factory=dict)  # ID -> name

    @property
    def old_ids(self) -> list[str]:
        return list(self.old_names)

    @property
    def port(self) -> int:
        """The container port the proxy sends its requests to."""
        return self.ports[0].target


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
    new: dict[str, str] = field(default_factory=dict)  # the web's new containers: ID -> name
    previous_override: str | None = None
    override_read: bool = False  # previous_override is known (an undo before that changes nothing)
    switch_run: str = ""  # names the proxy switch once it was sent (its undo reverts what that run changed)
    upstreams_at_switch: str = ""  # Caddy's upstreams right after the switch (requests in flight)
    migrate_ports: bool = False
    new_listeners: list[str] = field(default_factory=list)  # port listeners this run started
    routed_listeners: list[str] = field(default_factory=list)  # listeners the switch pointed at new containers
    co_webs: dict[str, CoWeb] = field(default_factory=dict)  # service -> state, switched with the web
    consumers: tuple[str, ...] = ()  # services that call the web service by name (through the gate)
    expose: tuple[int, ...] = ()  # container ports the web service exposes without publishing
    gate_changed: bool = False  # the gate's config was written anew (a running gate reloads it)
    override_changed: bool = False  # this run wrote a new override (compose may redefine the gate)
    services_running: frozenset[str] = frozenset()  # the project's services with a running container

    @property
    def old_ids(self) -> list[str]:
        return list(self.old_names)

    @property
    def switched_old_ids(self) -> list[str]:
        """The old containers of the web service and of the services switched with it."""
        return [*self.old_names, *(i for co in self.co_webs.values() for i in co.old_names)]

    @property
    def switched_new_ids(self) -> list[str]:
        """The new containers of the web service and of the services switched with it."""
        return [*self.new, *(i for co in self.co_webs.values() for i in co.new)]


@dataclass
class Target:
    """One server during a command; its transport is made by the run's Connections on first use."""

    server: Server
    connections: Connections
    project: compose.Project
    env_path: str
    proxy_name: str = "tagship-proxy"
    previous_env: str | None = None
    env_read: bool = False  # previous_env is known (an undo before that must not touch .env)
    # The files the upload step replaced: path -> their previous bytes (None: there was none).
    previous_uploads: dict[str, bytes | None] = field(default_factory=dict)
    web: WebState = field(default_factory=WebState)
    # The user's compose project as rendered before this run changed .env (a rollback's discover step):
    # the switch reads it instead of rendering again, since .env changes only the release's tag.
    rendered_before: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def docker_config(self) -> str:
        """The run's own docker client config directory on the server, holding the registry login
        while the run pulls (removed when it ends): the credential never lands in the user's
        ~/.docker. The project carries it, so compose pulls with it too ("" before the login)."""
        return self.project.docker_config

    @property
    def transport(self) -> Transport:
        return self.connections.get(self.server)

    @property
    def project_dir(self) -> str:
        return self.project.directory

    def containers(self) -> compose.Containers:
        """The compose project's containers on the server, running and stopped (after observe)."""
        name = str(self.web.rendered.get("name") or "")
        listing = self.transport.run(compose.project_containers(name), show=False).stdout
        listed = compose.parse_project_containers(listing)
        self.warn_skipped("docker ps", list(listed.skipped))
        return listed

    def inspected(self, command: str, text: str) -> list[dict[str, Any]]:
        """The containers of a `docker inspect` output that have Docker's shape; a warning names the others."""
        kept, skipped = docker.parse_inspect(text)
        self.warn_skipped(command, skipped)
        return kept

    def warn_skipped(self, command: str, skipped: list[str]) -> None:
        """Say which records of the server's output were not trusted (the first three reasons)."""
        if skipped:
            reasons = "; ".join(skipped[:3]) + ("; …" if len(skipped) > 3 else "")
            count = len(skipped)
            self.transport.out.warn(
                t("harden.skipped_records", server=self.name, command=command, count=count, reasons=reasons)
            )


def proxied(config: Config, services: dict[str, Any], web: str) -> bool:
    """The zero-downtime switch applies when the web service is reached through published ports,
    host names, or by other services calling it by name (through the gate)."""
    named = override.consumers(services, web, config.app.consumers)
    return config.proxy.enabled and bool(services[web].get("ports") or config.proxy.hosts or named)


def app_from_source(
    config: Config, source: Source, release: Release, settings: tuple[tuple[str, str], ...] = ()
) -> App:
    """What the servers' switch needs, from the tagged tree (the app's name as the first server names it);
    settings: the other .env values to write (release/settings.py)."""
    directory = config.servers[0].path
    return App(
        name=image.project_name(source, directory),
        service=source.service.name,
        compose_files=source.compose_files,
        tag_key=source.tag_key,
        image_key=source.image_key,
        proxied=proxied(config, source.rendered["services"], source.service.name),
        consumers=override.consumers(source.rendered["services"], source.service.name, config.app.consumers),
        image_in_override=not source.tag_key,  # the compose file spells out a fixed tag
        settings=settings,
    )


def project_dir(config: Config, path: str) -> str:
    """Absolute project directory (a relative path is relative to the config root, for `local`)."""
    return path if path.startswith("/") else str((config.root / path).resolve())


def targets_for(config: Config, connections: Connections, compose_files: tuple[str, ...]) -> list[Target]:
    """A Target for every configured server (no connection is opened here)."""
    targets = []
    for server in config.servers:
        directory = project_dir(config, server.path)
        targets.append(
            Target(
                server=server,
                connections=connections,
                project=compose.Project(directory, compose_files),
                env_path=str(PurePosixPath(directory) / config.env.file),
                proxy_name=config.proxy.name,
            )
        )
    return targets
