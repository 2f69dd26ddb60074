"""Issue 11's lock drill: two deploys at once from two machines, under load on every server's port.

Each "machine" is a clone of the app's repository run by tagship with an identity of its own: its
user (USER, LOGNAME, HOME, git user.name) and its host name, set in a UTS namespace of its own
(`unshare --uts`), which is what the lock holder records. The first deploy holds every server's
lock; the second is refused with exit 3, naming the holder, `tagship lock release` and
--lock-wait, and changes nothing; with --lock-wait it waits and then deploys. No request fails.

So that the second deploy meets the first one's lock however fast each runs, the first is paused
(SIGSTOP) once it holds every lock, as a slow deploy would be, and resumed when the second one has
been refused, or says it waits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import lab
from lab.load import Load, LoadReport
from tests.apprepo import SRC, TAGSHIP, AppRepo, deploy, served, ssh

LOCK_TAKEN = "    done: take the deploy lock"


@dataclass(frozen=True)
class Machine:
    """A clone of the app and who deploys from it: user name, host name, home."""

    repo: AppRepo
    user: str
    host: str
    home: Path

    def start(self, *args: str) -> subprocess.Popen[str]:
        """tagship as this machine's user on this machine's host name (a UTS namespace of its own)."""
        env = {
            **os.environ,
            **self.repo.env,
            "PYTHONPATH": SRC,
            "USER": self.user,
            "LOGNAME": self.user,
            "HOME": str(self.home),
        }
        as_host = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.host]
        argv = [*as_host, *TAGSHIP, "-C", str(self.repo.path), *args]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def machine(repo: AppRepo, user: str, host: str, home: Path) -> Machine:
    home.mkdir(parents=True, exist_ok=True)
    repo.git("config", "user.name", user.title())
    repo.git("config", "user.email", f"{user}@tagship.invalid")
    return Machine(repo, user, host, home)


@pytest.fixture
def two_machines(app: AppRepo, tmp_path: Path) -> Iterator[tuple[Machine, Machine]]:
    """alice on laptop-a works in the app's repository, bob on laptop-b in a clone of it."""
    clone = tmp_path / "bob-clone"
    subprocess.run(["git", "clone", "--quiet", str(app.path), str(clone)], check=True)
    shutil.copy(app.path / ".env", clone / ".env")  # not committed: each machine has its own
    bobs = AppRepo(clone, app.env, app.port, app.remote_path, app.repository)
    yield (machine(app, "alice", "laptop-a", tmp_path / "alice"), machine(bobs, "bob", "laptop-b", tmp_path / "bob"))


def until_lock_taken(proc: subprocess.Popen[str]) -> list[str]:
    """The stderr lines up to the one saying the run holds every server's lock (the run goes on)."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(LOCK_TAKEN):
            return seen
    raise AssertionError(f"tagship ended before it held the lock:\n{''.join(seen)}")


def until_waiting(proc: subprocess.Popen[str]) -> list[str]:
    """The stderr lines up to the one saying the run waits for the lock (the run goes on)."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if "waiting up to" in line:
            return seen
    raise AssertionError(f"tagship ended before it waited for the lock:\n{''.join(seen)}")


def finish(proc: subprocess.Popen[str], seen: list[str] | None = None) -> tuple[int, str]:
    _, rest = proc.communicate(timeout=600)
    return proc.returncode, "".join(seen or []) + rest


def loads(the_lab: lab.Lab, app: AppRepo) -> list[Load]:
    return [Load(server.ip, app.port, max_seconds=300).start() for server in the_lab.servers]


def no_request_failed(the_lab: lab.Lab, reports: list[LoadReport], order: list[str]) -> None:
    for server, report in zip(the_lab.servers, reports, strict=True):
        assert report.failed == 0, f"{server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 50, server.name
        for seen in report.version_sequences():
            assert seen == [v for v in order if v in seen], f"{server.name} served {seen}, not in {order}"


def state(server: lab.LabServer, app: AppRepo) -> tuple[str, list[tuple[str, str]], bool]:
    """A server's .env tag, its history (version, result) and whether the lock is held."""
    env = ssh(server, "cat", f"{app.remote_path}/.env").stdout
    tag = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("APP_IMAGE_TAG="))
    lines = ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl").stdout.splitlines()
    history = [(json.loads(line)["version"], json.loads(line)["result"]) for line in lines]
    locked = ssh(server, "test", "-e", f"{app.remote_path}/.tagship/lock").returncode == 0
    return tag, history, locked


def test_two_deploys_from_two_machines_at_once_one_deploys_the_other_is_refused_naming_the_holder(
    the_lab: lab.Lab, app: AppRepo, two_machines: tuple[Machine, Machine]
) -> None:
    alice, bob = two_machines
    deploy(alice.repo, "v1")
    alice.repo.release("v2")
    bob.repo.release("v3")
    running = loads(the_lab, app)
    first = alice.start("deploy")
    seen = until_lock_taken(first)
    first.send_signal(signal.SIGSTOP)  # alice's deploy holds the lock as long as bob's runs
    second = bob.start("deploy")
    refused, said = finish(second)
    first.send_signal(signal.SIGCONT)
    deployed, alice_said = finish(first, seen)
    reports = [load.stop() for load in running]

    assert deployed == 0, alice_said
    assert refused == 3, said
    assert "held by Alice (alice@laptop-a) on laptop-a since" in said and "(deploy v2, pid " in said, said
    assert "tagship lock release" in said and "--lock-wait" in said, said
    no_request_failed(the_lab, reports, ["v1", "v2"])
    assert served(the_lab, app) == ["v2", "v2"]
    for server in the_lab.servers:
        tag, history, locked = state(server, app)
        assert tag == "v2" and history == [("v1", "succeeded"), ("v2", "succeeded")], server.name
        assert not locked, f"{server.name}: the lock is free"
        audit = ssh(server, "cat", f"{app.remote_path}/.tagship/audit.log").stdout
        assert "deploy v3" not in audit, f"{server.name}: bob's refused run left no trace:\n{audit}"
        containers = ssh(server, "docker", "ps", "--format", "{{.Image}}").stdout.split()
        assert f"{app.repository}:v3" not in containers, f"{server.name}: bob's release never ran"


def test_with_lock_wait_the_second_deploy_waits_for_the_first_and_then_deploys(
    the_lab: lab.Lab, app: AppRepo, two_machines: tuple[Machine, Machine]
) -> None:
    alice, bob = two_machines
    deploy(alice.repo, "v1")
    alice.repo.release("v2")
    bob.repo.release("v3")
    running = loads(the_lab, app)
    first = alice.start("deploy")
    seen = until_lock_taken(first)
    first.send_signal(signal.SIGSTOP)
    second = bob.start("deploy", "--lock-wait", "300")
    waiting = until_waiting(second)
    first.send_signal(signal.SIGCONT)
    deployed, alice_said = finish(first, seen)
    waited, said = finish(second, waiting)
    reports = [load.stop() for load in running]

    assert deployed == 0, alice_said
    assert waited == 0, said
    assert "waiting up to 300s for the deploy lock held by Alice (alice@laptop-a) on laptop-a" in said, said
    no_request_failed(the_lab, reports, ["v1", "v2", "v3"])
    assert served(the_lab, app) == ["v3", "v3"]
    for server in the_lab.servers:
        tag, history, locked = state(server, app)
        assert tag == "v3", server.name
        assert history == [("v1", "succeeded"), ("v2", "succeeded"), ("v3", "succeeded")], server.name
        assert not locked, f"{server.name}: the lock is free"
