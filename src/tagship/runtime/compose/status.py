"""What a server runs of the app, for `tagship status`: the proxy, the compose project's containers, the
app's port listeners, and what drifts from the current release."""

from __future__ import annotations

from tagship.builders import compose, docker, history, proxy
from tagship.builders import status as status_mod
from tagship.builders.status import ContainerState
from tagship.config import Config
from tagship.runtime import AppStatus, ServerReleases
from tagship.runtime.compose import discover, retention
from tagship.runtime.compose.target import Target


def app_status(config: Config, target: Target, state: ServerReleases) -> AppStatus:
    """The proxy's state, and once a release was deployed, the app's containers, listeners and drift."""
    t = target.transport
    proxy_state = status_mod.parse_container_state(
        t.run(proxy.inspect(config.proxy.name), show=False, check=False).stdout
    )
    if not state.records:
        return AppStatus(proxy_state)  # never deployed: no app to look at
    record = history.find(state.records, state.current)
    app = discover.app_on_server(config, target, state, record or state.records[-1])
    containers = _containers(target, app.name)
    listing = t.run(proxy.list_listeners(config.proxy.name), show=False, check=False).stdout
    listeners = [item for item in proxy.parse_listeners(listing).values() if item.app == app.name]
    return AppStatus(
        proxy_state,
        app=app.name,
        service=app.service,
        containers=containers,
        listeners=listeners,
        drift=_drift(config, target, state, app.service, containers),
    )


def _containers(target: Target, project: str) -> list[ContainerState]:
    """The compose project's containers, running or not, as `docker inspect` describes them."""
    t = target.transport
    listed = compose.parse_project_containers(t.run(compose.project_containers(project), show=False).stdout)
    target.warn_skipped("docker ps", list(listed.skipped))
    ids = [i for by_id in listed.running.values() for i in by_id] + [i for ids in listed.stopped.values() for i in ids]
    if not ids:
        return []
    return status_mod.states_of(
        target.inspected("docker inspect", t.run(docker.inspect(*ids), show=False, check=False).stdout)
    )


def _drift(
    config: Config, target: Target, state: ServerReleases, service: str, containers: list[ContainerState]
) -> list[str]:
    """A container of the deployed service on another image than the current release's; a .env whose
    tag is not the last succeeded release's."""
    tag_key = config.env.tag_key or retention.recorded_tag_key(state.records)
    drift = status_mod.env_drift(tag_key, state.current, history.last_succeeded(state.records))
    if state.current:
        release_id = _image_id(target, _release_ref(state))
        drift += status_mod.container_drift(service, containers, release_id, state.current)
    return drift


def _release_ref(state: ServerReleases) -> str:
    """The current release's image as the server finds it (by digest when the history recorded one)."""
    record = history.find(state.records, state.current)
    if record is not None:
        return retention.present_ref(record)
    return f"{state.records[-1].repository}:{state.current}"


def _image_id(target: Target, ref: str) -> str:
    result = target.transport.run(docker.image_id(ref), show=False, check=False)
    return result.stdout.strip() if result.ok else ""
