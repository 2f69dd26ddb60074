"""End to end: the real tagship command deploys to the lab's SSH servers through its registry."""

from __future__ import annotations

from pathlib import Path

import lab
from tests.apprepo import AppRepo, fetch, ssh


def ssh_logins(the_lab: lab.Lab, server: lab.LabServer) -> int:
    """SSH logins the server's sshd has accepted so far (its log is in the lab's state directory)."""
    log = the_lab.root / "logs" / f"{server.name}.log"
    return log.read_text(errors="replace").count("Accepted publickey")


def served(the_lab: lab.Lab, port: int) -> list[str]:
    return [fetch(f"http://{s.ip}:{port}/version.txt") for s in the_lab.servers]


def test_deploy_ships_the_tag_to_every_server_and_a_second_tag_moves_them(
    the_lab: lab.Lab, app: AppRepo, tmp_path: Path
) -> None:
    app.release("v1.0.0")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert served(the_lab, app.port) == ["v1.0.0", "v1.0.0"]

    app.release("v1.1.0")
    logins_before = [ssh_logins(the_lab, s) for s in the_lab.servers]
    trace = tmp_path / "trace"
    second = app.tagship("deploy", extra_env={"TAGSHIP_TRACE": str(trace)})
    assert second.returncode == 0, second.stderr
    assert served(the_lab, app.port) == ["v1.1.0", "v1.1.0"]
    logins = [ssh_logins(the_lab, s) - before for s, before in zip(the_lab.servers, logins_before, strict=True)]
    assert logins == [1, 1], "one multiplexed SSH connection per server per run"
    for server in the_lab.servers:
        ways = [line.split()[4] for line in trace.read_text().splitlines() if line.split()[2] == server.name]
        assert ways.count("connect") == 1 and ways.count("shell") >= 20, ways
        assert ways.count("session") == 1, "only the pull (streamed) needs an SSH session of its own"
    assert the_lab.registry_password not in trace.read_text()

    for server in the_lab.servers:
        env = ssh(server, "sh", "-c", 'stat -c %a "$1"; cat "$1"', "sh", f"{app.remote_path}/.env")
        assert "APP_IMAGE_TAG=v1.1.0" in env.stdout
        assert f"APP_IMAGE_NAME={app.repository}\n" in env.stdout
        assert env.stdout.splitlines()[0] == "600", "a new .env is created with mode 0600"
        modes = ssh(
            server, "stat", "-c", "%n %a", f"{app.remote_path}/compose.yaml", f"{app.remote_path}/compose.tagship.yaml"
        )
        assert modes.stdout.split()[1::2] == ["644", "644"], "uploaded and generated compose files are readable"
    assert the_lab.registry_password not in first.stderr + second.stderr + first.stdout
    assert "--password-stdin" in first.stderr and "<<< password" in first.stderr


def test_dirty_tree_and_untagged_head_are_refused(app: AppRepo) -> None:
    app.release("v1.0.0")
    (app.path / "www" / "index.html").write_text("uncommitted\n")
    dirty = app.tagship("deploy")
    assert dirty.returncode == 4
    assert "uncommitted changes" in dirty.stderr and "www/index.html" in dirty.stderr

    app.git("checkout", "--", "www/index.html")
    app.release("v1.0.1-untagged", tag=False)
    untagged = app.tagship("deploy")
    assert untagged.returncode == 4
    assert "HEAD has no tag" in untagged.stderr and "git tag" in untagged.stderr
