"""Issue 11's drills under load: the SSH connection cut by the server mid-deploy, a server that cannot
reach the registry. Each asserts zero failed requests, the servers' .env, history and lock afterwards,
and that the next deploy goes through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from lab.load import Load, LoadReport
from tagship.engine.plan import PAUSE_AT_STEP
from tests.apprepo import AppRepo, compose_up, fetch, frozen_when, ssh


def cut_ssh(server: lab.LabServer) -> int:
    """Kill the sshd processes of every open connection to the server, as a server-side drop does
    (its listening sshd stays); how many were killed."""
    pids = subprocess.run(["ip", "netns", "pids", server.name], capture_output=True, text=True, check=True)
    killed = 0
    for pid in pids.stdout.split():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"sshd: ") and b"[listener]" not in title and b"/usr/sbin/sshd" not in title:
            with_pid = int(pid)
            try:
                os.kill(with_pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def loads(the_lab: lab.Lab, app: AppRepo) -> list[Load]:
    return [Load(server.ip, app.port, max_seconds=240).start() for server in the_lab.servers]


def assert_served_cleanly(the_lab: lab.Lab, reports: list[LoadReport], version: str) -> None:
    for server, report in zip(the_lab.servers, reports, strict=True):
        assert report.failed == 0, f"{server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 50 and all(seq == [version] for seq in report.version_sequences()), server.name


def env_tag(server: lab.LabServer, app: AppRepo) -> str:
    text = ssh(server, "cat", f"{app.remote_path}/.env").stdout
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("APP_IMAGE_TAG="))


def last_history(server: lab.LabServer, app: AppRepo) -> tuple[str, str]:
    lines = ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl").stdout.splitlines()
    entry = json.loads(lines[-1])
    return entry["version"], entry["result"]


def test_an_ssh_connection_cut_by_the_server_mid_deploy_leaves_the_old_release_and_a_clear_way_on(
    the_lab: lab.Lab, app: AppRepo
) -> None:
    h1 = the_lab.servers[0]
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    app.release("v2")
    running = loads(the_lab, app)
    proc = app.tagship_at({PAUSE_AT_STEP: "start new web (v2) beside the old"}, "deploy")
    # The step's compose up on h1, frozen: the cut comes while it is in flight. (Between two commands
    # tagship simply connects again, and a probe of the health wait that fails is tried again.)
    in_flight = frozen_when(h1, compose_up, go_on=proc.pid)
    assert cut_ssh(h1) > 0
    os.kill(in_flight, signal.SIGCONT)
    _, said = proc.communicate(timeout=300)
    reports = [load.stop() for load in running]

    assert proc.returncode != 0, said
    assert_served_cleanly(the_lab, reports, "v1")
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v1", server.name
        assert env_tag(server, app) == "v1", f"{server.name}: the undo put .env back\n{said}"
        assert last_history(server, app) == ("v2", "failed"), server.name
    status = app.tagship("lock", "status")
    assert status.returncode == 0, f"the lock is free after the undo:\n{status.stdout}{said}"
    again = app.tagship("deploy")
    assert again.returncode == 0, again.stderr
    assert [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in the_lab.servers] == ["v2", "v2"]


@pytest.fixture
def h2_without_registry(the_lab: lab.Lab) -> Iterator[lab.LabServer]:
    h2 = the_lab.servers[1]
    lab.block_registry(h2, True)
    try:
        yield h2
    finally:
        lab.block_registry(h2, False)


def refused_at_the_registry(the_lab: lab.Lab, app: AppRepo) -> str:
    """Deploy v2 under load: exit 7, no request failed, v1 serves with .env unchanged and no container of
    v2 on any server; what it said."""
    running = loads(the_lab, app)
    result = app.tagship("deploy")
    reports = [load.stop() for load in running]
    assert result.returncode == 7, result.stderr
    assert_served_cleanly(the_lab, reports, "v1")
    for server in the_lab.servers:
        assert env_tag(server, app) == "v1", server.name
        images = ssh(server, "docker", "ps", "--format", "{{.Image}}").stdout.split()
        assert f"{app.repository}:v2" not in images, f"{server.name}: no v2 container"
    return result.stderr


def test_a_server_that_cannot_reach_the_registry_stops_the_deploy_before_anything_switches_anywhere(
    the_lab: lab.Lab, app: AppRepo, h2_without_registry: lab.LabServer
) -> None:
    app.release("v1")
    lab.block_registry(h2_without_registry, False)
    assert app.tagship("deploy").returncode == 0
    lab.block_registry(h2_without_registry, True)
    app.release("v2")
    said = refused_at_the_registry(the_lab, app)
    assert f"{h2_without_registry.name} cannot reach registry {the_lab.registry}" in said, said
    assert 'or set image.transport = "ssh"' in said, "the fix is named"
    assert app.tagship("lock", "status").returncode == 0


def test_doctor_names_a_server_cut_off_from_the_registry_and_one_distrusting_it_and_a_deploy_stops_there(
    the_lab: lab.Lab, app: AppRepo, h2_without_registry: lab.LabServer
) -> None:
    """The most common intranet failures, found by `tagship doctor` from each server, and by the deploy
    before anything switches: no route to the registry, and a registry CA the server lacks."""
    h1, h2 = the_lab.servers[0], h2_without_registry
    ca_path = f"/etc/docker/certs.d/{the_lab.registry}/ca.crt"
    lab.block_registry(h2, False)
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    healthy = app.tagship("doctor")
    assert healthy.returncode == 0, healthy.stdout
    for server in the_lab.servers:
        assert f"{server.name}  registry: registry {the_lab.registry} answers and accepts the login" in healthy.stdout

    lab.block_registry(h2, True)
    lab.untrust_registry(h1, True)
    try:
        sick = app.tagship("doctor")
        assert sick.returncode == 1, sick.stdout
        untrusted = next(line for line in sick.stdout.splitlines() if f"{h1.name}  registry:" in line)
        assert untrusted.startswith("problem") and "does not trust the TLS certificate" in untrusted, untrusted
        assert f"{ca_path} on {h1.name}" in untrusted, "the fix names where the CA goes"
        cut_off = next(line for line in sick.stdout.splitlines() if f"{h2.name}  registry:" in line)
        assert f"{h2.name} cannot reach registry {the_lab.registry}" in cut_off, cut_off

        lab.block_registry(h2, False)
        app.release("v2")
        said = refused_at_the_registry(the_lab, app)
        assert f"{h1.name} does not trust the TLS certificate of registry {the_lab.registry}" in said, said
        assert ca_path in said, said
    finally:
        lab.untrust_registry(h1, False)
    assert app.tagship("deploy").returncode == 0, "trusted again, the same release deploys"


def test_a_tag_pushed_again_while_a_deploy_runs_does_not_reach_the_servers(the_lab: lab.Lab, app: AppRepo) -> None:
    """Between this run's push and the servers' pull, someone pushes other content under the same
    tag: the servers still get the image this run built (they pull it by the digest its push reported)."""
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    app.release("v2")
    proc = app.tagship_at({PAUSE_AT_STEP: f"pull {app.repository}:v2"}, "deploy")
    try:
        swapped = f"FROM {app.repository}:v2\nRUN echo swapped > /www/version.txt\n"
        env = {**os.environ, **app.env}
        built = subprocess.run(
            ["docker", "build", "--quiet", "--tag", f"{app.repository}:v2", "-"],
            input=swapped, text=True, capture_output=True, env=env, timeout=300,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        pushed = subprocess.run(
            ["docker", "push", f"{app.repository}:v2"], text=True, capture_output=True, env=env, timeout=300
        )
        assert pushed.returncode == 0, pushed.stderr
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    _, said = proc.communicate(timeout=300)
    assert proc.returncode == 0, said
    assert [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in the_lab.servers] == ["v2", "v2"]
