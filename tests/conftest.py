"""Fixtures for the lab tiers. A missing lab fails the tests (never skips them)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from tests.apprepo import SESSION_NAMESPACE, AppRepo, next_port

# Each pytest-xdist worker deploys to a slot of servers of its own (lab.up(slots=...)): three
# servers and a hidden one behind the first. Without xdist there is one slot.
SERVERS_PER_SLOT = 3


def lab_slot() -> tuple[int, int]:
    """(this worker's slot, how many slots): gw2 of `pytest -n 4` has slot 2 of 4."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw")), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def up_my_slot() -> lab.Lab:
    """lab.up() with the session's shape (every worker asks for the same one), viewed from this worker's slot."""
    slot, slots = lab_slot()
    return lab.up(servers=SERVERS_PER_SLOT, hidden=True, slots=slots, slot=slot)


@pytest.fixture(scope="session")
def the_lab(fleet_lab: lab.Lab) -> lab.Lab:
    """The lab with its first two servers (of this worker's slot): what most tests deploy to."""
    return dataclasses.replace(fleet_lab, servers=fleet_lab.servers[:2])


@pytest.fixture(scope="session")
def fleet_lab() -> lab.Lab:
    """This worker's slot of the running lab, three servers (started if needed), wiped once per session."""
    running = up_my_slot()
    if os.environ.get("TAGSHIP_TEST_KEEP_SERVERS"):  # a benchmark is using the lab at the same time
        return running
    assert running.hidden is not None
    for server in [*running.servers, running.hidden]:
        wipe(server)
    return running


def wipe(server: lab.LabServer) -> None:
    """Remove every container, tagship's proxy volumes, unused networks, project dirs and tagship state."""
    ids = lab.server_docker(server, "ps", "-aq").stdout.split()
    if ids:
        lab.server_docker(server, "rm", "-f", *ids)
    lab.server_docker(server, "volume", "rm", "--force", "tagship-proxy-config", "tagship-proxy-run")
    # Each compose project leaves a network; Docker has about 30 address pools to give them.
    lab.server_docker(server, "network", "prune", "--force")
    # Project directories of earlier sessions hold .env files with other ports.
    jump = ["-J", server.bastion] if server.bastion else []
    subprocess.run(["ssh", *jump, server.name, "rm -rf /srv/* /var/lib/tagship/*"], check=True, timeout=60)


@pytest.fixture(scope="session")
def hidden_server(fleet_lab: lab.Lab) -> lab.LabServer:
    """The slot's tslab-jN, whose sshd answers only its bastion, the slot's first server tslab-hN."""
    hidden = fleet_lab.hidden
    assert hidden is not None and hidden.bastion == fleet_lab.servers[0].name
    return hidden


@pytest.fixture(scope="session")
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private local docker client config, so tests never touch root's own logins."""
    return tmp_path_factory.mktemp("docker-config")


# The apps this test made (new_app), removed from the slot's servers when it ends (leave_no_app).
MADE: list[tuple[lab.Lab, str]] = []


@pytest.fixture(autouse=True)
def leave_no_app() -> Iterator[None]:
    """A finished test's app stops: left running (workers, healthchecks, listeners), the apps of a
    session took about a third of a CPU by its end, on a suite that is CPU-bound."""
    MADE.clear()
    yield
    for made, name in MADE:
        for server in [*made.servers, *([made.hidden] if made.hidden else [])]:
            remove_app(server, name)
    MADE.clear()


def remove_app(server: lab.LabServer, name: str) -> None:
    """Remove an app's containers (its compose project's, whatever its layout under /srv/NAME, and
    its listeners) and the networks that leaves unused."""
    fields = '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "tagship.app"}} '
    fields += '{{.Label "com.docker.compose.project.working_dir"}}'
    listing = lab.server_docker(server, "ps", "-a", "--format", fields).stdout
    ids = [
        cid
        for cid, project, app, where in (f"{line}   ".split(" ", 3) for line in listing.splitlines())
        if name in (project, app) or f"{where.strip()}/".startswith(f"/srv/{name}/")
    ]
    if ids:
        lab.server_docker(server, "rm", "-f", *ids)
        lab.server_docker(server, "network", "prune", "--force")


@pytest.fixture
def app(the_lab: lab.Lab, tmp_path: Path, docker_config: Path, request: pytest.FixtureRequest) -> Iterator[AppRepo]:
    """The example app in a git repo, configured for both lab servers through the lab registry."""
    # Unique per test, parameters included (the registry's tags are immutable): a prefix and a digest.
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:33].strip("-") + "-" + digest
    yield new_app(the_lab, tmp_path / "app", docker_config, name)


def new_app(the_lab: lab.Lab, path: Path, docker_config: Path, name: str) -> AppRepo:
    """The example app named `name` on a port of its own, in a git repo at path."""
    port = next_port()
    servers = ", ".join(f'"{s.name}"' for s in the_lab.servers)
    repo = AppRepo.create(
        path,
        env={
            "DOCKER_CONFIG": str(docker_config),
            "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password,
            "NO_COLOR": "1",
        },
        port=port,
        dotenv=f"APP_PORT={port}\nAPP_NAME={name}\nAPP_IMAGE_NAME={name}\nAPP_IMAGE_TAG=v0\n",
    )
    (repo.path / "tagship.toml").write_text(
        f"servers = [{servers}]\n\n"
        f'[app]\npath = "/srv/{name}"\nupload = ["compose.yaml"]\n\n'
        f'[env]\nseed = ".env"\n\n'
        f'[image]\nname = "{name}"\n\n'
        f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "{SESSION_NAMESPACE}"\n'
        f'username = "{the_lab.registry_user}"\n\n'
        f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n\n'
        f'[health]\npath = "/up"\ntimeout = 20\n'
    )
    repo.remote_path = f"/srv/{name}"
    repo.repository = f"{the_lab.registry}/{SESSION_NAMESPACE}/{name}"
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "--message", "The app")
    MADE.append((the_lab, name))
    return repo


# A hang fails fast, with every thread's stack (pytest-timeout), at a limit sized per tier; a test
# that needs longer says so with its own @pytest.mark.timeout.
TIMEOUTS = {"unit": 60, "middle": 120, "lab": 600}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is a lab test; every test gets its tier's timeout unless it names one."""
    for item in items:
        path = str(item.fspath)
        if "/e2e/" in path or os.path.basename(path) == "test_lab.py":
            item.add_marker(pytest.mark.lab)
        tier = "lab" if item.get_closest_marker("lab") else "middle" if "/middle/" in path else "unit"
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[tier]))
    # Long tests first: pytest-xdist hands tests out in this order (the same on every worker).
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
