"""The app as a server has it: its compose files, web service and project name, read and parsed there.

For commands that run from anywhere with only tagship.toml (rollback): no local Docker, no local
compose file. The files come from the server's .env (COMPOSE_FILE, which a deploy writes), else the
config, else the file Compose would pick in the server's project directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tagship.builders import compose, envfile, history, override
from tagship.builders.command import Command
from tagship.builders.history import Record
from tagship.config import Config
from tagship.errors import ConfigError, TagshipError
from tagship.messages import t
from tagship.remote.transport import tail
from tagship.runtime import ServerReleases
from tagship.runtime.compose.retention import read_state, recorded_tag_key
from tagship.runtime.compose.target import App, Target, proxied


def compose_files(config: Config, target: Target, env_text: str) -> tuple[str, ...]:
    """The user's compose files on the server (tagship's override is added by the switch itself)."""
    listed = envfile.get_value(env_text, "COMPOSE_FILE") or ""
    files = tuple(f for f in listed.split(":") if f and f != override.FILE_NAME)
    if files:
        return files
    if config.app.compose_files:
        return config.app.compose_files
    cmd = Command(("ls", "-1", "--", target.project.directory))
    found = compose.find_file(target.transport.run(cmd, show=False, check=False).stdout.split())
    if found is None:
        raise ConfigError(
            t("discover.no_compose_file", name=target.name, directory=target.project.directory),
            hint=t("discover.deploy_once_tagship_deploy"),
        )
    return (found,)


def render(target: Target, files: tuple[str, ...]) -> dict[str, Any]:
    """`docker compose config` of the server's project, parsed here (pure parser)."""
    result = target.transport.run(
        compose.config_json(compose.Project(target.project.directory, files)), show=False, check=False
    )
    if not result.ok:
        raise ConfigError(
            t("discover.compose_rejects_project", name=target.name, directory=target.project.directory),
            detail=tail(result.stderr),
        )
    return compose.parse_config(result.stdout)


def web_service(config: Config, rendered: dict[str, Any], repository: str) -> str:
    """The deployed service: app.service, else the one that runs the release's repository (the one that
    publishes ports or builds, if several do)."""
    services: dict[str, Any] = rendered["services"]
    if config.app.service:
        return compose.pick_service(rendered, config.app.service)
    runs = sorted(
        n for n, s in services.items() if str(s.get("image", "")).split("@")[0].rsplit(":", 1)[0] == repository
    )
    for preferred in ([n for n in runs if services[n].get("ports")], [n for n in runs if "build" in services[n]], runs):
        if len(preferred) >= 1:
            return preferred[0]
    raise ConfigError(
        t("discover.no_service_server_s", repository=repository),
        hint=t("discover.set_app_service_tagship"),
    )


def app_on_server(config: Config, target: Target, state: ServerReleases, record: Record) -> App:
    """What the switch to `record` needs, from the server: the .env values come from the history."""
    files = compose_files(config, target, state.env)
    rendered = render(target, files)
    target.rendered_before = rendered  # the switch reads it rather than render the project again
    service = web_service(config, rendered, record.repository)
    # No .env key holds the tag (the compose file spells out a fixed one): the override sets the image.
    tag_key = config.env.tag_key or recorded_tag_key([record]) or recorded_tag_key(state.records)
    env = dict(record.env) or ({tag_key: record.version} if tag_key else {})
    return App(
        name=str(rendered.get("name") or ""),
        service=service,
        compose_files=files,
        tag_key=tag_key,
        image_key="",
        recorded_env=tuple(env.items()),
        proxied=proxied(config, rendered["services"], service),
        consumers=override.consumers(rendered["services"], service, config.app.consumers),
        image_in_override=not tag_key,
    )


def app_on_servers(config: Config, targets: Sequence[Target], states: Sequence[ServerReleases], record: Record) -> App:
    """The app as every server has it; the servers must agree on what the switch does. Each server's
    project then names the compose files it has."""
    apps = [app_on_server(config, target, state, record) for target, state in zip(targets, states, strict=True)]
    shapes = {(a.service, a.proxied, a.recorded_env, a.image_in_override) for a in apps}
    if len(shapes) != 1:
        listing = "; ".join(
            f"{target.name}: service {app.service}, proxy {app.proxied}"
            for target, app in zip(targets, apps, strict=True)
        )
        raise ConfigError(t("rollback.servers_compose_projects_differ"), detail=listing)
    for target, app in zip(targets, apps, strict=True):
        target.project = replace(target.project, files=app.compose_files)
    return apps[0]


@dataclass(frozen=True)
class Running:
    """The app's compose project on a server as its containers were made (tagship's override included
    when the server's .env lists it), for commands that look into it: logs, exec."""

    project: compose.Project
    service: str  # the deployed service
    services: tuple[str, ...]

    def pick(self, wanted: str) -> str:
        """wanted if the project has it ("" means the deployed service); ConfigError otherwise."""
        if not wanted:
            return self.service
        if wanted not in self.services:
            raise ConfigError(
                t("discover.unknown_service", wanted=wanted),
                hint=t("discover.compose_project_has", services=", ".join(self.services)),
            )
        return wanted


def running_app(config: Config, target: Target) -> Running:
    """The deployed app's compose project on the server; TagshipError if nothing was deployed there."""
    state = read_state(config, target)
    if not state.records:
        raise TagshipError(
            t("discover.nothing_deployed", name=target.name, directory=target.project.directory),
            hint=t("discover.run_tagship_deploy_first"),
        )
    app = app_on_server(config, target, state, history.find(state.records, state.current) or state.records[-1])
    listed = (envfile.get_value(state.env, "COMPOSE_FILE") or "").split(":")
    files = (*app.compose_files, *([override.FILE_NAME] if override.FILE_NAME in listed else []))
    services = tuple(sorted((target.rendered_before or {}).get("services", {})))
    return Running(compose.Project(target.project.directory, files), app.service, services)
