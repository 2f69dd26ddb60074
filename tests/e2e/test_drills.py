"""Issue 11, drill 1: tagship killed with SIGKILL at every step boundary, on the lab's real servers.

TAGSHIP_TEST_KILL_AT_STEP=N (engine/plan.py, test only) makes tagship SIGKILL itself as its Nth
step starts: no undo, no history entry, the lock left behind. Whatever step it dies at, every
server serves the old or the new release (never nothing), and the next deploy succeeds after at
most one `tagship lock release`, which the refused deploy's message names.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error

import lab
from tagship.engine.plan import KILL_AT_STEP
from tests.apprepo import AppRepo, deploy, fetch

STEP = re.compile(r"^\s*(\d+)\. (.+?)  \[", re.MULTILINE)  # a dry run's numbered steps


def killed_at(app: AppRepo, number: int, *command: str) -> subprocess.CompletedProcess[str]:
    run = app.tagship(*command, extra_env={KILL_AT_STEP: str(number)})
    assert run.returncode == -signal.SIGKILL, f"step {number}: not killed:\n{run.stderr}"
    return run


def serving(the_lab: lab.Lab, app: AppRepo, allowed: set[str], when: str) -> None:
    """Every server answers /version.txt with one of the allowed releases."""
    for server in the_lab.servers:
        try:
            version = fetch(f"http://{server.ip}:{app.port}/version.txt")
        except (OSError, urllib.error.URLError) as exc:
            raise AssertionError(f"{when}: {server.name} serves nothing ({exc})") from exc
        assert version in allowed, f"{when}: {server.name} serves {version!r}, not one of {sorted(allowed)}"


def next_deploy_recovers(the_lab: lab.Lab, app: AppRepo, version: str, when: str) -> None:
    """`tagship deploy` succeeds, after at most one `tagship lock release`, named by the refusal."""
    again = app.tagship("deploy")
    if again.returncode == 3:
        assert "deploy lock on tslab-h" in again.stderr and "tagship lock release" in again.stderr, again.stderr
        freed = app.tagship("lock", "release")
        assert freed.returncode == 0, f"{when}: lock release failed:\n{freed.stderr}"
        again = app.tagship("deploy")
    assert again.returncode == 0, f"{when}: the next deploy failed:\n{again.stderr}"
    serving(the_lab, app, {version}, f"{when}, then a deploy")


def steps_of_a_rollback(app: AppRepo) -> int:
    """How many steps a rollback runs (its --json step events), from a rollback that succeeds."""
    done = app.tagship("--json", "rollback")
    assert done.returncode == 0, done.stderr
    return sum(1 for line in done.stdout.splitlines() if json.loads(line)["event"] == "step")


def test_sigkill_at_every_deploy_step_boundary_leaves_a_release_served_and_the_next_deploy_recovers(
    the_lab: lab.Lab, app: AppRepo
) -> None:
    deploy(app, "v1")
    app.release("v2")
    dry = app.tagship("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    numbers = [int(n) for n, _ in STEP.findall(dry.stderr)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 20, dry.stderr

    old = "v1"
    for number in numbers:  # every boundary of a deploy: dies as step `number` starts
        new = f"v{number + 1}"
        if number > 1:
            app.release(new)
        killed_at(app, number, "deploy")
        serving(the_lab, app, {old, new}, f"killed as deploy step {number} started")
        next_deploy_recovers(the_lab, app, new, f"deploy step {number}")
        old = new


def test_sigkill_at_a_third_of_the_rollback_boundaries_leaves_a_release_served_and_the_next_deploy_recovers(
    the_lab: lab.Lab, app: AppRepo
) -> None:
    # A representative third of a rollback's boundaries (the lock, the .env, the new container, the
    # proxy switch, after the point of no return), each followed by a deploy of the newest tag.
    deploy(app, "v1")
    deploy(app, "v2")
    total = steps_of_a_rollback(app)  # now on v1
    assert total > 10
    deploy_back = app.tagship("deploy")
    assert deploy_back.returncode == 0, deploy_back.stderr
    for number in range(2, total + 1, 3):
        killed_at(app, number, "rollback")
        serving(the_lab, app, {"v1", "v2"}, f"killed as rollback step {number} started")
        next_deploy_recovers(the_lab, app, "v2", f"rollback step {number}")
