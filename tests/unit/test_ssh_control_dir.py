"""The ssh control directory exists only while a connection may use it: nothing is left in $TMPDIR."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import SshTransport


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TMPDIR for this test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def transport() -> SshTransport:
    return SshTransport(server=server.parse("deploy@web1.invalid"), out=Output(quiet=True))


def test_a_transport_that_never_ran_anything_makes_no_directory_and_starts_no_process(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"started {args}")

    monkeypatch.setattr(subprocess, "run", no_process)
    ssh = transport()
    ssh.close()
    assert list(scratch.iterdir()) == []


def test_the_directory_is_made_once_on_first_use_and_removed_on_close_even_if_ssh_is_missing(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = transport()
    argv = ssh.base_args()
    made = [p for p in scratch.iterdir() if p.name.startswith("tagship-ssh-")]
    assert len(made) == 1 and f"ControlPath={made[0]}/%C" in argv
    assert f"ControlPath={made[0]}/%C" in ssh.base_args(master=True), "the same directory for every command"
    (made[0] / "socket").touch()  # a control socket the master left

    def ssh_missing(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError(2, "No such file or directory", "ssh")

    monkeypatch.setattr(subprocess, "run", ssh_missing)
    with pytest.raises(FileNotFoundError):
        ssh.close()
    assert list(scratch.iterdir()) == []
