"""A compose file that spells out a fixed tag (image: registry/ns/app:latest) deploys unchanged: the
release's image is set in tagship's override, the .env keeps its values."""

from __future__ import annotations

import lab
from tests.apprepo import AppRepo, deploy, served, ssh

COMPOSE = """services:
  web:
    build: .
    image: {image}
    ports:
      - "${{APP_PORT}}:8080"
    restart: unless-stopped
"""


def test_a_fixed_tag_deploys_twice_and_rolls_back_through_the_override(the_lab: lab.Lab, app: AppRepo) -> None:
    fixed = app.repository + ":latest"
    (app.path / "compose.yaml").write_text(COMPOSE.format(image=fixed))
    app.git("commit", "--quiet", "--all", "--message", "a fixed image tag")
    deploy(app, "v1")
    assert served(the_lab, app) == ["v1", "v1"]
    deploy(app, "v2")
    assert served(the_lab, app) == ["v2", "v2"]

    back = app.tagship("rollback")
    assert back.returncode == 0, back.stderr
    assert served(the_lab, app) == ["v1", "v1"]
    for server in the_lab.servers:
        assert f"image: {fixed}\n" in ssh(server, "cat", f"{app.remote_path}/compose.yaml").stdout, server.name
        assert f'image: "{app.repository}:v1"' in ssh(server, "cat", f"{app.remote_path}/compose.tagship.yaml").stdout
        assert "APP_IMAGE_TAG=v0\n" in ssh(server, "cat", f"{app.remote_path}/.env").stdout, "the .env is not edited"

    listing = app.tagship("releases")
    assert listing.returncode == 0, listing.stderr
    for server in the_lab.servers:
        assert f"{server.name} (current: v1)" in listing.stdout
    assert "* v1" in listing.stdout and "  v2" in listing.stdout
