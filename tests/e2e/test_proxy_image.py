"""End to end: the proxy image reaches servers that cannot pull it (no lab server reaches a hub).

proxy.image is `caddy:2-alpine`, which no lab server can pull: tagship pushes it from the deploying
machine to the lab registry and the servers pull it from there. This test runs its own proxy
(its own name, network and port), so the shared tagship-proxy of the other tests is never touched.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

import lab
from tests.apprepo import SESSION_NAMESPACE, AppRepo, served, ssh

IMAGE = "caddy:2-alpine"
PROXY, NETWORK = "tagship-proxy-pi", "tagship-pi"
PORT = 18890  # far from the ports next_port() hands out (from 18100, one per test)
MIRROR = f"tagship-proxy:{IMAGE.replace(':', '-')}"


def local_docker(the_lab: lab.Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI on this machine, with the lab's client config (logged in to the lab registry)."""
    config = str(the_lab.root / "docker-config")
    return subprocess.run(["docker", "--config", config, *args], capture_output=True, text=True, timeout=300)


def remove_from_servers(the_lab: lab.Lab, ref: str) -> None:
    for server in the_lab.servers:
        lab.server_docker(server, "image", "rm", ref)
        assert lab.server_docker(server, "image", "inspect", ref).returncode != 0, f"{server.name} still has {ref}"


@pytest.fixture
def own_proxy(the_lab: lab.Lab, app: AppRepo) -> Iterator[AppRepo]:
    """The app configured with proxy.image = caddy:2-alpine, its own proxy, network and port."""
    toml = app.path / "tagship.toml"
    proxy = f'[proxy]\nimage = "{IMAGE}"\nname = "{PROXY}"\nnetwork = "{NETWORK}"\n'
    toml.write_text(re.sub(r'\[proxy\]\nimage = "[^"]*"\n', proxy, toml.read_text()))
    env = app.path / ".env"
    env.write_text(re.sub(r"APP_PORT=\d+", f"APP_PORT={PORT}", env.read_text()))
    app.port = PORT
    before = local_docker(the_lab, "image", "inspect", "--format", "{{.Id}}", IMAGE)
    try:
        yield app
    finally:
        for server in the_lab.servers:
            ssh(server, "sh", "-c", f"cd {app.remote_path} && docker compose down --remove-orphans")
            listeners = lab.server_docker(server, "ps", "-aq", "--filter", f"label=tagship.listener={PROXY}").stdout
            lab.server_docker(server, "rm", "--force", PROXY, *listeners.split())
            lab.server_docker(server, "volume", "rm", "--force", f"{PROXY}-config", f"{PROXY}-run")
            lab.server_docker(server, "network", "rm", NETWORK)
            lab.server_docker(server, "image", "rm", IMAGE, f"{the_lab.registry}/{SESSION_NAMESPACE}/{MIRROR}")
        local_docker(the_lab, "image", "rm", IMAGE, f"{the_lab.registry}/{SESSION_NAMESPACE}/{MIRROR}")
        if before.returncode == 0:  # this machine had its own caddy:2-alpine: it gets it back
            local_docker(the_lab, "tag", before.stdout.strip(), IMAGE)


def containers(the_lab: lab.Lab, app: AppRepo) -> list[str]:
    """Each server's containers of this app and this test's proxy: ID, state, start time (other tests
    run on the same servers at the same time)."""
    project = f"label=com.docker.compose.project={app.remote_path.rsplit('/', 1)[1]}"
    found = []
    for server in the_lab.servers:
        ids = lab.server_docker(server, "ps", "--all", "--quiet", "--filter", project).stdout.split()
        shown = "{{.Id}} {{.State.Status}} {{.State.StartedAt}}"
        found.append(lab.server_docker(server, "inspect", "--format", shown, PROXY, *ids).stdout)
    return found


def test_servers_without_the_proxy_image_get_it_through_the_registry_else_nothing_changes(
    the_lab: lab.Lab, own_proxy: AppRepo
) -> None:
    app = own_proxy
    pulled = local_docker(the_lab, "pull", "--quiet", the_lab.caddy_image)
    assert pulled.returncode == 0, pulled.stderr
    assert local_docker(the_lab, "tag", the_lab.caddy_image, IMAGE).returncode == 0
    remove_from_servers(the_lab, IMAGE)
    for server in the_lab.servers:
        assert lab.server_docker(server, "pull", IMAGE).returncode != 0, "a lab server cannot pull from a hub"

    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert served(the_lab, app) == ["v1", "v1"]
    mirror = f"{the_lab.registry}/{SESSION_NAMESPACE}/{MIRROR}"
    assert f"docker push {mirror}" in first.stderr
    for server in the_lab.servers:
        assert f"{server.name} cannot pull {IMAGE}: it gets it through {mirror}" in first.stderr
        proxy = lab.server_docker(server, "inspect", "--format", "{{.Config.Image}} {{.State.Running}}", PROXY)
        assert proxy.stdout.split() == [IMAGE, "true"], proxy.stderr

    # Neither the servers nor this machine can get caddy:2-alpine now: v2 stops before anything starts.
    local_docker(the_lab, "image", "rm", IMAGE)
    remove_from_servers(the_lab, IMAGE)
    env_before = [ssh(s, "cat", f"{app.remote_path}/.env").stdout for s in the_lab.servers]
    containers_before = containers(the_lab, app)
    app.release("v2")
    second = app.tagship("deploy")
    assert second.returncode == 7, second.stderr
    names = ", ".join(s.name for s in the_lab.servers)
    assert f"{names} cannot pull the proxy image {IMAGE}, and neither can this machine" in second.stderr
    assert (
        f"set proxy.image to an image your servers can pull (your registry's mirror of {IMAGE}), "
        f"or `docker load` it on {names}"
    ) in second.stderr
    assert "Traceback" not in second.stderr
    assert [ssh(s, "cat", f"{app.remote_path}/.env").stdout for s in the_lab.servers] == env_before
    assert "APP_IMAGE_TAG=v1" in env_before[0]
    assert all(len(listing.splitlines()) == 2 for listing in containers_before), "the proxy and the app's web"
    assert containers(the_lab, app) == containers_before, "nothing started or stopped"
    assert served(the_lab, app) == ["v1", "v1"]


def test_a_server_that_reaches_neither_a_hub_nor_the_registry_is_named_before_anything_changes(
    the_lab: lab.Lab, own_proxy: AppRepo
) -> None:
    app = own_proxy
    h2 = the_lab.servers[1]
    pulled = local_docker(the_lab, "pull", "--quiet", the_lab.caddy_image)
    assert pulled.returncode == 0, pulled.stderr
    assert local_docker(the_lab, "tag", the_lab.caddy_image, IMAGE).returncode == 0
    remove_from_servers(the_lab, IMAGE)
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    remove_from_servers(the_lab, IMAGE)
    env_before = [ssh(s, "cat", f"{app.remote_path}/.env").stdout for s in the_lab.servers]
    containers_before = containers(the_lab, app)
    lab.block_registry(h2, True)
    try:
        app.release("v2")
        second = app.tagship("deploy")
    finally:
        lab.block_registry(h2, False)
    assert second.returncode == 7, second.stderr
    assert f"{h2.name} cannot reach registry {the_lab.registry}" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert [ssh(s, "cat", f"{app.remote_path}/.env").stdout for s in the_lab.servers] == env_before
    assert containers(the_lab, app) == containers_before, "nothing started or stopped"
    assert served(the_lab, app) == ["v1", "v1"]
