"""Command builders and parsers for tagship's Caddy proxy container on each server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tagship.builders import scripts
from tagship.builders.command import Command, sh
from tagship.builders.override import PublishedPort

CONFIG_DIR = "/etc/tagship"
VOLUME_SUFFIX = "-config"  # the proxy's config volume is named after it: tagship-proxy-config
FRONT_ADMIN = "localhost:2019"
BACK_ADMIN = "localhost:2020"
BACK_PORT = 2080
RUN_DIR = "/run/tagship"  # a volume of the proxy's: the back tier's socket
BACK_SOCKET = f"{RUN_DIR}/back.sock"
RUN_SUFFIX = "-run"  # the socket volume is named after the proxy: tagship-proxy-run

# What holds clients' connections never resets one on a switch.
# - Each published port has a listener of its own: an HAProxy container (run_listener) that sends
#   requests straight to the app's containers, one hop. A switch gives it the new containers with a
#   seamless reload: the old worker finishes what it holds, and with idle-close-on-response an idle
#   keep-alive connection gets one more answer and a close, never a reset. A Caddy reload does reset
#   them (measured: about 4 to 9 failed requests per reload with 8 keep-alive clients), and a listener
#   per port means adding an app or a port never touches what serves the others.
# - Host names (80/443, automatic HTTPS) share the front Caddy in the proxy container, reloaded
#   when an app's host names change; it forwards to the back tier, a Caddy in the same container
#   that routes each app to its current containers and is reloaded on every switch. The gate (calls
#   by service name) goes through the back tier too.
_FRONT_MAIN = ("{", f"\tadmin {FRONT_ADMIN}", "\tgrace_period 60s", "}", "import front/*.caddy")
_BACK_MAIN = (
    "{",
    f"\tadmin {BACK_ADMIN}",
    "\tgrace_period 60s",
    "\tauto_https off",
    "}",
    f"http://:{BACK_PORT} {{",
    # Listeners forward through the socket (on the same machine it costs about half of a TCP
    # connection across the Docker bridge); the gate, on the app's networks, through the port.
    f"\tbind 0.0.0.0 unix/{BACK_SOCKET}",
    "\timport back/*.caddy",
    "\thandle {",
    '\t\trespond "no such app" 502',
    "\t}",
    "}",
)


# The entry point (scripts/proxy_entry.sh) writes these main files on the container's first start,
# runs the back Caddy, then the front one.
ENTRY = scripts.load("proxy_entry")
FRONT_MAIN = "\n".join(_FRONT_MAIN)
BACK_MAIN = "\n".join(_BACK_MAIN)


@dataclass(frozen=True)
class ProxySettings:
    name: str
    image: str
    network: str


def ensure_network(network: str) -> Command:
    return sh(scripts.load("proxy_ensure_network"), network, name="ensure network")


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
        f"{settings.name}{VOLUME_SUFFIX}:{CONFIG_DIR}",  # two proxies on a server never share a config
        "--volume",
        f"{settings.name}{RUN_SUFFIX}:{RUN_DIR}",
        "--entrypoint",
        "sh",
    ]
    for port in sorted(ports, key=lambda p: (p.published, p.host_ip)):
        bind = f"{port.host_ip}:" if port.host_ip else ""
        argv += ["--publish", f"{bind}{port.published}:{port.published}"]
    argv += [settings.image, "-c", ENTRY, "sh", CONFIG_DIR, FRONT_MAIN, BACK_MAIN, BACK_SOCKET]
    labels = ((ENTRY, "<proxy entry script>"), (FRONT_MAIN, "<front.caddyfile>"), (BACK_MAIN, "<back.caddyfile>"))
    return Command(tuple(argv), labels=labels)


LISTENER_LABEL = "tagship.listener"  # its value: the proxy the listener belongs to
LISTENER_PORT = 8080  # inside the container, above 1024: the official image runs HAProxy unprivileged
LISTENER_CONFIG = "/var/lib/haproxy/tagship/listener.cfg"
_LISTENER_ENTRY = scripts.load("listener_entry")
_LISTENER_ROUTE = scripts.load("listener_route")
_LISTENER_DRAIN = scripts.load("listener_drain")


def listener_name(proxy_name: str, port: PublishedPort) -> str:
    """The listener container of one published address: tagship-proxy-9876, tagship-proxy-127.0.0.1-9876."""
    bind = port.host_ip.replace(":", "_")  # an IPv6 address: Docker names allow no ':'
    return f"{proxy_name}-{bind}-{port.published}" if bind else f"{proxy_name}-{port.published}"


@dataclass(frozen=True)
class ListenerRoute:
    """Where a listener sends requests: the route's containers (host:port each, balanced), or, when
    servers is empty, the proxy's back tier, which knows the route's current containers (a listener
    started for an app that is not switched in this run)."""

    route: str
    servers: tuple[str, ...] = ()  # NAME:PORT each
    # NAME -> its address on the proxy's network: the listener starts with it and needs no DNS
    # answer at a reload (a name Docker's DNS does not know can stall it for seconds); Docker's DNS
    # then follows the name (a restarted container's new address).
    addresses: tuple[tuple[str, str], ...] = ()
    # NAME:PORT of containers that take the requests only while every one of servers is down: the
    # old release while rollout.watch watches the new one. Then servers are health-checked and one
    # that refuses a connection is marked down at once, so requests go to the old release while
    # tagship notices the crash and switches back.
    backups: tuple[str, ...] = ()


def listener_config(settings: ProxySettings, route: ListenerRoute, drain_timeout: float) -> str:
    """The HAProxy config of one port listener: one hop from the client to the app's containers."""
    if route.servers:
        known = dict(route.addresses)
        hosts = [server.rpartition(":")[0] for server in route.servers]
        checked = WATCHED_SERVER if route.backups else ""
        servers = [
            _server_line(f"s{n}", server, known.get(host, "")) + checked
            for n, (server, host) in enumerate(zip(route.servers, hosts, strict=True))
        ]
        servers += [
            _server_line(f"b{n}", server, known.get(server.rpartition(":")[0], "")) + " backup"
            for n, server in enumerate(route.backups)
        ]
    else:
        servers = [
            f"    http-request set-header X-Tagship-App {route.route}",
            f"    server back {settings.name}:{BACK_PORT}",
        ]
    lines = [
        f"# tagship listener: route {route.route}",
        "global",
        "    fd-hard-limit 65536",  # maxconn follows: about half of it, or of a lower limit of the engine
        "    tune.bufsize 65536",  # request headers up to about 64 KB (big cookies), as Caddy took them
        # A worker a reload replaced stops by then at the latest (tagship's drain waits as long).
        f"    hard-stop-after {max(1, round(drain_timeout))}s",
        "resolvers docker",  # Docker's DNS: a restarted container's new address is followed
        "    nameserver dns 127.0.0.11:53",
        "    hold valid 1s",
        "defaults",
        "    mode http",
        # On a reload, an idle keep-alive connection is not closed under a client that may be sending
        # on it: it gets one more answer from the old worker, with Connection: close.
        "    option idle-close-on-response",
        "    option forwardfor",
        # A connection a container does not take within a second is retried on another server at once
        # (the one that failed is marked down when watched): a container on this machine's bridge
        # answers in well under a millisecond, and a stopped or restarting one is a black hole that
        # each try would wait out. With 5 s and three tries on the same server, requests to a
        # watched release that crashed hung past a client's 10 s while the old release stood by.
        "    option redispatch 1",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    timeout connect 1s",
        "    timeout client 300s",
        "    timeout http-request 30s",
        # An idle client connection a reload left on the old worker holds the drain at most this long.
        "    timeout http-keep-alive 5s",
        "    timeout server 300s",
        "    timeout tunnel 1h",
        "    default-server init-addr libc,none resolvers docker resolve-prefer ipv4",
        "frontend listener",
        f"    bind :{LISTENER_PORT}",
        "    http-request set-header X-Forwarded-Proto http",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    default_backend route",
        "backend route",
        "    balance roundrobin",
        # An idle connection to a container serves any client once it has proved it can be reused.
        "    http-reuse aggressive",
        # A request that reached a container is replayed elsewhere only when it is safe to repeat.
        "    http-request disable-l7-retry unless METH_GET || METH_HEAD",
        *servers,
    ]
    return "\n".join(lines) + "\n"


