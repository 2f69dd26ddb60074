"""env.values and env.secrets_file: written into the servers' .env (mode 0600), read back by the real
Compose exactly, and nowhere else: not in tagship's output, the plan, history or the audit log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import lab
from tagship.builders import envfile
from tests.apprepo import AppRepo, ssh
from tests.conftest import new_app

# Values a user's .env or secrets file holds, each of which a naive KEY=value line would change.
HOSTILE = [
    "plain",
    "with space",
    "quote'single",
    'quote"double',
    "both'\"quotes",
    "dollar$HOME",
    "${HOME}",
    "dollars$$two",
    "back\\slash",
    "trailing\\",
    "hash # not a comment",
    "#leading",
    "multi\nline",
    "tab\there",
    "  padded  ",
    "",
    "=equals=",
    "ünïcødé 中文",
    "`backtick` $(cmd) ; | &",
    "-leading-dash",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_encoded_value_is_read_back_by_compose_exactly(tmp_path: Path, value: str) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: busybox\n    environment:\n      V: ${V}\n")
    (tmp_path / ".env").write_text(envfile.set_encoded("OTHER=1\nV=old # kept\n", "V", envfile.encode(value)))
    done = subprocess.run(
        ["docker", "compose", "--project-directory", str(tmp_path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stdout)["services"]["a"]["environment"]["V"]
    assert seen.replace("$$", "$") == value  # compose config writes a literal $ as $$
    assert "# kept" in (tmp_path / ".env").read_text()


SECRET = "s3cr3t pa$$word 'with' \"quotes\""


def secrets_app(the_lab: lab.Lab, tmp_path: Path, docker_config: Path, name: str) -> AppRepo:
    app = new_app(the_lab, tmp_path / "app", docker_config, name)
    compose = (app.path / "compose.yaml").read_text()
    compose = compose.replace(
        "    restart: unless-stopped\n",
        "    restart: unless-stopped\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n"
        "      GREETING: ${GREETING}\n      API_KEY: ${API_KEY}\n",
    )
    (app.path / "compose.yaml").write_text(compose)
    config = app.path / "tagship.toml"
    text = config.read_text().replace('[env]\nseed = ".env"\n', '[env]\nseed = ".env"\nsecrets_file = "secrets.env"\n')
    config.write_text(text + "\n[env.values]\nGREETING = \"hello 'world' $USER\"\n")
    (app.path / ".gitignore").write_text(".env\nsecrets.env\n")
    (app.path / "secrets.env").write_text(
        "# production secrets\n" + f"DB_PASSWORD={envfile.encode(SECRET)}\n" + "API_KEY=ak_live_0123456789\n"
    )
    return app


def test_values_and_secrets_reach_the_container_and_nothing_else(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = secrets_app(the_lab, tmp_path, docker_config, "values")
    app.release("v1")
    dry = app.tagship("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    deployed = app.tagship("-v", "deploy")
    assert deployed.returncode == 0, deployed.stderr
    for text in (dry.stdout + dry.stderr, deployed.stdout + deployed.stderr):
        assert "ak_live_0123456789" not in text and "s3cr3t" not in text
    assert "DB_PASSWORD" in deployed.stderr, "the names are shown, not the values"
    for server in the_lab.servers:
        env = ssh(server, "stat", "-c", "%a", f"{app.remote_path}/.env").stdout.strip()
        assert env == "600", server.name
        container = lab.server_docker(server, "ps", "-q", "--filter", "label=com.docker.compose.service=web")
        seen = lab.server_docker(server, "exec", container.stdout.split()[0], "env").stdout
        assert f"DB_PASSWORD={SECRET}\n" in seen, server.name
        assert "API_KEY=ak_live_0123456789\n" in seen and "GREETING=hello 'world' $USER\n" in seen, server.name
        kept = ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl", f"{app.remote_path}/.tagship/audit.log")
        assert "ak_live" not in kept.stdout and "s3cr3t" not in kept.stdout and "API_KEY" not in kept.stdout


def test_a_secrets_file_committed_to_git_is_refused_before_anything_runs(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = secrets_app(the_lab, tmp_path, docker_config, "values-committed")
    (app.path / ".gitignore").write_text(".env\n")
    app.release("v1")  # commits secrets.env
    refused = app.tagship("deploy")
    assert refused.returncode == 2, refused.stderr
    assert "env.secrets_file: 'secrets.env' is committed to git" in refused.stderr
    assert "git rm --cached secrets.env" in refused.stderr
    assert "ak_live_0123456789" not in refused.stderr
    for server in the_lab.servers:
        assert ssh(server, "test", "-e", app.remote_path).returncode != 0, "no server was touched"
