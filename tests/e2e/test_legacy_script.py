"""The original build_docker.py user: its own compose.yaml and .env, only its environment variables."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import lab
from tests.apprepo import SESSION_NAMESPACE, AppRepo, fetch, next_port, ssh

COMPOSE = """services:
  app:
    build: .
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    container_name: ${APP_NAME}-app
    ports:
      - "${APP_PORT}:8080"
"""


def local_docker(docker_config: Path, *args: str, stdin: str | None = None) -> None:
    """The docker CLI with the test's private client config (its own logins)."""
    env = {"DOCKER_CONFIG": str(docker_config), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    subprocess.run(["docker", *args], input=stdin, text=True, check=True, capture_output=True, env=env)


def wait_for_version(url: str, version: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if fetch(url) == version:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} never served {version}"
        time.sleep(0.5)


def test_original_example_deploys_with_only_the_scripts_variables(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    h2 = the_lab.servers[1]
    port = next_port()
    remote = "/srv/meta hub"  # a space: the original script broke on this
    name = "meta-hub-legacy"
    dotenv = f"APP_PORT={port}\nAPP_NAME={name}\nAPP_IMAGE_NAME={name}\nAPP_IMAGE_TAG=v0.0.1\n"
    repo = AppRepo.create(
        tmp_path / "meta-hub",
        env={"DOCKER_CONFIG": str(docker_config), "NO_COLOR": "1"},
        dotenv=dotenv,
        compose=COMPOSE,
        port=port,
    )
    repo.git("add", "--all")
    repo.release("v0.0.1")
    local_docker(
        docker_config,
        "login",
        "-u",
        the_lab.registry_user,
        "--password-stdin",
        the_lab.registry,
        stdin=the_lab.registry_password,
    )

    # The server as the script's user has it: logged in, compose.yaml and .env by hand, v0.0.1 running.
    image = f"{the_lab.registry}/{SESSION_NAMESPACE}/{name}"
    server_env = "# production settings\n" + dotenv.replace(f"APP_IMAGE_NAME={name}", f"APP_IMAGE_NAME={image}")
    local_docker(docker_config, "build", "--quiet", "--tag", f"{image}:v0.0.1", str(repo.path))
    local_docker(docker_config, "push", f"{image}:v0.0.1")
    assert ssh(h2, "mkdir", "-p", remote).returncode == 0
    for file_name, text in (("compose.yaml", COMPOSE), (".env", server_env)):
        put = subprocess.run(["ssh", h2.name, f"cat > '{remote}/{file_name}'"], input=text, text=True, timeout=30)
        assert put.returncode == 0
    logged_in = subprocess.run(
        ["ssh", h2.name, f"docker login -u {the_lab.registry_user} --password-stdin {the_lab.registry}"],
        input=the_lab.registry_password,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert logged_in.returncode == 0, logged_in.stderr
    up = ssh(h2, "docker", "compose", "--project-directory", remote, "up", "-d")
    assert up.returncode == 0, up.stderr
    wait_for_version(f"http://{h2.ip}:{port}/version.txt", "v0.0.1")

    # The .env edit keeps its mode and owner (and every other line): set unusual ones to see.
    assert ssh(h2, "sh", "-c", 'chmod 640 "$1" && chown 65534:65534 "$1"', "sh", f"{remote}/.env").returncode == 0
    repo.release("v0.0.2")
    result = repo.tagship(
        "deploy",
        extra_env={
            "REGISTRY_URL": the_lab.registry,
            "REGISTRY_NAMESPACE": SESSION_NAMESPACE,
            "IMAGE_NAME": name,
            "REMOTE_HOST": f"root@{h2.ip} -p 22",
            "REMOTE_PROJECT_PATH": remote,
            "TAGSHIP_PROXY_IMAGE": the_lab.caddy_image,  # no hub here to pull caddy:2-alpine from
            "TAGSHIP_PROXY_LISTENER_IMAGE": the_lab.haproxy_image,
        },
    )
    assert result.returncode == 0, result.stderr
    assert fetch(f"http://{h2.ip}:{port}/version.txt") == "v0.0.2"
    assert ssh(h2, "stat", "-c", "%a %u:%g", f"{remote}/.env").stdout.strip() == "640 65534:65534"
    env_after = ssh(h2, "cat", f"{remote}/.env").stdout
    assert env_after.startswith("# production settings\n")
    assert f"APP_PORT={port}\n" in env_after and "APP_IMAGE_TAG=v0.0.2\n" in env_after
    assert f"APP_IMAGE_NAME={image}\n" in env_after
