"""The zero-downtime switch: start the new container beside the old, gate on health, move the proxy.

Phase one (every server): override, network, new container, proxy checks (while it boots),
health, proxy switch; each step can be undone while the old container still runs. Phase two
(every server, once all switched): drain and stop the old containers, replace workers. A failure
in phase one leaves users on the old release everywhere.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from tagship import messages
from tagship.builders import compose, docker, envfile, override, proxy
from tagship.builders.command import Command
from tagship.builders.override import PublishedPort
from tagship.config import Config
from tagship.engine.plan import Plan
from tagship.errors import CommandFailed, ConfigError, HealthError, TagshipError
from tagship.release.shipping import LocalRegistry, loopback_ref
from tagship.release.version import Release
from tagship.remote.transport import Transport, tail
from tagship.runtime import BatchOptions
from tagship.runtime.compose import hooks as hooks_mod
from tagship.runtime.compose import prepare
from tagship.runtime.compose import verify as verify_mod
from tagship.runtime.compose.prepare import restore_env, seed_text, set_env
from tagship.runtime.compose.target import App, CoWeb, Target, WebState


def settings(config: Config) -> proxy.ProxySettings:
    return proxy.ProxySettings(config.proxy.name, config.proxy.image, config.proxy.network)


def app_name(target: Target) -> str:
    """The compose project name, which is also the app's name in the proxy."""
    return compose.normalized_name(str(target.web.rendered.get("name") or PurePosixPath(target.project.directory).name))


# ---- observe -----------------------------------------------------------------------------------


def observe(config: Config, target: Target, *, app: App) -> None:
    """Render the server's compose project and find the web service, workers and its ports."""
    t, web = target.transport, app.service
    rendered = target.rendered_before or _render(target, app)
    services: dict[str, Any] = rendered["services"]
    if web not in services:
        raise ConfigError(messages.t("switch.server_s_compose_project_2", name=t.name, web=web))
    state = target.web
    state.rendered = rendered
    try:
        state.ports = override.published_ports(services[web])
    except ValueError as exc:
        raise ConfigError(messages.t("switch.service_2", name=t.name, web=web, exc=exc)) from exc
    image = services[web].get("image")
    same_image = tuple(sorted(n for n, s in services.items() if n != web and s.get("image") == image))
    co_ports = {n: _published(target, services, n) for n in same_image}
    state.workers = tuple(n for n in same_image if not co_ports[n])
    state.others = tuple(sorted(n for n in services if n != web and n not in same_image))
    _warn_stop_first(target, services, web)
    state.consumers = override.consumers(services, web, config.app.consumers) if config.proxy.enabled else ()
    state.expose = override.exposed_ports(services[web]) or _image_exposes(target, services[web], state.ports)
    if services[web].get("network_mode"):
        raise ConfigError(messages.t("switch.service_uses_network_mode", name=t.name, web=web))
    found = target.containers()
    state.co_webs = {
        n: CoWeb(ports, list((services[n].get("networks") or {"default": None}).keys()), found.running_of(n))
        for n, ports in co_ports.items()
        if ports
    }
    state.old_names = found.running_of(web)
    state.old_workers = {w: list(found.running_of(w)) for w in state.workers}
    state.stopped = found.stopped
    state.services_running = frozenset(found.running)


def _render(target: Target, app: App) -> dict[str, Any]:
    user_project = compose.Project(target.project.directory, app.compose_files)
    result = target.transport.run(compose.config_json(user_project), show=False, check=False)
    if not result.ok:
        raise ConfigError(
            messages.t("switch.compose_rejects_project_2", name=target.name, directory=target.project.directory),
            detail=tail(result.stderr),
        )
    return compose.parse_config(result.stdout)


def _published(target: Target, services: dict[str, Any], name: str) -> tuple[PublishedPort, ...]:
    try:
        return override.published_ports(services[name])
    except ValueError as exc:
        raise ConfigError(messages.t("switch.service", name=target.name, name2=name, exc=exc)) from exc


def _warn_stop_first(target: Target, services: dict[str, Any], web: str) -> None:
    order = str(((services[web].get("deploy") or {}).get("update_config") or {}).get("order") or "")
    if order == "stop-first":
        target.transport.out.warn(messages.t("switch.declares_update_config_order", name=target.name, web=web))


def _image_exposes(
    target: Target, service: dict[str, Any], ports: tuple[override.PublishedPort, ...]
) -> tuple[int, ...]:
    """The ports the release's image EXPOSEs, when compose publishes and exposes none: where a
    service that calls the app by name (through the gate) sends its requests."""
    if ports or not service.get("image"):
        return ()
    result = target.transport.run(docker.exposed_ports(str(service["image"])), show=False, check=False)
    return docker.parse_exposed_ports(result.stdout) if result.ok else ()


def _inspect(target: Target, *ids: str) -> list[dict[str, Any]]:
    if not ids:
        return []
    result = target.transport.run(docker.inspect(*ids), show=False, check=False)
    return target.inspected("docker inspect", result.stdout) if result.ok else []


# ---- override ----------------------------------------------------------------------------------


def write_override(config: Config, target: Target, *, app: App, release: Release) -> None:
    """The override of the proxied switch; with image_in_override it also sets the release's image
    for the web service and its workers."""
    state = target.web
    _read_override(target)
    web_service = state.rendered["services"][app.service]
    networks = list((web_service.get("networks") or {"default": None}).keys())
    gate = gate_spec(config, state.consumers)
    image = release.ref if app.image_in_override else ""
    co_webs = {name: co.networks for name, co in state.co_webs.items()}
    text = override.render(
        app.service, networks, config.proxy.network, app_name(target), gate, image, state.workers, co_webs
    )
    if gate:
        write_gate_config(config, target)
    _put_override(target, app, text)


def write_image_override(target: Target, *, app: App, release: Release) -> None:
    """The plain switch (no proxy) of a compose file that spells out a fixed tag: an override that
    sets only the release's image, for the web service and its workers (the same image)."""
    _read_override(target)
    result = target.transport.run(
        compose.config_json(compose.Project(target.project.directory, app.compose_files)), show=False, check=False
    )
    if not result.ok:
        raise ConfigError(
            messages.t("switch.compose_rejects_project", name=target.name, directory=target.project.directory),
            detail=tail(result.stderr),
        )
    services: dict[str, Any] = compose.parse_config(result.stdout)["services"]
    if app.service not in services:
        raise ConfigError(messages.t("switch.server_s_compose_project", name=target.name, service=app.service))
    image = services[app.service].get("image")
    workers = tuple(sorted(n for n, s in services.items() if n != app.service and s.get("image") == image))
    _put_override(target, app, override.render_images((app.service, *workers), release.ref))