# A watched server: checked every second, and marked down by the first connection it refuses.
WATCHED_SERVER = " check inter 1s fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down"


def _server_line(label: str, server: str, address: str) -> str:
    """One backend server (NAME:PORT), started at its known address when there is one."""
    line = f"    server {label} {server}"
    return f"{line} init-addr {address},libc,none" if address else line


def run_listener(
    settings: ProxySettings, listener_image: str, port: PublishedPort, route: ListenerRoute, drain_timeout: float
) -> Command:
    """Start the listener of one published port (HAProxy, its first route built in)."""
    bind = f"{port.host_ip}:" if port.host_ip else ""
    config = listener_config(settings, route, drain_timeout)
    argv = (
        "docker",
        "run",
        "--detach",
        "--name",
        listener_name(settings.name, port),
        "--restart",
        "unless-stopped",
        "--network",
        settings.network,
        "--label",
        f"{LISTENER_LABEL}={settings.name}",
        "--label",
        f"tagship.app={route.route}",
        "--publish",
        f"{bind}{port.published}:{LISTENER_PORT}",
        "--entrypoint",
        "sh",
        listener_image,
        "-c",
        _LISTENER_ENTRY,
        "sh",
        LISTENER_CONFIG,
        config,
    )
    return Command(argv, labels=((_LISTENER_ENTRY, "<listener entry>"), (config, f"<listener :{port.published}>")))


