import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from tagship.cli import build_cli
from tagship.commands.init import render

# The code under test, run as the command users type (never a `tagship` found on PATH).
TAGSHIP = [sys.executable, "-m", "tagship"]

ROOT = Path(__file__).resolve().parents[2]


def commands() -> list[list[str]]:
    """Every command and sub-command the command line knows."""
    found: list[list[str]] = []
    for name, sub in build_cli().commands.items():
        found.append([name])
        if isinstance(sub, click.Group):
            found.extend([name, child] for child in sub.commands)
    return found


@pytest.mark.parametrize("words", commands(), ids=lambda w: " ".join(w))
def test_every_command_has_help_and_a_place_in_the_readme(words: list[str]) -> None:
    done = subprocess.run([*TAGSHIP, *words, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and f"Usage: tagship {' '.join(words)}" in done.stdout
    assert f"tagship {' '.join(words)}" in (ROOT / "README.md").read_text()


def test_help_is_instant_because_imports_are_lazy() -> None:
    code = "import sys, tagship.cli; print(sorted(m for m in sys.modules if m.startswith('tagship')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['tagship', 'tagship.cli', 'tagship.messages']"


def test_init_reads_the_original_scripts_project(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    build: .\n    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}\n"
        "    container_name: ${APP_NAME}-app\n  db:\n    image: postgres:16\n"
    )
    (tmp_path / ".env").write_text("APP_NAME=meta-hub\nAPP_IMAGE_NAME=meta-hub\nAPP_IMAGE_TAG=v0.0.2\n")
    text = render(tmp_path, {"REMOTE_HOST": "user@server-ip -p 2022", "REGISTRY_URL": "reg.example.com"})
    assert 'servers = ["user@server-ip -p 2022"]' in text
    assert 'service = "app"' in text and 'tag_key = "APP_IMAGE_TAG"' in text and 'image_key = "APP_IMAGE_NAME"' in text
    assert 'name = "meta-hub"' in text and 'url = "reg.example.com"' in text
    (tmp_path / "tagship.toml").write_text(text)
    from tagship.config import load

    config = load(tmp_path, {})
    assert config.app.service == "app" and config.servers[0].port == 2022


def test_readme_documents_every_config_key() -> None:
    import tagship.config as cfg

    readme = (ROOT / "README.md").read_text()
    sections = {
        "app": cfg.AppConfig, "env": cfg.EnvConfig, "image": cfg.ImageConfig, "registry": cfg.RegistryConfig,
        "ssh": cfg.SshConfig, "proxy": cfg.ProxyConfig, "health": cfg.HealthConfig,
        "releases": cfg.ReleasesConfig, "verify": cfg.VerifyConfig, "hooks": cfg.HooksConfig,
        "hooks.local": cfg.LocalHooksConfig, "rollout": cfg.RolloutConfig,
    }  # fmt: skip
    for section, klass in sections.items():  # each a dataclass type
        block = readme.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
        for key in (f.name for f in dataclasses.fields(klass)):
            if key in ("password", "local"):
                continue  # password: read from the environment, never the file; local: [hooks.local]
            assert re.search(rf"^{key} = ", block, re.MULTILINE), f"README lacks {section}.{key}"


def test_init_reads_a_project_whose_env_names_its_compose_files(tmp_path: Path) -> None:
    """DjangoStarter's layout: three compose files named in COMPOSE_FILE; the built service is in the first."""
    (tmp_path / "compose.base.yml").write_text(
        "services:\n  redis:\n    image: redis:7\n  app:\n    build: .\n"
        "    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}\n    container_name: $APP_NAME-app\n"
    )
    (tmp_path / "compose.gunicorn.yml").write_text("services:\n  app:\n    command: [gunicorn, config.wsgi]\n")
    (tmp_path / "compose.caddy.yml").write_text("services:\n  web:\n    image: caddy:2\n    depends_on: [app]\n")
    (tmp_path / ".env").write_text(
        "COMPOSE_FILE=compose.base.yml:compose.gunicorn.yml:compose.caddy.yml\n"
        "APP_NAME=djs\nAPP_IMAGE_NAME=djangostarter\nAPP_IMAGE_TAG=v1.0\n"
    )
    env = {"REMOTE_HOST": "deploy@intranet-1", "REMOTE_PROJECT_PATH": "/home/deploy/djs", "REGISTRY_URL": "reg:5000"}
    text = render(tmp_path, env)
    assert 'compose_files = ["compose.base.yml", "compose.gunicorn.yml", "compose.caddy.yml"]' in text
    assert 'service = "app"' in text and 'tag_key = "APP_IMAGE_TAG"' in text and 'name = "djangostarter"' in text
    (tmp_path / "tagship.toml").write_text(text)
    from tagship.config import load

    config = load(tmp_path, {})
    assert config.app.compose_files == ("compose.base.yml", "compose.gunicorn.yml", "compose.caddy.yml")
    assert config.app.path == "/home/deploy/djs"
    # The environment wins over .env, as in Compose, with its own separator.
    (tmp_path / ".env").write_text("APP_IMAGE_NAME=djangostarter\n")
    text = render(tmp_path, {"COMPOSE_FILE": "compose.base.yml;compose.caddy.yml", "COMPOSE_PATH_SEPARATOR": ";"})
    assert 'compose_files = ["compose.base.yml", "compose.caddy.yml"]' in text


def test_init_reads_the_services_as_compose_merges_them_include_and_extends_too(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "include:\n  - app.yaml\nservices:\n  db:\n    image: postgres:16\n"
        "  worker:\n    extends:\n      file: app.yaml\n      service: app\n    command: work\n"
    )
    (tmp_path / "app.yaml").write_text("services:\n  app:\n    build: .\n    image: shop:${SHOP_TAG}\n")
    text = render(tmp_path, {})
    assert 'service = "app"' in text and 'tag_key = "SHOP_TAG"' in text and 'name = "shop"' in text


def test_init_without_a_compose_file_says_what_to_set(tmp_path: Path) -> None:
    from tagship.errors import ConfigError

    (tmp_path / "compose.base.yml").write_text("services:\n  app:\n    build: .\n")
    with pytest.raises(ConfigError) as caught:
        render(tmp_path, {})
    assert "no compose file" in str(caught.value) and "COMPOSE_FILE" in caught.value.hint
    (tmp_path / ".env").write_text("COMPOSE_FILE=compose.base.yml:compose.missing.yml\n")
    with pytest.raises(ConfigError, match=r"compose\.missing\.yml is not in"):
        render(tmp_path, {})


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"services:\n  app:\n    build: .\n    environment: [GREETING=gr\xfc\xdf]\n", "is not UTF-8 text (byte 0xfc"),
        (b"services:\n  app:\n    build: .\n    x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ],
)
def test_init_on_a_compose_file_it_cannot_read_says_which_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: bytes, said: str
) -> None:
    """A compose file in Latin-1, or nested deeper than PyYAML recurses: exit 2 naming the file
    (a UnicodeDecodeError or RecursionError before), and no tagship.toml written."""
    from tagship import cli

    (tmp_path / "compose.yaml").write_bytes(body)
    assert cli.main(["-C", str(tmp_path), "init"]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'compose.yaml'}" in err and said in err, err
    assert "unexpected" not in err and not (tmp_path / "tagship.toml").exists()


