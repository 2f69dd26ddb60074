"""Issue 11's step-boundary drills on the lab's real servers, under load on every server's port.

TAGSHIP_TEST_KILL_AT_STEP=N (engine/plan.py, test only) makes tagship SIGKILL itself as its Nth
step starts: no undo, no history entry, the lock left behind. Whatever step it dies at, no request
fails, every server serves the old or the new release, and the next deploy succeeds after at most
one `tagship lock release`, which the refused deploy's message names.

TAGSHIP_TEST_INTERRUPT_AT_STEP=N sends it SIGINT there instead, as Ctrl-C does: before the point of
no return every finished step is undone (the old release serves, .env and the lock as before, the
run in history and the audit log as failed), after it the new release stays live, exit 130 both
times, and no request fails.

Every boundary is drilled; each drill is split into CHUNKS tests that take every CHUNKS-th boundary
from their own app, so parallel workers (pytest-xdist) share the work. They are marked `long`, which
schedules them first (tests/conftest.py).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

import lab
from lab.load import Load, LoadReport
from tagship.engine.plan import INTERRUPT_AT_STEP, KILL_AT_STEP
from tests.apprepo import AppRepo, deploy, fetch, ssh

STEP = re.compile(r"^\s*(\d+)\. (.+?)  \[", re.MULTILINE)  # a dry run's numbered steps
CHUNKS = 3
pytestmark = [pytest.mark.long, pytest.mark.timeout(1200)]
by_chunk = pytest.mark.parametrize("chunk", range(CHUNKS), ids=lambda n: f"chunk{n + 1}of{CHUNKS}")


def share(numbers: Sequence[int], chunk: int) -> list[int]:
    """This chunk's part of the boundaries: every CHUNKS-th, from the chunk-th."""
    part = list(numbers)[chunk::CHUNKS]
    assert part, f"chunk {chunk}: no boundary among {list(numbers)}"
    return part


@dataclass(frozen=True)
class Boundaries:
    """A command's step numbers as TAGSHIP_TEST_*_AT_STEP counts them, and the first after its point of no return."""

    total: int
    first_live: int

    def numbers(self, chunk: int) -> list[int]:
        return share(range(1, self.total + 1), chunk)


def boundaries(app: AppRepo, *command: str) -> Boundaries:
    """The steps of a command that succeeds (its --json step events), and where its point of no return is."""
    done = app.tagship("--json", *command)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    steps, first_live = 0, 0
    for event in events:
        if event["event"] == "step":
            steps += 1
        elif event["event"] == "info" and "point of no return" in event["message"] and not first_live:
            first_live = steps + 1
    assert steps > 10 and 1 < first_live <= steps, f"{command}: {steps} steps, first live {first_live}"
    return Boundaries(steps, first_live)


def under_load(the_lab: lab.Lab, app: AppRepo, run: Callable[[], None]) -> list[LoadReport]:
    """Run with load on every server's port (fresh and keep-alive clients); each server's report."""
    running = [Load(server.ip, app.port, max_seconds=300).start() for server in the_lab.servers]
    try:
        run()
    finally:
        reports = [load.stop() for load in running]
    return reports


def no_request_failed(
    the_lab: lab.Lab, reports: list[LoadReport], order: list[str], when: str, *, back_and_forth: bool = False
) -> None:
    """Zero failed requests, and every client saw the releases in this order (a part of it); with
    back_and_forth, in any order as long as it ends on the last."""
    for server, report in zip(the_lab.servers, reports, strict=True):
        assert report.failed == 0, f"{when}: {server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 20, f"{when}: {server.name}: only {report.sent} requests"
        for seen in report.version_sequences():
            if back_and_forth:
                assert set(seen) <= set(order) and seen[-1] == order[-1], f"{when}: {server.name} served {seen}"
                continue
            assert seen == [v for v in order if v in seen], f"{when}: {server.name} served {seen}, not in {order}"


def serving(the_lab: lab.Lab, app: AppRepo, allowed: set[str], when: str) -> None:
    """Every server answers /version.txt with one of the allowed releases."""
    for server in the_lab.servers:
        try:
            version = fetch(f"http://{server.ip}:{app.port}/version.txt")
        except (OSError, urllib.error.URLError) as exc:
            raise AssertionError(f"{when}: {server.name} serves nothing ({exc})") from exc
        assert version in allowed, f"{when}: {server.name} serves {version!r}, not one of {sorted(allowed)}"


