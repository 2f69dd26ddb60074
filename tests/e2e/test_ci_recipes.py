"""The CI recipes of docs/ci/ run as written: each deploys the pushed tag to the lab servers.

The recipe's commands run in a mount namespace of their own where ~/.ssh is an empty tmpfs (a CI
runner's fresh home: ssh reads ~ from the password database, not $HOME), with ssh reading no
system-wide configuration (the lab's aliases, key and known_hosts would otherwise do the recipe's
work), the lab's key, host keys and registry password given as the secrets.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import lab
from tests.apprepo import SRC, AppRepo, fetch
from tests.conftest import new_app

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "ci"
INSTALL = "pip install tagship"


SECRET_REF = re.compile(r"^\$\{\{\s*secrets\.(\w+)\s*\}\}$")


def github_steps(recipe: dict[str, Any]) -> list[str]:
    """Each step's `run`, after its `env:` (a secret's value comes from the variable of its name,
    which the test sets as the runner would have the secret)."""
    found = []
    for step in recipe["jobs"]["deploy"]["steps"]:
        if "run" not in step or step["run"].strip() == INSTALL:
            continue
        exports = []
        for key, value in (step.get("env") or {}).items():
            secret = SECRET_REF.match(str(value))
            exports.append(
                f'export {key}="${secret.group(1)}"' if secret else f"export {key}={shlex.quote(str(value))}"
            )
        found.append("\n".join([*exports, step["run"]]))
    return found


def gitlab_steps(recipe: dict[str, Any]) -> list[str]:
    job = recipe["deploy"]
    return [line for line in [*job["before_script"], *job["script"]] if line.strip() != INSTALL]


def secrets(the_lab: lab.Lab) -> dict[str, str]:
    ssh_dir = the_lab.root / "ssh"
    return {
        "SSH_PRIVATE_KEY": (ssh_dir / "id_ed25519").read_text().strip(),
        "SSH_KNOWN_HOSTS": (ssh_dir / "known_hosts").read_text().strip(),
        "REGISTRY_PASSWORD": the_lab.registry_password,
    }


def run_recipe(app: AppRepo, steps: list[str], env: dict[str, str], shim: Path) -> subprocess.CompletedProcess[str]:
    """Every step in one fresh-home namespace, in order, each under `sh -e` as runners do."""
    body = "\n".join(f"sh -ec {shlex.quote(step)}" for step in steps)
    driver = f"set -e\nmount -t tmpfs -o mode=700 tmpfs /root/.ssh\ncd {shlex.quote(str(app.path))}\n{body}\n"
    Path("/root/.ssh").mkdir(mode=0o700, exist_ok=True)  # the mount point (hidden, not touched)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAGSHIP_")},
        **app.env,
        **env,
        "PATH": f"{shim}:{os.environ['PATH']}",
        "PYTHONPATH": SRC,
        "TAGSHIP_SSH_CONFIG": "/dev/null",  # a runner has no ssh configuration but the recipe's
    }
    full_env.pop("TAGSHIP_REGISTRY_PASSWORD", None)  # the recipe sets it from its secret
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", driver],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("recipe", ["github-actions.yml", "gitlab-ci.yml"])
def test_a_ci_recipe_deploys_the_pushed_tag(the_lab: lab.Lab, tmp_path: Path, docker_config: Path, recipe: str) -> None:
    app = new_app(the_lab, tmp_path / "app", docker_config, f"ci-{recipe.split('-')[0]}")
    config = app.path / "tagship.toml"
    text = config.read_text()
    for server in the_lab.servers:  # no ssh_config aliases on a runner: addresses
        text = text.replace(f'"{server.name}"', f'"root@{server.ip}"')
    config.write_text(text)
    app.release("v1")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "tagship").write_text('#!/bin/sh\nexec python3 -m tagship "$@"\n')
    (shim / "tagship").chmod(0o755)
    parsed = yaml.safe_load((RECIPES / recipe).read_text())
    if recipe.startswith("github"):
        steps, env = github_steps(parsed), {"GITHUB_REF_NAME": "v1"}
    else:
        steps, env = gitlab_steps(parsed), {"CI_COMMIT_TAG": "v1"}
    assert any("tagship deploy" in step for step in steps) and len(steps) >= 2

    done = run_recipe(app, steps, {**env, **secrets(the_lab)}, shim)

    assert done.returncode == 0, done.stdout + done.stderr
    assert the_lab.registry_password not in done.stdout + done.stderr
    assert [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in the_lab.servers] == ["v1", "v1"]
