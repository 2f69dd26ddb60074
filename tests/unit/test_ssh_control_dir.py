"""The ssh control directory exists only while a connection may use it: nothing is left in $TMPDIR."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tagship.errors import ConnectError
from tagship.output import Output
from tagship.remote import server
from tagship.remote import transport as transport_module
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


class Connecting(threading.Thread):
    """A background connect still timing out (an unreachable server) when Ctrl-C comes: close()
    waits for it, and the interrupt arrives there."""

    def join(self, timeout: float | None = None) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_while_close_waits_for_a_failing_connect_still_removes_the_directory(scratch: Path) -> None:
    """close() waited for the pending connect outside the block that removes the directory: an
    interrupt there left an empty tagship-ssh-* behind, and a second close did nothing."""
    ssh = transport()
    ssh.base_args(master=True)  # the connect under way made the directory
    ssh._connecting = Connecting()
    with pytest.raises(KeyboardInterrupt):
        ssh.close()
    assert list(scratch.iterdir()) == []


def test_a_connect_that_goes_on_after_an_interrupted_close_makes_no_new_directory(scratch: Path) -> None:
    ssh = transport()
    ssh._connecting = Connecting()  # the connect has not reached its first ssh yet
    with pytest.raises(KeyboardInterrupt):
        ssh.close()
    with pytest.raises(ConnectError, match=r"connecting to deploy@web1\.invalid was interrupted"):
        ssh.base_args(master=True)  # what the connect thread does next: refused, nothing made
    assert list(scratch.iterdir()) == []


def test_every_transport_is_closed_even_when_closing_one_is_interrupted(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tagship import config as config_mod
    from tagship.engine.connections import connections

    (tmp_path / "tagship.toml").write_text('servers = ["web1.invalid", "web2.invalid"]\n[app]\npath = "/srv/app"\n')
    config = config_mod.load(tmp_path, {})
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 255))
    with pytest.raises(KeyboardInterrupt), connections(config, Output(quiet=True)) as owner:
        first, second = (owner.get(server) for server in config.servers)
        assert isinstance(first, SshTransport) and isinstance(second, SshTransport)
        first.base_args(), second.base_args()
        first._connecting = Connecting()
    assert [p for p in scratch.iterdir() if p.name.startswith("tagship-ssh-")] == []


def test_the_first_connection_removes_the_empty_directories_of_killed_runs_only(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "_swept", threading.Event())
    old = time.time() - transport_module.STALE_CONTROL_SECONDS - 60
    stale, young, busy, other = (scratch / f"tagship-ssh-{name}" for name in ("stale", "young", "busy", "other"))
    for path in (stale, young, busy, other):
        path.mkdir()
    (busy / "socket").touch()  # a live run's master socket
    unrelated = scratch / "other-tool-dir"
    unrelated.mkdir()
    for path in (stale, busy, other, unrelated):
        os.utime(path, (old, old))
    if os.getuid() == 0:  # another user's stays, however old and empty
        os.chown(other, 65534, 65534)
    else:
        other.rmdir()
    ssh = transport()
    ssh.base_args()
    left = {p.name for p in scratch.iterdir()} - {Path(ssh.control_dir()).name}
    kept = {"tagship-ssh-young", "tagship-ssh-busy", "other-tool-dir"}
    assert left == kept | ({"tagship-ssh-other"} if os.getuid() == 0 else set())
    # Once per process: a later connection does not scan again.
    stale.mkdir()
    os.utime(stale, (old, old))
    transport().base_args()
    assert stale.exists()
