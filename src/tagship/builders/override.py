"""The compose override tagship writes so two versions of a web service can run side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FILE_NAME = "compose.tagship.yaml"


@dataclass(frozen=True)
class PublishedPort:
    """A port the user's compose file published; the proxy publishes it instead."""

    published: int
    target: int
    host_ip: str = ""
    protocol: str = "tcp"


def published_ports(service: dict[str, Any]) -> tuple[PublishedPort, ...]:
    """The service's published ports from `docker compose config --format json`."""
    ports: list[PublishedPort] = []
    for entry in service.get("ports") or []:
        if not isinstance(entry, dict) or not entry.get("published"):
            continue
        published = str(entry["published"])
        if not published.isdigit():  # a range like 8000-8010 cannot be proxied one to one
            raise ValueError(f"port range {published!r} cannot be proxied")
        ports.append(
            PublishedPort(
                int(published),
                int(entry.get("target", 0)),
                str(entry.get("host_ip") or ""),
                str(entry.get("protocol") or "tcp"),
            )
        )
    return tuple(ports)


def render(web: str, web_networks: list[str], network: str, app: str) -> str:
    """YAML for the override: no fixed container name, no host ports, one more network."""
    nets = "".join(f"      {name}: {{}}\n" for name in sorted(set(web_networks) | {network}))
    return (
        '# Written by tagship on every deploy; do not edit (README: "The compose override").\n'
        "# It lets the old and new versions of the web service run side by side: the container\n"
        "# name is left to compose, and the host ports are published by tagship's proxy instead.\n"
        "services:\n"
        f"  {web}:\n"
        "    container_name: !reset null\n"
        "    ports: !reset []\n"
        "    labels:\n"
        f"      tagship.app: {_yaml_string(app)}\n"
        "    networks:\n"
        f"{nets}"
        "networks:\n"
        f"  {network}:\n"
        "    external: true\n"
        f"    name: {network}\n"
    )


def _yaml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