def _read_override(target: Target) -> None:
    """Keep the server's current override for the undo."""
    path = str(PurePosixPath(target.project.directory) / override.FILE_NAME)
    result = target.transport.run(envfile.read(path), show=False, check=False)
    target.web.previous_override = result.stdout if result.ok else None
    target.web.override_read = True


def _put_override(target: Target, app: App, text: str) -> None:
    """Write the override (unless it says that already); compose commands of this run use it from now on."""
    path = str(PurePosixPath(target.project.directory) / override.FILE_NAME)
    target.web.override_changed = text != target.web.previous_override
    if target.web.override_changed:
        target.transport.run(envfile.write(path, text, override.FILE_NAME, new_mode=0o644))
    target.project = replace(target.project, files=(*app.compose_files, override.FILE_NAME))


GATE_DIR = ".tagship/gate"  # the gate's config, relative to the project directory


def gate_spec(config: Config, consumers: tuple[str, ...]) -> override.Gate | None:
    """The gate, when any service calls the web service by name."""
    if not consumers:
        return None
    return override.Gate(proxy.GATE_SERVICE, config.proxy.image, GATE_DIR, consumers)


def write_gate_config(config: Config, target: Target) -> None:
    """The gate's Caddyfile: each container port the consumers call, forwarded to the proxy's back tier."""
    state = target.web
    ports = (*(p.target for p in state.ports), *state.expose, upstream_port(config, state))
    text = proxy.gate_caddyfile(app_name(target), ports, config.proxy.name)
    path = str(PurePosixPath(target.project.directory) / GATE_DIR / "Caddyfile")
    current = target.transport.run(envfile.read(path), show=False, check=False)
    if current.ok and current.stdout == text:
        return
    target.transport.run(Command(("mkdir", "-p", str(PurePosixPath(path).parent))))
    target.transport.put(path, text.encode(), "the gate's Caddyfile", mode=0o644)
    state.gate_changed = True


def gate_up(target: Target) -> None:
    """The gate runs (created, or recreated if its compose definition changed) with its current config."""
    state = target.web
    if not state.consumers:
        return
    t = target.transport
    # A running gate whose definition and config are unchanged needs nothing (each compose call of a
    # several-file project costs a few tenths of a second).
    if proxy.GATE_SERVICE in state.services_running and not (state.override_changed or state.gate_changed):
        return
    t.run(compose.up_no_deps(target.project, proxy.GATE_SERVICE), echo=True)
    if state.gate_changed:
        for container in target.containers().running_of(proxy.GATE_SERVICE):
            t.run(proxy.reload_gate(container))


def consumers_use_gate(target: Target, *, service: str) -> None:
    """Consumers that still resolve the web service by name (started before tagship's gate existed)
    are recreated once, with the link to the gate: a moment without each of them, once."""
    state = target.web
    if not state.consumers:
        return
    found = target.containers()
    for consumer in state.consumers:
        ids = list(found.running_of(consumer))
        linked = all(_links_to(info, service) for info in _inspect(target, *ids))
        if ids and not linked:
            target.transport.out.warn(
                messages.t("switch.recreating_once_so_that", name=target.name, consumer=consumer, service=service)
            )
            target.transport.run(compose.up_no_deps(target.project, consumer), echo=True)


def _links_to(info: dict[str, Any], service: str) -> bool:
    """The container resolves the service's name to the gate: a link "GATE-CONTAINER:SERVICE" on one of
    its networks (on user-defined networks Docker keeps links per network, not in HostConfig)."""
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    for endpoint in networks.values():
        for link in (endpoint or {}).get("Links") or []:
            target, _, alias = str(link).rpartition(":")
            if alias == service and proxy.GATE_SERVICE in target:
                return True
    return False


def restore_override(target: Target) -> None:
    """Put the previous override back (nothing to do if write_override was stopped before reading it)."""
    if not target.web.override_read:
        return
    path = str(PurePosixPath(target.project.directory) / override.FILE_NAME)
    if target.web.previous_override is None:
        target.transport.run(Command(("rm", "-f", "--", path)))
        # A compose command of a later undo (the plain switch's) must not name the removed file.
        files = tuple(f for f in target.project.files if f != override.FILE_NAME)
        target.project = replace(target.project, files=files)
    else:
        target.transport.run(
            envfile.write(path, target.web.previous_override, note="previous override", new_mode=0o644)
        )


# ---- proxy -------------------------------------------------------------------------------------


def ensure_network(config: Config, target: Target) -> None:
    """The proxy's network, which the override attaches the new container to."""
    target.transport.run(proxy.ensure_network(config.proxy.network))


def ensure_proxy(config: Config, target: Target) -> None:
    """The proxy runs (the back tier, and the front for host names on 80/443), and each port the app
    publishes has its listener: adding a port or an app starts listeners of its own and never
    restarts or reloads what serves the other apps."""
    cfg = settings(config)
    current = _inspect_proxy(target, cfg.name)
    running = bool(current) and current[0].get("State", {}).get("Running")
    bound = proxy.bound_ports(current) if current else set()
    wanted = {(p.host_ip, p.published) for p in _host_ports(config)}
    if not running or not wanted <= bound:
        _start_proxy(target, cfg, _as_ports(bound | wanted))
    check_addresses(config, target)
    if not config.proxy.hosts:
        start_listeners(config, target)


HOST_NAME_PORTS = (80, 443)


def _host_ports(config: Config) -> set[PublishedPort]:
    """What the proxy container itself publishes: 80 and 443 once an app is served by host name."""
    return {PublishedPort(p, p) for p in HOST_NAME_PORTS} if config.proxy.hosts else set()


def _as_ports(pairs: set[tuple[str, int]]) -> set[PublishedPort]:
    return {PublishedPort(port, port, ip) for ip, port in pairs}


def listeners(config: Config, target: Target) -> dict[str, proxy.Listener]:
    result = target.transport.run(proxy.list_listeners(config.proxy.name), show=False, check=False)
    return proxy.parse_listeners(result.stdout) if result.ok else {}


