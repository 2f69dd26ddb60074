"""Declared replicas of the web service all switch, gated and balanced; a stop-first worker never overlaps."""

from __future__ import annotations

import lab
from lab.load import Load
from tests.apprepo import AppRepo, fetch, next_port, ssh

COMPOSE = """services:
  web:
    build: .
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${APP_PORT}:8080"
    deploy:
      replicas: 3
  beat:
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    command:
      - sh
      - -c
      - |
        v=$$(cat /www/version.txt)
        echo "start $$v" >> /log/beat.log
        trap 'echo "stop $$v" >> /log/beat.log; exit 0' TERM
        while true; do sleep 0.2; done
    volumes:
      - ./log:/log
    deploy:
      update_config:
        order: stop-first
"""


def versions_running(server: lab.LabServer, app: AppRepo, service: str) -> list[str]:
    line = 'cd "$1" && docker compose ps --format "{{.Image}}" "$2"'
    images = ssh(server, "sh", "-c", line, "sh", app.remote_path, service).stdout.split()
    return sorted(i.rsplit(":", 1)[1] for i in images)


def test_three_replicas_switch_together_and_a_stop_first_worker_never_overlaps(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    (app.path / "compose.yaml").write_text(COMPOSE)
    app.git("commit", "--quiet", "--all", "--message", "three replicas and a scheduler")
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert versions_running(h1, app, "web") == ["v1", "v1", "v1"]

    load = Load(h1.ip, app.port).start()
    load.answered(25)
    app.release("v2")
    second = app.tagship("deploy")
    load.answered(25)
    report = load.stop()
    assert second.returncode == 0, second.stderr
    assert report.failed == 0 and report.sent > 100, report.errors()
    for server in the_lab.servers:
        assert versions_running(server, app, "web") == ["v2", "v2", "v2"], server.name
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v2"

    load = Load(h1.ip, app.port).start()
    back = app.tagship("rollback")
    load.answered(25)
    report = load.stop()
    assert back.returncode == 0, back.stderr
    assert report.failed == 0, report.errors()
    for server in the_lab.servers:
        assert versions_running(server, app, "web") == ["v1", "v1", "v1"], server.name

    # The scheduler's own log: each release's beat stopped before the next one started.
    log = ssh(h1, "cat", f"{app.remote_path}/log/beat.log").stdout.split("\n")
    assert [line for line in log if line] == ["start v1", "stop v1", "start v2", "stop v2", "start v1"], log


TWO_PUBLISHED = """services:
  web:
    build: .
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${APP_PORT}:8080"
  admin:
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${ADMIN_PORT}:8080"
"""


def test_two_services_of_one_image_publishing_two_ports_switch_together(the_lab: lab.Lab, app: AppRepo) -> None:
    """Issue 9, item 6: `admin` runs the release's image and publishes a port of its own."""
    h1 = the_lab.servers[0]
    admin_port = next_port()
    (app.path / "compose.yaml").write_text(TWO_PUBLISHED)
    env = app.path / ".env"
    env.write_text(env.read_text() + f"ADMIN_PORT={admin_port}\n")
    app.git("commit", "--quiet", "--all", "--message", "an admin service on its own port")
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr

    web_load, admin_load = Load(h1.ip, app.port).start(), Load(h1.ip, admin_port).start()
    web_load.answered(25)
    admin_load.answered(25)
    app.release("v2")
    second = app.tagship("deploy")
    web_load.answered(25)
    admin_load.answered(25)
    web_report, admin_report = web_load.stop(), admin_load.stop()
    assert second.returncode == 0, second.stderr
    for report in (web_report, admin_report):
        assert report.failed == 0 and report.sent > 100, report.errors()
    for server in the_lab.servers:
        for port in (app.port, admin_port):
            assert fetch(f"http://{server.ip}:{port}/version.txt") == "v2", (server.name, port)
        assert versions_running(server, app, "web") == ["v2"]
        assert versions_running(server, app, "admin") == ["v2"]

    # A broken v3 switches neither: both keep serving v2.
    app.release("v3", broken=True)
    broken = app.tagship("deploy")
    assert broken.returncode == 8, broken.stderr
    for server in the_lab.servers:
        for port in (app.port, admin_port):
            assert fetch(f"http://{server.ip}:{port}/version.txt") == "v2", (server.name, port)
