"""A DjangoStarter-like project (Django + gunicorn, redis, the user's own Caddy; three compose files).

Deploys v1, v2 and a broken v3 to both lab servers with the real tagship command and checks what
users see, on tagship's port and through their own Caddy.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import lab
from tests import djangostarter
from tests.apprepo import SESSION_NAMESPACE, fetch, ssh
from tests.djangostarter import DjangoStarterRepo, post


def answer(url: str) -> str:
    """The body a GET of url answers, or "error: ..." (refused, timed out, not 2xx)."""
    try:
        return fetch(url, timeout=2)
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {exc}"


@dataclass
class Sample:
    at: float  # time.monotonic()
    via: str  # "tagship" (the proxy's port) or "caddy" (the user's own Caddy)
    body: str  # the version served, or "error: ..."


@dataclass
class Sampler:
    """GETs /version/ on each URL in turn, until stopped: what users saw during a deploy."""

    urls: dict[str, str]
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run(self) -> None:
        while not self._stop.is_set():
            for via, url in self.urls.items():
                self.samples.append(Sample(time.monotonic(), via, answer(url)))
            time.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def first(self, via: str, body: str) -> float | None:
        return next((s.at for s in self.samples if s.via == via and s.body == body), None)


HEALTH_STEP = "wait until the new app is healthy"


@dataclass
class Run:
    code: int
    seconds: float  # wall time of the whole command
    steps: dict[str, float]  # step title -> seconds (the --json step_done events)
    output: str  # stdout (JSON lines) and stderr, for assertion messages


def deploy(repo: DjangoStarterRepo, expect: int = 0) -> Run:
    """Run `tagship --json deploy`; fails the caller unless it exits with expect."""
    started = time.monotonic()
    done = repo.tagship("--json", "deploy")
    seconds = time.monotonic() - started
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = {e["title"]: float(e["seconds"]) for e in events if e.get("event") == "step_done"}
    run = Run(done.returncode, seconds, steps, done.stdout + done.stderr)
    if run.code != expect:
        pytest.fail(f"tagship deploy exited {run.code}, not {expect}:\n{run.output}")
    return run


def container_id(server: lab.LabServer, name: str) -> str:
    """The "ID STATUS" of a container on a server."""
    done = ssh(server, "docker", "inspect", "--format", "{{.Id}} {{.State.Status}}", name)
    if done.returncode != 0:
        pytest.fail(f"{server.name}: no container {name}: {done.stderr}")
    return done.stdout.strip()


def served(url: str, version: str) -> None:
    """Fail the test's setup unless url serves version."""
    body = fetch(url)
    if body != version:
        pytest.fail(f"{url} served {body!r}, not {version}")


