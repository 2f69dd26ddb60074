"""Fixtures for the lab tiers. A missing lab fails the tests (never skips them)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from tests.apprepo import SESSION_NAMESPACE, AppRepo, next_port


@pytest.fixture(scope="session")
def the_lab(fleet_lab: lab.Lab) -> lab.Lab:
    """The lab with its first two servers: what most tests deploy to."""
    return dataclasses.replace(fleet_lab, servers=fleet_lab.servers[:2])


@pytest.fixture(scope="session")
def fleet_lab() -> lab.Lab:
    """The running lab with three servers (started if needed); they are wiped of containers once per session."""
    running = lab.up(servers=3)
    if os.environ.get("TAGSHIP_TEST_KEEP_SERVERS"):  # a benchmark is using the lab at the same time
        return running
    for server in running.servers:
        ids = lab.server_docker(server, "ps", "-aq").stdout.split()
        if ids:
            lab.server_docker(server, "rm", "-f", *ids)
        lab.server_docker(server, "volume", "rm", "--force", "tagship-proxy-config", "tagship-proxy-run")
        # Each compose project leaves a network; Docker has about 30 address pools to give them.
        lab.server_docker(server, "network", "prune", "--force")
        # Project directories of earlier sessions hold .env files with other ports.
        subprocess.run(["ssh", server.name, "rm -rf /srv/* /var/lib/tagship/*"], check=True, timeout=60)
    return running


@pytest.fixture(scope="session")
def hidden_server(fleet_lab: lab.Lab) -> lab.LabServer:
    """tslab-j1, whose sshd answers only its bastion tslab-h1 (lab.up(hidden=True)); wiped as the_lab's are."""
    hidden = lab.up(servers=len(fleet_lab.servers), hidden=True).hidden  # every server of the session stays up
    assert hidden is not None and hidden.bastion == fleet_lab.servers[0].name
    if os.environ.get("TAGSHIP_TEST_KEEP_SERVERS"):
        return hidden
    ids = lab.server_docker(hidden, "ps", "-aq").stdout.split()
    if ids:
        lab.server_docker(hidden, "rm", "-f", *ids)
    lab.server_docker(hidden, "volume", "rm", "--force", "tagship-proxy-config", "tagship-proxy-run")
    lab.server_docker(hidden, "network", "prune", "--force")
    wipe = ["ssh", "-J", hidden.bastion, hidden.name, "rm -rf /srv/* /var/lib/tagship/*"]
    subprocess.run(wipe, check=True, timeout=60)
    return hidden


@pytest.fixture(scope="session")
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private local docker client config, so tests never touch root's own logins."""
    return tmp_path_factory.mktemp("docker-config")


@pytest.fixture
def app(the_lab: lab.Lab, tmp_path: Path, docker_config: Path, request: pytest.FixtureRequest) -> Iterator[AppRepo]:
    """The example app in a git repo, configured for both lab servers through the lab registry."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
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
    return repo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is a lab test."""
    for item in items:
        if "/e2e/" in str(item.fspath) or os.path.basename(str(item.fspath)) == "test_lab.py":
            item.add_marker(pytest.mark.lab)