def start_listeners(config: Config, target: Target, *, old_stopped: bool = False) -> None:
    """Start a listener for each port the app publishes that has none (a port the old container still
    holds gets its listener once that container stops: migrate_ports). A port another app's listener
    holds is refused by name. A new listener sends requests through the back tier until the switch
    points it at the new containers."""
    t, state, app, cfg = target.transport, target.web, app_name(target), settings(config)
    found = listeners(config, target)
    # A stopped container keeps its port bindings in its config, but no longer holds them.
    held = set() if old_stopped else proxy.bound_ports(_inspect(target, *state.switched_old_ids))
    for item in routed_ports(state, app):
        port, route = item.port, item.route
        name = proxy.listener_name(cfg.name, port)
        listener = found.get(name)
        if listener and listener.app != route:
            if _app_exists(target, listener.app.split(".")[0]):
                raise ConfigError(
                    messages.t(
                        "switch.port_already_served_app", name=t.name, published=port.published, app=listener.app
                    ),
                    hint=messages.t("switch.give_this_app_another_2", name=name),
                )
            t.out.warn(messages.t("switch.served_app_which_has", name=t.name, name2=name, app=listener.app))
            t.run(docker.remove(name))
            listener = None
        if listener and listener.running:
            continue
        if (port.host_ip, port.published) in held:
            state.migrate_ports = True
            continue
        if listener:  # stopped (a crash, or stopped by hand): start it again as it was
            t.run(docker.start(name))
            continue
        t.run(_run_listener(config, port, proxy.ListenerRoute(route)))
        state.new_listeners.append(name)


def _run_listener(config: Config, port: PublishedPort, route: proxy.ListenerRoute) -> Command:
    image = config.proxy.listener_image
    return proxy.run_listener(settings(config), image, port, route, config.proxy.drain_timeout)


