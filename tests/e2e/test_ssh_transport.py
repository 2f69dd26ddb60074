"""End to end: image.transport = "ssh" deploys to servers with no route to any registry.

Every lab server gets a `prohibit` route to the lab registry for the test; the config has no
[registry]. The images (the app's, and the proxy images the servers lack) travel from a registry on
this machine through a reverse tunnel on each server's ssh connection; only missing layers travel.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from tagship.engine.plan import PAUSE_AT_STEP
from tagship.release.shipping import blob_bytes
from tests.apprepo import AppRepo, served


@pytest.fixture
def cut_off(the_lab: lab.Lab, app: AppRepo, tmp_path: Path) -> Iterator[AppRepo]:
    """The app with image.transport = "ssh", no [registry], and every server cut off from the registry."""
    toml = app.path / "tagship.toml"
    text = re.sub(r"\[registry\]\n(?:[a-z_]+ = [^\n]*\n)+", "", toml.read_text())
    toml.write_text(text.replace("[image]\n", '[image]\ntransport = "ssh"\n'))
    app.env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    app.repository = app.repository.rsplit("/", 1)[1]  # no registry: the image's name is the plain name
    for server in the_lab.servers:
        # An earlier session's images of this app (other commits): tags are immutable on the servers.
        lab.server_docker(server, "image", "rm", f"{app.repository}:v1", f"{app.repository}:v2")
        lab.block_registry(server, True)
    try:
        yield app
    finally:
        for server in the_lab.servers:
            lab.block_registry(server, False)


def registry_log(app: AppRepo) -> str:
    return (Path(app.env["XDG_CACHE_HOME"]) / "tagship" / "registry" / "registry.log").read_text(errors="replace")


def sent_to_servers(app: AppRepo) -> int:
    """Bytes of layers the registry on this machine sent during the last run, over every tunnel."""
    ports = {int(p) for p in re.findall(r'http\.request\.host="?127\.0\.0\.1:(\d+)', registry_log(app))}
    return sum(blob_bytes(registry_log(app), port) for port in ports)


def arrived(stderr: str, image: str) -> list[int]:
    """tagship's own account, per server, of the bytes of an image's layers it sent."""
    found = re.findall(rf"(\S+): {re.escape(image)} arrived over ssh \(([\d,]+) bytes of layers sent\)", stderr)
    return [int(count.replace(",", "")) for _, count in found]


DATA = 1_000_000  # random bytes in a layer of their own, which no server has: they do not compress


def test_a_registry_less_deploy_sends_only_the_changed_layers_and_rolls_back(
    the_lab: lab.Lab, cut_off: AppRepo
) -> None:
    app = cut_off
    for server in the_lab.servers:
        assert lab.server_docker(server, "pull", the_lab.caddy_image).returncode != 0, "the registry is cut off"
        # So that the proxy images travel too: earlier tests' proxies and listeners go with them.
        for image in (the_lab.caddy_image, the_lab.haproxy_image):
            users = lab.server_docker(server, "ps", "-aq", "--filter", f"ancestor={image}").stdout.split()
            if users:
                lab.server_docker(server, "rm", "-f", *users)
        removed = lab.server_docker(server, "image", "rm", the_lab.caddy_image, the_lab.haproxy_image)
        assert removed.returncode == 0 or "No such image" in removed.stderr, removed.stderr
    dockerfile = app.path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY www /www", "COPY data /data\nCOPY www /www"))
    (app.path / "data").mkdir()
    (app.path / "data" / "blob").write_bytes(os.urandom(DATA))

    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert served(the_lab, app) == ["v1"] * len(the_lab.servers)
    full = arrived(first.stderr, f"{app.repository}:v1")
    assert len(full) == len(the_lab.servers) and min(full) > DATA, first.stderr
    for server in the_lab.servers:
        assert f"{server.name} cannot pull {the_lab.caddy_image}: it gets it over ssh" in first.stderr
        assert f"{server.name}: {the_lab.caddy_image} arrived over ssh" in first.stderr
        assert lab.server_docker(server, "image", "inspect", the_lab.caddy_image).returncode == 0
        names = lab.server_docker(server, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout
        assert "127.0.0.1:" not in names, "the tunnel's names are removed again"

    # A code-only change: only the www layer differs; the servers keep busybox and the data layer.
    (app.path / "www" / "index.html").write_text("a code-only change\n")
    app.release("v2")
    second = app.tagship("deploy")
    assert second.returncode == 0, second.stderr
    assert served(the_lab, app) == ["v2"] * len(the_lab.servers)
    sent = sent_to_servers(app)  # the registry's own log: every blob it sent through any tunnel
    assert sum(arrived(second.stderr, f"{app.repository}:v2")) == sent
    assert 0 < sent < DATA / 50, f"sent {sent} bytes for a code-only change; the first deploy sent {full}"
    assert second.stderr.count("arrived over ssh") == len(the_lab.servers), "the proxy images are there already"

    back = app.tagship("rollback")
    assert back.returncode == 0, back.stderr
    assert served(the_lab, app) == ["v1"] * len(the_lab.servers)
    assert "docker pull" not in back.stderr, "a rollback runs the image the server kept"


def test_an_image_pushed_to_the_registry_on_this_machine_while_a_deploy_runs_does_not_reach_the_servers(
    the_lab: lab.Lab, cut_off: AppRepo
) -> None:
    """That registry takes pushes from any local user without a password: one pushes other content
    under the release's tag between tagship's push and the servers' pulls. The servers still get the
    image this run built (they pull it by the digest its push reported)."""
    app = cut_off
    app.release("v1")
    assert app.tagship("deploy").returncode == 0, "its first deploy"
    app.release("v2")
    proc = app.tagship_at({PAUSE_AT_STEP: f"{app.repository}:v2 over ssh"}, "deploy")
    try:
        config = (Path(app.env["XDG_CACHE_HOME"]) / "tagship" / "registry" / "config.yml").read_text()
        port = re.search(r"addr: 127\.0\.0\.1:(\d+)", config)
        assert port, config
        there = f"127.0.0.1:{port.group(1)}/{app.repository}:v2"
        swapped = f"FROM {app.repository}:v2\nRUN echo swapped > /www/version.txt\n"
        env = {**os.environ, **app.env}
        for argv, given in (
            (["docker", "build", "--quiet", "--tag", there, "-"], swapped),
            (["docker", "push", there], None),
        ):
            done = subprocess.run(argv, input=given, text=True, capture_output=True, env=env, timeout=300)
            assert done.returncode == 0, done.stderr
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    _, said = proc.communicate(timeout=300)
    assert proc.returncode == 0, said
    assert served(the_lab, app) == ["v2"] * len(the_lab.servers)