def route_listener(name: str, settings: ProxySettings, route: ListenerRoute, drain_timeout: float) -> Command:
    """Give a running listener a new route: a seamless HAProxy reload (listener_route.sh)."""
    config = listener_config(settings, route, drain_timeout)
    argv = ("docker", "exec", name, "sh", "-c", _LISTENER_ROUTE, "sh", LISTENER_CONFIG, config)
    return Command(argv, labels=((_LISTENER_ROUTE, "<route listener>"), (config, f"<{name} route>")))


def drain_listener(name: str, seconds: float) -> Command:
    """Succeeds once the listener's replaced workers have finished (at most `seconds`)."""
    argv = ("docker", "exec", name, "sh", "-c", _LISTENER_DRAIN, "sh", str(max(1, round(seconds))))
    return Command(argv, labels=((_LISTENER_DRAIN, "<wait for the old listener workers>"),))


def list_listeners(proxy_name: str) -> Command:
    """The listeners of one proxy: name, app and state, tab-separated, one per line."""
    template = '{{.Names}}\t{{.Label "tagship.app"}}\t{{.State}}'
    return Command(("docker", "ps", "--all", "--filter", f"label={LISTENER_LABEL}={proxy_name}", "--format", template))


@dataclass(frozen=True)
class Listener:
    name: str
    app: str
    running: bool


def parse_listeners(stdout: str) -> dict[str, Listener]:
    """Container name -> listener, from list_listeners output."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            found[parts[0]] = Listener(parts[0], parts[1], parts[2] == "running")
    return found


def remove(name: str) -> Command:
    return Command(("docker", "rm", "--force", name))


# Put an app's back route and front addresses in place and reload each tier gracefully, in one
# exec; or put the previous ones back. scripts/proxy_routes.sh says what it prints.
_ROUTES = scripts.load("proxy_routes")
_ADMINS = (CONFIG_DIR, BACK_ADMIN, FRONT_ADMIN)


def switch_sites(proxy: str, app: str, run: str, back: str, front: str) -> Command:
    """Route the app to its new container (back tier) and publish its addresses (front tier).

    run names this switch: unswitch_sites with the same run undoes exactly what it changed.
    """
    argv = ("docker", "exec", proxy, "sh", "-c", _ROUTES, "sh", "switch", *_ADMINS, app, run, back, front)
    return Command(argv, labels=((_ROUTES, "<switch routes>"), (back, "<back route>"), (front, "<front site>")))


def reroute_back(proxy: str, app: str, run: str, back: str) -> Command:
    """Replace the app's back route once more within the switch named run (after the watch), keeping
    that switch's undo: unswitch_sites still puts back what was there before it."""
    argv = ("docker", "exec", proxy, "sh", "-c", _ROUTES, "sh", "reroute", *_ADMINS, app, run, back)
    return Command(argv, labels=((_ROUTES, "<switch routes>"), (back, "<back route>")))


def unswitch_sites(proxy: str, app: str, run: str, tiers: tuple[str, ...] = ("front", "back")) -> Command:
    """Undo the switch named run on the tiers it changed; a tier it did not change stays as it is
    (back last: it routes to the old container again)."""
    argv = ("docker", "exec", proxy, "sh", "-c", _ROUTES, "sh", "unswitch", *_ADMINS, app, run, *tiers)
    return Command(argv, labels=((_ROUTES, "<restore routes>"),))


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
    script = scripts.load("proxy_list_sites")
    return Command(("docker", "exec", proxy, "sh", "-c", script, "sh", CONFIG_DIR), labels=((script, "<list sites>"),))


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


