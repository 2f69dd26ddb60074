"""Issue 11, drill 2: Ctrl-C right after each step of a deploy and of a rollback has finished on every server.

The boundaries come from the plans the commands build (every step the executor runs), so a step
added later is drilled too. The interrupt is what tagship's signal handler does (stop the running
commands, raise KeyboardInterrupt in the main thread), delivered as the executor reports the step
done: the step has finished everywhere and the next one has not started.
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tagship import cli
from tagship.commands import deploy as deploy_command
from tagship.commands import rollback as rollback_command
from tagship.engine import plan as plan_mod
from tagship.engine.plan import Plan
from tagship.output import Output
from tagship.remote import interrupt
from tests.middle.fake_checkout import FakeCheckout, plug_local
from tests.middle.fake_host import AUDIT, HISTORY, FakeHost, attach, record
from tests.middle.recorder import Script, in_order, plug
from tests.middle.settings import H1, H2, PASSWORD, write_config


@dataclass(frozen=True)
class Boundary:
    """Right after the step numbered `done` (1-based, counting every step the command runs) finished."""

    done: int
    title: str
    undo_titles: tuple[str, ...]  # the undos of the finished steps, newest first, if it stops there
    live: bool  # after the point of no return


def servers(command: str) -> tuple[FakeHost, FakeHost]:
    """Deploy: both servers run v1. Rollback: both run v2, deployed after v1."""
    if command == "deploy":
        return FakeHost(H1, "h1"), FakeHost(H2, "h2")
    return tuple(  # type: ignore[return-value]
        FakeHost(name, name[5:7], "v2", ("v1", "v2"), (record("v1"), record("v2"))) for name in (H1, H2)
    )


def start(command: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Script, dict[str, FakeHost]]:
    """The recording transports, both servers and the deploying machine, and a tagship.toml in root."""
    script = Script()
    plug(monkeypatch, script)
    hosts = attach(script, *servers(command))
    plug_local(monkeypatch, script, FakeCheckout())
    write_config(root)
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", PASSWORD)
    return script, hosts


def run_cli(root: Path, command: str) -> int:
    """The command as typed (its exit code), with tagship's own signal handlers put back after."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return cli.main(["-C", str(root), command])
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def boundaries(command: str) -> list[Boundary]:
    """Every step boundary of the command, read from the plans it applies on a run that succeeds."""
    plans: list[Plan] = []
    real_apply = plan_mod.apply

    def recording_apply(plan: Plan, out: Output) -> None:
        plans.append(plan)
        real_apply(plan, out)

    module: Any = deploy_command if command == "deploy" else rollback_command
    with tempfile.TemporaryDirectory(prefix="tagship-drill-") as root, pytest.MonkeyPatch.context() as monkeypatch:
        start(command, Path(root), monkeypatch)
        monkeypatch.setattr(module, "apply", recording_apply)
        code = run_cli(Path(root), command)
        interrupt.reset()
    assert code == 0, f"{command} must succeed before it can be drilled"
    found: list[Boundary] = []
    for plan in plans:  # a rollback applies two: connect and lock, then the switch
        finished: list[str] = []
        live = False
        for step in plan.steps:
            if step.no_return_hint:
                live, finished = True, []
                continue
            if step.undo is not None:
                finished.insert(0, step.undo_title or f"undo: {step.title}")
            found.append(Boundary(len(found) + 1, step.title, tuple(finished), live))
    return found


DRILLS = [(command, b) for command in ("deploy", "rollback") for b in boundaries(command)]


def interrupt_after(monkeypatch: pytest.MonkeyPatch, number: int) -> list[str]:
    """Ctrl-C as the executor reports the step `number` done; returns the step banners shown from then on."""
    real_done, real_banner = Output.done, Output.banner
    count = 0
    after: list[str] = []

    def done(self: Output, title: str, seconds: float) -> None:
        nonlocal count
        real_done(self, title, seconds)
        count += 1
        if count == number:
            interrupt.stop_running()  # what the signal handler does, then it raises in the main thread
            raise KeyboardInterrupt

    def banner(self: Output, title: str) -> None:
        if count >= number:
            after.append(title)
        real_banner(self, title)

    monkeypatch.setattr(Output, "done", done)
    monkeypatch.setattr(Output, "banner", banner)
    return after


