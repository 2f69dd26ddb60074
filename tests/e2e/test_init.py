"""`tagship init` from the original script's variables alone, then deploy, on a DjangoStarter-like
project whose .env names its three compose files in COMPOSE_FILE (the server holds the project, as
the old script's users keep it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import lab
from tests import djangostarter
from tests.apprepo import SESSION_NAMESPACE, fetch, ssh

NAME = "djs-init"


def test_init_then_deploy_twice_and_roll_back(the_lab: lab.Lab, docker_config: Path, tmp_path: Path) -> None:
    lab.ensure_django_images()
    h1 = the_lab.servers[0]
    djangostarter.remove_project(h1, NAME)
    env = {"DOCKER_CONFIG": str(docker_config), "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password, "NO_COLOR": "1"}
    repo = djangostarter.create(tmp_path / "app", the_lab, app_name=NAME, namespace=SESSION_NAMESPACE, env=env)
    repo.git("rm", "--quiet", "tagship.toml")
    repo.git("commit", "--quiet", "--message", "the old script's project: no tagship.toml")
    for name in (*djangostarter.COMPOSE_FILES, "Caddyfile", ".env"):
        line = f"mkdir -p /srv/{NAME} && cat > /srv/{NAME}/{name}"
        subprocess.run(["ssh", h1.name, line], input=(repo.path / name).read_bytes(), check=True, timeout=60)
    legacy = {
        "REGISTRY_URL": the_lab.registry,
        "REGISTRY_NAMESPACE": SESSION_NAMESPACE,
        "IMAGE_NAME": NAME,
        "REMOTE_HOST": h1.name,
        "REMOTE_PROJECT_PATH": f"/srv/{NAME}",
        "TAGSHIP_REGISTRY_USERNAME": the_lab.registry_user,
        "TAGSHIP_PROXY_IMAGE": the_lab.caddy_image,  # the lab's stand-in for caddy:2-alpine
    }
    init = repo.tagship("init", extra_env=legacy)
    assert init.returncode == 0, init.stderr
    written = (repo.path / "tagship.toml").read_text()
    assert 'compose_files = ["compose.base.yml", "compose.gunicorn.yml", "compose.caddy.yml"]' in written
    for version in ("v1", "v2"):
        repo.release(version)
        done = repo.tagship("deploy", extra_env=legacy)
        assert done.returncode == 0, done.stderr
        assert fetch(f"http://{h1.ip}:{repo.web_port}/version/") == version, "through the user's Caddy"
    back = repo.tagship("rollback", extra_env=legacy)
    assert back.returncode == 0, back.stderr
    assert fetch(f"http://{h1.ip}:{repo.web_port}/version/") == "v1"
    assert "APP_IMAGE_TAG=v1\n" in ssh(h1, "cat", f"/srv/{NAME}/.env").stdout
    djangostarter.remove_project(h1, NAME)
