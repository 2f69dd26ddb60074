"""Docker Compose v2 command builders and parsers of its rendered configuration."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from tagship.builders import docker, envfile
from tagship.builders.command import Command
from tagship.errors import ConfigError
from tagship.messages import t

CANDIDATE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_IMAGE_VARS_RE = re.compile(r"^\$\{?(\w+)\}?:\$\{?(\w+)\}?$")
_TAG_VAR_RE = re.compile(r"^(?P<repo>[^$]+):\$\{?(?P<tag>\w+)\}?$")


@dataclass(frozen=True)
class Project:
    """A compose project on some machine: its directory and the files that define it."""

    directory: str
    files: tuple[str, ...]
    # A deploy's own docker client config directory (the registry login; see docker.login_dir):
    # compose pulls the project's other images with it too (a sidecar from the same registry).
    docker_config: str = ""

    def base(self) -> list[str]:
        argv = [*docker.with_config(self.docker_config), "docker", "compose", "--project-directory", self.directory]
        for name in self.files:
            argv += ["--file", str(PurePosixPath(self.directory) / name)]
        return argv


def config_json(project: Project, *, interpolate: bool = True) -> Command:
    """Render the merged configuration as JSON (reads .env, changes nothing); without interpolation
    the values keep their ${VARIABLES}, with include: and extends: followed as Compose follows them."""
    return Command((*project.base(), "config", "--format", "json", *([] if interpolate else ["--no-interpolate"])))


def up(project: Project, *services: str) -> Command:
    return Command((*project.base(), "up", "--detach", *services))


def scale_up(project: Project, service: str, count: int) -> Command:
    """Bring the service to count containers without touching existing ones (new ones get the new image)."""
    return Command(
        (*project.base(), "up", "--detach", "--no-deps", "--no-recreate", "--scale", f"{service}={count}", service)
    )


def run_once(project: Project, service: str, argv: tuple[str, ...], *, tty: bool = False) -> Command:
    """A one-off container of the service (its image as .env names it, its env, volumes, networks),
    removed when the command ends; dependencies are not started (they already run). tty: on a
    pseudo-terminal (an interactive shell); argv after the service is the container's, never compose's."""
    return Command(
        (*project.base(), "run", "--rm", "--no-deps", *([] if tty else ["--no-TTY"]), service, *argv), tty=tty
    )


def exec_in(project: Project, service: str, argv: tuple[str, ...], *, tty: bool = False) -> Command:
    """argv in the service's first running container (compose picks the lowest container number);
    tty: on a pseudo-terminal, for an interactive program."""
    return Command((*project.base(), "exec", *([] if tty else ["--no-TTY"]), service, *argv), tty=tty)


def logs(project: Project, service: str, *, follow: bool = False, since: str = "", tail: int | None = None) -> Command:
    """The service's container logs. Following, it runs on a pseudo-terminal so it ends with its SSH
    session; values are glued to their option (one word: `--since=-x` cannot become another option)."""
    argv = [*project.base(), "logs", "--no-color"]
    if follow:
        argv.append("--follow")
    if since:
        argv.append(f"--since={since}")
    if tail is not None:
        argv.append(f"--tail={tail}")
    return Command((*argv, "--", service), tty=follow)


def up_no_deps(project: Project, service: str) -> Command:
    """Create or recreate (only if its definition changed) one service, leaving every other alone."""
    return Command((*project.base(), "up", "--detach", "--no-deps", service))


def start_missing(project: Project, *services: str) -> Command:
    """Start services that are not running; running ones are never recreated."""
    return Command((*project.base(), "up", "--detach", "--no-recreate", "--no-deps", *services))


def ps_ids(project: Project, service: str) -> Command:
    return Command((*project.base(), "ps", "--quiet", service))


def project_containers(project_name: str) -> Command:
    """Every container of the project, running or not: one line each, "ID STATE SERVICE NAME"."""
    return Command(
        (
            "docker",
            "ps",
            "--all",
            "--no-trunc",
            "--format",
            '{{.ID}} {{.State}} {{.Label "com.docker.compose.service"}} {{.Names}}',
            "--filter",
            f"label=com.docker.compose.project={project_name}",
        )
    )


STOPPED_STATES = ("exited", "created", "dead")


@dataclass(frozen=True)
class Containers:
    """A project's containers by service: running (ID -> name) and stopped (IDs)."""

    running: dict[str, dict[str, str]]
    stopped: dict[str, list[str]]
    skipped: tuple[str, ...] = ()  # why lines of the listing were not trusted

    def running_of(self, service: str) -> dict[str, str]:
        return dict(self.running.get(service, {}))


def parse_project_containers(text: str) -> Containers:
    """Parse project_containers output; a restarting or paused container counts as running.

    The listing is the server's: a line is kept only when its ID, state, service and name have
    Docker's shape (IDs go into `docker stop`/`docker rm`, names into messages); the others are skipped
    and said why in `skipped`. A line without a service label is no compose container: left out.
    """
    running: dict[str, dict[str, str]] = {}
    stopped: dict[str, list[str]] = {}
    skipped: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        words = line.removesuffix("\r").split(" ", 3)
        if len(words) < 4:
            continue
        problem = _listed_problem(*words)
        if problem:
            skipped.append(f"line {number}: {problem}")
            continue
        container, state, service, name = words
        if state in STOPPED_STATES:
            stopped.setdefault(service, []).append(container)
        else:
            running.setdefault(service, {})[container] = name.strip()
    return Containers(running, stopped, tuple(skipped))