@pytest.fixture
def fresh_interrupts() -> Iterator[None]:
    interrupt.reset()
    yield
    interrupt.reset()


@pytest.mark.parametrize(("command", "boundary"), DRILLS, ids=[f"{c} after {b.done}. {b.title}" for c, b in DRILLS])
def test_ctrl_c_after_every_step_undoes_what_finished_or_leaves_the_new_release_live(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_interrupts: None,
    command: str,
    boundary: Boundary,
) -> None:
    script, hosts = start(command, tmp_path, monkeypatch)
    before = {name: snapshot(host) for name, host in hosts.items()}
    histories = {name: len(host.history()) for name, host in hosts.items()}
    banners = interrupt_after(monkeypatch, boundary.done)

    assert run_cli(tmp_path, command) == 130
    last = capsys.readouterr().err.splitlines()[-1]
    if not boundary.live:  # one line that says where things stand (not a bare "error: interrupted")
        assert last == UNDONE, last
    new = "v2" if command == "deploy" else "v1"
    for name, host in hosts.items():
        assert host.lock_holder == "", f"{name}: the lock is free"
        entries = host.history()[histories[name] :]
        if boundary.live:
            assert banners == [], "nothing is undone after the point of no return"
            assert host.env_tag() == new and host.served() == "app-web-2", f"{name}: {new} is live"
            assert [(e.version, e.result) for e in entries] == [(new, "succeeded")], name
            assert "interrupted" in entries[0].error, name
            continue
        assert banners == list(boundary.undo_titles), "every finished step undone, newest first"
        assert snapshot(host) == before[name], f"{name}: as before the {command}"
        assert host.served() == "app-web-1", f"{name}: the old containers serve"
        if is_locked_everywhere(boundary, command):
            assert [(e.version, e.result, e.error) for e in entries] == [(new, "failed", "KeyboardInterrupt")], name
            in_order(script.shown(name), [f"{command} {new} failed", "<release own lock>"])  # recorded, then freed
        else:  # a run that never held every lock changed nothing: no history entry, an audit line at most
            assert entries == [], name


UNDONE = "error: interrupted before the point of no return: the old release still serves and the lock is free"


def test_ctrl_c_whose_undo_fails_does_not_say_the_old_release_still_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_interrupts: None
) -> None:
    from tagship.remote.transport import Result

    after_env = next(b for b in boundaries("deploy") if b.title.startswith("set APP_IMAGE_TAG=v2"))
    script, _ = start("deploy", tmp_path, monkeypatch)
    script.on("<<< the previous .env", Result(1, "", "disk full"), server=H2, first=True)  # h2's .env undo fails
    interrupt_after(monkeypatch, after_env.done)
    assert run_cli(tmp_path, "deploy") == 130
    said = capsys.readouterr().err
    assert "could not undo on root@h2.invalid" in said, said
    assert said.splitlines()[-1] == "error: interrupted" and "old release still serves" not in said


def is_locked_everywhere(boundary: Boundary, command: str) -> bool:
    """The run holds every lock once the lock step finished (and, in a rollback, its switch began)."""
    if command == "rollback":
        return boundary.done > 2  # the opening plan (connect, lock) releases the locks and records nothing
    return any(title == "take the deploy lock" for title in _titles_until(command, boundary.done))


def _titles_until(command: str, number: int) -> list[str]:
    return [b.title for c, b in DRILLS if c == command and b.done <= number]


def snapshot(host: FakeHost) -> dict[str, Any]:
    """What users and the next run see of a server: files (history and audit aside), containers, proxy."""
    # compose.yaml, .env and the override are compared byte for byte: the new release's compose file
    # must not stay beside the old .env.
    files = {path: text for path, text in host.files.items() if path not in (HISTORY, AUDIT)}
    containers = sorted((c.id, c.service, c.image, c.running) for c in host.containers.values())
    listeners = {"listeners": dict(host.listeners), "listener_serves": host.listener_serves()}
    return {"files": files, "containers": containers, "routes": dict(host.routes), **listeners}
