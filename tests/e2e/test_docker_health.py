"""The health gate uses the container's own Docker healthcheck when the service defines one, run by
tagship at its own pace: a 30-second interval (common in real projects) never holds the switch."""

from __future__ import annotations

import lab
from tests.apprepo import AppRepo, fetch, ssh

COMPOSE = """services:
  web:
    build: .
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${APP_PORT}:8080"
    healthcheck:
      test: ["CMD-SHELL", "printf 'GET /up HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 8080 | grep -q ' 200 '"]
      interval: 30s
      timeout: 3s
      retries: 3
"""


def test_docker_healthcheck_gates_the_switch(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    (app.path / "compose.yaml").write_text(COMPOSE)
    config = app.path / "tagship.toml"
    config.write_text(config.read_text().replace("[health]\n", '[health]\nmode = "docker"\n'))
    app.git("commit", "--quiet", "--all", "--message", "a Docker healthcheck")
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"
    health = ssh(
        h1,
        "sh",
        "-c",
        'cd "$1" && docker inspect --format "{{.State.Health.Status}}" $(docker compose ps -q web)',
        "sh",
        app.remote_path,
    )
    # Docker's first run of the check is still 30 s away: the switch did not wait for it.
    assert health.stdout.strip() == "starting"

    app.release("v2", broken=True)
    broken = app.tagship("deploy")
    assert broken.returncode == 8, broken.stderr
    assert "its healthcheck command did not pass" in broken.stderr and "the proxy was not switched" in broken.stderr
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"
