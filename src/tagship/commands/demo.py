"""`tagship demo`: a throw-away repo with the bundled app, deployed twice to this machine."""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from tagship import config as config_mod
from tagship.builders.command import Command
from tagship.commands import deploy
from tagship.errors import MissingToolError, TagshipError
from tagship.messages import t
from tagship.output import Output
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport

APP_FILES = ("Dockerfile", "app.sh", "compose.yaml", "www/index.html", "www/up", "www/version.txt")
EXECUTABLES = ("www/cgi-bin/slow",)


def run(
    out: Output,
    directory: Path | None,
    port: int,
    proxy_image: str = "caddy:2-alpine",
    listener_image: str = "haproxy:lts-alpine",
) -> int:
    """Create the demo repo, deploy v1.0.0 then v1.1.0 locally, print what is served."""
    base = directory or Path(tempfile.mkdtemp(prefix="tagship-demo-"))
    repo, server_dir = base / "app", base / "server"
    git = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    _write_repo(repo, server_dir, port, proxy_image, listener_image)
    _git(git, repo, "init", "--quiet", "--initial-branch=main")
    _git(git, repo, "config", "user.name", "tagship demo")
    _git(git, repo, "config", "user.email", "demo@tagship.invalid")
    url = f"http://127.0.0.1:{port}/version.txt"
    for version in ("v1.0.0", "v1.1.0"):
        (repo / "www" / "version.txt").write_text(version + "\n")
        _git(git, repo, "add", "--all")
        _git(git, repo, "commit", "--quiet", "--message", f"Release {version}")
        _git(git, repo, "tag", version)
        out.info(t("demo.tagship_deploy", version=version, repo=repo))
        deploy.run(config_mod.load(repo, {}), out, deploy.DeployOptions())
        out.result(t("demo.serves", url=url, fetch=_fetch(url)))
    out.result(t("demo.demo_project_server_directory", repo=repo, server_dir=server_dir))
    return 0


def copy_app(repo: Path) -> None:
    """Write the bundled example app (and a static busybox to build it from) into repo."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise MissingToolError(t("demo.demo_needs_static_busybox"), hint=t("demo.apt_get_install_busybox"))
    source = resources.files("tagship") / "demo_app"
    for name in (*APP_FILES, *EXECUTABLES):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / name).read_bytes())
        if name in EXECUTABLES:
            target.chmod(0o755)
    shutil.copy(busybox, repo / "busybox")  # keeps the exec bit, which git records


def _write_repo(repo: Path, server_dir: Path, port: int, proxy_image: str, listener_image: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    server_dir.mkdir(parents=True, exist_ok=True)
    copy_app(repo)
    source = resources.files("tagship") / "demo_app"
    env = (source / "env.example").read_text().replace("APP_PORT=18080", f"APP_PORT={port}")
    (repo / ".env").write_text(env)
    (repo / "tagship.toml").write_text(
        "# The demo deploys to this machine's own Docker engine (the `local` server).\n"
        'servers = ["local"]\n\n'
        "[app]\n"
        f"path = {str(server_dir)!r}\n"
        'upload = ["compose.yaml"]\n\n'
        "[env]\n"
        'seed = ".env"\n\n'
        "[proxy]\n"
        f"image = {proxy_image!r}\n"
        f"listener_image = {listener_image!r}\n\n"
        "[health]\n"
        'path = "/up"\n'
    )


def _git(git: LocalTransport, repo: Path, *args: str) -> None:
    git.run(Command(("git", "-C", str(repo), *args)), show=False)


def _fetch(url: str, attempts: int = 20) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode().strip())
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise TagshipError(t("demo.does_not_answer_after", url=url))
