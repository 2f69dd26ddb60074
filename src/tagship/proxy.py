"""Command builders and parsers for tagship's Caddy proxy container on each server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .command import Command, sh
from .override import PublishedPort

CONFIG_DIR = "/etc/tagship"
VOLUME = "tagship-proxy-config"
ADMIN = "http://localhost:2019"

# The proxy's entry point creates its main Caddyfile on first start, then runs Caddy.
# grace_period bounds how long a reload waits for requests in flight on the old config.
_ENTRY = f"""set -e
mkdir -p {CONFIG_DIR}/apps
if [ ! -e {CONFIG_DIR}/Caddyfile ]; then
  printf '%s\\n' '{{' '	admin localhost:2019' '	grace_period 60s' '}}' 'import apps/*.caddy' \\
    > {CONFIG_DIR}/Caddyfile
fi
exec caddy run --config {CONFIG_DIR}/Caddyfile --adapter caddyfile
"""


@dataclass(frozen=True)
class ProxySettings:
    name: str
    image: str
    network: str


def ensure_network(network: str) -> Command:
    return sh('docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1"', network,
              name="ensure network")  # fmt: skip


def inspect(name: str) -> Command:
    return Command(("docker", "container", "inspect", name))


def run(settings: ProxySettings, ports: tuple[PublishedPort, ...]) -> Command:
    """Start the proxy container publishing every port of every app it serves."""
    argv = ["docker", "run", "--detach", "--name", settings.name, "--restart", "unless-stopped",
            "--network", settings.network, "--label", "tagship.proxy=1",
            "--volume", f"{VOLUME}:{CONFIG_DIR}", "--entrypoint", "sh"]  # fmt: skip
    for port in sorted(ports, key=lambda p: (p.published, p.host_ip)):
        bind = f"{port.host_ip}:" if port.host_ip else ""
        argv += ["--publish", f"{bind}{port.published}:{port.published}"]
    argv += [settings.image, "-c", _ENTRY]
    return Command(tuple(argv), script_name="")


def remove(name: str) -> Command:
    return Command(("docker", "rm", "--force", name))


def write_site(proxy: str, app: str, text: str) -> Command:
    """Replace one app's Caddy snippet inside the proxy (atomically, by rename)."""
    return Command(
        ("docker", "exec", "--interactive", proxy, "sh", "-c", 'cat > "$1.tmp" && mv "$1.tmp" "$1"', "sh",
         f"{CONFIG_DIR}/apps/{app}.caddy"),
        stdin=text.encode(), stdin_note=f"Caddy site for {app}",
    )  # fmt: skip


def read_site(proxy: str, app: str) -> Command:
    return Command(("docker", "exec", proxy, "cat", f"{CONFIG_DIR}/apps/{app}.caddy"))


def list_sites(proxy: str) -> Command:
    """Every app's snippet, each after a line `== NAME.caddy`."""
    script = f'for f in {CONFIG_DIR}/apps/*.caddy; do [ -e "$f" ] && echo "== ${{f##*/}}" && cat "$f"; done; true'
    return Command(("docker", "exec", proxy, "sh", "-c", script))


def site_addresses(listing: str) -> dict[str, set[str]]:
    """App name -> the site addresses its snippet serves, from list_sites output."""
    found: dict[str, set[str]] = {}
    app = ""
    for line in listing.splitlines():
        if line.startswith("== ") and line.endswith(".caddy"):
            app = line[3:-6]
            found[app] = set()
        elif app and line.endswith("{") and line[:1] not in ("", " ", "\t", "#", "}"):
            found[app].add(line[:-1].strip())
    return found


def reload(proxy: str) -> Command:
    """Graceful reload: new requests use the new upstream, requests in flight finish."""
    return Command(("docker", "exec", proxy, "caddy", "reload", "--config", f"{CONFIG_DIR}/Caddyfile",
                    "--adapter", "caddyfile"))  # fmt: skip


def probe(proxy: str, url: str, timeout: int = 2) -> Command:
    """An HTTP GET from inside the proxy (the official image has busybox wget, no curl)."""
    return Command(("docker", "exec", proxy, "wget", "-q", "-T", str(timeout), "-O", "/dev/null", url))


def upstreams(proxy: str) -> Command:
    return Command(("docker", "exec", proxy, "wget", "-q", "-O", "-", f"{ADMIN}/reverse_proxy/upstreams"))


def site(app: str, ports: tuple[PublishedPort, ...], hosts: tuple[str, ...], upstream_host: str) -> str:
    """The Caddy snippet routing an app's ports (or host names) to one container."""
    blocks = []
    addresses = list(hosts) or [f":{port.published}" for port in ports]
    target_port = ports[0].target if ports else 80
    for address in addresses:
        port = next((p for p in ports if f":{p.published}" == address), None)
        target = port.target if port else target_port
        blocks.append(f"{address} {{\n\treverse_proxy {upstream_host}:{target} {{\n\t\tlb_try_duration 5s\n\t}}\n}}\n")
    return f"# tagship: {app}\n" + "".join(blocks)


def bound_ports(inspected: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """(host ip, host port) pairs a container publishes, from docker inspect."""
    found: set[tuple[str, int]] = set()
    for container in inspected:
        bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
        for entries in bindings.values():
            for entry in entries or []:
                if str(entry.get("HostPort", "")).isdigit():
                    found.add((str(entry.get("HostIp") or ""), int(entry["HostPort"])))
    return found


def in_flight(upstreams_json: str, address: str) -> int:
    """Requests Caddy has in flight to an upstream address (0 if unknown)."""
    try:
        entries = json.loads(upstreams_json or "[]")
    except json.JSONDecodeError:
        return 0
    return sum(int(e.get("num_requests", 0)) for e in entries if e.get("address") == address)
