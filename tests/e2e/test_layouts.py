"""Compose files anywhere in the repository: a monorepo with deploy/compose.yaml building ../backend."""

from __future__ import annotations

import shutil

import lab
from tests.apprepo import AppRepo, fetch, served, ssh

COMPOSE = """services:
  web:
    build:
      context: ../backend
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    ports:
      - "${APP_PORT}:8080"
"""


def test_a_monorepo_deploys_from_its_deploy_directory_and_rolls_back(the_lab: lab.Lab, app: AppRepo) -> None:
    root = app.path
    (root / "backend").mkdir()
    for name in ("Dockerfile", "app.sh", "www", "busybox"):
        shutil.move(root / name, root / "backend" / name)
    (root / "compose.yaml").unlink()
    app.app_dir = "backend"
    (root / "deploy").mkdir()
    (root / "deploy" / "compose.yaml").write_text(COMPOSE)
    # The .env beside the compose file is the project's, as Compose reads it; the root has none.
    shutil.move(root / ".env", root / "deploy" / ".env")
    (root / ".gitignore").write_text("deploy/.env\n")
    config = root / "tagship.toml"
    text = config.read_text().replace('upload = ["compose.yaml"]', 'upload = ["deploy/compose.yaml"]')
    text = text.replace('seed = ".env"', 'seed = "deploy/.env"')
    config.write_text(text.replace("[app]\n", '[app]\ncompose_files = ["deploy/compose.yaml"]\n'))
    app.git("add", "--all")
    app.git("commit", "--quiet", "--message", "a monorepo: deploy/ and backend/")
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    assert "/tmp/backend" not in first.stderr and "../backend" not in first.stderr
    app.release("v2")
    second = app.tagship("deploy")
    assert second.returncode == 0, second.stderr
    assert served(the_lab, app) == ["v2", "v2"]
    h1 = the_lab.servers[0]
    listing = ssh(h1, "ls", app.remote_path).stdout.split()
    assert "compose.yaml" in listing and "deploy" not in listing, "the project directory on the server is deploy/"
    back = app.tagship("rollback")
    assert back.returncode == 0, back.stderr
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"


def test_a_build_context_outside_the_repository_is_refused_before_anything_runs(the_lab: lab.Lab, app: AppRepo) -> None:
    (app.path / "compose.yaml").write_text(COMPOSE.replace("../backend", "/etc"))
    app.git("commit", "--quiet", "--all", "--message", "a context outside")
    app.release("v1")
    refused = app.tagship("deploy")
    assert refused.returncode == 2, refused.stderr
    assert "build context /etc is outside the repository" in refused.stderr
    assert ssh(the_lab.servers[0], "test", "-e", app.remote_path).returncode != 0, "no server was touched"


def test_a_service_that_extends_another_file_through_an_include_deploys(the_lab: lab.Lab, app: AppRepo) -> None:
    """The tag variable sits in a file the web service extends; a sidecar comes from an include."""
    (app.path / "base.yml").write_text(
        'services:\n  common:\n    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}\n    ports:\n      - "${APP_PORT}:8080"\n'
    )
    (app.path / "sidecar.yml").write_text(
        f'services:\n  sidecar:\n    image: {the_lab.caddy_image}\n    command: ["sleep", "100000"]\n'
    )
    (app.path / "compose.yaml").write_text(
        "include:\n  - sidecar.yml\nservices:\n  web:\n    extends:\n      file: base.yml\n      service: common\n"
        "    build: .\n"
    )
    config = app.path / "tagship.toml"
    config.write_text(
        config.read_text().replace('upload = ["compose.yaml"]', 'upload = ["compose.yaml", "base.yml", "sidecar.yml"]')
    )
    app.git("add", "--all")
    app.git("commit", "--quiet", "--message", "extends and include")
    for version in ("v1", "v2"):
        app.release(version)
        done = app.tagship("deploy")
        assert done.returncode == 0, done.stderr
        assert served(the_lab, app) == [version, version]
    sidecars = ssh(the_lab.servers[0], "sh", "-c", f"cd {app.remote_path} && docker compose ps -q sidecar").stdout
    assert len(sidecars.split()) == 1, "the included service runs"


def test_the_uncommitted_env_never_reaches_the_image_even_with_copy_everything(the_lab: lab.Lab, app: AppRepo) -> None:
    # A Dockerfile that copies the whole build context, as many do; .env is gitignored, holds a secret.
    dockerfile = app.path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY app.sh /app.sh", "COPY app.sh /app.sh\nCOPY . /src"))
    with (app.path / ".env").open("a") as dotenv:
        dotenv.write("DATABASE_PASSWORD=never-in-the-image-51\n")
    app.git("add", "--all")
    app.git("commit", "--quiet", "--message", "copy the whole context")
    app.release("v1")
    done = app.tagship("deploy")
    assert done.returncode == 0, done.stderr
    assert served(the_lab, app) == ["v1", "v1"], "compose still read .env to interpolate the tagged files"
    h1 = the_lab.servers[0]
    image = f"{app.repository}:v1"
    listing = lab.server_docker(h1, "run", "--rm", "--entrypoint", "/bin/ls", image, "-a", "/src")
    assert listing.returncode == 0, listing.stderr
    assert "Dockerfile" in listing.stdout.split(), "the build context is in /src"
    assert ".env" not in listing.stdout.split(), "the working .env was not in the build context"
    assert (app.path / ".env").read_text().endswith("DATABASE_PASSWORD=never-in-the-image-51\n"), "left as it was"