def make_repo(
    the_lab: lab.Lab,
    docker_config: Path,
    where: Path,
    app_name: str,
    *,
    publish_app_port: bool = True,
    replicas: int = 0,
) -> DjangoStarterRepo:
    """The project, its images built and pushed, its leftovers from an earlier run gone from the servers."""
    built = lab.ensure_django_images()
    if built:
        print("built lab images:", ", ".join(f"{name} {seconds:.1f}s" for name, seconds in built.items()))
    for server in the_lab.servers:
        djangostarter.remove_project(server, app_name)
    env = {"DOCKER_CONFIG": str(docker_config), "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password, "NO_COLOR": "1"}
    return djangostarter.create(
        where,
        the_lab,
        app_name=app_name,
        namespace=SESSION_NAMESPACE,
        env=env,
        publish_app_port=publish_app_port,
        replicas=replicas,
    )


@dataclass
class Deployed:
    repo: DjangoStarterRepo
    servers: tuple[lab.LabServer, ...]
    redis_before: dict[str, str]  # server name -> "ID running" of the redis container after v1
    v2: Run
    v3: Run  # the broken release, rejected
    v3_seen: Sampler  # h1, while v3 was deployed
    v2_seen: Sampler  # h1, while v2 was deployed


@pytest.fixture(scope="module")
def deployed(the_lab: lab.Lab, docker_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """v1, v2 and a broken v3 deployed to both servers; what users saw on h1 during v2 and v3."""
    repo = make_repo(the_lab, docker_config, tmp_path_factory.mktemp("djangostarter") / "app", "djs-main")
    h1 = the_lab.servers[0]
    urls = {"tagship": f"http://{h1.ip}:{repo.port}/version/", "caddy": f"http://{h1.ip}:{repo.web_port}/version/"}
    repo.release("v1")
    v1 = deploy(repo)
    redis_before = {}
    for server in the_lab.servers:
        served(f"http://{server.ip}:{repo.web_port}/version/", "v1")
        if post(f"http://{server.ip}:{repo.web_port}/visits/") != "1":  # a row in sqlite
            pytest.fail(f"{server.name}: the first visit is not the first row")
        redis_before[server.name] = container_id(server, "djs-main-redis")

    repo.release("v2")
    with Sampler(urls) as v2_seen:
        v2 = deploy(repo)
        time.sleep(1)
    if v2_seen.first("tagship", "v2") is None:
        pytest.fail("tagship's port never served v2 while sampled")

    # A broken release is rejected after health.timeout: 15 s is enough to see what users get meanwhile.
    config = repo.path / "tagship.toml"
    config.write_text(config.read_text().replace("[health]\n", "[health]\ntimeout = 15\n"))
    repo.release("v3", broken=True)
    with Sampler(urls) as v3_seen:
        v3 = deploy(repo, expect=8)

    for name, run, seen in (("v2", v2, v2_seen), ("v3 (broken)", v3, v3_seen)):
        caddy = [s for s in seen.samples if s.via == "caddy"]
        print(
            f"djangostarter deploy {name}: {run.seconds:.1f}s, waiting for health {run.steps.get(HEALTH_STEP, 0):.1f}s;"
            f" through the user's Caddy: {sum(s.body == 'v3' for s in caddy)} got v3,"
            f" {sum(s.body.startswith('error') for s in caddy)} failed, of {len(caddy)}"
        )
    print(f"djangostarter deploy v1: {v1.seconds:.1f}s")
    yield Deployed(repo, the_lab.servers, redis_before, v2, v3, v3_seen, v2_seen)
    for server in the_lab.servers:
        djangostarter.remove_project(server, "djs-main")


def test_v2_is_served_on_tagships_port_and_through_the_users_caddy(deployed: Deployed) -> None:
    repo = deployed.repo
    for server in deployed.servers:
        assert fetch(f"http://{server.ip}:{repo.port}/version/") == "v2"
        assert fetch(f"http://{server.ip}:{repo.web_port}/version/") == "v2"
        assert fetch(f"http://{server.ip}:{repo.web_port}/") == "django starter v2"
        assert fetch(f"http://{server.ip}:{repo.port}/healthz/") == "ok"
        # The named volume `static`, shared by the app and the user's Caddy, still serves.
        assert "DJANGO Admin styles" in fetch(f"http://{server.ip}:{repo.web_port}/static/admin/css/base.css")


def test_a_broken_release_is_rejected_and_never_served_on_tagships_port(deployed: Deployed) -> None:
    assert "the proxy was not switched" in deployed.v3.output
    assert {s.body for s in deployed.v3_seen.samples if s.via == "tagship"} == {"v2"}


def test_redis_kept_running(deployed: Deployed) -> None:
    for server in deployed.servers:
        assert container_id(server, "djs-main-redis") == deployed.redis_before[server.name]
        assert deployed.redis_before[server.name].endswith(" running")


def test_the_sqlite_database_survives(deployed: Deployed) -> None:
    repo = deployed.repo
    for server in deployed.servers:
        assert fetch(f"http://{server.ip}:{repo.web_port}/visits/") == "1"  # written by v1
        assert post(f"http://{server.ip}:{repo.web_port}/visits/") == "2"
        listing = ssh(server, "ls", f"{repo.remote_path}/data")
        assert listing.stdout.split() == ["db.sqlite3"]


def test_the_switch_does_not_wait_for_the_healthcheck_interval(deployed: Deployed) -> None:
    # Docker's first healthcheck run comes 30 s (the interval) after start; the app boots in about 2 s.
    assert deployed.v2.steps[HEALTH_STEP] < 15, deployed.v2.output


def test_the_users_caddy_never_serves_a_release_tagship_rejected(deployed: Deployed) -> None:
    # The user's Caddy calls app:8000; the override links that name, for it alone, to tagship's gate,
    # which forwards to the proxy's route: only containers that passed the health gate.
    caddy = [s.body for s in deployed.v3_seen.samples if s.via == "caddy"]
    assert caddy.count("v3") == 0, f"{caddy.count('v3')} of {len(caddy)} requests through the user's Caddy got v3"
    assert len(caddy) > 20 and set(caddy) == {"v2"}, set(caddy)


def test_no_request_through_the_users_caddy_fails_during_a_good_deploy(deployed: Deployed) -> None:
    for seen in (deployed.v2_seen, deployed.v3_seen):
        caddy = [s.body for s in seen.samples if s.via == "caddy"]
        failed = [body for body in caddy if body.startswith("error")]
        assert not failed and len(caddy) > 20, f"{len(failed)} of {len(caddy)} failed: {failed[:3]}"


@pytest.fixture
def with_replicas(the_lab: lab.Lab, docker_config: Path, tmp_path: Path) -> Iterator[DjangoStarterRepo]:
    """The variant declaring `deploy.replicas: 2` for the app (so without its fixed container name): v1 then v2."""
    repo = make_repo(the_lab, docker_config, tmp_path / "app", "djs-replicas", replicas=2)
    for version in ("v1", "v2"):
        repo.release(version)
        deploy(repo)
    yield repo
    for server in the_lab.servers:
        djangostarter.remove_project(server, "djs-replicas")


def test_declared_replicas_run(the_lab: lab.Lab, with_replicas: DjangoStarterRepo) -> None:
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{with_replicas.web_port}/version/") == "v2"
        project, service = "label=com.docker.compose.project=djs-replicas", "label=com.docker.compose.service=app"
        running = ssh(server, "docker", "ps", "--format", "{{.Image}}", "--filter", project, "--filter", service)
        assert running.stdout.split() == [f"{with_replicas.repository}:v2"] * 2, f"{server.name}: deploy.replicas is 2"


@pytest.fixture(scope="module")
def without_app_port(
    the_lab: lab.Lab, docker_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DjangoStarterRepo]:
    """The variant whose app publishes no port (the user's Caddy is the only entry): v1 then v2."""
    repo = make_repo(
        the_lab, docker_config, tmp_path_factory.mktemp("djangostarter") / "app", "djs-noport", publish_app_port=False
    )
    for version in ("v1", "v2"):
        repo.release(version)
        run = deploy(repo)
        print(f"djangostarter without an app port: deploy {version} {run.seconds:.1f}s")
    yield repo
    for server in the_lab.servers:
        djangostarter.remove_project(server, "djs-noport")


def test_without_app_port_the_app_runs_v2(the_lab: lab.Lab, without_app_port: DjangoStarterRepo) -> None:
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/version/').read().decode())"
    project, service = "label=com.docker.compose.project=djs-noport", "label=com.docker.compose.service=app"
    for server in the_lab.servers:
        ids = ssh(server, "docker", "ps", "-q", "--filter", project, "--filter", service).stdout.split()
        assert len(ids) == 1, f"{server.name}: {ids}"
        served = ssh(server, "docker", "exec", ids[0], "python", "-c", probe)
        assert served.stdout.strip() == "v2", served.stderr


def test_without_app_port_the_users_caddy_serves_v2(the_lab: lab.Lab, without_app_port: DjangoStarterRepo) -> None:
    for server in the_lab.servers:
        assert answer(f"http://{server.ip}:{without_app_port.web_port}/version/") == "v2", server.name


def test_a_users_caddy_started_before_the_gate_is_moved_to_it_once(
    the_lab: lab.Lab, docker_config: Path, tmp_path: Path
) -> None:
    """A project whose Caddy already runs without the gate's link (deployed before, as by the old
    script): the first deploy with the gate recreates it once, the next ones never touch it."""
    repo = make_repo(the_lab, docker_config, tmp_path / "app", "djs-moved")
    config = repo.path / "tagship.toml"
    plain = config.read_text()
    config.write_text(plain.replace("[app]\n", "[app]\nconsumers = []\n"))  # no gate: Caddy calls app directly
    repo.release("v1")
    deploy(repo)
    web = [container_id(server, "djs-moved-web") for server in the_lab.servers]
    config.write_text(plain)
    repo.release("v2")
    moved = deploy(repo)
    assert "recreating web once so that it reaches app through the gate" in moved.output
    after = [container_id(server, "djs-moved-web") for server in the_lab.servers]
    assert all(a != b for a, b in zip(web, after, strict=True)), "the user's Caddy was recreated, once"
    repo.release("v3")
    again = deploy(repo)
    assert "recreating web" not in again.output
    assert [container_id(server, "djs-moved-web") for server in the_lab.servers] == after, "and never again"
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{repo.web_port}/version/") == "v3"
        links = ssh(server, "docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", "djs-moved-web")
        assert "djs-moved-tagship-gate-1:app" in links.stdout, links.stdout
    for server in the_lab.servers:
        djangostarter.remove_project(server, "djs-moved")


MIGRATION_0002 = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunSQL("CREATE TABLE core_release_note (id integer primary key, note text)")]
"""

MIGRATION_0003_BROKEN = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0002_release_note")]
    operations = [migrations.RunSQL("ALTER TABLE core_no_such_table ADD COLUMN x integer")]
"""


def test_a_migration_runs_before_the_switch_and_a_failing_one_keeps_the_old_release(
    the_lab: lab.Lab, docker_config: Path, tmp_path: Path
) -> None:
    """hooks.before_switch = manage.py migrate, in the new image, on the first server only."""
    repo = make_repo(the_lab, docker_config, tmp_path / "app", "djs-migrate")
    config = repo.path / "tagship.toml"
    config.write_text(config.read_text() + '\n[hooks]\nbefore_switch = ["python src/manage.py migrate --noinput"]\n')
    repo.git("commit", "--quiet", "--all", "--message", "migrate before the switch")
    migrations = repo.path / "src" / "apps" / "core" / "migrations"
    h1 = the_lab.servers[0]
    repo.release("v1")
    deploy(repo)
    (migrations / "0002_release_note.py").write_text(MIGRATION_0002)
    repo.release("v2")
    v2 = deploy(repo)
    assert "Applying core.0002_release_note... OK" in v2.output, "the hook's output is shown"
    (migrations / "0003_broken.py").write_text(MIGRATION_0003_BROKEN)
    repo.release("v3")
    urls = {"tagship": f"http://{h1.ip}:{repo.port}/version/", "caddy": f"http://{h1.ip}:{repo.web_port}/version/"}
    with Sampler(urls) as seen:
        v3 = deploy(repo, expect=1)
    assert "before_switch hook `python src/manage.py migrate --noinput` failed" in v3.output
    assert "no such table: core_no_such_table" in v3.output, "the migration's own error is shown"
    assert {s.body for s in seen.samples} == {"v2"}, "users stay on v2 on every path, and nothing fails"
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{repo.web_port}/version/") == "v2"
        assert "APP_IMAGE_TAG=v2\n" in ssh(server, "cat", "/srv/djs-migrate/.env").stdout
    for server in the_lab.servers:
        djangostarter.remove_project(server, "djs-migrate")