def test_the_registry_password_leaves_the_environment_once_read(tmp_path: Path) -> None:
    from tagship import cli
    from tagship import config as config_mod

    environ = {"TAGSHIP_REGISTRY_PASSWORD": "s3cret", "HOME": "/root"}
    (tmp_path / "tagship.toml").write_text(
        'servers = ["h1"]\n[registry]\nurl = "reg.example.com"\nusername = "deploy"\n[app]\npath = "/srv/a"\n'
    )
    config = config_mod.load(tmp_path, environ=environ)
    assert config.registry.password == "s3cret"
    cli.forget_secret_env(config, environ)
    assert environ == {"HOME": "/root"}


def test_doctor_runs_its_checks_with_the_password_out_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor's children (docker compose version, ssh) inherited the registry password: it loaded
    the config without taking the password out of the environment (seen by the /proc sampler of
    tests/e2e/test_server_values.py while another test ran doctor)."""
    from tagship import cli
    from tagship.commands import doctor

    (tmp_path / "tagship.toml").write_text(
        'servers = ["h1"]\n[registry]\nurl = "reg.example.com"\nusername = "deploy"\n[app]\npath = "/srv/a"\n'
    )
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", "s3cret-for-doctor")
    seen: list[str] = []

    def checks(kind: str) -> Callable[..., list[object]]:
        def check(*args: object) -> list[object]:
            seen.append(f"{kind} {'TAGSHIP_REGISTRY_PASSWORD' in os.environ}")
            return []

        return check

    monkeypatch.setattr(doctor, "local_checks", checks("local"))  # git, docker, compose, ssh: children
    monkeypatch.setattr(doctor, "server_checks", checks("servers"))
    assert cli.main(["-C", str(tmp_path), "doctor"]) == 0
    assert seen == ["local False", "servers False"]


def test_hosts_naming_no_configured_server_is_refused_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagship import cli

    (tmp_path / "tagship.toml").write_text('servers = ["a.example"]\n[app]\npath = "/srv/app"\n')
    assert cli.main(["-C", str(tmp_path), "status", "--hosts", "b.example"]) == 2
    assert "--hosts: b.example is not a configured server (the servers: a.example)" in capsys.readouterr().err
