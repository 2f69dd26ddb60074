"""A server with one compose project, as tagship's commands see it: files, containers, images, the
proxy's routes and the deploy lock. It answers the commands a deploy or rollback sends (read from
their argv, as the server would) and changes its state as they would, so a test can assert what a
user would find on the server afterwards."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from tagship.builders import compose, history, override, proxy, scripts
from tagship.builders.envfile import get_value
from tagship.builders.history import Record
from tagship.builders.override import PublishedPort
from tagship.remote.transport import Result
from tests.middle.recorder import OK, Call, Script

PROJECT = "app"
DIRECTORY = "/srv/app"
REPOSITORY = "reg/ns/app"
PROXY_IMAGE = "caddy:2-alpine"  # proxy.image's default: the proxy that runs here runs it
LISTENER_IMAGE = "haproxy:lts-alpine"  # proxy.listener_image's default
PORT, TARGET_PORT = 18100, 8080
PROXY_NAME = "tagship-proxy"
ENV = f"{DIRECTORY}/.env"
COMPOSE = f"{DIRECTORY}/compose.yaml"
OVERRIDE = f"{DIRECTORY}/compose.tagship.yaml"
STATE = f"{DIRECTORY}/.tagship"
HISTORY = f"{STATE}/releases.jsonl"
AUDIT = f"{STATE}/audit.log"
OLD_OVERRIDE = "# written by an older tagship\nservices: {}\n"
APP_SERVICES = ("web", "worker")  # run the app's image; db runs postgres

_SCRIPTS = {
    scripts.load(name): name
    for name in (
        "login_dir",
        "envfile_read",
        "envfile_write",
        "history_read",
        "history_append",
        "history_rotate",
        "lock_acquire",
        "lock_release",
        "lock_identity",
        "proxy_ensure_network",
        "proxy_routes",
        "proxy_list_sites",
        "proxy_probe_until",
        "listener_route",
        "listener_drain",
    )
}


# The registry's manifest digests of the app's tags as the fake pushes report them (digest -> tag): a
# server that pulls by digest gets that tag's image.
PUSHED: dict[str, str] = {}


def digest_of(tag: str) -> str:
    """The registry digest of the app's image of that tag, as `docker image ls --digests` shows it."""
    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()


def image_id(tag: str) -> str:
    return f"sha256:app-{tag}"


def rendered(tag: str) -> dict[str, Any]:
    """`docker compose config --format json` of the project with APP_IMAGE_TAG=tag: web, a worker, a database."""
    image = f"{REPOSITORY}:{tag}"
    networks = {"default": None}
    return {
        "name": PROJECT,
        "services": {
            "web": {
                "image": image,
                "ports": [{"mode": "ingress", "target": TARGET_PORT, "published": str(PORT), "protocol": "tcp"}],
                "networks": networks,
            },
            "worker": {"image": image, "command": ["worker"], "networks": networks},
            "db": {"image": "postgres:16", "networks": networks},
        },
        "networks": {"default": {"name": f"{PROJECT}_default"}},
    }


def record(version: str, kind: str = "deploy", result: str = "succeeded", env: dict[str, str] | None = None) -> Record:
    """A history entry as a deploy of version writes it (env: the .env values it set; {} for a fixed tag)."""
    return Record(
        version=version,
        image=f"{REPOSITORY}:{version}",
        kind=kind,
        result=result,
        at="2026-11-26T07:00:00Z",
        commit=f"commit-{version}",
        env={"APP_IMAGE_TAG": version} if env is None else env,
    )


def front() -> str:
    return proxy.front_site(PROJECT, ())  # served on a port: its listener, no front snippet


@dataclass
class Container:
    id: str
    service: str
    number: int
    image: str  # image id
    running: bool = True
    exit_code: int = 0
    restarts: int = 0  # times its restart policy started it again

    @property
    def name(self) -> str:
        return f"{PROJECT}-{self.service}-{self.number}"

    def inspect(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Image": self.image,
            "RestartCount": self.restarts,
            "State": {"Running": self.running, "Restarting": False, "ExitCode": self.exit_code},
            "HostConfig": {"PortBindings": {}},
            "NetworkSettings": {"Networks": {"tagship": {"IPAddress": f"10.232.0.{self.number + 1}"}}},
        }


