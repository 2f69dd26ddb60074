"""What `tagship status` reads on a server: the app's containers and the proxy's, and drift (parsers, pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tagship.builders import docker
from tagship.builders.untrusted import printable
from tagship.messages import t

ABSENT = "absent"  # the state of a container that does not exist


@dataclass(frozen=True)
class ContainerState:
    """One container as `docker inspect` describes it; every field came from the server."""

    name: str
    service: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    image: str  # the reference it was created from (its image ID when Docker does not say)
    image_id: str

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting", "paused")


def parse_inspected(text: str) -> list[ContainerState]:
    """The containers of `docker inspect --type container ID…` output, by service then name; records
    without Docker's shape are skipped (the server's output is untrusted: docker.parse_inspect)."""
    return states_of(docker.parse_inspect(text)[0])


def states_of(entries: list[dict[str, Any]]) -> list[ContainerState]:
    """Checked `docker inspect` records (docker.parse_inspect) as container states, by service then name."""
    return sorted((_container(entry) for entry in entries), key=lambda c: (c.service, c.name))


def _container(entry: dict[str, Any]) -> ContainerState:
    state = _dict(entry.get("State"))
    config = _dict(entry.get("Config"))
    labels = _dict(config.get("Labels"))
    image_id = _text(entry.get("Image"))
    return ContainerState(
        name=_text(entry.get("Name")).lstrip("/"),
        service=_text(labels.get("com.docker.compose.service")) or _service_from_name(_text(entry.get("Name"))),
        state=_text(state.get("Status")) or ("running" if state.get("Running") is True else "exited"),
        health=_text(_dict(state.get("Health")).get("Status")),
        image=_text(config.get("Image")) or image_id,
        image_id=image_id,
    )


def _service_from_name(name: str) -> str:
    """PROJECT-SERVICE-N, Compose's default name, when the container carries no service label."""
    parts = name.lstrip("/").split("-")
    return "-".join(parts[1:-1]) if len(parts) >= 3 and parts[-1].isdigit() else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_container_state(text: str) -> str:
    """The state of one container from `docker container inspect NAME` output (ABSENT if none is there)."""
    found = parse_inspected(text)
    return found[0].state if found else ABSENT


def container_drift(service: str, containers: list[ContainerState], release_image_id: str, version: str) -> list[str]:
    """The deployed service's running containers that run an image other than the current release's."""
    shown = printable(version)
    if not release_image_id:
        return [t("status.image_missing", version=shown)]
    return [
        t(
            "status.runs_other",
            name=printable(c.name),
            service=printable(service),
            image=printable(c.image),
            version=shown,
        )
        for c in containers
        if c.service == service and c.running and c.image_id != release_image_id
    ]


def env_drift(tag_key: str, env_value: str, last_succeeded: str) -> list[str]:
    """The .env's tag differs from the last release that succeeded (someone edited it, or a run died midway)."""
    if not tag_key or not last_succeeded or env_value == last_succeeded:
        return []
    return [
        t(
            "status.env_drift",
            key=printable(tag_key),
            value=printable(env_value) or t("status.nothing"),
            last=printable(last_succeeded),
        )
    ]