def killed_at(app: AppRepo, number: int, *command: str) -> subprocess.CompletedProcess[str]:
    run = app.tagship(*command, extra_env={KILL_AT_STEP: str(number)})
    assert run.returncode == -signal.SIGKILL, f"step {number}: not killed:\n{run.stderr}"
    return run


def next_deploy_recovers(app: AppRepo, when: str) -> None:
    """`tagship deploy` succeeds, after at most one `tagship lock release`, named by the refusal."""
    again = app.tagship("deploy")
    if again.returncode == 3:
        assert "deploy lock on tslab-h" in again.stderr and "tagship lock release" in again.stderr, again.stderr
        freed = app.tagship("lock", "release")
        assert freed.returncode == 0, f"{when}: lock release failed:\n{freed.stderr}"
        again = app.tagship("deploy")
    assert again.returncode == 0, f"{when}: the next deploy failed:\n{again.stderr}"


@by_chunk
def test_sigkill_at_every_deploy_step_boundary_leaves_a_release_served_and_the_next_deploy_recovers(
    the_lab: lab.Lab, app: AppRepo, chunk: int
) -> None:
    deploy(app, "v1")
    app.release("v2")
    dry = app.tagship("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    numbers = [int(n) for n, _ in STEP.findall(dry.stderr)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 20, dry.stderr

    old = "v1"
    for number in share(numbers, chunk):  # every boundary of a deploy: dies as step `number` starts
        new = f"v{number + 1}"
        if number > 1:
            app.release(new)
        when = f"killed as deploy step {number} started"

        def kill_then_recover() -> None:
            killed_at(app, number, "deploy")  # noqa: B023 (run at once, in this iteration)
            serving(the_lab, app, {old, new}, when)  # noqa: B023
            next_deploy_recovers(app, when)  # noqa: B023

        reports = under_load(the_lab, app, kill_then_recover)
        # Killed as the switch runs, a server may serve the new release, and then the old one again
        # while the next deploy replaces the new containers the killed run left (never nothing).
        no_request_failed(the_lab, reports, [old, new], when, back_and_forth=True)
        serving(the_lab, app, {new}, f"{when}, then a deploy")
        old = new


def steps_of_a_rollback(app: AppRepo) -> int:
    """How many steps a rollback runs (its --json step events), from a rollback that succeeds."""
    done = app.tagship("--json", "rollback")
    assert done.returncode == 0, done.stderr
    return sum(1 for line in done.stdout.splitlines() if json.loads(line)["event"] == "step")


@by_chunk
def test_sigkill_at_every_rollback_step_boundary_leaves_a_release_served_and_the_next_deploy_recovers(
    the_lab: lab.Lab, app: AppRepo, chunk: int
) -> None:
    # Every boundary of a rollback from v2 to v1, each followed by a deploy of the newest tag (v2).
    deploy(app, "v1")
    deploy(app, "v2")
    total = steps_of_a_rollback(app)  # now on v1
    assert total > 10
    deploy_back = app.tagship("deploy")
    assert deploy_back.returncode == 0, deploy_back.stderr
    for number in share(range(1, total + 1), chunk):
        when = f"killed as rollback step {number} started"

        def kill_then_recover() -> None:
            killed_at(app, number, "rollback")  # noqa: B023
            serving(the_lab, app, {"v1", "v2"}, when)  # noqa: B023
            next_deploy_recovers(app, when)  # noqa: B023

        reports = under_load(the_lab, app, kill_then_recover)
        no_request_failed(the_lab, reports, ["v1", "v2"], when, back_and_forth=True)
        serving(the_lab, app, {"v2"}, f"{when}, then a deploy")


@dataclass(frozen=True)
class Server:
    """What a server shows of an app: the .env tag, the history's last entry, the audit log, the lock."""

    tag: str
    last: tuple[str, str, str]  # version, result, error
    history_lines: int
    audit: list[str]
    locked: bool


def look(server: lab.LabServer, app: AppRepo) -> Server:
    state = f"{app.remote_path}/.tagship"
    env = ssh(server, "cat", f"{app.remote_path}/.env").stdout
    tag = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("APP_IMAGE_TAG="))
    lines = ssh(server, "cat", f"{state}/releases.jsonl").stdout.splitlines()
    entry = json.loads(lines[-1])
    audit = ssh(server, "cat", f"{state}/audit.log").stdout.splitlines()
    locked = ssh(server, "test", "-e", f"{state}/lock").returncode == 0
    return Server(tag, (entry["version"], entry["result"], entry["error"]), len(lines), audit, locked)


