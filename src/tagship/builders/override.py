"""The compose override tagship writes so two versions of a web service can run side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tagship.messages import t

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
            raise ValueError(t("switch.port_range", published=published))
        ports.append(
            PublishedPort(
                int(published),
                int(entry.get("target", 0)),
                str(entry.get("host_ip") or ""),
                str(entry.get("protocol") or "tcp"),
            )
        )
    return tuple(ports)


@dataclass(frozen=True)
class Gate:
    """The services that call the web service by name (its consumers) reach it through the gate."""

    service: str  # the gate's service name in the project
    image: str
    directory: str  # the gate's config directory, relative to the project directory
    consumers: tuple[str, ...]


def render(
    web: str,
    web_networks: list[str],
    network: str,
    app: str,
    gate: Gate | None = None,
    image: str = "",
    workers: tuple[str, ...] = (),
    co_webs: dict[str, list[str]] | None = None,
) -> str:
    """YAML for the override: no fixed container name, no host ports, one more network; with a gate,
    the web service's consumers resolve its name to the gate instead of to its containers; with an
    image (a compose file that spells out a fixed tag), the web service and its workers run it.

    co_webs: the other services of the release's image that publish ports (name -> their networks),
    switched with the web service: the same treatment, labelled with their own route."""
    nets = _nets(web_networks, network)
    linked = gate.consumers if gate else ()
    images = "".join(_service_image(w, image) for w in workers if w not in linked) if image else ""
    gated = _gate(web, nets, app, gate, image, workers) if gate else ""
    others = "".join(
        _switched(name, _nets(networks, network), route(app, name, web), image)
        for name, networks in sorted((co_webs or {}).items())
    )
    return _web(web, nets, app, image) + others + images + gated + _networks(network)


def route(app: str, service: str, web: str) -> str:
    """The name of a service's route in the proxy: the app's name for the web service, APP.SERVICE
    for another one switched with it (a compose project name holds no dot)."""
    return app if service == web else f"{app}.{service}"


def _nets(networks: list[str], network: str) -> str:
    return "".join(f"      {name}: {{}}\n" for name in sorted(set(networks) | {network}))


def render_images(services: tuple[str, ...], image: str) -> str:
    """YAML for the override of the plain switch (no proxy) of a compose file that spells out a fixed
    tag: only the release's image, for the web service (first) and its workers."""
    return (
        '# Written by tagship on every deploy; do not edit (README: "The compose override").\n'
        "# The compose file spells out a fixed image tag: this sets the release's image instead.\n"
        "services:\n" + "".join(_service_image(name, image) for name in services)
    )


def web_image(text: str) -> str:
    """The image the override sets for the web service (its first service), "" if none."""
    try:
        data = yaml.load(text, Loader=_TolerantLoader)  # a SafeLoader that skips compose's own tags
    except yaml.YAMLError:
        return ""
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        return ""
    first = next(iter(services.values()))
    return str(first.get("image") or "") if isinstance(first, dict) else ""


class _TolerantLoader(yaml.SafeLoader):
    """SafeLoader that reads compose's own tags (`!reset`, `!override`) as plain values."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _service_image(name: str, image: str) -> str:
    return f"  {name}:\n    image: {_yaml_string(image)}\n"


def _web(web: str, nets: str, app: str, image: str = "") -> str:
    return (
        '# Written by tagship on every deploy; do not edit (README: "The compose override").\n'
        "# It lets the old and new versions of the web service run side by side: the container\n"
        "# name is left to compose, and the host ports are published by tagship's proxy instead.\n"
        "services:\n" + _switched(web, nets, app, image)
    )


def _switched(name: str, nets: str, label: str, image: str = "") -> str:
    image_line = f"    image: {_yaml_string(image)}\n" if image else ""
    return (
        f"  {name}:\n"
        f"{image_line}"
        "    container_name: !reset null\n"
        "    ports: !reset []\n"
        "    labels:\n"
        f"      tagship.app: {_yaml_string(label)}\n"
        "    networks:\n"
        f"{nets}"
    )


def _gate(web: str, nets: str, app: str, gate: Gate, image: str = "", workers: tuple[str, ...] = ()) -> str:
    # Compose gives every container of a service its name as a network alias, new ones too, as
    # soon as they start: a consumer resolving the name would reach a release that has not passed
    # the health gate. A link is an alias seen by the linking container alone, and it wins over
    # the service name there: the consumers reach the gate, which forwards to tagship's proxy.
    image_line = f"    image: {_yaml_string(image)}\n" if image else ""
    links = "".join(
        f"  {consumer}:\n"
        f"{image_line if consumer in workers else ''}"
        f"    links:\n      - {_yaml_string(f'{gate.service}:{web}')}\n"
        for consumer in gate.consumers
    )
    return (
        f"  {gate.service}:\n"
        f"    image: {_yaml_string(gate.image)}\n"
        '    command: ["caddy", "run", "--config", "/etc/tagship-gate/Caddyfile", "--adapter", "caddyfile"]\n'
        "    restart: unless-stopped\n"
        "    volumes:\n"
        f"      - {_yaml_string(f'./{gate.directory}:/etc/tagship-gate:ro')}\n"
        "    labels:\n"
        f"      tagship.gate: {_yaml_string(app)}\n"
        "    networks:\n"
        f"{nets}"
        f"{links}"
    )


def _networks(network: str) -> str:
    return f"networks:\n  {network}:\n    external: true\n    name: {network}\n"


def consumers(services: dict[str, Any], web: str, named: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The services that call the web service by name: app.consumers if set (may be empty), else
    every service that depends on it (a reverse proxy in front of an app declares that)."""
    if named is not None:
        return tuple(sorted(n for n in named if n in services and n != web))
    found = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if name != web and web in (depends if isinstance(depends, dict | list) else ()):
            found.append(name)
    return tuple(sorted(found))


def exposed_ports(service: dict[str, Any]) -> tuple[int, ...]:
    """The container ports a service exposes (`expose:`), as numbers."""
    found = []
    for entry in service.get("expose") or []:
        number = str(entry).split("/", 1)[0]
        if number.isdigit():
            found.append(int(number))
    return tuple(found)


def _yaml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