# Probe inside the proxy, one exec per batch of tries, so the switch follows the app's boot closely.
_PROBE_LOOP = scripts.load("proxy_probe_until")


def probe_until(proxy: str, url: str, interval: float, tries: int, seconds: float = 1) -> Command:
    """Succeeds at the first 2xx from url, tried up to `tries` times `interval` seconds apart, and no
    more once `seconds` (whole, at least 1) have passed."""
    budget = f"{max(1, round(seconds))}"
    return Command(
        ("docker", "exec", proxy, "sh", "-c", _PROBE_LOOP, "sh", url, f"{interval:g}", str(tries), budget),
        labels=((_PROBE_LOOP, "<probe until 2xx>"),),
    )


def upstreams(proxy: str) -> Command:
    url = f"http://{BACK_ADMIN}/reverse_proxy/upstreams"
    return Command(("docker", "exec", proxy, "wget", "-q", "-O", "-", url))


def front_site(app: str, hosts: tuple[str, ...]) -> str:
    """The app's host names (automatic HTTPS) in the shared front, forwarded to the back tier; empty
    for an app served on ports (its listeners do that)."""
    if not hosts:
        return ""
    return f"# tagship: {app}\n" + "".join(_forward(address, f"127.0.0.1:{BACK_PORT}", app) for address in hosts)


GATE_SERVICE = "tagship-gate"
GATE_DIR = "/etc/tagship-gate"


def gate_caddyfile(app: str, ports: tuple[int, ...], proxy_name: str) -> str:
    """The gate's config: every container port the app's consumers call, forwarded to the proxy's back
    tier, which sends it only to containers that passed the health gate (see override.render)."""
    head = "{\n\tauto_https off\n}\n"
    return head + "".join(_forward(f":{port}", f"{proxy_name}:{BACK_PORT}", app) for port in sorted(set(ports)))


def reload_gate(container: str) -> Command:
    """Reload the gate's config gracefully (its connections stay open)."""
    caddyfile = f"{GATE_DIR}/Caddyfile"
    return Command(("docker", "exec", container, "caddy", "reload", "--config", caddyfile, "--adapter", "caddyfile"))


def _forward(address: str, upstream: str, app: str) -> str:
    """A site that forwards every request to the back tier, naming the app in a header."""
    return (
        f"{address} {{\n"
        f"\treverse_proxy {upstream} {{\n"
        f"\t\theader_up X-Tagship-App {app}\n"
        # A connection the back tier accepts in the instant its old config shuts down is reset
        # unanswered; it is retried (GET and HEAD; any method when the dial itself failed).
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
    )


def back_route(
    app: str, upstreams: tuple[str, ...], draining: tuple[str, ...] = (), backups: tuple[str, ...] = ()
) -> str:
    """Route the app's requests to its containers (host:port each, balanced); retried dials cover a
    restarting container.

    draining: the containers being replaced. A route that never matches keeps them in Caddy's
    upstream pool across the reload, so the requests still in flight to them stay counted
    (`upstreams`); without it Caddy forgets them at the reload and a drain could not wait.
    backups: the old release while rollout.watch watches the new one, as for a listener
    (ListenerRoute.backups). Caddy has no backup servers: the first upstream that has not failed
    takes each request, a failed one (a refused or reset connection, or none within a second) is
    set aside for 5 s and the request retried on the next, the old release last.

    A reload (the switch back after a failed watch) fails a request that is waiting to be retried
    under the config it replaces (Caddy cancels that config's context): with a 250 ms wait, one in
    three CI runs had a 502 there. Retried at once (10 ms), and the dead container tried again only
    every 5 s, the window is about 0.2 % of the time.
    """
    watched = (
        "\t\tlb_policy first\n\t\tfail_duration 5s\n\t\tmax_fails 1\n"
        "\t\ttransport http {\n\t\t\tdial_timeout 1s\n\t\t}\n"
        if backups
        else ""
    )
    text = (
        f"# tagship: {app}\n"
        f"@app_{app} header X-Tagship-App {app}\n"
        f"handle @app_{app} {{\n"
        f"\treverse_proxy {' '.join((*upstreams, *backups))} {{\n"
        "\t\theader_up -X-Tagship-App\n"
        "\t\tlb_try_duration 5s\n"
        "\t\tlb_try_interval 10ms\n"
        f"{watched}"
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
