"""Issue 11's drills of a server that cannot take the release, under load on every server's port.

Compose v1 only, or no Docker at all: the deploy stops before anything changes on any server, with
one message naming the server and the fix (exit 5), which `tagship doctor` names too; the check
comes before the lock, so no server's .env, history, audit log or lock changes. A full disk under
Docker's data: the pull fails there, nothing switches anywhere, the message names the server and
its disk space (exit 1); .env is as before, the lock free, and history and the audit log have the
run as failed (it held the lock when it found out). No request fails.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator

import pytest

import lab
from lab.load import Load, LoadReport
from tests.apprepo import AppRepo, deploy, served, ssh

# What Debian 12's docker-compose package (1.29.2) answers; the script stands in for it.
COMPOSE_V1 = """#!/bin/sh
case "$*" in
  "version --short") echo 1.29.2 ;;
  *) echo "docker-compose version 1.29.2, build unknown" ;;
esac
"""

# The lab's servers have the docker CLI in two places (/bin is /usr/bin).
DOCKER_CLIS = ("/usr/local/bin/docker", "/usr/bin/docker")
NOT_INSTALLED = """#!/bin/sh
echo "sh: 1: docker: not found" >&2
exit 127
"""


def on_server(server: lab.LabServer, script: str) -> None:
    done = ssh(server, "sh", "-c", script)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def compose_v1_only_on_h2(the_lab: lab.Lab, app: AppRepo) -> Iterator[lab.LabServer]:
    """v1 deployed, v2 tagged; then server 2 loses the Compose v2 plugin and gets a `docker-compose`
    1.29.2 on its PATH (mounts in the server's own mount namespace: nothing else sees them)."""
    deploy(app, "v1")
    app.release("v2")
    h2 = the_lab.servers[1]
    on_server(
        h2,
        "mkdir -p /tmp/drill-no-plugins /tmp/drill-compose-v1"
        f" && printf %s {shlex.quote(COMPOSE_V1)} > /tmp/drill-compose-v1/docker-compose"
        " && chmod 755 /tmp/drill-compose-v1/docker-compose"
        " && mount --bind /tmp/drill-no-plugins /usr/local/lib/docker/cli-plugins"
        " && mount --bind /tmp/drill-compose-v1 /usr/local/sbin",
    )
    try:
        yield h2
    finally:
        on_server(h2, "umount /usr/local/lib/docker/cli-plugins; umount /usr/local/sbin")


@pytest.fixture
def no_docker_on_h2(the_lab: lab.Lab, app: AppRepo) -> Iterator[lab.LabServer]:
    """v1 deployed, v2 tagged; then server 2's docker CLIs answer as a shell does for a program that
    is not installed (its engine runs on: the containers keep serving)."""
    deploy(app, "v1")
    app.release("v2")
    h2 = the_lab.servers[1]
    on_server(
        h2,
        f"printf %s {shlex.quote(NOT_INSTALLED)} > /tmp/drill-no-docker && chmod 755 /tmp/drill-no-docker"
        + "".join(f" && mount --bind /tmp/drill-no-docker {cli}" for cli in DOCKER_CLIS),
    )
    try:
        yield h2
    finally:
        on_server(h2, "; ".join(f"umount {cli}" for cli in DOCKER_CLIS))


@pytest.fixture
def full_disk_on_h2(the_lab: lab.Lab, app: AppRepo) -> Iterator[lab.LabServer]:
    """v1 deployed, v2 tagged with 4 MB more; then server 2's Docker has 1 MB left where a pull
    downloads layers (a tmpfs over DATA-ROOT/tmp in the server's own mount namespace: dockerd's
    TMPDIR, where it writes each layer before it unpacks it)."""
    deploy(app, "v1")
    (app.path / "www" / "big.bin").write_bytes(os.urandom(4 << 20))  # random: gzip cannot shrink it
    app.release("v2")
    h2 = the_lab.servers[1]
    root = ssh(h2, "docker", "info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert root.startswith("/"), root
    on_server(h2, f"mount -t tmpfs -o size=1m tagship-drill-full {root}/tmp")
    try:
        yield h2
    finally:
        on_server(h2, f"! mountpoint -q {root}/tmp || umount {root}/tmp")


def looks(the_lab: lab.Lab, app: AppRepo) -> list[tuple[str, str, str, bool]]:
    """Each server's .env, history and audit log, and whether its lock is held."""
    state = f"{app.remote_path}/.tagship"
    return [
        (
            ssh(server, "cat", f"{app.remote_path}/.env").stdout,
            ssh(server, "cat", f"{state}/releases.jsonl").stdout,
            ssh(server, "cat", f"{state}/audit.log").stdout,
            ssh(server, "test", "-e", f"{state}/lock").returncode == 0,
        )
        for server in the_lab.servers
    ]


def deploy_under_load(the_lab: lab.Lab, app: AppRepo, code: int) -> str:
    """Deploy v2 under load: exit `code`, no request failed, v1 serves everywhere with no container of
    v2 anywhere; what it said."""
    running = [Load(server.ip, app.port, max_seconds=120).start() for server in the_lab.servers]
    result = app.tagship("deploy")
    reports = [load.stop() for load in running]
    assert result.returncode == code, result.stderr
    no_request_failed(the_lab, reports)
    assert served(the_lab, app) == ["v1", "v1"]
    for server in the_lab.servers:
        images = ssh(server, "docker", "ps", "-a", "--format", "{{.Image}}").stdout.split()
        assert f"{app.repository}:v2" not in images, f"{server.name}: no container of v2"
    return result.stderr


def refused_under_load(the_lab: lab.Lab, app: AppRepo) -> str:
    """Deploy v2 under load: exit 5 before the lock; .env, history, audit log and lock of every
    server exactly as before."""
    before = looks(the_lab, app)
    said = deploy_under_load(the_lab, app, 5)
    assert looks(the_lab, app) == before
    return said


def recorded_as_failed(
    the_lab: lab.Lab, before: list[tuple[str, str, str, bool]], after: list[tuple[str, str, str, bool]]
) -> None:
    """Every server: .env as before, the lock free, one history entry (v2 failed), the audit closed."""
    for server, (env, history, _, _), (now_env, now_history, now_audit, locked) in zip(
        the_lab.servers, before, after, strict=True
    ):
        assert now_env == env and not locked, f"{server.name}: .env as before, the lock free"
        added = [json.loads(line) for line in now_history.removeprefix(history).splitlines()]
        assert [(e["version"], e["result"]) for e in added] == [("v2", "failed")], server.name
        assert f"deploy v2 failed in {added[0]['seconds']}s" in now_audit.splitlines()[-1], now_audit


def no_request_failed(the_lab: lab.Lab, reports: list[LoadReport]) -> None:
    for server, report in zip(the_lab.servers, reports, strict=True):
        assert report.failed == 0, f"{server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 20 and all(seq == ["v1"] for seq in report.version_sequences()), server.name


def doctor_problems(app: AppRepo, *lang: str) -> list[str]:
    """The problems `tagship doctor` reports (exit 1): where, what and the fix of each."""
    done = app.tagship(*lang, "--json", "doctor")
    assert done.returncode == 1, done.stdout + done.stderr
    report = next(e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "doctor")
    return [f"{c['where']}: {c['detail']}; fix: {c['fix']}" for c in report["checks"] if c["status"] == "problem"]


def test_a_server_with_compose_v1_only_stops_the_deploy_before_anything_changes_anywhere(
    the_lab: lab.Lab, app: AppRepo, compose_v1_only_on_h2: lab.LabServer
) -> None:
    said = refused_under_load(the_lab, app)

    name = compose_v1_only_on_h2.name
    assert f"Docker Compose v2 (`docker compose`) is missing on {name}: it has Compose v1 only" in said, said
    assert "(docker-compose 1.29.2)" in said and "docker-compose-plugin" in said, said
    problems = doctor_problems(app)
    assert any(name in p and "Compose v1 only" in p and "docker-compose-plugin" in p for p in problems), problems
    problems = doctor_problems(app, "--lang", "zh")
    assert any(name in p and "只有 Compose v1" in p and "docker-compose-plugin" in p for p in problems), problems


def test_a_server_without_docker_stops_the_deploy_before_anything_changes_anywhere(
    the_lab: lab.Lab, app: AppRepo, no_docker_on_h2: lab.LabServer
) -> None:
    said = refused_under_load(the_lab, app)

    name = no_docker_on_h2.name
    assert f"docker is not installed on {name}" in said and "install Docker Engine" in said, said
    problems = doctor_problems(app)
    assert any(name in p and "docker is not installed" in p for p in problems), problems


def test_a_full_disk_under_one_servers_docker_data_fails_the_pull_there_and_nothing_switches_anywhere(
    the_lab: lab.Lab, app: AppRepo, full_disk_on_h2: lab.LabServer
) -> None:
    before = looks(the_lab, app)
    said = deploy_under_load(the_lab, app, 1)

    name = full_disk_on_h2.name
    assert f"{name} could not pull {app.repository}:v2: no disk space left for Docker's data there" in said, said
    assert "no space left on device" in said and f"free space on {name} (`tagship prune`" in said, said
    assert said.count("error: ") == 1, f"one message says what happened:\n{said}"
    recorded_as_failed(the_lab, before, looks(the_lab, app))
    on_server(full_disk_on_h2, "umount \"$(docker info --format '{{.DockerRootDir}}')/tmp\"")
    again = app.tagship("deploy")
    assert again.returncode == 0, f"with space again, the next deploy goes through:\n{again.stderr}"
    assert served(the_lab, app) == ["v2", "v2"]
