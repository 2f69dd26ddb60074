"""Refusals and failures: each is one clear error with its exit code, and nothing changes on the servers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from tests.apprepo import AppRepo, fetch, ssh


def server_state(the_lab: lab.Lab, app: AppRepo) -> list[str]:
    """What a user would look at on each server: its .env and the version it serves."""
    states = []
    for server in the_lab.servers:
        env = ssh(server, "cat", f"{app.remote_path}/.env").stdout
        states.append(env + fetch(f"http://{server.ip}:{app.port}/version.txt"))
    return states


@pytest.fixture
def deployed(the_lab: lab.Lab, app: AppRepo) -> AppRepo:
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    app.release("v2")
    return app


def test_wrong_registry_password_changes_nothing(the_lab: lab.Lab, deployed: AppRepo) -> None:
    before = server_state(the_lab, deployed)
    result = deployed.tagship("deploy", extra_env={"TAGSHIP_REGISTRY_PASSWORD": "not-the-password"})
    assert result.returncode == 7, result.stderr
    assert "refused the login" in result.stderr and "TAGSHIP_REGISTRY_PASSWORD" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
    assert server_state(the_lab, deployed) == before


@pytest.fixture
def no_compose_on_h2(the_lab: lab.Lab) -> Iterator[lab.LabServer]:
    """Hide the Compose v2 plugin on server 2 only (its own mount namespace)."""
    h2 = the_lab.servers[1]
    hidden = ssh(
        h2, "sh", "-c", "mkdir -p /tmp/no-plugins && mount --bind /tmp/no-plugins /usr/local/lib/docker/cli-plugins"
    )
    assert hidden.returncode == 0, hidden.stderr
    try:
        yield h2
    finally:
        ssh(h2, "umount", "/usr/local/lib/docker/cli-plugins")


def test_missing_compose_on_a_server_is_named_and_nothing_changes(
    the_lab: lab.Lab, deployed: AppRepo, no_compose_on_h2: lab.LabServer
) -> None:
    h1 = the_lab.servers[0]
    before = ssh(h1, "cat", f"{deployed.remote_path}/.env").stdout
    result = deployed.tagship("deploy")
    assert result.returncode == 5, result.stderr
    assert f"Docker Compose v2 (`docker compose`) is missing on {no_compose_on_h2.name}" in result.stderr
    assert "docker-compose-plugin" in result.stderr
    assert ssh(h1, "cat", f"{deployed.remote_path}/.env").stdout == before
    assert fetch(f"http://{h1.ip}:{deployed.port}/version.txt") == "v1"


def test_dry_run_prints_the_plan_opens_no_connection_and_changes_nothing(
    the_lab: lab.Lab, deployed: AppRepo, tmp_path: Path
) -> None:
    before = server_state(the_lab, deployed)
    calls = tmp_path / "ssh-calls"
    shims = tmp_path / "bin"
    shims.mkdir()
    real_ssh = shutil.which("ssh")
    assert real_ssh
    (shims / "ssh").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real_ssh} "$@"\n')
    (shims / "ssh").chmod(0o755)
    path = f"{shims}:{os.environ['PATH']}"
    result = deployed.tagship("deploy", "--dry-run", extra_env={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), f"a dry run ran ssh: {calls.read_text()}"
    names = ", ".join(s.name for s in the_lab.servers)
    assert f"pull {deployed.repository}:v2  [{names}]" in result.stderr
    assert f"docker pull {deployed.repository}@<digest>, tag it {deployed.repository}:v2" in result.stderr
    assert "on failure: remove the new web containers" in result.stderr
    assert "point of no return" in result.stderr
    assert "container_name: !reset null" in result.stderr, "the override is shown"
    # Named as the server names it (its project directory), never after the temporary build tree.
    app_name = deployed.remote_path.rsplit("/", 1)[1]
    assert f'tagship.app: "{app_name}"' in result.stderr
    assert "tagship-build-" not in result.stderr
    assert "would deploy" in result.stdout
    assert server_state(the_lab, deployed) == before
    image = f"{deployed.repository}:v2"
    built = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    assert built.returncode != 0, "a dry run builds nothing"


def test_unknown_host_key_is_refused_without_turning_checking_off(the_lab: lab.Lab, deployed: AppRepo) -> None:
    config = deployed.path / "tagship.toml"
    config.write_text(config.read_text().replace("[ssh]", "") + '\n[ssh]\noptions = ["UserKnownHostsFile=/dev/null"]\n')
    deployed.git("commit", "--quiet", "--all", "--message", "no known hosts")
    deployed.git("tag", "--force", "v2")
    result = deployed.tagship("deploy")
    assert result.returncode == 6, result.stderr
    assert "unknown or changed host key" in result.stderr and "known_hosts" in result.stderr


def test_unreachable_server_fails_fast_with_exit_6(the_lab: lab.Lab, deployed: AppRepo) -> None:
    h1 = the_lab.servers[0]
    result = deployed.tagship("deploy", extra_env={"TAGSHIP_SERVERS": f"root@{h1.ip}:2"})
    assert result.returncode == 6, result.stderr
    assert "connection refused" in result.stderr
