"""`tagship doctor` on this machine and two scripted servers: a line per check, each problem with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship import cli
from tagship.builders import lock
from tagship.commands import doctor as doctor_command
from tagship.errors import ConnectError, MissingToolError
from tagship.output import Output
from tagship.remote.server import LOCAL, Server
from tagship.remote.transport import Result, Transport
from tests.middle.fake_host import FakeHost
from tests.middle.recorder import CONNECT, RecordingTransport, Script
from tests.middle.settings import CONFIG, H1, H2, write_config

BOB = lock.Holder("bob-token", "bob", "laptop", 4242, "deploy", "v9", "2026-11-27T10:02:00Z")
GB = 1024**3
DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 {total} {used} {free} 50% /\n"


def df(free_bytes: int) -> Result:
    free = free_bytes // 1024
    return Result(0, DF.format(total=free * 2, used=free, free=free), "")


@pytest.fixture(autouse=True)
def healthy(script: Script, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has every tool; the servers (FakeHost, which knows no version commands) answer
    as healthy ones do, with 50 GB free and the lock free."""

    def local(server: Server, out: Output) -> Transport:
        return RecordingTransport(server=server, out=out, script=script)

    monkeypatch.setattr(doctor_command, "LocalTransport", local)
    script.on("git --version", Result(0, "git version 2.43.0\n", ""), server=LOCAL)
    script.on("docker --version", Result(0, "Docker version 27.1.1, build 6312585\n", ""), server=LOCAL)
    script.on("ssh -V", Result(0, "", "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024\n"), server=LOCAL)
    script.on("docker compose version", Result(0, "2.29.1\n", ""))
    script.on("docker version", Result(0, "27.1.1\n", ""))
    script.on("docker info", Result(0, "/var/lib/docker\n", ""))
    script.on("df -Pk /var/lib/docker", df(50 * GB))
    script.on("<lock status>", Result(0, "", ""))


def doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    write_config(tmp_path)
    code = cli.main(["-C", str(tmp_path), "doctor"])
    return code, capsys.readouterr().out.splitlines()


def line_of(lines: list[str], where: str, name: str) -> str:
    (found,) = [line for line in lines if line.split()[1:3] == [where, f"{name}:"]]
    return found