def interrupted_at(app: AppRepo, number: int, *command: str) -> subprocess.CompletedProcess[str]:
    run = app.tagship(*command, extra_env={INTERRUPT_AT_STEP: str(number)})
    assert run.returncode == 130, f"step {number}: exit {run.returncode}, not 130:\n{run.stderr}"
    return run


def after_ctrl_c(
    the_lab: lab.Lab, app: AppRepo, before: dict[str, Server], run: subprocess.CompletedProcess[str], live: bool
) -> tuple[str, str]:
    """Check every server after an interrupted run of `command old -> new`: the old or the new release,
    by the point of no return; .env, history, audit and lock agree; the message says so."""
    said = run.stderr
    for server in the_lab.servers:
        was, now = before[server.name], look(server, app)
        assert not now.locked, f"{server.name}: the lock is free\n{said}"
        new_audit = now.audit[len(was.audit) :]
        assert not new_audit or not new_audit[-1].endswith(" started"), f"{server.name}: audit closed: {new_audit}"
        if live:
            assert now.last[:2] == (now.tag, "succeeded") and "interrupted" in now.last[2], f"{server.name}: {now}"
            continue
        assert now.tag == was.tag, f"{server.name}: .env back on {was.tag}\n{said}"
        added = now.history_lines - was.history_lines
        assert added == 0 or (added == 1 and now.last[1:] == ("failed", "KeyboardInterrupt")), f"{server.name}: {now}"
    if live:
        assert "nothing was undone; tagship was interrupted after that" in said, said
        return look(the_lab.servers[0], app).tag, said
    assert "error: interrupted" in said, said
    assert "nothing was undone" not in said, said
    return before[the_lab.servers[0].name].tag, said


def ctrl_c_under_load(
    the_lab: lab.Lab, app: AppRepo, number: int, live: bool, command: str
) -> tuple[str, list[LoadReport], str]:
    """Ctrl-C as step `number` of the command starts, under load: what every server serves then."""
    before = {server.name: look(server, app) for server in the_lab.servers}
    runs: list[subprocess.CompletedProcess[str]] = []
    reports = under_load(the_lab, app, lambda: runs.append(interrupted_at(app, number, command)))
    serves, said = after_ctrl_c(the_lab, app, before, runs[0], live)
    serving(the_lab, app, {serves}, f"Ctrl-C as {command} step {number} started")
    return serves, reports, said


@by_chunk
def test_ctrl_c_at_every_deploy_step_boundary_undoes_or_leaves_the_new_release_live_and_no_request_fails(
    the_lab: lab.Lab, app: AppRepo, chunk: int
) -> None:
    deploy(app, "v1")
    app.release("v2")
    steps = boundaries(app, "deploy")  # deploys v2
    old, new = "v2", "v3"
    app.release(new)
    for number in steps.numbers(chunk):  # Ctrl-C as step `number` starts: the steps before it finished
        live = number >= steps.first_live
        serves, reports, said = ctrl_c_under_load(the_lab, app, number, live, "deploy")
        when = f"Ctrl-C as deploy step {number} started"
        assert serves == (new if live else old), f"{when}\n{said}"
        no_request_failed(the_lab, reports, [old, new], when)
        if live:
            old, new = new, f"v{number + 3}"
            app.release(new)


@by_chunk
def test_ctrl_c_at_every_rollback_step_boundary_undoes_or_leaves_the_old_release_live_and_no_request_fails(
    the_lab: lab.Lab, app: AppRepo, chunk: int
) -> None:
    deploy(app, "v1")
    deploy(app, "v2")
    steps = boundaries(app, "rollback")  # now on v1
    assert app.tagship("deploy").returncode == 0  # v2 again
    for number in steps.numbers(chunk):
        live = number >= steps.first_live
        when = f"Ctrl-C as rollback step {number} started"
        serves, reports, said = ctrl_c_under_load(the_lab, app, number, live, "rollback")
        assert serves == ("v1" if live else "v2"), f"{when}\n{said}"
        no_request_failed(the_lab, reports, ["v2", "v1"], when)
        if live:  # back on v2 for the next boundary, under load too
            back = under_load(the_lab, app, lambda: next_deploy_recovers(app, "v2 again"))
            no_request_failed(the_lab, back, ["v1", "v2"], f"{when}, then a deploy")