def _listed_problem(container: str, state: str, service: str, name: str) -> str:
    """Why a line of the container listing is not one Docker writes ("" when it is)."""
    if not docker.CONTAINER_ID_RE.fullmatch(container):
        return "the ID is not a container ID"
    if state not in docker.STATES:
        return "the state is not a container state"
    if not docker.SERVICE_NAME_RE.fullmatch(service):
        return "the service is not a service name"
    if not all(docker.CONTAINER_NAME_RE.fullmatch(n) for n in name.strip().split(",")):
        return "the name is not a container name"
    return ""


@dataclass(frozen=True)
class BuildSpec:
    context: str
    dockerfile: str = ""
    target: str = ""
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """What tagship needs to know about the deployed service, from the rendered config."""

    name: str
    image: str
    build: BuildSpec | None
    container_name: str = ""


def parse_config(text: str) -> dict[str, Any]:
    """Parse `docker compose config --format json` output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(t("compose.cannot_read_compose_configuration", exc=exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ConfigError(t("compose.compose_configuration_has_no"))
    return data


def pick_service(config: dict[str, Any], wanted: str) -> str:
    """The configured service, or the one service with a build section."""
    services: dict[str, Any] = config["services"]
    if wanted:
        if wanted not in services:
            known = ", ".join(sorted(services))
            raise ConfigError(
                t("compose.unknown_service", wanted=wanted), hint=t("compose.compose_project_has", known=known)
            )
        return wanted
    built = sorted(name for name, svc in services.items() if isinstance(svc, dict) and "build" in svc)
    if len(built) == 1:
        return built[0]
    if "app" in services:
        return "app"
    choices = ", ".join(built or sorted(services))
    raise ConfigError(t("compose.cannot_tell_which_service"), hint=t("compose.set_app_service_one", choices=choices))


def service_spec(config: dict[str, Any], name: str) -> ServiceSpec:
    """Extract the service's image, build section and container name."""
    svc: dict[str, Any] = config["services"][name]
    build = svc.get("build")
    spec = None
    if isinstance(build, dict):
        args = build.get("args") or {}
        spec = BuildSpec(
            context=str(build.get("context", ".")),
            dockerfile=str(build.get("dockerfile", "")),
            target=str(build.get("target", "")),
            args=tuple(sorted((str(k), "" if v is None else str(v)) for k, v in args.items())),
        )
    return ServiceSpec(
        name=name,
        image=str(svc.get("image", "")),
        build=spec,
        container_name=str(svc.get("container_name", "")),
    )


@dataclass(frozen=True)
class ImageVars:
    """How the raw compose file spells the service's image: which .env keys hold name and tag."""

    name_key: str = ""
    tag_key: str = ""
    literal_repo: str = ""

    @property
    def fixed(self) -> bool:
        """The image is spelled out with a fixed tag (`registry/ns/app:latest`): nothing comes from .env."""
        return bool(self.literal_repo) and not self.tag_key


def image_vars(raw_image: str) -> ImageVars:
    """Recognise `${NAME}:${TAG}`, `repo/name:${TAG}` or a fixed `repo/name[:tag][@digest]` in the
    un-interpolated image value."""
    text = raw_image.strip()
    match = _IMAGE_VARS_RE.match(text)
    if match:
        return ImageVars(name_key=match.group(1), tag_key=match.group(2))
    match = _TAG_VAR_RE.match(text)
    if match:
        return ImageVars(tag_key=match.group("tag"), literal_repo=match.group("repo"))
    if text and "$" not in text:
        return ImageVars(literal_repo=image_repository(text))
    return ImageVars()


def image_repository(ref: str) -> str:
    """`reg:5000/ns/app` of `reg:5000/ns/app:tag@sha256:…` (a port's colon is not a tag's)."""
    name = ref.split("@", 1)[0]
    repo, colon, tag = name.rpartition(":")
    return repo if colon and "/" not in tag else name


def image_tag(ref: str) -> str:
    """`tag` of `repo:tag@sha256:…` ("" when the reference names no tag)."""
    name = ref.split("@", 1)[0]
    _, colon, tag = name.rpartition(":")
    return tag if colon and "/" not in tag else ""


def normalized_name(name: str) -> str:
    """A compose project name as Compose normalises it: lower case, only a-z 0-9 _ -."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def files_named(env_text: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The files COMPOSE_FILE names, as Compose reads it: the environment wins over .env, entries are
    split by COMPOSE_PATH_SEPARATOR (default ":"); tagship's own override is not the user's."""
    value = environ.get("COMPOSE_FILE") or envfile.get_value(env_text, "COMPOSE_FILE") or ""
    separator = environ.get("COMPOSE_PATH_SEPARATOR") or envfile.get_value(env_text, "COMPOSE_PATH_SEPARATOR") or ":"
    return tuple(name for name in value.split(separator) if name and name != "compose.tagship.yaml")


def declares_name(texts: list[str]) -> bool:
    """Whether any of the compose files sets the project's `name:` (Compose's rendering always has
    one: the directory's when no file sets it)."""
    for text in texts:
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError):  # Compose rendered them: nothing tagship reads is lost
            continue
        if isinstance(data, dict) and data.get("name"):
            return True
    return False


def find_file(names: list[str]) -> str | None:
    """The compose file Compose itself would pick among the names present."""
    for candidate in CANDIDATE_FILES:
        if candidate in names:
            return candidate
    return None
