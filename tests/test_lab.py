"""The test lab itself: a real TLS registry and SSH servers with their own Docker engines.

Needs root and scripts/install-system.sh (a lab that cannot start fails these tests, never skips
them); brings the lab up (or reuses a healthy one) and leaves it running. Each pytest-xdist worker
checks the slot of servers it was given (tests/conftest.py).
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import lab
from tests.conftest import SERVERS_PER_SLOT, lab_slot, up_my_slot

pytestmark = pytest.mark.lab


def ssh(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def engine_id_over_ssh(*target: str) -> str:
    out = ssh(*target, "docker info --format '{{.ID}}'")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def registry_get(the_lab: lab.Lab, user: str, password: str) -> int:
    ctx = ssl.create_default_context(cafile=str(the_lab.ca_cert))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"https://{the_lab.registry}/v2/", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_lab_shape(fleet_lab: lab.Lab) -> None:
    slot, _ = lab_slot()
    first = slot * SERVERS_PER_SLOT + 1
    numbers = range(first, first + SERVERS_PER_SLOT)
    assert fleet_lab.registry == "10.201.0.11:5443"
    assert [s.name for s in fleet_lab.servers] == [f"tslab-h{n}" for n in numbers]
    assert [s.ip for s in fleet_lab.servers] == [f"10.201.{n}.11" for n in numbers]
    assert fleet_lab.servers[0].docker_host == f"unix:///run/tslab-h{first}/docker.sock"
    assert fleet_lab.caddy_image == "10.201.0.11:5443/lab/caddy:2"
    assert fleet_lab.ca_cert.is_file()
    assert (fleet_lab.root / "registry" / "password").stat().st_mode & 0o777 == 0o600
    assert lab.current(slot) == fleet_lab


def test_each_server_has_its_own_engine_over_ssh(the_lab: lab.Lab) -> None:
    ids = []
    for server in the_lab.servers:
        over_ssh = engine_id_over_ssh(server.name)
        direct = lab.server_docker(server, "info", "--format", "{{.ID}}")
        assert direct.returncode == 0, direct.stderr
        assert over_ssh == direct.stdout.strip()
        name = ssh(server.name, "docker info --format '{{.Name}}'").stdout.strip()
        assert name == server.name
        ids.append(over_ssh)
    host = subprocess.run(
        ["docker", "-H", "unix:///var/run/docker.sock", "info", "--format", "{{.ID}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert len(set([*ids, host])) == len(ids) + 1


def test_ssh_by_ip_and_port_like_the_user_script(the_lab: lab.Lab) -> None:
    first = the_lab.servers[0]
    out = ssh(f"root@{first.ip}", "-p", "22", "true")
    assert out.returncode == 0, out.stderr
    assert engine_id_over_ssh(f"root@{first.ip}", "-p", "22") == engine_id_over_ssh(first.name)


def test_host_key_checking_stays_on(the_lab: lab.Lab, tmp_path: Path) -> None:
    first, second = the_lab.servers[0], the_lab.servers[1]
    config = ssh("-G", first.name).stdout.lower().splitlines()
    assert "stricthostkeychecking true" in config
    assert f"hostname {first.ip}" in config
    # An unknown host is refused rather than trusted on first use ...
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    out = ssh("-o", f"UserKnownHostsFile={empty}", first.name, "true")
    assert out.returncode == 255
    assert "host key" in out.stderr.lower()
    # ... and so is a host presenting a key other than the one on record.
    real = (the_lab.root / "ssh" / "known_hosts").read_text().splitlines()
    other_key = next(line for line in real if line.startswith(f"{second.name},")).split()[1:]
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"{first.name},{first.ip} {' '.join(other_key)}\n")
    out = ssh("-o", f"UserKnownHostsFile={wrong}", first.name, "true")
    assert out.returncode == 255
    assert "host key" in out.stderr.lower()


def test_registry_refuses_wrong_password_and_accepts_right_one(the_lab: lab.Lab) -> None:
    assert registry_get(the_lab, the_lab.registry_user, "not-the-password") == 401
    assert registry_get(the_lab, "someone-else", the_lab.registry_password) == 401
    assert registry_get(the_lab, the_lab.registry_user, the_lab.registry_password) == 200
    # The same from a server's engine, through docker login.
    script = (
        'd=$(mktemp -d); DOCKER_CONFIG=$d docker login {reg} -u {user} --password-stdin; r=$?; rm -rf "$d"; exit $r'
    )
    cmd = script.format(reg=the_lab.registry, user=the_lab.registry_user)
    server = the_lab.servers[-1].name
    assert ssh(server, cmd, input="wrong\n").returncode != 0
    ok = ssh(server, cmd, input=the_lab.registry_password + "\n")
    assert ok.returncode == 0, ok.stderr


def test_server_pulls_caddy_image_from_registry(the_lab: lab.Lab) -> None:
    server = the_lab.servers[-1]
    lab.server_docker(server, "image", "rm", "-f", the_lab.caddy_image)
    script = (
        "d=$(mktemp -d); export DOCKER_CONFIG=$d; "
        f"docker login {the_lab.registry} -u {the_lab.registry_user} --password-stdin "
        f'&& docker pull -q {the_lab.caddy_image}; r=$?; rm -rf "$d"; exit $r'
    )
    out = ssh(server.name, script, input=the_lab.registry_password + "\n", timeout=180)
    assert out.returncode == 0, out.stderr
    run = lab.server_docker(
        server,
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        the_lab.caddy_image,
        "-c",
        "caddy version && command -v wget && ! command -v curl",
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stdout.startswith(("2.", "v2."))


def test_servers_have_private_filesystems(the_lab: lab.Lab) -> None:
    first, second = the_lab.servers[0], the_lab.servers[1]
    tag = f"tslab-test-{uuid.uuid4().hex[:8]}"
    out = ssh(first.name, f"mkdir -p /srv/{tag}/data /root/.docker/{tag} && echo {tag} > /srv/{tag}/data/f")
    assert out.returncode == 0, out.stderr
    try:
        assert ssh(first.name, f"cat /srv/{tag}/data/f").stdout.strip() == tag
        assert ssh(second.name, f"test -e /srv/{tag}").returncode == 1
        assert ssh(second.name, f"test -e /root/.docker/{tag}").returncode == 1
        assert not Path(f"/srv/{tag}").exists()
        assert not Path(f"/root/.docker/{tag}").exists()
        # The server's engine sees the same /srv as its sshd: compose bind mounts work.
        pull = lab.server_docker(first, "pull", "-q", the_lab.caddy_image)
        assert pull.returncode == 0, pull.stderr
        run = lab.server_docker(
            first,
            "run",
            "--rm",
            "-v",
            f"/srv/{tag}/data:/data",
            "--entrypoint",
            "cat",
            the_lab.caddy_image,
            "/data/f",
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == tag
    finally:
        ssh(first.name, f"rm -rf /srv/{tag} /root/.docker/{tag}")


def test_block_registry(the_lab: lab.Lab) -> None:
    server = the_lab.servers[-1]
    probe = f'timeout 5 bash -c "exec 3<>/dev/tcp/{the_lab.registry.replace(":", "/")}"'
    assert ssh(server.name, probe).returncode == 0
    try:
        lab.block_registry(server, True)
        assert ssh(server.name, probe).returncode != 0
        assert ssh(the_lab.servers[0].name, probe).returncode == 0
    finally:
        lab.block_registry(server, False)
    assert ssh(server.name, probe).returncode == 0


def test_up_again_reuses_the_running_lab(fleet_lab: lab.Lab) -> None:
    before = engine_id_over_ssh(fleet_lab.servers[0].name)
    t0 = time.monotonic()
    again = up_my_slot()
    assert time.monotonic() - t0 < 15
    assert again == fleet_lab
    assert engine_id_over_ssh(fleet_lab.servers[0].name) == before
    assert all(check.ok for check in lab.status(lab_slot()[0]))


def test_the_hidden_server_is_reachable_only_through_its_bastion_and_repaired(fleet_lab: lab.Lab) -> None:
    hidden = fleet_lab.hidden
    assert hidden is not None
    slot, slots = lab_slot()
    n = slot * SERVERS_PER_SLOT + 1
    assert (hidden.name, hidden.ip, hidden.bastion) == (f"tslab-j{n}", f"10.201.{100 + n}.11", f"tslab-h{n}")
    kept = lab.up(SERVERS_PER_SLOT, slots=slots, slot=slot).hidden
    assert lab.current(slot).hidden == hidden and kept == hidden, "kept until told"
    assert ssh(hidden.name, "true").returncode == 255
    assert ssh("-J", hidden.bastion, hidden.name, "hostname").stdout.strip() == hidden.name
    # Its port 22 opened to everyone (the rules gone): status says so and up() restarts it hidden again.
    netns = f"--net=/run/netns/{hidden.name}"
    subprocess.run(["nsenter", netns, "iptables", "-w", "5", "-F", "INPUT"], check=True)
    assert ssh(hidden.name, "true").returncode == 0, "the probe below would prove nothing"
    bad = [c for c in lab.status(slot) if c.part == hidden.name]
    assert len(bad) == 1 and not bad[0].ok and f"not limited to tslab-h{n}" in bad[0].detail
    up_my_slot()
    refused = ssh(hidden.name, "true")
    assert refused.returncode == 255 and "Connection refused" in refused.stderr
    assert ssh("-J", hidden.bastion, hidden.name, "docker info --format '{{.Name}}'").stdout.strip() == hidden.name
    assert all(check.ok for check in lab.status(lab_slot()[0]))
