"""Ctrl-C: the running commands stop, the undo's commands run undisturbed (real processes, real signals)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import interrupt, server
from tagship.remote.transport import LocalTransport


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    interrupt.reset()
    yield
    interrupt.reset()


def local() -> LocalTransport:
    return LocalTransport(server=server.parse("local"), out=Output(quiet=True))


def test_an_interrupt_ends_running_commands_and_their_threads_stop_at_the_next_command() -> None:
    t = local()
    seen: list[object] = []

    def other_server() -> None:
        try:
            seen.append(t.run(Command(("sleep", "30")), check=False, show=False).code)
            t.run(Command(("true",)), show=False)
            seen.append("went on")
        except KeyboardInterrupt:
            seen.append("stopped")

    worker = threading.Thread(target=other_server)
    worker.start()
    time.sleep(0.3)
    interrupt.stop_running()
    worker.join(timeout=5)
    assert seen == [-15, "stopped"]  # SIGTERM ended the sleep; the thread ran nothing more

    undo: list[int] = []  # a thread started after the interrupt (the undo's) runs commands normally
    undoing = threading.Thread(target=lambda: undo.append(t.run(Command(("true",)), show=False).code))
    undoing.start()
    undoing.join(timeout=5)
    assert undo == [0]


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait for a reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_an_interrupt_ends_the_command_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    line = 'sleep 30 & echo $! > "$1"; wait'
    worker = threading.Thread(target=lambda: local().run(Command(("sh", "-c", line, "sh", str(pid_file))), check=False))
    worker.start()
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert running(child)
    interrupt.stop_running()
    worker.join(timeout=5)
    deadline = time.monotonic() + 5
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child), "the command's child (a plugin, a ProxyCommand) was stopped too"


# A command in the terminal's foreground group, interrupted the way a terminal does it: SIGINT to
# the whole group. Then an "undo" command, during which the user presses Ctrl-C again (twice in
# the second case).
SCRIPT = """
import os, signal, sys, threading
from tagship.remote import interrupt
from tagship.remote import server
from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote.transport import LocalTransport

def ctrl_c(after):
    threading.Timer(after, os.killpg, (os.getpgid(0), signal.SIGINT)).start()

interrupt.install()
t = LocalTransport(server=server.parse("local"), out=Output(quiet=True))
ctrl_c(0.5)
try:
    t.run(Command(("sleep", "30")), show=False)
except KeyboardInterrupt:
    for n in range({presses}):
        ctrl_c(0.2 + 0.1 * n)
    print(t.run(Command(("sh", "-c", "sleep 1; echo undone")), show=False).stdout.strip(), flush=True)
    sys.exit(130)
"""


def interrupted(presses: int) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    script = textwrap.dedent(SCRIPT.format(presses=presses))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, start_new_session=True
    )
    return result, time.monotonic() - started


def test_ctrl_c_stops_the_command_and_a_second_one_does_not_stop_the_undo() -> None:
    result, seconds = interrupted(presses=1)
    assert result.returncode == 130, result.stderr
    assert result.stdout == "undone\n", "the undo's command ran to its end"
    assert "stopping: undoing the finished steps" in result.stderr
    assert seconds < 10, "the 30-second command was stopped"


def test_a_third_ctrl_c_quits_at_once() -> None:
    result, seconds = interrupted(presses=2)
    assert result.returncode == 130
    assert result.stdout == "", "quit before the undo's command ended"
    assert seconds < 10


@pytest.mark.parametrize("in_thread", [False, True], ids=["main thread", "another server's thread"])
def test_a_command_started_just_as_the_interrupt_comes_is_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_thread: bool
) -> None:
    """The interrupt lands after the process started and before tagship knew of it: it must not stay."""
    real_popen = subprocess.Popen
    started: list[int] = []

    def popen_then_interrupt(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc.pid)
        if in_thread:
            interrupt.stop_running()  # what the signal handler does for the other threads
        else:
            interrupt._on_signal(2, None)  # the handler itself, in the main thread, at the worst moment
        return proc

    monkeypatch.setattr("tagship.remote.transport.subprocess.Popen", popen_then_interrupt)
    outcome: list[str] = []

    def run() -> None:
        try:
            local().run(Command(("sleep", "30")), show=False)
            outcome.append("ran to the end")
        except KeyboardInterrupt:
            outcome.append("interrupted")

    if in_thread:
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=10)
    else:
        run()
    assert outcome == ["interrupted"]
    deadline = time.monotonic() + 5
    while running(started[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(started[0]), "the command started at the moment of the interrupt was stopped"