def test_a_healthy_machine_and_servers_pass_every_check(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = doctor(tmp_path, capsys)
    assert code == 0, "\n".join(lines)
    assert lines[-1] == "no problems"
    assert line_of(lines, "local", "compose") == "ok      local  compose: Docker Compose 2.29.1"
    assert line_of(lines, "local", "ssh").endswith("ssh: OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024")
    for server in (H1, H2):
        assert line_of(lines, server, "ssh").startswith("ok")
        assert line_of(lines, server, "docker").endswith("docker: Docker Engine 27.1.1")
        assert line_of(lines, server, "disk").endswith("disk: 50.0 GB free under /var/lib/docker")
        assert line_of(lines, server, "proxy-image").endswith("caddy:2-alpine is on the server")
        assert line_of(lines, server, "listener-image").endswith("haproxy:lts-alpine is on the server")
        assert line_of(lines, server, "proxy").endswith("tagship-proxy is running")
        assert line_of(lines, server, "lock").endswith("the deploy lock is free")
    assert not any("<take lock>" in c for c in script.shown()), "doctor takes no lock"


def test_a_server_without_compose_v2_is_a_problem_with_its_fix(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = Result(1, "", "docker: 'compose' is not a docker command.\n")
    script.on("docker compose version", missing, server=H2, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H2, "docker") == (
        f"problem {H2}  docker: Docker Compose v2 (`docker compose`) is missing on {H2}; "
        "fix: install the docker-compose-plugin package there (Compose v1 is not enough)"
    )
    assert line_of(lines, H1, "compose").startswith("ok")
    assert line_of(lines, H2, "lock").startswith("ok"), "the other checks of that server still run"
    assert lines[-1] == "1 problem(s), 0 warning(s)"


def test_this_machine_without_compose_v2_is_a_problem_with_its_fix(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("docker compose version", Result(1, "", "unknown command"), server=LOCAL, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, "local", "compose").startswith(
        "problem local  compose: Docker Compose v2 (`docker compose`) is missing; fix: install the Docker Compose v2"
    )


def test_a_full_disk_is_a_problem_with_its_fix(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("df -Pk", df(GB), server=H1, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H1, "disk") == (
        f"problem {H1}  disk: only 1.0 GB free under /var/lib/docker (less than 2.0 GB); "
        "fix: free space there: `tagship prune`, `docker system prune`, or a bigger disk"
    )
    assert line_of(lines, H2, "disk").startswith("ok")


def test_a_lock_whose_holder_is_gone_is_a_problem_and_a_live_one_a_warning(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("<lock status>", Result(0, BOB.json() + "\nconnection=gone\n", ""), server=H1, first=True)
    script.on("<lock status>", Result(0, BOB.json() + "\nconnection=alive\n", ""), server=H2, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    who = "bob on laptop since 2026-11-27T10:02:00Z (deploy v9, pid 4242)"
    assert line_of(lines, H1, "lock") == (
        f"problem {H1}  lock: the deploy lock is held by {who}, whose SSH connection is gone; "
        "fix: `tagship lock release` frees it once you know that run is dead"
    )
    assert line_of(lines, H2, "lock").startswith(f"warn    {H2}  lock: the deploy lock is held by {who}")
    assert lines[-1] == "1 problem(s), 1 warning(s)"


def test_a_live_lock_alone_does_not_fail_the_doctor(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("<lock status>", Result(0, BOB.json() + "\nconnection=alive\n", ""), server=H2, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 0 and lines[-1] == "no problems (1 warning(s))"


def test_an_unreachable_server_and_a_missing_tool_here_are_problems_and_the_rest_is_checked(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    refused = ConnectError(f"cannot connect to {H2}: connection refused", hint="check the address and sshd")
    script.on(CONNECT, refused, server=H2, first=True)
    script.on("git --version", MissingToolError("git is not installed on this machine"), server=LOCAL, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H2, "ssh") == (
        f"problem {H2}  ssh: cannot connect to {H2}: connection refused; fix: check the address and sshd"
    )
    assert not [line for line in lines if line.split()[1] == H2 and "ssh:" not in line]
    assert line_of(lines, "local", "git").startswith("problem local  git: git is not installed or does not run")
    assert line_of(lines, H1, "lock").startswith("ok")


def test_a_config_that_does_not_load_is_a_problem_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tagship.toml").write_text('servers = "not a list"\n', encoding="utf-8")
    code = cli.main(["-C", str(tmp_path), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert line_of(lines, "local", "config").startswith("problem local  config: ")
    assert line_of(lines, "local", "git").startswith("ok")


def test_a_stopped_proxy_is_a_problem_and_a_missing_proxy_image_a_warning(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    stopped = '[{"Name": "/tagship-proxy", "State": {"Status": "exited", "Running": false}}]'
    script.on("docker container inspect tagship-proxy", Result(0, stopped, ""), server=H1, first=True)
    del hosts[H2].images["caddy:2-alpine"]
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H1, "proxy") == (
        f"problem {H1}  proxy: tagship-proxy is exited: the apps behind it are not served; "
        "fix: `docker start tagship-proxy` there (why it stopped: `docker logs tagship-proxy`)"
    )
    assert line_of(lines, H2, "proxy-image").startswith(
        f"warn    {H2}  proxy-image: caddy:2-alpine is not on the server"
    )
    assert lines[-1] == "1 problem(s), 1 warning(s)"


def test_compose_v1_answering_docker_compose_is_not_enough(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("docker compose version", Result(0, "1.29.2\n", ""), server=H1, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H1, "compose").startswith(
        f"problem {H1}  compose: Docker Compose v2 (`docker compose`) is missing (found v1); fix: install"
    )


def test_the_ssh_line_names_the_jump_host_each_server_is_reached_through(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    text = CONFIG.replace(f'"{H2}"', f'"{H2} -J ops@other:2222"') + '\n[ssh]\njump = "ops@bastion:22"\n'
    write_config(tmp_path, text=text)
    code = cli.main(["-C", str(tmp_path), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, "\n".join(lines)
    assert line_of(lines, H1, "ssh").endswith("ssh: reachable over SSH (BatchMode) through ops@bastion:22")
    assert line_of(lines, H2, "ssh").endswith("ssh: reachable over SSH (BatchMode) through ops@other:2222")


@pytest.mark.parametrize("installed", [True, False])
def test_the_ssh_transport_needs_the_registry_program_on_this_machine(
    tmp_path: Path,
    script: Script,
    hosts: dict[str, FakeHost],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    installed: bool,
) -> None:
    monkeypatch.setattr("tagship.release.shipping.shutil.which", lambda name: f"/usr/bin/{name}" if installed else None)
    write_config(tmp_path, '\n[image]\ntransport = "ssh"\n', text=CONFIG.replace('[image]\nname = "app"\n', ""))
    code = cli.main(["-C", str(tmp_path), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    line = line_of(lines, "local", "docker-registry")
    if installed:
        assert code == 0 and line.endswith("docker-registry: /usr/bin/docker-registry (for image.transport = ssh)")
    else:
        assert code == 1 and line.startswith("problem") and 'image.transport = "ssh" needs it' in line
        assert "apt install docker-registry" in "\n".join(lines)


UNTRUSTED = (
    'Error response from daemon: Get "https://reg/v2/": tls: failed to verify certificate: '
    "x509: certificate signed by unknown authority\n"
)
REFUSED_CONNECTION = (
    'Error response from daemon: Get "https://reg/v2/": dial tcp 10.9.9.9:443: connect: connection refused\n'
)


def test_each_server_is_checked_against_the_registry_from_where_it_is(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    """No login configured: a pull of an absent image shows whether the registry answers the server."""
    script.on("env DOCKER_CONFIG=", Result(1, "", REFUSED_CONNECTION), server=H1, first=True)
    script.on("env DOCKER_CONFIG=", Result(1, "", "manifest unknown\n"), server=H2, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H1, "registry") == (
        f"problem {H1}  registry: {H1} cannot reach registry reg; fix: open the way from {H1} to reg (firewall, DNS, "
        'the HTTP proxy of its Docker engine), or set image.transport = "ssh" to send images over SSH instead'
    )
    assert line_of(lines, H2, "registry") == f"ok      {H2}  registry: registry reg answers (no login configured)"
    for server in (H1, H2):
        pulls = [c for c in script.shown(server) if "docker pull" in c]
        assert pulls and all("DOCKER_CONFIG=/tmp/" in c for c in pulls), "never in the user's own docker config"
        assert script.shown(server)[script.shown(server).index(pulls[-1]) + 1].startswith("rm -rf -- /tmp/")


def test_a_registry_certificate_the_server_does_not_trust_is_a_problem_naming_where_the_ca_goes(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on("env DOCKER_CONFIG=", Result(1, "", UNTRUSTED), server=H2, first=True)
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H2, "registry") == (
        f"problem {H2}  registry: {H2} does not trust the TLS certificate of registry reg; fix: put the CA "
        f"certificate that signed it at /etc/docker/certs.d/reg/ca.crt on {H2} (Docker reads it at the next pull, "
        "without a restart)"
    )
    assert line_of(lines, H1, "registry").startswith("ok")


def test_with_a_login_configured_the_server_logs_in_and_a_refusal_names_the_password_variable(
    tmp_path: Path,
    script: Script,
    hosts: dict[str, FakeHost],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", "s3cret-pw")
    script.on(
        "env DOCKER_CONFIG=", Result(1, "", "Error response from daemon: unauthorized: bad\n"), server=H2, first=True
    )
    code, lines = doctor(tmp_path, capsys)
    assert code == 1
    assert line_of(lines, H1, "registry") == f"ok      {H1}  registry: registry reg answers and accepts the login"
    assert line_of(lines, H2, "registry").startswith(f"problem {H2}  registry: registry reg refused the login on {H2}")
    assert line_of(lines, H2, "registry").endswith(
        "fix: check registry.username and the password in $TAGSHIP_REGISTRY_PASSWORD"
    )
    logins = [c for c in script.shown(H1) if "docker login" in c]
    assert len(logins) == 1 and "--password-stdin" in logins[0] and "DOCKER_CONFIG=/tmp/" in logins[0]
    assert "s3cret-pw" not in "\n".join(script.shown() + lines)


def test_images_sent_over_ssh_need_no_registry_check(
    tmp_path: Path, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, text=CONFIG.replace('[image]\nname = "app"', '[image]\nname = "app"\ntransport = "ssh"'))
    cli.main(["-C", str(tmp_path), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if " registry:" in line], lines
