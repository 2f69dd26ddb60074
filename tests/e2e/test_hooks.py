"""hooks.before_switch run in the new image before anything switches; a failing one changes nothing users see."""

from __future__ import annotations

import lab
from lab.load import Load
from tests.apprepo import AppRepo, fetch, ssh

COMPOSE = """services:
  web:
    build: .
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${APP_PORT}:8080"
    volumes:
      - ./data:/data
"""

HOOKS = """
[hooks]
before_switch = [
  "sh -c 'echo migrated to $(cat /www/version.txt) >> /data/migrations.log'",
  "sh -c 'test ! -e /www/broken || { echo the migration failed: no such table >&2; exit 3; }'",
]

[hooks.local]
after_deploy = ["sh -c 'env > ../hook-env.txt'"]
"""


def test_hooks_run_once_in_the_new_image_and_a_failing_one_aborts(the_lab: lab.Lab, app: AppRepo) -> None:
    h1, h2 = the_lab.servers
    (app.path / "compose.yaml").write_text(COMPOSE)
    config = app.path / "tagship.toml"
    config.write_text(config.read_text() + HOOKS)
    app.git("commit", "--quiet", "--all", "--message", "a migration hook")
    for version in ("v1", "v2"):
        app.release(version)
        done = app.tagship("deploy")
        assert done.returncode == 0, done.stderr
    assert "run hooks.before_switch in the new image" in done.stderr
    log = ssh(h1, "cat", f"{app.remote_path}/data/migrations.log").stdout
    assert log == "migrated to v1\nmigrated to v2\n", "once per deploy, in the new image, with its volumes"
    assert ssh(h2, "test", "-e", f"{app.remote_path}/data/migrations.log").returncode != 0, "first server only"
    hook_env = (app.path.parent / "hook-env.txt").read_text()
    assert "TAGSHIP_VERSION=v2" in hook_env, "the local hook ran with the release's facts"
    assert the_lab.registry_password not in hook_env, "the registry password never reaches a child process"

    app.release("v3", broken=True)
    load = Load(h1.ip, app.port).start()
    failed = app.tagship("deploy")
    report = load.stop()
    assert failed.returncode == 1, failed.stderr
    assert "before_switch hook" in failed.stderr and "nothing was switched" in failed.stderr
    assert "the migration failed: no such table" in failed.stderr, "the hook's own words are shown"
    assert report.failed == 0 and report.sent > 0, report.errors()
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v2"
        assert "APP_IMAGE_TAG=v2\n" in ssh(server, "cat", f"{app.remote_path}/.env").stdout
