"""Workers are replaced, stateful services are never restarted; immutable tags and digest pinning."""

from __future__ import annotations

import json
import subprocess

import lab
from tests.apprepo import AppRepo, fetch, ssh

COMPOSE = """services:
  web:
    build: .
    image: ${{APP_IMAGE_NAME}}:${{APP_IMAGE_TAG}}
    ports:
      - "${{APP_PORT}}:8080"
    depends_on: [cache]
  worker:
    image: ${{APP_IMAGE_NAME}}:${{APP_IMAGE_TAG}}
    command: ["sh", "-c", "echo worker $$(cat /www/version.txt); exec sleep 100000"]
  cache:
    image: {cache_image}
    entrypoint: ["sleep", "100000"]
"""


def containers(server: lab.LabServer, app: AppRepo, service: str) -> list[dict[str, object]]:
    found = ssh(server, "sh", "-c", 'cd "$1" && docker compose ps -q "$2"', "sh", app.remote_path, service)
    ids = found.stdout.split()
    assert ids, f"no {service} container"
    inspected: list[dict[str, object]] = json.loads(ssh(server, "docker", "inspect", *ids).stdout)
    return inspected


def test_worker_is_replaced_and_the_cache_is_never_restarted(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    (app.path / "compose.yaml").write_text(COMPOSE.format(cache_image=the_lab.caddy_image))
    app.git("commit", "--quiet", "--all", "--message", "worker and cache")
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    (cache_before,) = containers(h1, app, "cache")
    (worker_before,) = containers(h1, app, "worker")

    app.release("v2")
    result = app.tagship("deploy")
    assert result.returncode == 0, result.stderr
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v2"
    (cache_after,) = containers(h1, app, "cache")
    assert (cache_after["Id"], cache_after["State"]) == (cache_before["Id"], cache_before["State"])
    (worker_after,) = containers(h1, app, "worker")
    assert worker_after["Id"] != worker_before["Id"]
    assert worker_after["Config"]["Image"].endswith(":v2")  # type: ignore[index]
    logs = ssh(h1, "docker", "logs", str(worker_after["Id"])).stdout
    assert "worker v2" in logs

    # The user's own compose commands in the project directory still see every service.
    listed = ssh(h1, "sh", "-c", 'cd "$1" && docker compose ps --format "{{.Service}}"', "sh", app.remote_path)
    assert sorted(listed.stdout.split()) == ["cache", "web", "worker"], listed.stderr


def test_tags_are_immutable_and_pinned_digests_survive_a_repush(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    config = app.path / "tagship.toml"
    config.write_text(config.read_text().replace("[image]\n", "[image]\npin_digest = true\n"))
    app.git("commit", "--quiet", "--all", "--message", "pin digests")
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    env = ssh(h1, "cat", f"{app.remote_path}/.env").stdout
    assert "APP_IMAGE_TAG=v1@sha256:" in env

    again = app.tagship("deploy")
    assert again.returncode == 0, again.stderr
    assert "is already in the registry" in again.stderr and "no build, no push" in again.stderr

    app.release("v1-moved", tag=False)
    app.git("tag", "--force", "v1")
    moved = app.tagship("deploy")
    assert moved.returncode == 7, moved.stderr
    assert "already in the registry with other content" in moved.stderr and "--force" in moved.stderr

    app.git("tag", "--force", "v1", "HEAD~1")
    app.release("v2")
    assert app.tagship("deploy").returncode == 0
    # Someone re-pushes v1 with other content; the pinned rollback still runs the original v1.
    image = f"{app.repository}:v1"
    (app.path / "www" / "version.txt").write_text("v1-evil\n")
    env_vars = {**app.env, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for argv in (["docker", "build", "-q", "-t", image, str(app.path)], ["docker", "push", image]):
        subprocess.run(argv, check=True, capture_output=True, env=env_vars)
    back = app.tagship("rollback", "v1")
    assert back.returncode == 0, back.stderr
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"
