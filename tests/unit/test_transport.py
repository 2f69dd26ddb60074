"""The connector interface on this machine: run, put a file, run an interactive command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import LocalTransport


def local() -> LocalTransport:
    return LocalTransport(server=server.parse("local"), out=Output(quiet=True))


def test_the_connector_puts_files_and_runs_interactive_commands(tmp_path: Path) -> None:
    t = local()
    target = tmp_path / "dir" / "file"
    target.parent.mkdir()
    t.put(str(target), b"one\ntwo\n", "a file", mode=0o640)
    assert target.read_bytes() == b"one\ntwo\n" and (target.stat().st_mode & 0o777) == 0o640
    assert t.interactive(Command(("sh", "-c", "exit 7"))) == 7


# A tagship that starts a long-running helper (as the SSH transport's registry) and prints its process group.
_STARTER = """
import sys, time
from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import LocalTransport
local = LocalTransport(server=server.parse("local"), out=Output(quiet=True))
started = local.start(Command(("sleep", "300")), sys.argv[1])
print(started.proc.pid, flush=True)
time.sleep(300)
"""


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(group: int) -> bool:
    """Whether the process group ends within 5 s (orphans are reaped by init a moment later)."""
    deadline = time.monotonic() + 5
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _group_alive(group)


def test_a_background_helper_dies_with_a_tagship_killed_by_sigkill(tmp_path: Path) -> None:
    tagship = subprocess.Popen([sys.executable, "-c", _STARTER, str(tmp_path / "log")], stdout=subprocess.PIPE)
    assert tagship.stdout
    group = int(tagship.stdout.readline())  # the helper runs in a session (and group) of its own
    try:
        assert _group_alive(group)
        tagship.kill()
        tagship.wait()
        assert _gone(group), "the helper outlived the tagship that started it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def test_a_stopped_background_helper_is_gone_with_its_watchdog(tmp_path: Path) -> None:
    started = local().start(Command(("sleep", "300")), str(tmp_path / "log"))
    assert started.alive
    started.stop()
    assert not started.alive and _gone(started.proc.pid)
