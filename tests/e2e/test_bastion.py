"""End to end through a bastion: tslab-j1 answers SSH only from tslab-h1; tagship deploys and rolls back
there with ssh.jump, and with a ProxyJump in the user's ssh_config."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import lab
from tests.apprepo import AppRepo
from tests.conftest import new_app


def ssh(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", *argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def logins(the_lab: lab.Lab, server: lab.LabServer) -> int:
    """SSH logins the server's sshd has accepted so far (its log is in the lab's state directory)."""
    return (the_lab.root / "logs" / f"{server.name}.log").read_text(errors="replace").count("Accepted publickey")


def served_via_bastion(hidden: lab.LabServer, port: int) -> str:
    """The version the hidden server serves on port, fetched from its bastion."""
    url = f"http://{hidden.ip}:{port}/version.txt"
    done = ssh(hidden.bastion, "curl", "--silent", "--show-error", "--fail", "--max-time", "5", url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_hidden_server_answers_ssh_only_through_its_bastion(
    the_lab: lab.Lab, hidden_server: lab.LabServer, tmp_path: Path
) -> None:
    for direct in (hidden_server.name, f"root@{hidden_server.ip}"):
        out = ssh(direct, "true")
        assert out.returncode == 255 and "Connection refused" in out.stderr, out.stderr
    if len(the_lab.servers) > 1:  # nor from another lab server: only the bastion
        probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{hidden_server.ip}/22'"
        assert ssh(the_lab.servers[1].name, probe).returncode != 0
    through = ssh("-J", hidden_server.bastion, hidden_server.name, "hostname; docker info --format '{{.Name}}'")
    assert through.returncode == 0, through.stderr
    assert through.stdout.split() == [hidden_server.name, hidden_server.name], "its own sshd and its own engine"
    # Host-key checking holds on the second hop: an unknown key for the hidden server is refused.
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    unknown = ssh("-o", f"UserKnownHostsFile={empty}", "-J", hidden_server.bastion, hidden_server.name, "true")
    assert unknown.returncode == 255 and "host key" in unknown.stderr.lower(), unknown.stderr
    # Its engine pulls from the lab registry (deploys need it).
    registry = the_lab.registry.replace(":", "/")
    reach = ssh("-J", hidden_server.bastion, hidden_server.name, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{registry}'")
    assert reach.returncode == 0, reach.stderr


def jump_by_key(app: AppRepo, hidden: lab.LabServer, tmp_path: Path) -> dict[str, str]:
    """ssh.jump in tagship.toml."""
    with (app.path / "tagship.toml").open("a") as toml:
        toml.write(f'\n[ssh]\njump = "{hidden.bastion}"\n')
    return {}


def jump_by_ssh_config(app: AppRepo, hidden: lab.LabServer, tmp_path: Path) -> dict[str, str]:
    """A ProxyJump in the user's ssh_config (a file of its own, as TAGSHIP_SSH_CONFIG = ssh -F)."""
    config = tmp_path / "ssh_config"
    # Include first: after a Host line it would count only for that host, and the jump's own ssh
    # (which gets the same -F) must find the bastion's user, key and known_hosts there.
    config.write_text(
        f"Include /etc/ssh/ssh_config.d/tagship-lab.conf\n\nHost {hidden.name}\n    ProxyJump {hidden.bastion}\n"
    )
    return {"TAGSHIP_SSH_CONFIG": str(config)}


Way = Callable[[AppRepo, lab.LabServer, Path], dict[str, str]]


@pytest.mark.parametrize("way", [jump_by_key, jump_by_ssh_config], ids=["ssh.jump", "ssh_config"])
def test_deploy_and_rollback_through_the_bastion(
    the_lab: lab.Lab, hidden_server: lab.LabServer, tmp_path: Path, docker_config: Path, way: Way
) -> None:
    name = "bastion-key" if way is jump_by_key else "bastion-config"
    app = new_app(the_lab, tmp_path / "app", docker_config, name)
    toml = app.path / "tagship.toml"
    first_line = toml.read_text().splitlines()[0]
    assert first_line.startswith("servers = ")
    toml.write_text(toml.read_text().replace(first_line, f'servers = ["{hidden_server.name}"]', 1))
    app.git("commit", "--quiet", "--all", "--message", "Deploy to the hidden server")

    # Without a way through, the server cannot be reached at all.
    alone = app.tagship("doctor")
    assert alone.returncode == 1
    assert "connection refused" in next(line for line in alone.stdout.splitlines() if hidden_server.name in line)

    extra_env = way(app, hidden_server, tmp_path)
    app.git("commit", "--quiet", "--all", "--allow-empty", "--message", "Through the bastion")
    doctor = app.tagship("doctor", extra_env=extra_env)
    ssh_line = next(line for line in doctor.stdout.splitlines() if f"{hidden_server.name}  ssh: " in line)
    assert "reachable over SSH" in ssh_line, doctor.stdout
    if way is jump_by_key:
        assert f"through {hidden_server.bastion}" in ssh_line
        if len(the_lab.servers) > 1:  # TAGSHIP_SSH_JUMP wins over the file; the wrong bastion is named
            other = the_lab.servers[1].name
            wrong = app.tagship("doctor", extra_env={"TAGSHIP_SSH_JUMP": other})
            line = next(line for line in wrong.stdout.splitlines() if f"{hidden_server.name}  ssh: " in line)
            assert wrong.returncode == 1 and f"through {other}: connection closed by the server" in line, line
            assert f"the jump host {other} may not reach the server's sshd" in line

    bastion = the_lab.servers[0]
    for version in ("v1.0.0", "v2.0.0"):
        app.release(version)
        before = (logins(the_lab, bastion), logins(the_lab, hidden_server))
        deployed = app.tagship("deploy", extra_env=extra_env)
        after = (logins(the_lab, bastion), logins(the_lab, hidden_server))
        assert deployed.returncode == 0, deployed.stderr
        # One multiplexed connection through one jump: the master carries the ProxyJump, every command
        # of the run rides on it.
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1), (before, after)
        assert served_via_bastion(hidden_server, app.port) == version

    rolled = app.tagship("rollback", extra_env=extra_env)
    assert rolled.returncode == 0, rolled.stderr
    assert served_via_bastion(hidden_server, app.port) == "v1.0.0"
    env = ssh("-J", hidden_server.bastion, hidden_server.name, f"cat {app.remote_path}/.env")
    assert "APP_IMAGE_TAG=v1.0.0\n" in env.stdout, env.stderr