@dataclass(frozen=True)
class Routed:
    """One published address of the app and where its listener sends requests."""

    port: PublishedPort  # the host address (published, published, host_ip)
    route: str  # the app, or APP.SERVICE for a service switched with the web
    target: int  # the container port
    old: tuple[str, ...]  # the running containers' names
    new: tuple[str, ...]  # the new containers' names (empty before start_new)

    def servers(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{name}:{self.target}" for name in names)


def _addresses(config: Config, target: Target, ids: list[str]) -> tuple[tuple[str, str], ...]:
    """Container name -> its address on the proxy's network, for the listeners' servers."""
    found = []
    for info in _inspect(target, *ids):
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        address = str((networks.get(config.proxy.network) or {}).get("IPAddress") or "")
        if address and re.fullmatch(r"[0-9.]+", address):
            found.append((str(info.get("Name", "")).lstrip("/"), address))
    return tuple(found)


def routed_ports(state: WebState, app: str) -> list[Routed]:
    """Each published address of the web service and of the services switched with it, with the
    route its listener names."""
    found = _routed(state.ports, app, tuple(state.old_names.values()), tuple(state.new.values()))
    for name, co in sorted(state.co_webs.items()):
        route = override.route(app, name, "")
        found += _routed(co.ports, route, tuple(co.old_names.values()), tuple(co.new.values()))
    return found


def _routed(ports: tuple[PublishedPort, ...], route: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[Routed]:
    """One listener per published address (compose may publish one host port for two targets: the
    first one is served)."""
    targets: dict[tuple[int, str], int] = {}
    for p in ports:
        targets.setdefault((p.published, p.host_ip), p.target)
    return [
        Routed(PublishedPort(published, published, ip), route, target, old, new)
        for (published, ip), target in sorted(targets.items())
    ]


def _app_exists(target: Target, app: str) -> bool:
    """The compose project has a container on the server (running or not)."""
    result = target.transport.run(compose.project_containers(app), show=False, check=False)
    return not result.ok or bool(result.stdout.strip())  # unknown: assume it exists


def remove_new_listeners(target: Target) -> None:
    """Undo start_listeners: remove the listeners this run started (no app was served on their ports)."""
    if target.web.new_listeners:
        target.transport.run(docker.remove(*target.web.new_listeners))
        target.web.new_listeners.clear()


def retire_listeners(config: Config, target: Target) -> None:
    """After the switch: remove this app's listeners for ports it no longer publishes."""
    cfg, app = settings(config), app_name(target)
    routed = [] if config.proxy.hosts else routed_ports(target.web, app)
    keep = {proxy.listener_name(cfg.name, item.port) for item in routed}
    mine = [n for n, listener in listeners(config, target).items() if listener.app.split(".")[0] == app]
    stale = sorted(n for n in mine if n not in keep)
    if stale:
        target.transport.out.info(
            messages.t("switch.no_longer_publishes_removing", name=target.name, app=app, stale=", ".join(stale))
        )
        target.transport.run(docker.remove(*stale))


def check_addresses(config: Config, target: Target) -> None:
    """Refuse to take a host name another app on this proxy already serves."""
    if not config.proxy.hosts:
        return
    t, app = target.transport, app_name(target)
    listing = t.run(proxy.list_sites(config.proxy.name), show=False, check=False).stdout
    mine = set(config.proxy.hosts)
    for other, addresses in proxy.site_addresses(listing).items():
        clash = sorted(mine & addresses) if other != app else []
        if clash:
            raise ConfigError(
                messages.t("switch.already_served_app_this", name=t.name, clash=", ".join(clash), other=other),
                hint=messages.t("switch.give_this_app_another"),
            )


def _inspect_proxy(target: Target, name: str) -> list[dict[str, Any]]:
    result = target.transport.run(proxy.inspect(name), show=False, check=False)
    return target.inspected("docker container inspect", result.stdout) if result.ok and result.stdout.strip() else []


def _start_proxy(target: Target, cfg: proxy.ProxySettings, ports: set[PublishedPort]) -> None:
    t = target.transport
    if _inspect_proxy(target, cfg.name):
        published = ", ".join(str(p.published) for p in sorted(ports, key=lambda p: p.published)) or messages.t(
            "switch.no_port"
        )
        t.out.warn(
            messages.t("switch.recreating_publishing_moment_without", name=t.name, name2=cfg.name, published=published)
        )
        t.run(proxy.remove(cfg.name))
    t.run(proxy.run(cfg, tuple(ports)))
    deadline = time.monotonic() + 30
    while not t.run(proxy.upstreams(cfg.name), show=False, check=False).ok:
        if time.monotonic() > deadline:
            logs = t.run(docker.logs(cfg.name), show=False, check=False)
            raise HealthError(
                messages.t("switch.proxy_did_not_start", name=t.name, name2=cfg.name),
                detail=tail(logs.stderr + logs.stdout),
            )
        time.sleep(0.3)


# ---- new container -----------------------------------------------------------------------------


def start_others(target: Target) -> None:
    """Stateful services (databases, caches) are started if absent and never recreated; the ones
    that run already (observe listed them) cost no compose call."""
    missing = [name for name in target.web.others if name not in target.web.services_running]
    if missing:
        target.transport.run(compose.start_missing(target.project, *missing), stream=True)


def start_new(target: Target, *, service: str, release: Release) -> None:
    """Start the service's new containers (as many as compose declares) beside the old ones, which
    keep serving; the same for the other services of the image that publish ports."""
    state = target.web
    state.new = _start_beside(target, service, state.old_ids, release)
    for name, co in state.co_webs.items():
        co.new = _start_beside(target, name, co.old_ids, release)


def _start_beside(target: Target, service: str, old_ids: list[str], release: Release) -> dict[str, str]:
    """The service's new containers (ID -> name), started beside its old ones."""
    t = target.transport
    count = web_count(target.web.rendered["services"][service])
    if old_ids and len(old_ids) != count:
        t.out.info(
            messages.t(
                "switch.goes_container_s_compose", name=t.name, service=service, count=len(old_ids), count2=count
            )
        )
    _remove_stopped(target, service)
    scale_up(target, service, len(old_ids) + count)
    running = target.containers().running_of(service)
    new = {i: name for i, name in running.items() if i not in old_ids}
    if len(new) != count:
        raise HealthError(
            messages.t("switch.expected_new_container_s", name=t.name, count=count, service=service, count2=len(new))
        )
    # Checked before the switch, where a surprise can still be undone (the app boots meanwhile).
    want = t.run(docker.image_id(release.ref), show=False).stdout.strip()
    for info in _inspect(target, *new):
        if info.get("Image") != want:
            raise TagshipError(
                messages.t(
                    "switch.new_container_does_not",
                    name=t.name,
                    service=service,
                    lstrip=info.get("Name", "?").lstrip("/"),
                    ref=release.ref,
                ),
                detail=messages.t(
                    "switch.runs_other_image",
                    image=info.get("Image") or "?",
                    ref=release.ref,
                    where=messages.t("switch.image_id_is", image_id=want)
                    if want
                    else messages.t("switch.not_on_server"),
                ),
            )
    return new


def scale_up(target: Target, service: str, total: int) -> None:
    """compose up --scale, once more if Docker lost the race of two new containers filling one empty
    named volume from the image at once ("failed to mkdir ... file exists", Docker 20.10): the
    second try creates only the containers that are missing, and the volume is filled by then."""
    t = target.transport
    result = t.run(compose.scale_up(target.project, service, total), echo=True, check=False)
    if not result.ok and "failed to mkdir" in result.stderr and "file exists" in result.stderr:
        t.out.warn(messages.t("switch.docker_lost_race_filling", name=t.name, service=service))
        result = t.run(compose.scale_up(target.project, service, total), echo=True, check=False)
    if not result.ok:
        cmd = compose.scale_up(target.project, service, total)
        raise CommandFailed(t.name, cmd.shown(), result.code, tail(result.stderr))


def web_count(service: dict[str, Any]) -> int:
    """How many containers of the web service to run: compose's scale or deploy.replicas, else one."""
    declared = service.get("scale") or (service.get("deploy") or {}).get("replicas")
    return int(declared) if declared else 1


def _remove_stopped(target: Target, service: str) -> None:
    """Remove the service's stopped containers: scaling up with --no-recreate would start one of
    them (an older release, left by a crash or an interrupted run) as the "new" container."""
    stopped = target.web.stopped.pop(service, [])
    if stopped:
        target.transport.run(docker.remove(*stopped))


def remove_new(target: Target, *, service: str) -> None:
    """Remove every container of the service this run started (listed anew: the start may have been
    cut short before its id was known); the old ones are never touched."""
    if not target.web.rendered:
        return  # observe never ran here: nothing was started
    found = target.containers()
    olds = {service: target.web.old_names, **{n: co.old_names for n, co in target.web.co_webs.items()}}
    for name, old in olds.items():
        ids = [*found.running_of(name), *found.stopped.get(name, [])]
        new = [i for i in ids if i not in old and i not in _stopped_before(target, name)]
        if new:
            target.transport.run(docker.remove(*new))


def _stopped_before(target: Target, service: str) -> list[str]:
    return target.web.stopped.get(service, [])


def wait_healthy(config: Config, target: Target, *, service: str) -> None:
    """Wait until every new container passes its health check (they boot side by side, so the
    first wait covers most of the others')."""
    deadline = time.monotonic() + config.health.timeout
    for container, name in target.web.new.items():
        wait_one_healthy(config, target, container, name, service=service, deadline=deadline)
    for co_name, co in target.web.co_webs.items():
        for container, name in co.new.items():
            wait_one_healthy(config, target, container, name, service=co_name, deadline=deadline, port=co.port)


def wait_one_healthy(
    config: Config, target: Target, container: str, name: str, *, service: str, deadline: float, port: int = 0
) -> None:
    """Wait until the new container passes its health check; fail fast if it exits, restarts or
    Docker calls it unhealthy.

    With a Docker healthcheck, tagship runs that same command in the container itself, every
    health.interval, besides honouring Docker's own verdict: Docker runs it only every `interval`
    (30 s is common), so waiting for Docker alone would hold every switch that long.
    """
    (info,) = _inspect(target, container) or [{}]
    probe, what = _probe(config, target, info, container, name, port)
    while True:
        stopped = _stopped(info)
        if stopped:
            _fail(target, container, messages.t("switch.container_stopped", service=service, stopped=stopped))
        verdict = _docker_health(config, info)
        if verdict == "healthy":
            return
        said = [
            what if probe is not None else "",
            messages.t("switch.docker_health_is", verdict=verdict) if verdict else "",
        ]
        last = "; ".join(part for part in said if part) or what
        if verdict == "unhealthy":
            _fail(target, container, messages.t("switch.container_unhealthy", service=service, last=last))
        if time.monotonic() > deadline:
            _fail(
                target,
                container,
                messages.t(
                    "switch.container_not_healthy_in", service=service, timeout=config.health.timeout, last=last
                ),
            )
        if probe is None:
            time.sleep(config.health.interval)
        elif target.transport.run(probe, show=False, check=False).ok:
            return
        (info,) = _inspect(target, container) or [{}]


def _probe(
    config: Config, target: Target, info: dict[str, Any], container: str, name: str, port: int = 0
) -> tuple[Command | None, str]:
    """What tagship runs to see the new container healthy, in batches of about a second, and what a
    failure of it is called: the container's own healthcheck command, or an HTTP GET from the proxy.
    None: only Docker's verdict is waited for."""
    interval = config.health.interval
    tries = max(1, round(PROBE_BATCH_SECONDS / interval))
    check = docker.healthcheck_command(info)
    if config.health.mode != "http" and check:
        timeout = docker.healthcheck_timeout(info)
        command = docker.health_exec_until(container, interval, tries, timeout, check, PROBE_BATCH_SECONDS)
        return command, messages.t("switch.healthcheck_command_failed")
    has_docker_check = bool((info.get("State") or {}).get("Health"))
    if config.health.mode == "docker" or (config.health.mode == "auto" and has_docker_check):
        return None, messages.t("switch.docker_healthcheck_failed")
    port = port or config.health.port or upstream_port(config, target.web)
    url = f"http://{name}:{port}{config.health.path}"
    return proxy.probe_until(config.proxy.name, url, interval, tries, PROBE_BATCH_SECONDS), messages.t(
        "switch.get_not_2xx", url=url
    )


def _docker_health(config: Config, info: dict[str, Any]) -> str | None:
    health = info.get("State", {}).get("Health")
    if config.health.mode == "http" or (config.health.mode == "auto" and not health):
        return None
    return str((health or {}).get("Status", "starting"))


def _stopped(info: dict[str, Any]) -> str:
    state = info.get("State", {})
    if not state:
        return messages.t("switch.disappeared")
    if state.get("Restarting") or info.get("RestartCount", 0):
        return messages.t("switch.restarting", code=state.get("ExitCode"))
    if not state.get("Running"):
        return messages.t("switch.exited", code=state.get("ExitCode"))
    return ""


# Probes run in batches of about this long (in the proxy, or docker exec on the server); between
# batches the container's state is checked, so a crash is reported within a batch rather than at
# the health timeout.
PROBE_BATCH_SECONDS = 1.0


def _fail(target: Target, container: str, message: str) -> None:
    raise HealthError(
        messages.t("switch.proxy_not_switched", name=target.name, message=message),
        detail=messages.t("switch.log_tail") + "\n" + _log_tail(target, container),
    )


def watch_new(config: Config, target: Target, *, service: str, seconds: float) -> None:
    """After the switch, the new containers must keep passing their checks for `seconds`.

    The old containers still run (they stop only after the point of no return), so a failure here
    raises and the plan's undo routes the proxy back to them: a release that is healthy at the
    gate and crashes soon after is switched back by itself.
    """
    state = target.web
    watched = [(c, n, service, 0) for c, n in state.new.items()]
    watched += [(c, n, co_name, co.port) for co_name, co in sorted(state.co_webs.items()) for c, n in co.new.items()]
    probes = {}
    for container, name, _, port in watched:
        (info,) = _inspect(target, container) or [{}]
        probes[container] = _probe(config, target, info, container, name, port)
    started = time.monotonic()
    while True:  # checked once more when the time is up: a crash in the last second counts too
        for container, _, what, _ in watched:
            problem = _watch_problem(config, target, container, probes[container])
            if problem:
                raise HealthError(
                    messages.t(
                        "switch.new_container_s_after",
                        name=target.name,
                        what=what,
                        problem=problem,
                        elapsed=time.monotonic() - started,
                        seconds=seconds,
                    ),
                    detail=messages.t("switch.log_tail") + "\n" + _log_tail(target, container),
                )
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            return
        time.sleep(min(1.0, seconds - elapsed))


def _watch_problem(config: Config, target: Target, container: str, probe: tuple[Command | None, str]) -> str:
    """Why the container fails the watch now ("" while it passes).

    The probe runs first and the container's state is read after it: a probe passes once any try
    passes, and a container that crashed and was restarted by its restart policy during the tries
    (a Django app booting again answers its healthcheck) would pass it; its restart count tells.
    """
    command, what = probe
    failed = command is not None and not target.transport.run(command, show=False, check=False).ok
    (info,) = _inspect(target, container) or [{}]
    stopped = _stopped(info)
    if stopped:
        return stopped
    if _docker_health(config, info) == "unhealthy":
        return messages.t("switch.became_unhealthy")
    return messages.t("switch.failed_check", what=what) if failed else ""


def _log_tail(target: Target, container: str) -> str:
    logs = target.transport.run(docker.logs(container, 20), show=False, check=False)
    return tail(logs.stdout + logs.stderr, 20)


# ---- switch ------------------------------------------------------------------------------------


def migrate_ports(config: Config, target: Target, *, service: str) -> None:
    """First deploy over a plain compose setup: the old container hands its host ports to the proxy."""
    state = target.web
    if not state.migrate_ports:
        return
    target.transport.out.warn(messages.t("switch.moving_host_ports_old", name=target.name))
    target.transport.run(docker.stop(stop_grace_seconds(state.rendered["services"][service]), *state.old_ids))
    for name, co in state.co_webs.items():
        if co.old_ids:
            target.transport.run(docker.stop(stop_grace_seconds(state.rendered["services"][name]), *co.old_ids))
    start_listeners(config, target, old_stopped=True)


def switch_proxy(config: Config, target: Target, *, fallback: bool = False) -> None:
    """Route the app to the new container (back tier), then publish its addresses (front tier) if new.

    fallback: the port listeners keep the old containers as backups (rollout.watch; see
    proxy.ListenerRoute.backups) until route_new_only.
    """
    t, state, app = target.transport, target.web, app_name(target)
    route = _back_routes(config, state, app, fallback=fallback)
    front = proxy.front_site(app, config.proxy.hosts)
    # Named before it runs: an undo that never gets this command's reply (Ctrl-C, a lost
    # connection) still undoes exactly what the switch changed on the proxy.
    state.switch_run = uuid.uuid4().hex[:12]
    result = t.run(proxy.switch_sites(target.proxy_name, app, state.switch_run, route, front), check=False)
    switched = proxy.parse_switch(result.stdout)
    if not result.ok:
        what = (
            messages.t("switch.new_configuration", refused=switched.refused)
            if switched.refused
            else messages.t("switch.the_switch")
        )
        raise HealthError(
            messages.t("switch.caddy_refused_old_routes", name=t.name, what=what), detail=tail(result.stderr)
        )
    state.upstreams_at_switch = switched.upstreams
    if not config.proxy.hosts:
        known = [*state.switched_new_ids, *(state.switched_old_ids if fallback else [])]
        addresses = _addresses(config, target, known)
        for item in routed_ports(state, app):
            backups = item.servers(item.old) if fallback else ()
            _route_listener(config, target, item, item.servers(item.new), addresses, backups)


def _back_routes(config: Config, state: WebState, app: str, *, fallback: bool) -> str:
    """The back tier's routes of the web service and its co-web services, to their new containers
    (the old ones draining, or, with fallback, their backups during the watch)."""
    port = upstream_port(config, state)
    old = tuple(f"{state.old_names[i]}:{port}" for i in state.old_ids)
    new = tuple(f"{name}:{port}" for name in state.new.values())
    route = proxy.back_route(app, new, old, old if fallback else ())
    for co_name, co in sorted(state.co_webs.items()):  # one snippet, one reload: all switch at once
        co_old = tuple(f"{name}:{co.port}" for name in co.old_names.values())
        co_new = tuple(f"{name}:{co.port}" for name in co.new.values())
        route += proxy.back_route(override.route(app, co_name, ""), co_new, co_old, co_old if fallback else ())
    return route


def route_new_only(config: Config, target: Target) -> None:
    """After the watch: the back tier and the listeners send requests to the new containers only
    (no backups). The switch's undo still puts back the routes from before it."""
    t, state, app = target.transport, target.web, app_name(target)
    route = _back_routes(config, state, app, fallback=False)
    result = t.run(proxy.reroute_back(target.proxy_name, app, state.switch_run, route), check=False)
    if not result.ok:
        raise HealthError(
            messages.t("switch.caddy_refused_old_routes", name=t.name, what=messages.t("switch.the_switch")),
            detail=tail(result.stderr),
        )
    state.upstreams_at_switch = proxy.parse_switch(result.stdout).upstreams
    if config.proxy.hosts:
        return
    addresses = _addresses(config, target, target.web.switched_new_ids)
    for item in routed_ports(target.web, app_name(target)):
        _route_listener(config, target, item, item.servers(item.new), addresses)


def _route_listener(
    config: Config,
    target: Target,
    item: Routed,
    servers: tuple[str, ...],
    addresses: tuple[tuple[str, str], ...],
    backups: tuple[str, ...] = (),
) -> None:
    """Point a port's listener at servers (the back tier when empty), noting it for the undo."""
    t, cfg = target.transport, settings(config)
    name = proxy.listener_name(cfg.name, item.port)
    if name not in target.web.routed_listeners:
        target.web.routed_listeners.append(name)  # before it runs: an undo covers a reply never read
    route = proxy.ListenerRoute(item.route, servers, addresses, backups)
    result = t.run(proxy.route_listener(name, cfg, route, config.proxy.drain_timeout), check=False)
    if not result.ok:
        raise HealthError(
            messages.t("switch.listener_did_not_take", name=t.name, name2=name),
            detail=tail(result.stderr + result.stdout),
        )


def upstream_port(config: Config, state: WebState) -> int:
    """The container port the proxy sends requests to: the published port's target, else the one it
    exposes, else health.port (80 if none)."""
    if state.ports:
        return state.ports[0].target
    return state.expose[0] if state.expose else (config.health.port or 80)


def switch_back(config: Config, target: Target) -> None:
    """Undo switch_proxy: the previous routes and addresses (the old containers still run). Every
    part is tried; the first failure is raised after the rest."""
    state, cfg, t = target.web, settings(config), target.transport
    failures: list[CommandFailed] = []
    addresses = _addresses(config, target, state.switched_old_ids) if state.routed_listeners else ()
    for item in routed_ports(state, app_name(target)):
        name = proxy.listener_name(cfg.name, item.port)
        if name in state.routed_listeners:
            route = proxy.ListenerRoute(item.route, item.servers(item.old), addresses)  # none: the back tier
            try:
                t.run(proxy.route_listener(name, cfg, route, config.proxy.drain_timeout))
            except CommandFailed as exc:
                failures.append(exc)
    state.routed_listeners.clear()
    if state.switch_run:
        t.run(proxy.unswitch_sites(target.proxy_name, app_name(target), state.switch_run))
    if failures:
        raise failures[0]


# ---- phase two ---------------------------------------------------------------------------------


def retire_old(config: Config, target: Target, *, service: str) -> None:
    """Wait for requests in flight on the old containers, then stop them gracefully and remove them."""
    t, state = target.transport, target.web
    if not state.old_ids and not any(co.old_ids for co in state.co_webs.values()):
        return
    port = upstream_port(config, state)
    addresses = [f"{state.old_names[i]}:{port}" for i in state.old_ids]
    addresses += [f"{name}:{co.port}" for co in state.co_webs.values() for name in co.old_names.values()]
    # Read right after the switch (the route there keeps the old containers counted): no request
    # reaches them after it, only fewer remain.
    listing = state.upstreams_at_switch
    deadline = time.monotonic() + config.proxy.drain_timeout
    while any(proxy.in_flight(listing, a) for a in addresses) and time.monotonic() < deadline:
        time.sleep(0.1)
        listing = t.run(proxy.upstreams(config.proxy.name), show=False, check=False).stdout
    for name in state.routed_listeners:  # their replaced workers still send to the old containers
        left = max(0.0, deadline - time.monotonic())
        t.run(proxy.drain_listener(name, left), show=False, check=False)
    _stop_and_remove(target, service, state.old_ids)
    for name, co in state.co_webs.items():
        if co.old_ids:
            _stop_and_remove(target, name, co.old_ids)


def stop_grace_seconds(service: dict[str, Any]) -> int:
    """The service's stop_grace_period in whole seconds (compose's default is 10)."""
    total = duration_seconds(service.get("stop_grace_period") or "10s")
    return max(1, round(total)) if total else 10


def duration_seconds(value: object) -> float:
    """A compose duration ("1m30s", "500ms", or a number of seconds) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    total = 0.0
    for amount, unit in re.findall(r"([\d.]+)(h|ms|m|s|us|ns)", str(value)):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}[unit]
    return total


@dataclass(frozen=True)
class UpdateConfig:
    """A service's deploy.update_config as tagship honours it for workers."""

    order: str = "start-first"  # or stop-first: the old container stops before its replacement starts
    parallelism: int = 0  # containers replaced at a time; 0: all at once
    delay: float = 0.0  # seconds between batches


def update_config(service: dict[str, Any]) -> UpdateConfig:
    """The service's declared update_config; undeclared, workers are replaced start-first, all at once."""
    declared = (service.get("deploy") or {}).get("update_config") or {}
    order = str(declared.get("order") or "start-first")
    return UpdateConfig(
        order="stop-first" if order == "stop-first" else "start-first",
        parallelism=int(declared.get("parallelism") or 0),
        delay=duration_seconds(declared.get("delay") or 0),
    )


def replace_workers(config: Config, target: Target) -> None:
    """Workers (same image, no HTTP): replaced as each one's deploy.update_config says: start-first
    (new ones beside the old, then the old stop) or stop-first (a singleton such as a scheduler:
    the old one stops before its replacement starts, so the two never run at once), in batches of
    `parallelism` with `delay` between them."""
    state = target.web
    for worker, old in state.old_workers.items():
        spec = state.rendered["services"][worker]
        images = [str(c.get("Image", "")) for c in _inspect(target, *old)]
        count = worker_count(spec, images)
        _remove_stopped(target, worker)
        replace_batches(target, worker, old, count, update_config(spec))


def replace_batches(target: Target, worker: str, old: list[str], count: int, update: UpdateConfig) -> None:
    """Replace the old containers batch by batch; `count` new ones run at the end."""
    t = target.transport
    size = update.parallelism or len(old) or 1
    batches = [old[i : i + size] for i in range(0, len(old), size)] or [[]]
    remaining, started = list(old), 0
    for number, batch in enumerate(batches):
        if number and update.delay:
            time.sleep(update.delay)
        last = number == len(batches) - 1
        wanted = count if last else min(count, started + len(batch))
        if update.order == "stop-first" and batch:
            _stop_and_remove(target, worker, batch)
            remaining = [c for c in remaining if c not in batch]
        # Compose counts every container of the service: the old ones left plus the new ones wanted.
        t.run(compose.scale_up(target.project, worker, len(remaining) + wanted), echo=True)
        started = wanted
        if update.order == "start-first" and batch:
            _stop_and_remove(target, worker, batch)
            remaining = [c for c in remaining if c not in batch]


def worker_count(service: dict[str, Any], running_images: list[str]) -> int:
    """How many of a worker to run: compose's scale or deploy.replicas if set, else as many as run
    of one image. A replacement cut short leaves old and new side by side: not a wish for twice as many."""
    declared = service.get("scale") or (service.get("deploy") or {}).get("replicas")
    if declared:
        return int(declared)
    return max(Counter(running_images).values(), default=1)


def _stop_and_remove(target: Target, service: str, ids: list[str]) -> None:
    """Stop gracefully (SIGTERM, then the service's stop_grace_period), then remove."""
    grace = stop_grace_seconds(target.web.rendered["services"][service])
    target.transport.run(docker.stop(grace, *ids))
    target.transport.run(docker.remove(*ids))


# ---- plan --------------------------------------------------------------------------------------


def plan_switch(
    config: Config,
    targets: list[Target],
    app: App,
    release: Release,
    plan: Plan,
    *,
    hooks: bool = False,
    watch: float = 0.0,
) -> None:
    """Set the release's .env values and switch every server to it (the image is already there).

    hooks: run hooks.before_switch first (a deploy does; a rollback to an image that already ran
    does not). watch: seconds the switched release must stay healthy while the old one can still
    take the traffic back (rollout.watch, a canary's rollout.canary_watch).
    """
    values = " ".join(f"{k}={v}" for k, v in app.env_for(release).items())
    # With the image in the override, .env keeps its values; it only names the override in COMPOSE_FILE.
    setting = values or f"COMPOSE_FILE (with {override.FILE_NAME})"
    plan.add_each(
        messages.t("switch.set", setting=setting, file=config.env.file),
        targets,
        partial(set_env, app=app, release=release, seed=partial(seed_text, config)),
        restore_env,
        undo_title=messages.t("switch.put_previous_back_3", file=config.env.file),
        # env.values and env.secrets_file: a dry run names the keys it writes, never their values
        shows=[messages.t("switch.also_sets_keys", keys=", ".join(key for key, _ in app.settings))]
        if app.settings
        else [],
    )
    web = app.service
    if app.proxied:
        plan_phase_one(config, targets, app, release, plan, hooks=hooks, watch=watch)
        # Once every server has switched, undoing would route users back to old containers
        # that phase two stops: from here a failure leaves the new release live.
        plan.point_of_no_return(
            messages.t("switch.live_every_server", version=release.version),
            hint=messages.t("switch.old_containers_not_yet", web=web),
        )
        plan_phase_two(config, targets, app, plan)
        check = partial(verify_mod.verify, config, service=web, release=release, settle=False)
    else:
        back, back_title = (
            partial(verify_mod.recreate_back, service=web),
            messages.t("switch.put_previous_back_3", file=config.env.file),
        )
        if app.image_in_override:
            plan.add_each(
                messages.t("switch.write_s_image", FILE_NAME=override.FILE_NAME, version=release.version),
                targets,
                partial(write_image_override, app=app, release=release),
                restore_override,
                undo_title=messages.t("switch.put_previous_back_2", FILE_NAME=override.FILE_NAME),
                shows=[override.render_images((web,), release.ref)],
            )
            back, back_title = (
                partial(_plain_back, service=web),
                messages.t("switch.put_previous_back_2", FILE_NAME=override.FILE_NAME),
            )
        if hooks:
            plan_hooks(config, targets, app, plan)
        plan.add_each(
            messages.t("switch.switch_docker_compose_up", web=web, version=release.version),
            targets,
            partial(verify_mod.recreate, service=web),
            back,
            undo_title=messages.t("switch.bring_up_again", back_title=back_title, web=web),
        )
        check = partial(verify_mod.verify, config, service=web, release=release, at_least=watch)
    plan.add_each(messages.t("switch.verify_runs", web=web, version=release.version), targets, check)


def _plain_back(target: Target, *, service: str) -> None:
    """Undo the plain switch when the override set the image: the previous override first."""
    restore_override(target)
    verify_mod.recreate_back(target, service=service)


def plan_hooks(config: Config, targets: list[Target], app: App, plan: Plan) -> None:
    """hooks.before_switch, on the first server or on every one, once the services they need run."""
    if not config.hooks.before_switch:
        return
    where = targets[:1] if config.hooks.where == "first" else targets
    service = config.hooks.service or app.service
    run = partial(hooks_mod.run_hooks, config, service=service)
    plan.add_each(messages.t("switch.run_hooks_before_switch"), where, run, shows=hooks_mod.shown(config, service))


def plan_phase_one(
    config: Config,
    targets: list[Target],
    app: App,
    release: Release,
    plan: Plan,
    *,
    hooks: bool = False,
    watch: float = 0.0,
) -> None:
    """Up to the proxy switch on every server; each step undoable while the old containers run."""
    web = app.service
    plan.add_each(messages.t("switch.read_compose_project"), targets, partial(observe, config, app=app))
    image = release.ref if app.image_in_override else ""
    shown = override.render(web, ["default"], config.proxy.network, app.name, gate_spec(config, app.consumers), image)
    plan.add_each(
        messages.t("switch.write", FILE_NAME=override.FILE_NAME),
        targets,
        partial(write_override, config, app=app, release=release),
        restore_override,
        undo_title=messages.t("switch.put_previous_back", FILE_NAME=override.FILE_NAME),
        shows=[shown],
    )
    plan.add_each(messages.t("switch.network", network=config.proxy.network), targets, partial(ensure_network, config))
    if app.consumers:
        plan.add_each(
            messages.t("switch.gate_which_call_name", consumers=", ".join(app.consumers), web=web), targets, gate_up
        )
    plan.add_each(messages.t("switch.start_services_that_are"), targets, start_others)
    if hooks:
        plan_hooks(config, targets, app, plan)
    plan.add_each(
        messages.t("switch.start_new_beside_old", web=web, version=release.version),
        targets,
        partial(start_new, service=web, release=release),
        partial(remove_new, service=web),
        undo_title=messages.t("switch.remove_new_containers", web=web),
        shows=[f"docker compose up --detach --no-deps --no-recreate --scale {web}=N+1 {web}"],
    )
    # While the new container boots: the proxy's checks cost no time there.
    plan.add_each(
        messages.t("switch.proxy_up_listener_per", name=config.proxy.name),
        targets,
        partial(ensure_proxy, config),
        remove_new_listeners,
        undo_title=messages.t("switch.remove_listeners_this_run"),
    )
    plan.add_each(
        messages.t("switch.wait_until_new_healthy", web=web), targets, partial(wait_healthy, config, service=web)
    )
    plan.add_each(messages.t("switch.hand_host_ports_proxy"), targets, partial(migrate_ports, config, service=web))
    plan.add_each(
        messages.t("switch.switch_proxy_new", web=web),
        targets,
        partial(switch_proxy, config, fallback=bool(watch)),
        partial(switch_back, config),
        undo_title=messages.t("switch.route_proxy_back_old"),
    )
    if watch:
        plan.add_each(
            messages.t("switch.watch_new_s_old", web=web, watch=watch),
            targets,
            partial(watch_new, config, service=web, seconds=watch),
        )
        plan.add_each(messages.t("switch.listeners_send_new_containers"), targets, partial(route_new_only, config))


def plan_phase_two(config: Config, targets: list[Target], app: App, plan: Plan) -> None:
    """After every server switched: retire the old containers, replace workers."""
    web = app.service
    plan.add_each(messages.t("switch.drain_stop_old", web=web), targets, partial(retire_old, config, service=web))
    plan.add_each(messages.t("switch.remove_listeners_ports_no"), targets, partial(retire_listeners, config))
    if app.consumers:
        to_gate = partial(consumers_use_gate, service=web)
        plan.add_each(
            messages.t("switch.reach_through_gate", consumers=", ".join(app.consumers), web=web), targets, to_gate
        )
    plan.add_each(messages.t("switch.replace_workers"), targets, partial(replace_workers, config))


def plan_deploy(
    config: Config,
    targets: list[Target],
    app: App,
    tree: Path,
    release: Release,
    plan: Plan,
    batch: BatchOptions,
    subdir: str = "",
) -> None:
    """Steps on the servers, each on all servers at once: check, upload and pull everywhere, then switch
    (batch: how this batch of the run goes; subdir: the app's folder in the tagged tree)."""
    # Docker and Compose v2 were checked on every server before the lock (Session.plan_open).
    # Before the first file lands on a server: a proxy image no server can get stops the deploy here.
    # The listeners' image only where an app is served on ports (host names need none).
    keys = ("proxy.image",) if config.proxy.hosts else ("proxy.image", "proxy.listener_image")
    proxy_images = (
        [plan_proxy_image(config, targets, plan, batch.local, k, batch.registry) for k in keys] if app.proxied else []
    )
    plan.add_each(
        messages.t("switch.prepare_project_directory"),
        targets,
        partial(prepare.upload, config, tree=tree, subdir=subdir),
        prepare.restore_uploads if config.app.upload else None,
        undo_title=messages.t("switch.put_back_uploads", files=", ".join(config.app.upload)),
        shows=[f"upload {', '.join(config.app.upload)}"] if config.app.upload else [],
    )
    if batch.registry is not None:
        plan_receive_over_ssh(targets, plan, release, batch.registry, proxy_images, batch.force, stop=batch.last)
        plan_switch(config, targets, app, release, plan, hooks=batch.hooks, watch=batch.watch)
        return
    if config.registry.has_credentials:
        plan.add_each(
            messages.t("switch.registry_login", url=config.registry.url), targets, partial(prepare.login_server, config)
        )
    if config.registry.url:
        plan.add_each(
            messages.t("switch.pull", image=release.image),
            targets,
            partial(prepare.pull, config, release=release),
            shows=[
                f"docker pull {release.repository}@<digest>, tag it {release.ref}"
                if not release.pinned
                else f"docker pull {release.ref}"
            ],
        )
    for proxy_image in proxy_images:
        if not proxy_image.mirror:
            continue
        image, mirror = proxy_image.image, proxy_image.mirror
        plan.add_each(
            messages.t("switch.servers_that_lack_pull", image=image),
            targets,
            partial(prepare.receive_proxy_image, proxy_image),
            shows=[f"docker pull {mirror}", f"docker tag {mirror} {image}"],
        )
    plan_switch(config, targets, app, release, plan, hooks=batch.hooks, watch=batch.watch)


def plan_receive_over_ssh(
    targets: list[Target],
    plan: Plan,
    release: Release,
    registry: LocalRegistry,
    proxy_images: list[prepare.ProxyImage],
    force: bool,
    *,
    stop: bool = True,
) -> None:
    """Each server's engine pulls the release's image (and a proxy image it lacks) from the registry on
    this machine through a reverse tunnel on its ssh connection; then, with stop (the run's last
    servers), that registry stops."""
    image = release.image
    tunnel = "ssh -O forward -R 127.0.0.1:0:127.0.0.1:<port> (the server's end: 127.0.0.1:<tunnel>)"
    plan.add_each(
        messages.t("switch.over_ssh_only_layers", image=image),
        targets,
        partial(prepare.receive_over_ssh, registry, release=release, force=force),
        shows=[tunnel, f"docker pull {loopback_ref(image, '<tunnel>', '<digest>')}, tag it {image}"],
    )
    for proxy_image in proxy_images:
        plan.add_each(
            messages.t("switch.servers_that_lack_get", image=proxy_image.image),
            targets,
            partial(prepare.receive_proxy_image, proxy_image),
        )
    if stop:
        plan.add(messages.t("switch.stop_registry_this_machine"), registry.stop)


def plan_proxy_image(
    config: Config,
    targets: list[Target],
    plan: Plan,
    local: Transport,
    key: str = "proxy.image",
    registry: LocalRegistry | None = None,
) -> prepare.ProxyImage:
    """The proxy image (or the listeners', key): on each server already, else pulled by it, else (for
    the servers that cannot pull it) pushed by this machine to the user's registry (or, with
    image.transport = "ssh", to the registry on this machine), from which they pull it."""
    wanted = prepare.ProxyImage.of(config, key, registry)
    image, mirror = wanted.image, wanted.mirror
    plan.add_each(
        wanted.step,
        targets,
        partial(prepare.check_proxy_image, wanted),
        shows=[f"docker image inspect {image}, else docker pull {image}"],
    )
    if registry is not None:
        plan.add(
            messages.t("switch.push_registry_this_machine", image=image),
            partial(prepare.ship_proxy_image, wanted, local),
            shows=[f"docker push {loopback_ref(image, '<port>')}"],
        )
    elif mirror:
        plan.add(
            messages.t("switch.push_registry_if_server", image=image),
            partial(prepare.ship_proxy_image, wanted, local),
            shows=[f"docker tag {image} {mirror}", f"docker push {mirror}"],
        )
    return wanted
