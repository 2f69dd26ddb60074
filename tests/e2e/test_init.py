"""`tagship init` from the original script's variables alone, then deploy, on a DjangoStarter-like
project whose .env names its three compose files in COMPOSE_FILE (the server holds the project, as
the old script's users keep it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import lab
from tests import djangostarter
from tests.apprepo import SESSION_NAMESPACE, AppRepo, fetch, ssh
from tests.e2e.test_layouts import COMPOSE as MONOREPO_COMPOSE

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
        "TAGSHIP_PROXY_LISTENER_IMAGE": the_lab.haproxy_image,
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


def legacy_variables(the_lab: lab.Lab, server: lab.LabServer, image_name: str, path: str) -> dict[str, str]:
    """The original script's five variables (plus the lab's registry user and Caddy stand-in)."""
    return {
        "REGISTRY_URL": the_lab.registry,
        "REGISTRY_NAMESPACE": SESSION_NAMESPACE,
        "IMAGE_NAME": image_name,
        "REMOTE_HOST": server.name,
        "REMOTE_PROJECT_PATH": path,
        "TAGSHIP_REGISTRY_USERNAME": the_lab.registry_user,
        "TAGSHIP_PROXY_IMAGE": the_lab.caddy_image,
        "TAGSHIP_PROXY_LISTENER_IMAGE": the_lab.haproxy_image,
    }


def put_on_server(server: lab.LabServer, local: Path, remote: str) -> None:
    """A file of the project on the server, where the old script's users keep it."""
    line = f"mkdir -p {Path(remote).parent} && cat > {remote}"
    subprocess.run(["ssh", server.name, line], input=local.read_bytes(), check=True, timeout=60)


def init_deploy_twice_and_roll_back(app: AppRepo, legacy: dict[str, str], url: str) -> str:
    """init from the variables, deploy v1 and v2 (each served at url), roll back; the written config."""
    app.git("rm", "--quiet", "--cached", "tagship.toml")
    (app.path / "tagship.toml").unlink()
    app.git("commit", "--quiet", "--all", "--message", "the old script's project: no tagship.toml")
    init = app.tagship("init", extra_env=legacy)
    assert init.returncode == 0, init.stderr
    for version in ("v1", "v2"):
        app.release(version)
        done = app.tagship("deploy", extra_env=legacy)
        assert done.returncode == 0, done.stderr
        assert fetch(url) == version
    back = app.tagship("rollback", extra_env=legacy)
    assert back.returncode == 0, back.stderr
    assert fetch(url) == "v1"
    return (app.path / "tagship.toml").read_text()


def test_init_on_a_monorepo_whose_compose_file_is_in_deploy(the_lab: lab.Lab, app: AppRepo) -> None:
    h1, root = the_lab.servers[0], app.path
    (root / "backend").mkdir()
    for name in ("Dockerfile", "app.sh", "www", "busybox"):
        shutil.move(root / name, root / "backend" / name)
    app.app_dir = "backend"
    (root / "compose.yaml").unlink()
    (root / "deploy").mkdir()
    (root / "deploy" / "compose.yaml").write_text(MONOREPO_COMPOSE)
    shutil.move(root / ".env", root / "deploy" / ".env")
    (root / ".gitignore").write_text("deploy/.env\n")
    app.git("add", "--all")
    for name in ("compose.yaml", ".env"):
        put_on_server(h1, root / "deploy" / name, f"{app.remote_path}/{name}")
    legacy = {**legacy_variables(the_lab, h1, app.remote_path.rsplit("/", 1)[1], app.remote_path)}
    legacy["COMPOSE_FILE"] = "deploy/compose.yaml"
    written = init_deploy_twice_and_roll_back(app, legacy, f"http://{h1.ip}:{app.port}/version.txt")
    assert 'compose_files = ["deploy/compose.yaml"]' in written


def test_init_on_a_fixed_image_tag(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    fixed = app.repository + ":latest"
    (app.path / "compose.yaml").write_text(
        f'services:\n  web:\n    build: .\n    image: {fixed}\n    ports:\n      - "${{APP_PORT}}:8080"\n'
    )
    for name in ("compose.yaml", ".env"):
        put_on_server(h1, app.path / name, f"{app.remote_path}/{name}")
    legacy = legacy_variables(the_lab, h1, app.remote_path.rsplit("/", 1)[1], app.remote_path)
    written = init_deploy_twice_and_roll_back(app, legacy, f"http://{h1.ip}:{app.port}/version.txt")
    assert "\ntag_key = " not in written, "a fixed tag has no tag key"
    assert f"image: {fixed}\n" in ssh(h1, "cat", f"{app.remote_path}/compose.yaml").stdout
