"""Command builders and parsers for tagship's Caddy proxy container on each server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .command import Command, sh
from .override import PublishedPort

CONFIG_DIR = "/etc/tagship"
VOLUME = "tagship-proxy-config"
FRONT_ADMIN = "localhost:2019"
BACK_ADMIN = "localhost:2020"
BACK_PORT = 2080

# Two Caddy processes run in the proxy container. The front one owns the public ports and TLS and
# is reloaded only when an app's ports or host names change. It forwards every request, without
# keep-alive, to the back one, which routes each app to its current container and is reloaded on
# every switch. A reload closes the reloaded server's idle keep-alive connections; clients keep
# theirs to the front, so a switch never drops a client's connection.
_FRONT_MAIN = ("{", f"\tadmin {FRONT_ADMIN}", "\tgrace_period 60s", "}", "import front/*.caddy")
_BACK_MAIN = (
    "{",
    f"\tadmin {BACK_ADMIN}",
    "\tgrace_period 60s",
    "\tauto_https off",
    "}",
    f"http://:{BACK_PORT} {{",
    "\timport back/*.caddy",
    "\thandle {",
    '\t\trespond "no such app" 502',
    "\t}",
    "}",
)


def _printf(lines: tuple[str, ...], path: str) -> str:
    quoted = " ".join("'" + line.replace("'", "'\\''") + "'" for line in lines)
    return f"[ -e {path} ] || printf '%s\\n' {quoted} > {path}"


# The entry point writes the main files on first start, runs the back Caddy (if it ever exits,
# the container stops, so Docker's restart policy starts both again), then the front one.
ENTRY = "\n".join(
    (
        "set -e",
        f"mkdir -p {CONFIG_DIR}/front {CONFIG_DIR}/back",
        f"cd {CONFIG_DIR}",
        _printf(_FRONT_MAIN, "front.caddyfile"),
        _printf(_BACK_MAIN, "back.caddyfile"),
        "(caddy run --config back.caddyfile --adapter caddyfile; kill 1) &",
        "exec caddy run --config front.caddyfile --adapter caddyfile",
    )
)


@dataclass(frozen=True)
class ProxySettings:
    name: str
    image: str
    network: str


def ensure_network(network: str) -> Command:
    return sh(
        'docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1"', network, name="ensure network"
    )


def inspect(name: str) -> Command:
    return Command(("docker", "container", "inspect", name))


def run(settings: ProxySettings, ports: tuple[PublishedPort, ...]) -> Command:
    """Start the proxy container publishing every port of every app it serves."""
    argv = [
        "docker",
        "run",
        "--detach",
        "--name",
        settings.name,
        "--restart",
        "unless-stopped",
        "--network",
        settings.network,
        "--label",
        "tagship.proxy=1",
        "--volume",
        f"{VOLUME}:{CONFIG_DIR}",
        "--entrypoint",
        "sh",
    ]
    for port in sorted(ports, key=lambda p: (p.published, p.host_ip)):
        bind = f"{port.host_ip}:" if port.host_ip else ""
        argv += ["--publish", f"{bind}{port.published}:{port.published}"]
    argv += [settings.image, "-c", ENTRY]
    return Command(tuple(argv), labels=((ENTRY, "<proxy entry script>"),))


def remove(name: str) -> Command:
    return Command(("docker", "rm", "--force", name))


def write_site(proxy: str, tier: str, app: str, text: str) -> Command:
    """Replace one app's snippet for the front or back Caddy (atomically, by rename)."""
    return Command(
        (
            "docker",
            "exec",
            "--interactive",
            proxy,
            "sh",
            "-c",
            'cat > "$1.tmp" && mv "$1.tmp" "$1"',
            "sh",
            f"{CONFIG_DIR}/{tier}/{app}.caddy",
        ),
        stdin=text.encode(),
        stdin_note=f"{tier} Caddy snippet for {app}",
    )


def read_site(proxy: str, tier: str, app: str) -> Command:
    return Command(("docker", "exec", proxy, "cat", f"{CONFIG_DIR}/{tier}/{app}.caddy"))


def list_sites(proxy: str) -> Command:
    """Every app's front snippet, each after a line `== NAME.caddy`."""
    script = f'for f in {CONFIG_DIR}/front/*.caddy; do [ -e "$f" ] && echo "== ${{f##*/}}" && cat "$f"; done; true'
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


def reload(proxy: str, tier: str) -> Command:
    """Graceful reload of one tier: new requests use the new config, requests in flight finish."""
    admin = FRONT_ADMIN if tier == "front" else BACK_ADMIN
    return Command(
        (
            "docker",
            "exec",
            proxy,
            "caddy",
            "reload",
            "--config",
            f"{CONFIG_DIR}/{tier}.caddyfile",
            "--adapter",
            "caddyfile",
            "--address",
            admin,
        )
    )


def probe(proxy: str, url: str, timeout: int = 2) -> Command:
    """An HTTP GET from inside the proxy (the official image has busybox wget, no curl)."""
    return Command(("docker", "exec", proxy, "wget", "-q", "-T", str(timeout), "-O", "/dev/null", url))


def upstreams(proxy: str) -> Command:
    url = f"http://{BACK_ADMIN}/reverse_proxy/upstreams"
    return Command(("docker", "exec", proxy, "wget", "-q", "-O", "-", url))


def front_site(app: str, ports: tuple[PublishedPort, ...], hosts: tuple[str, ...]) -> str:
    """The app's public addresses (ports, or host names with automatic HTTPS), forwarded to the back tier."""
    addresses = list(hosts) or [f":{port.published}" for port in ports]
    blocks = [
        f"{address} {{\n"
        f"\treverse_proxy 127.0.0.1:{BACK_PORT} {{\n"
        f"\t\theader_up X-Tagship-App {app}\n"
        # A connection the back tier accepts in the instant its old config shuts down is reset
        # unanswered; the front retries it (GET and HEAD; any method when the dial itself failed).
        "\t\tlb_try_duration 5s\n"
        "\t\tlb_try_interval 10ms\n"
        "\t\tlb_retry_match {\n"
        "\t\t\tmethod GET HEAD\n"
        "\t\t}\n"
        "\t\ttransport http {\n"
        "\t\t\tkeepalive off\n"
        "\t\t}\n"
        "\t}\n"
        "}\n"
        for address in addresses
    ]
    return f"# tagship: {app}\n" + "".join(blocks)


def back_route(app: str, upstream: str) -> str:
    """Route the app's requests to one container (host:port); retried dials cover a restarting container."""
    return (
        f"# tagship: {app}\n"
        f"@app_{app} header X-Tagship-App {app}\n"
        f"handle @app_{app} {{\n"
        f"\treverse_proxy {upstream} {{\n"
        "\t\theader_up -X-Tagship-App\n"
        "\t\tlb_try_duration 5s\n"
        "\t}\n"
        "}\n"
    )


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
