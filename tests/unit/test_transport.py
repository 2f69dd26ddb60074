"""The connector interface on this machine: run, put a file, run an interactive command."""

from __future__ import annotations

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