@dataclass
class FakeHost:
    """One server, running `tag` of the app: web and worker containers, a database, the proxy routing to web."""

    server: str
    prefix: str  # container ids start with it, so each server's ids differ
    tag: str = "v1"
    tags: tuple[str, ...] = ("v1",)  # the app's images on the server
    records: tuple[Record, ...] = (record("v1"),)
    crash_on_start: bool = False  # new web containers exit at once (a release that cannot boot)
    crash_after_switch: bool = False  # new web containers exit once the proxy sends them traffic
    # The new web container crashes while a probe after the switch runs, and its restart policy
    # starts it again before the probe ends: the probe passes, the restart count tells.
    restart_while_probed: bool = False
    _restart_armed: bool = False
    # The compose file spells out reg/ns/app:latest; tagship's override names the image `tag` runs.
    fixed_tag: bool = False
    in_flight_at_switch: int = 1  # requests still running on the old container when the proxy switches
    files: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    digest_refs: dict[str, str] = field(default_factory=dict)  # repository@digest -> image ID (pulled by digest)
    containers: dict[str, Container] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)  # containers the commands of this test started
    routes: dict[str, str] = field(default_factory=dict)  # the proxy's snippets: back and front
    lock_holder: str = ""  # holder.json of whoever holds the deploy lock
    host_key: str = ""  # its SSH host public key (lock_identity.sh); "": one made from the prefix
    hub: bool = True  # it can pull images from outside the registry "reg" (Docker Hub)
    docker_config_dirs: set[str] = field(default_factory=set)  # the run's docker client config dirs that exist
    docker_configs_used: set[str] = field(default_factory=set)  # DOCKER_CONFIG values commands ran with
    _previous_routes: dict[tuple[str, str], str] = field(default_factory=dict)  # (tier, run) -> snippet
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.files.update(
            {
                ENV: f"# the app's settings\nAPP_IMAGE_TAG={self.tag}\nAPP_PORT={PORT}\n",
                COMPOSE: "services:\n  web:\n    image: reg/ns/app:${APP_IMAGE_TAG}\n",
                OVERRIDE: OLD_OVERRIDE,
                HISTORY: "".join(r.line() for r in self.records),
            }
        )
        if self.fixed_tag:  # as a deploy of `tag` leaves it; the .env's stale tag line is not compose's
            self.files[COMPOSE] = f"services:\n  web:\n    image: {REPOSITORY}:latest\n"
            self.files[ENV] += "COMPOSE_FILE=compose.yaml:compose.tagship.yaml\n"
            self.files[OVERRIDE] = override.render_images(APP_SERVICES, f"{REPOSITORY}:{self.tag}")
        self.images.update({f"{REPOSITORY}:{t}": image_id(t) for t in self.tags})
        self.images["postgres:16"] = "sha256:postgres"
        self.images[PROXY_IMAGE] = "sha256:caddy"
        self.images[LISTENER_IMAGE] = "sha256:haproxy"
        for service in ("web", "worker", "db"):
            self._add(service, 1, self.images[self._image_ref(service, self.tag)])
        self.created.clear()
        self.routes = {"back": proxy.back_route(PROJECT, (f"{PROJECT}-web-1:{TARGET_PORT}",)), "front": front()}
        # The proxy's port listeners: container name -> (app, running). The app's port has one.
        self.listeners = {proxy.listener_name(PROXY_NAME, PublishedPort(PORT, PORT)): (PROJECT, True)}
        # Each listener's HAProxy config: where it sends requests (its last route).
        route = proxy.ListenerRoute(PROJECT, (f"{PROJECT}-web-1:{TARGET_PORT}",))
        settings = proxy.ProxySettings(PROXY_NAME, PROXY_IMAGE, "tagship")
        self.listener_configs = {name: proxy.listener_config(settings, route, 30) for name in self.listeners}
        self.other_projects: set[str] = set()  # other compose projects with containers on this server

    # ---- what a test reads ----------------------------------------------------------------------

    def running(self, service: str) -> list[Container]:
        return sorted((c for c in self.containers.values() if c.service == service and c.running), key=_number)

    def served(self) -> str:
        """The container the proxy routes the app's requests to."""
        match = re.search(r"reverse_proxy (\S+):", self.routes["back"])
        return match.group(1) if match else ""

    def listener_serves(self, port: int = PORT) -> list[str]:
        """The containers the port's listener sends requests to (["back"]: through the back tier)."""
        config = self.listener_configs.get(proxy.listener_name(PROXY_NAME, PublishedPort(port, port)), "")
        found = re.findall(r"^    server (?:s\d+ ([^:\s]+):\d+(?: init-addr \S+)?|(back) \S+)$", config, re.M)
        return [name or back for name, back in found]

    def env_tag(self) -> str:
        return get_value(self.files.get(ENV, ""), "APP_IMAGE_TAG") or ""

    def image_tag(self, files: list[str]) -> str:
        """The app's tag compose runs with these files: the .env's, or with a fixed tag the override's."""
        if not self.fixed_tag:
            return self.env_tag()
        named = override.web_image(self.files.get(OVERRIDE, "")) if OVERRIDE in files else ""
        return compose.image_tag(named) or "latest"

    def history(self) -> list[Record]:
        return history.parse(self.files.get(HISTORY, ""))

    # ---- answering commands ---------------------------------------------------------------------

    def answer(self, call: Call) -> Result:
        """What the server answers to the command, changing its state as the command would."""
        argv = call.argv
        with self._lock:
            if not argv:
                return OK  # connect
            if argv[0] == "env" and argv[1].startswith("DOCKER_CONFIG="):
                self.docker_configs_used.add(argv[1].split("=", 1)[1])
                argv = argv[2:]
            if argv[:2] == ("sh", "-c") and _SCRIPTS.get(argv[2]) == "login_dir":
                self.docker_config_dirs.add(DOCKER_CONFIG_DIR)
                return Result(0, DOCKER_CONFIG_DIR + "\n", "")
            if argv[:3] == ("rm", "-rf", "--"):
                self.docker_config_dirs.discard(argv[3])
                return OK
            if argv[:2] == ("sh", "-c"):
                return self._script(_SCRIPTS.get(argv[2], argv[2]), argv[4:], call.stdin)
            if argv[:2] == ("docker", "exec") and argv[2] in self.listeners:
                return self._in_listener(argv[2], argv[3:])
            if argv[:2] == ("docker", "exec"):
                return self._in_proxy(argv[3:])
            if argv[:3] == ("docker", "compose", "--project-directory"):
                return self._compose(argv)
            return self._docker(argv)

    def _script(self, name: str, args: tuple[str, ...], stdin: str) -> Result:
        if name == "envfile_read":  # the bytes as sent, and the text as a transport decodes it
            if args[0] not in self.files:
                return Result(3, "", "")
            raw = self.files[args[0]].encode("utf-8", "surrogateescape")
            return Result(0, raw.decode(errors="replace"), "", raw)
        if name == "envfile_write":
            self.files[args[0]] = stdin
        elif name == "history_read":
            return Result(0, self.files.get(f"{args[0]}/{args[1]}", ""), "")
        elif name == "history_append":  # as the script: rotate at args[2] bytes (0: never), print the size
            path = f"{args[0]}/{args[1]}"
            if int(args[2]) and len(self.files.get(path, "").encode()) >= int(args[2]):
                self.files[f"{path}.1"] = self.files.pop(path)
            self.files[path] = self.files.get(path, "") + stdin
            return Result(0, f"{len(self.files[path].encode())}\n", "")
        elif name == "history_rotate":
            path = f"{args[0]}/{args[1]}"
            self.files[f"{path}.1"], self.files[path] = self.files[path], stdin
        elif name == "lock_acquire":
            if self.lock_holder:
                return Result(3, self.lock_holder, "")
            self.lock_holder = stdin
        elif name == "lock_identity":
            return Result(0, (self.host_key or f"ssh-ed25519 AAAA{self.prefix}") + "\n", "")
        elif name == "lock_release" and args[1] in self.lock_holder:
            self.lock_holder = ""
        elif name != "proxy_ensure_network":
            return Result(127, "", f"unexpected script: {name[:60]}")
        return OK

    def _in_proxy(self, argv: tuple[str, ...]) -> Result:
        if argv[0] == "wget":  # Caddy's upstreams: the old containers have drained
            return Result(0, self._upstreams(0), "")
        name, args = _SCRIPTS.get(argv[2], ""), argv[4:]
        if name == "proxy_list_sites":
            return Result(0, f"== {PROJECT}.caddy\n{self.routes['front']}", "")
        if name == "proxy_probe_until":
            wanted = urlparse(args[0]).hostname
            if self._restart_armed:
                self._restart_armed = False
                for container in self.containers.values():
                    container.restarts += container.name == wanted
            up = any(c.name == wanted and c.running for c in self.containers.values())
            return OK if up else Result(1, "", "")
        if name == "proxy_routes" and args[0] == "switch":  # switch CONF BACK FRONT APP RUN BACK FRONT
            run = args[5]
            lines = [self._swap(tier, text, run) for tier, text in (("back", args[6]), ("front", args[7]))]
            self._restart_armed = self.restart_while_probed
            if self.crash_after_switch:  # healthy at the gate, dead under traffic
                for container in self.running("web"):
                    if container.name == self.served():
                        container.running, container.exit_code = False, 1
            return Result(0, "\n".join(lines) + "\nupstreams\n" + self._upstreams(self.in_flight_at_switch), "")
        if name == "proxy_routes" and args[0] == "reroute":  # reroute CONF BACK FRONT APP RUN BACK: keeps the undo
            self.routes["back"] = args[6]
            return Result(0, "upstreams\n" + self._upstreams(0), "")
        if name == "proxy_routes" and args[0] == "unswitch":  # only what the switch named RUN changed
            run = args[5]
            for tier in args[6:]:
                if (tier, run) in self._previous_routes:
                    self.routes[tier] = self._previous_routes.pop((tier, run))
            return OK
        return Result(127, "", f"unexpected command in the proxy: {argv[:3]}")

    def _in_listener(self, name: str, argv: tuple[str, ...]) -> Result:
        script, args = _SCRIPTS.get(argv[2], ""), argv[4:]
        if not self.listeners[name][1]:
            return Result(1, "", f"Error response from daemon: container {name} is not running")
        if script == "listener_route":  # CONFIG_PATH CONFIG
            self.listener_configs[name] = args[1]
            return OK
        if script == "listener_drain":
            return OK
        return Result(127, "", f"unexpected command in the listener: {argv[:3]}")

    def _swap(self, tier: str, text: str, run: str) -> str:
        self._previous_routes = {k: v for k, v in self._previous_routes.items() if k[0] != tier}
        if self.routes[tier] == text:
            return f"{tier} same"
        self._previous_routes[(tier, run)], self.routes[tier] = self.routes[tier], text
        return f"{tier} changed"

    def _upstreams(self, requests: int) -> str:
        served = self.served()
        old = [c for c in self.running("web") if c.name != served]
        return json.dumps([{"address": f"{c.name}:{TARGET_PORT}", "num_requests": requests} for c in old])

    def _compose(self, argv: tuple[str, ...]) -> Result:
        i, files = 4, []
        while i < len(argv) and argv[i] == "--file":
            files.append(argv[i + 1])
            i += 2
        rest, tag = argv[i:], self.image_tag(files)
        if rest[0] == "config":
            return Result(0, json.dumps(rendered(tag)), "")
        if rest[0] == "up" and "--scale" in rest:
            service, count = rest[rest.index("--scale") + 1].split("=")
            return self._scale(service, int(count), tag)
        if rest[0] == "up":
            for service in (a for a in rest[1:] if not a.startswith("-")):
                if "--no-recreate" not in rest:  # compose recreates a container whose image changed
                    image = self.images.get(self._image_ref(service, tag))
                    for old in [c for c in self.running(service) if c.image != image]:
                        del self.containers[old.id]
                if not self.running(service):
                    outcome = self._scale(service, 1, tag)
                    if not outcome.ok:
                        return outcome
            return OK
        if rest[0] == "ps":
            return Result(0, "".join(f"{c.id}\n" for c in self.running(rest[-1])), "")
        return OK

    def _scale(self, service: str, count: int, tag: str) -> Result:
        """`up --no-recreate --scale`: start more containers with the image of `tag`, or remove the newest."""
        running = self.running(service)
        for extra in running[count:][::-1]:
            del self.containers[extra.id]
        ref = self._image_ref(service, tag)
        if len(running) < count and ref not in self.images:
            return Result(1, "", f"pull access denied for {ref}")
        numbers = [c.number for c in self.containers.values() if c.service == service]
        for n in range(count - len(running)):
            container = self._add(service, max(numbers, default=0) + n + 1, self.images[ref])
            if service == "web" and self.crash_on_start:
                container.running, container.exit_code = False, 1
        return OK

    def _image_ref(self, service: str, tag: str) -> str:
        return f"{REPOSITORY}:{tag}" if service in APP_SERVICES else "postgres:16"

    def _add(self, service: str, number: int, image: str) -> Container:
        container = Container(f"{self.prefix}-{service}-{number}", service, number, image)
        self.containers[container.id] = container
        self.created.add(container.id)
        return container

    def _docker(self, argv: tuple[str, ...]) -> Result:
        head, last = argv[:3], argv[-1]
        if head == ("docker", "ps", "--all") and argv[3:5] == (
            "--filter",
            f"label={proxy.LISTENER_LABEL}={PROXY_NAME}",
        ):
            rows = (f"{n}\t{app}\t{'running' if up else 'exited'}\n" for n, (app, up) in sorted(self.listeners.items()))
            return Result(0, "".join(rows), "")
        if head == ("docker", "ps", "--all"):
            if last in {f"label=com.docker.compose.project={p}" for p in self.other_projects}:
                return Result(0, "c0ffee running web other-web-1\n", "")
            if last != f"label=com.docker.compose.project={PROJECT}":
                return OK  # another project's containers: none here
            lines = (
                f"{c.id} {'running' if c.running else 'exited'} {c.service} {c.name}\n"
                for c in sorted(self.containers.values(), key=lambda c: c.id)
            )
            return Result(0, "".join(lines), "")
        if head == ("docker", "inspect", "--type"):
            ids = argv[4:]
            found = [self.containers[i].inspect() for i in ids if i in self.containers]
            missing = [i for i in ids if i not in self.containers]
            return Result(
                1 if missing else 0, json.dumps(found), "".join(f"Error: No such container: {i}\n" for i in missing)
            )
        if head == ("docker", "container", "inspect"):
            running_proxy = {
                "Name": f"/{last}",
                "State": {"Running": True},
                "HostConfig": {"PortBindings": {}},
            }
            return Result(0, json.dumps([running_proxy]), "")
        if head == ("docker", "image", "inspect"):
            return Result(0, self.images[last] + "\n", "") if last in self.images else Result(1, "", "No such image")
        if head == ("docker", "image", "ls"):
            tags = [ref.rsplit(":", 1)[1] for ref in self.images if ref.startswith(f"{last}:")]
            return Result(0, "".join(f"{t} {digest_of(t)}\n" for t in sorted(tags)), "")
        if head == ("docker", "image", "rm"):
            removed = self.images.pop(last, None) or self.digest_refs.pop(last, None)
            return OK if removed else Result(1, "", "No such image")
        if head == ("docker", "run", "--detach") and f"{proxy.LISTENER_LABEL}={PROXY_NAME}" in argv:
            app = next(a.split("=", 1)[1] for a in argv if a.startswith("tagship.app="))
            name = argv[argv.index("--name") + 1]
            self.listeners[name] = (app, True)
            self.listener_configs[name] = argv[-1]
        if head == ("docker", "rm", "--force"):
            for container in argv[3:]:
                self.containers.pop(container, None)
                self.listeners.pop(container, None)
                self.listener_configs.pop(container, None)
        elif argv[:2] == ("docker", "stop"):
            for container in argv[4:]:
                if container in self.containers:
                    self.containers[container].running = False
        elif argv[:2] == ("docker", "logs"):
            crashed = last in self.containers and not self.containers[last].running
            return Result(0, "booting\nfatal: cannot read config\n" if crashed else "booting\n", "")
        elif argv[:2] == ("docker", "pull"):
            if not self.hub and not last.startswith(("reg/", "127.0.0.1:")):  # a registry tunnelled to loopback
                return Result(1, "", f"Error response from daemon: Get https://registry-1.docker.io/v2/: {last}")
            name = last.split("/", 1)[1] if last.startswith("127.0.0.1:") else last
            proxy_image = name.startswith(("caddy", "reg/ns/tagship-proxy"))
            if "@" in last:  # by digest: a reference, not a tag of its own (docker image ls lists none)
                tag = PUSHED.get(last.rsplit("@", 1)[1], "?")
                self.digest_refs[last] = "sha256:caddy" if proxy_image else image_id(tag)
                return OK
            self.images[last] = "sha256:caddy" if proxy_image else image_id(last.rsplit(":", 1)[1])
        elif argv[:2] == ("docker", "tag"):
            self.images[argv[3]] = self.digest_refs.get(argv[2]) or self.images[argv[2]]
        elif argv[:2] == ("rm", "-f"):
            self.files.pop(last, None)
        elif argv[:2] == ("ls", "-1"):
            names = sorted(p.rsplit("/", 1)[1] for p in self.files if p.rsplit("/", 1)[0] == last)
            return Result(0, "".join(f"{n}\n" for n in names), "")
        return OK


DOCKER_CONFIG_DIR = "/tmp/tagship-docker.k3yz0n3s"


def _number(container: Container) -> int:
    return container.number


def attach(script: Script, *hosts: FakeHost) -> dict[str, FakeHost]:
    """Let each host answer its server's commands (after any rule already in the script); by server name."""
    for host in hosts:
        script.on(_any, host.answer, server=host.server)
    return {host.server: host for host in hosts}


def _any(call: Call) -> bool:
    return True
