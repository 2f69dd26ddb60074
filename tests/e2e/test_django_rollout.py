"""The rollout, the watch and server values on the DjangoStarter-like layout (Django + gunicorn,
redis, the user's Caddy calling `app:8000`, three compose files, a 30 s Docker healthcheck).

The same mechanisms are proven on the busybox app in test_rollout.py and test_server_values.py;
here they meet a real framework app: gunicorn that passes the health gate and then stops, a
canary that must take the whole project (app, redis, the user's Caddy) back, and values that reach
Django's environment through the project's own `env_file: .env`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from lab.load import Load, LoadReport
from tests import djangostarter
from tests.apprepo import fetch, ssh
from tests.djangostarter import DjangoStarterRepo
from tests.e2e.test_djangostarter import make_repo

APP = "djs-rollout"
# A value with every shell metacharacter, quotes and Chinese: it must reach Django as written.
GREETING = "hello $(touch /tmp/djs-pwned) `touch /tmp/djs-pwned` \"q\" 's' ;|& 你好"
SECRET = "djs-rollout-secret-7f3a9c"


@pytest.fixture
def repo(the_lab: lab.Lab, docker_config: Path, tmp_path: Path) -> Iterator[DjangoStarterRepo]:
    """The project with a canary rollout (30 s watch), a server value and a secrets file."""
    repo = make_repo(the_lab, docker_config, tmp_path / "app", APP)
    config = repo.path / "tagship.toml"
    values = f'values = {{ GREETING = {json.dumps(GREETING, ensure_ascii=False)} }}\nsecrets_file = "secrets.env"\n'
    config.write_text(
        config.read_text().replace('[env]\nseed = ".env"\n', '[env]\nseed = ".env"\n' + values)
        + '\n[rollout]\nstrategy = "canary"\ncanary_watch = 30\n'
    )
    ignore = repo.path / ".gitignore"
    ignore.write_text(ignore.read_text() + "secrets.env\n")  # the secrets never reach git
    (repo.path / "secrets.env").write_text(f"DJANGO_SECRET_KEY={SECRET}\n")
    yield repo
    for server in the_lab.servers:
        djangostarter.remove_project(server, APP)


def in_app(server: lab.LabServer, *argv: str) -> str:
    found = ssh(
        server,
        "docker",
        "ps",
        "--quiet",
        "--filter",
        f"label=com.docker.compose.project={APP}",
        "--filter",
        "label=com.docker.compose.service=app",
    )
    ids = found.stdout.split()
    assert len(ids) == 1, f"{server.name}: app containers {ids}"
    done = ssh(server, "docker", "exec", ids[0], *argv)
    assert done.returncode == 0, f"{server.name}: docker exec {argv}: {done.stderr}"
    return str(done.stdout)


def history(server: lab.LabServer, repo: DjangoStarterRepo) -> list[tuple[str, str]]:
    lines = ssh(server, "cat", f"{repo.remote_path}/.tagship/releases.jsonl").stdout.splitlines()
    return [(entry["version"], entry["result"]) for entry in map(json.loads, lines)]


def loads(the_lab: lab.Lab, repo: DjangoStarterRepo) -> dict[str, Load]:
    """Load on every server's app port (tagship's listener) and on h1's user Caddy."""
    started = {s.name: Load(s.ip, repo.port, "/version/", max_seconds=240).start() for s in the_lab.servers}
    started["caddy"] = Load(the_lab.servers[0].ip, repo.web_port, "/version/", max_seconds=240).start()
    return started


def stopped(running: dict[str, Load]) -> dict[str, LoadReport]:
    return {name: load.stop() for name, load in running.items()}


def test_values_reach_django_and_a_release_that_dies_after_the_gate_goes_back_on_the_canary_alone(
    the_lab: lab.Lab, repo: DjangoStarterRepo
) -> None:
    h1, h2 = the_lab.servers
    repo.release("v1")
    first = repo.tagship("deploy")
    assert first.returncode == 0, first.stderr
    for server in (h1, h2):
        assert in_app(server, "printenv", "GREETING") == GREETING + "\n", server.name
        assert in_app(server, "printenv", "DJANGO_SECRET_KEY") == SECRET + "\n", server.name
        assert ssh(server, "test", "-e", "/tmp/djs-pwned").returncode == 1, "a value ran on the server"
        assert in_app(server, "sh", "-c", "test -e /tmp/djs-pwned || echo absent") == "absent\n"
    assert SECRET not in first.stdout + first.stderr

    # Healthy at the gate, dead 12 s after its start: inside the canary's 30 s watch whether the gate
    # passes a second after the start (an idle lab) or eight (four busy workers). Dead after 6 s, it
    # died before a busy lab's gate passed, and the watch was never tried.
    repo.release("v2", crash_after=12)
    running = loads(the_lab, repo)
    died = repo.tagship("deploy")
    seen = stopped(running)
    assert died.returncode == 8, died.stdout + died.stderr
    assert "after the switch" in died.stderr, f"not caught by the watch:\n{died.stderr}"
    print(
        "django canary died in its watch: "
        + ", ".join(f"{name} {report.failed} of {report.sent} failed" for name, report in seen.items())
    )
    # Every entry keeps the old release as backup during the watch, the user's own Caddy (through
    # tagship's gate and back tier) included: not one request fails (issue 21).
    for name, report in seen.items():
        assert report.failed == 0, f"{name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 50, name
    # While watched, the listener sends to v2 whenever it answers (its restart policy brings it back
    # between crashes) and to v1 when it does not; after the watch, v1 for good.
    for sequence in [*seen[h1.name].version_sequences(), *seen["caddy"].version_sequences()]:
        assert set(sequence) <= {"v1", "v2"} and sequence[-1] == "v1", sequence
    for sequence in seen[h2.name].version_sequences():
        assert sequence == ["v1"], sequence  # h2 never switched
    # The canary went back to v1 through every entry, including the user's own Caddy.
    assert fetch(f"http://{h1.ip}:{repo.port}/version/") == "v1"
    assert fetch(f"http://{h1.ip}:{repo.web_port}/version/") == "v1"
    assert history(h1, repo)[-1] == ("v2", "failed")
    assert history(h2, repo) == [("v1", "succeeded")]
    assert lab.server_docker(h2, "image", "inspect", f"{repo.repository}:v2").returncode != 0, "h2 got v2"

    # A good release goes to the canary, is watched, then to h2; nobody waits for the 30 s healthcheck.
    repo.release("v3")
    running = loads(the_lab, repo)
    good = repo.tagship("deploy")
    seen = stopped(running)
    assert good.returncode == 0, good.stderr
    for name, report in seen.items():
        assert report.failed == 0, f"{name}: {report.failed} of {report.sent} failed: {report.errors()}"
    for server in (h1, h2):
        assert fetch(f"http://{server.ip}:{repo.port}/version/") == "v3"
        assert fetch(f"http://{server.ip}:{repo.web_port}/version/") == "v3"
        assert in_app(server, "printenv", "GREETING") == GREETING + "\n"
