"""Release commands from a machine with only tagship.toml and ssh; Ctrl-C while a step runs on two servers."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import lab
from tagship.engine.plan import PAUSE_AT_STEP
from tests.apprepo import AppRepo, compose_up, deploy, frozen_when, served, server_processes, ssh


def only_ssh_on_path(tmp_path: Path) -> dict[str, str]:
    """A PATH with ssh and nothing else: no docker, no compose, no git."""
    shims = tmp_path / "only-ssh"
    shims.mkdir()
    real = shutil.which("ssh")
    assert real
    (shims / "ssh").symlink_to(real)
    return {"PATH": str(shims)}


def test_releases_lock_and_rollback_need_only_the_config_and_ssh(
    the_lab: lab.Lab, app: AppRepo, tmp_path: Path
) -> None:
    deploy(app, "v1")
    deploy(app, "v2")
    bare = tmp_path / "elsewhere"
    bare.mkdir()
    shutil.copy(app.path / "tagship.toml", bare / "tagship.toml")  # no compose file, no .env, no git
    env = only_ssh_on_path(tmp_path)

    listed = app.tagship("releases", project=bare, extra_env=env)
    assert listed.returncode == 0, listed.stderr
    assert "* v2" in listed.stdout and "current: v2" in listed.stdout

    status = app.tagship("lock", "status", project=bare, extra_env=env)
    assert status.returncode == 0 and "unlocked" in status.stdout, status.stderr

    rolled = app.tagship("rollback", project=bare, extra_env=env)
    assert rolled.returncode == 0, rolled.stderr
    assert served(the_lab, app) == ["v1", "v1"]
    for server in the_lab.servers:
        dotenv = ssh(server, "cat", f"{app.remote_path}/.env").stdout
        # The values history recorded for v1, restored as they were.
        assert "APP_IMAGE_TAG=v1\n" in dotenv and f"APP_IMAGE_NAME={app.repository}\n" in dotenv


def test_ctrl_c_while_the_new_web_starts_on_two_servers_undoes_both(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    app.release("v2")
    starting = app.tagship_at({PAUSE_AT_STEP: "start new web (v2) beside the old"}, "deploy")
    h1, h2 = the_lab.servers
    frozen = [frozen_when(h1, compose_up, go_on=starting.pid), frozen_when(h2, compose_up)]  # in flight on both
    os.killpg(starting.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
    for pid in frozen:
        os.kill(pid, signal.SIGCONT)
    _, said = starting.communicate(timeout=120)
    assert starting.returncode == 130, said
    assert "interrupted" in said and "could not undo" not in said, said
    assert "==> wait until the new web is healthy" not in said, "interrupted while the new web started"
    assert served(the_lab, app) == ["v1", "v1"]
    for server in the_lab.servers:
        assert "APP_IMAGE_TAG=v1\n" in ssh(server, "cat", f"{app.remote_path}/.env").stdout
        images = ssh(server, "docker", "ps", "--all", "--format", "{{.Image}}").stdout
        assert f"{app.repository}:v2" not in images, f"{server.name} kept a v2 container"
    assert app.tagship("lock", "status").returncode == 0, "the lock is free"
    events = app.tagship("releases").stdout
    assert "v2" in events and "failed" in events, "the interrupted deploy is in the history"


def test_a_deploy_whose_persistent_shell_ended_never_reads_as_dead(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    app.release("v2")
    running = app.tagship_at({PAUSE_AT_STEP: "wait until the new web is healthy"}, "deploy")
    # End the persistent shells on the first server: the deploy goes on with one SSH session per
    # command over the same connection.
    shells = [pid for pid, argv in server_processes(the_lab.servers[0]).items() if b"echo READY" in b" ".join(argv)]
    assert shells, "a persistent shell runs on the server"
    for pid in shells:
        os.kill(pid, signal.SIGTERM)
    status = app.tagship("lock", "status")
    assert status.returncode == 3, status.stderr
    assert "looks dead" not in status.stdout and "still open" in status.stdout, status.stdout
    refused = app.tagship("lock", "release")
    assert refused.returncode == 3 and "looks alive" in refused.stderr, refused.stderr
    os.kill(running.pid, signal.SIGCONT)
    _, said = running.communicate(timeout=120)
    assert running.returncode == 0, said
    assert served(the_lab, app) == ["v2", "v2"]
