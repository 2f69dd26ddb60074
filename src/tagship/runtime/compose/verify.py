"""After a switch: the service's containers run the release's image and stay up; the plain recreate switch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tagship import messages
from tagship.builders import compose, docker
from tagship.builders.command import Command
from tagship.config import Config
from tagship.errors import HealthError
from tagship.release.version import Release
from tagship.remote.transport import tail
from tagship.runtime.compose.prepare import restore_env, restore_uploads
from tagship.runtime.compose.target import Target


def running_containers(target: Target, service: str) -> list[dict[str, Any]]:
    """docker inspect of the service's containers."""
    t = target.transport
    name = str(target.web.rendered.get("name") or "")  # known after the proxy switch observed the project
    if name:
        ids = list(target.containers().running_of(service))
    else:
        ids = t.run(compose.ps_ids(target.project, service), show=False).stdout.split()
    if not ids:
        return []
    result = t.run(docker.inspect(*ids), show=False, check=False)
    return target.inspected("docker inspect", result.stdout)


def verify(
    config: Config, target: Target, *, service: str, release: Release, settle: bool = True, at_least: float = 0.0
) -> None:
    """The service's containers run the new image; with settle, they also stay up for verify.stable_seconds
    (or at_least seconds, if longer: rollout.watch).

    After a health-gated switch there is nothing to wait for (settle=False): one check.
    """
    t = target.transport
    want = t.run(docker.image_id(release.ref), show=False).stdout.strip()
    stable_for = max(config.verify.stable_seconds, at_least) if settle else 0
    longer = max(0.0, stable_for - config.verify.stable_seconds)  # a watch longer than the usual settling
    deadline = time.monotonic() + (config.verify.timeout + longer if settle else 0)
    stable_since: float | None = None
    while True:
        problem = container_problem(running_containers(target, service), want, release.ref)
        now = time.monotonic()
        if problem:
            stable_since = None
            if now >= deadline or problem.final:
                raise HealthError(f"{t.name}: {problem.text}", detail=_last_logs(target, service))
        elif stable_since is None:
            stable_since = now
        if stable_since is not None and now - stable_since >= stable_for:
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class Problem:
    """Why the service is not (yet) running the release; final: waiting cannot fix it."""

    text: str
    final: bool = False


def container_problem(containers: list[dict[str, Any]], image_id: str, ref: str) -> Problem | None:
    """Why the service is not (yet) running the release, or None when it is."""
    if not containers:
        return Problem(messages.t("verify.no_container"))
    for c in containers:
        state, name = c.get("State", {}), c.get("Name", "?").lstrip("/")
        if c.get("Image") != image_id:
            return Problem(
                messages.t("verify.other_image", image=c.get("Config", {}).get("Image"), ref=ref), final=True
            )
        if state.get("Restarting") or c.get("RestartCount", 0):
            return Problem(messages.t("verify.restarting", name=name))
        if not state.get("Running"):
            return Problem(messages.t("verify.exited", name=name, code=state.get("ExitCode")), final=True)
    return None


def _last_logs(target: Target, service: str) -> str:
    cmd = Command((*target.project.base(), "logs", "--no-color", "--tail", "20", service))
    result = target.transport.run(cmd, show=False, check=False)
    return tail(result.stdout + result.stderr, 20)


def recreate(target: Target, *, service: str) -> None:
    """The plain switch (no proxy): `docker compose up -d SERVICE`."""
    target.transport.run(compose.up(target.project, service), stream=True)


def recreate_back(target: Target, *, service: str) -> None:
    """Undo the plain switch: the .env and the uploaded files go back first, so compose brings the
    previous release up again as it was."""
    restore_uploads(target)
    restore_env(target)
    recreate(target, service=service)
