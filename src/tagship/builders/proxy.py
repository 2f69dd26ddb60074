"""Command builders and parsers for tagship's Caddy proxy container on each server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tagship.builders.command import Command, sh
from tagship.builders.override import PublishedPort

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


# Put an app's back route and front addresses in place and reload each tier gracefully, in one
# exec. Each tier prints "TIER same" (identical snippet: no reload, since a front reload closes
# clients' idle keep-alive connections), "TIER changed" (the previous snippet kept as .prev for
# the undo) or "TIER refused" (Caddy rejected it: the previous snippet is back in place). If the
# front is refused the back goes back too. Last comes the upstreams listing, read after the back
# reload returned: from then on no new request reaches the old container, so a zero there means
# nothing is left to drain.
_SITES = f"""set -u
app=$1
swap() {{
  f={CONFIG_DIR}/$1/$app.caddy
  printf '%s' "$2" > "$f.new" || return 1
  rm -f -- "$f.prev"
  if [ -e "$f" ] && cmp -s -- "$f" "$f.new"; then rm -f -- "$f.new"; echo "$1 same"; return 0; fi
  if [ -e "$f" ]; then cp -p -- "$f" "$f.prev"; fi
  mv -- "$f.new" "$f"
  if caddy reload --config "{CONFIG_DIR}/$1.caddyfile" --adapter caddyfile --address "$3" >&2; then
    echo "$1 changed"; return 0
  fi
  unswap "$1" "$3" >/dev/null 2>&1
  echo "$1 refused"; return 1
}}
unswap() {{
  f={CONFIG_DIR}/$1/$app.caddy
  if [ -e "$f.prev" ]; then mv -- "$f.prev" "$f"; else rm -f -- "$f"; fi
  caddy reload --config "{CONFIG_DIR}/$1.caddyfile" --adapter caddyfile --address "$2" >&2
}}
"""

_SWITCH = (
    _SITES
    + f"""swap back "$2" {BACK_ADMIN} || exit 1
if ! swap front "$3" {FRONT_ADMIN}; then unswap back {BACK_ADMIN}; exit 1; fi
echo upstreams
wget -q -O - http://{BACK_ADMIN}/reverse_proxy/upstreams || true
"""
)

_UNSWITCH = (
    _SITES
    + f"""for tier in "$@"; do
  case $tier in back) unswap back {BACK_ADMIN} ;; front) unswap front {FRONT_ADMIN} ;; esac || exit 1
done
"""
)


def switch_sites(proxy: str, app: str, back: str, front: str) -> Command:
    """Route the app to its new container (back tier) and publish its addresses (front tier)."""
    argv = ("docker", "exec", proxy, "sh", "-c", _SWITCH, "sh", app, back, front)
    return Command(argv, labels=((_SWITCH, "<switch routes>"), (back, "<back route>"), (front, "<front site>")))


def unswitch_sites(proxy: str, app: str, tiers: tuple[str, ...]) -> Command:
    """Undo switch_sites for the tiers it changed (back last: it routes to the old container again)."""
    argv = ("docker", "exec", proxy, "sh", "-c", _UNSWITCH, "sh", app, *tiers)
    return Command(argv, labels=((_UNSWITCH, "<restore routes>"),))


@dataclass(frozen=True)
class Switched:
    """What switch_sites reported: the tiers it changed, and the upstreams listing right after."""

    changed: tuple[str, ...]
    refused: str
    upstreams: str


def parse_switch(stdout: str) -> Switched:
    head, _, upstreams = stdout.partition("upstreams\n")
    changed, refused = [], ""
    for line in head.splitlines():
        tier, _, status = line.partition(" ")
        if status == "changed":
            changed.append(tier)
        elif status == "refused":
            refused = tier
    return Switched(tuple(changed), refused, upstreams)


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


# Probe until the first 2xx, at most $3 tries $2 seconds apart, inside the proxy: one exec per
# batch instead of one per try, so the switch follows the app's boot closely.
_PROBE_LOOP = """i=0
while [ "$i" -lt "$3" ]; do
  wget -q -T 2 -O /dev/null "$1" 2>/dev/null && exit 0
  i=$((i + 1))
  sleep "$2"
done
exit 1
"""


def probe_until(proxy: str, url: str, interval: float, tries: int) -> Command:
    """Succeeds at the first 2xx from url, tried up to `tries` times `interval` seconds apart."""
    return Command(
        ("docker", "exec", proxy, "sh", "-c", _PROBE_LOOP, "sh", url, f"{interval:g}", str(tries)),
        labels=((_PROBE_LOOP, "<probe until 2xx>"),),
    )


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


def back_route(app: str, upstream: str, draining: tuple[str, ...] = ()) -> str:
    """Route the app's requests to one container (host:port); retried dials cover a restarting container.

    draining: the containers being replaced. A route that never matches keeps them in Caddy's
    upstream pool across the reload, so the requests still in flight to them stay counted
    (`upstreams`); without it Caddy forgets them at the reload and a drain could not wait.
    """
    text = (
        f"# tagship: {app}\n"
        f"@app_{app} header X-Tagship-App {app}\n"
        f"handle @app_{app} {{\n"
        f"\treverse_proxy {upstream} {{\n"
        "\t\theader_up -X-Tagship-App\n"
        "\t\tlb_try_duration 5s\n"
        "\t}\n"
        "}\n"
    )
    if draining:
        text += f"@drain_{app} not path *\nhandle @drain_{app} {{\n\treverse_proxy {' '.join(draining)}\n}}\n"
    return text


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
