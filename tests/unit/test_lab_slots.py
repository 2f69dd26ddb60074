"""Which servers one worker's `lab.up(slot=k)` restarts (the lab's own code; no root needed).

The stop CI met a lab whose processes had all been killed with the machine's others: records and
namespaces left, nothing running. `up(slot=0)` left the other slots' dead servers alone and then
failed scanning their host keys. Real process records here (live `sleep` processes and dead ones);
only the health probe and the reset, which need root and namespaces, are replaced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import _core
from lab._proc import spawn


@pytest.fixture
def paths(tmp_path: Path) -> _core.Paths:
    return _core.Paths(tmp_path)


@pytest.fixture
def started() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def record(paths: _core.Paths, srv: _core.Server, pids: list[int], alive: bool = True) -> None:
    """Records for srv's three daemons: processes that run, or ones already gone."""
    for what in ("anchor", "dockerd", "sshd"):
        marker = f"{paths.root}/{srv.name}-{what}"
        argv = [sys.executable, "-c", "import time; time.sleep(300)", marker]
        proc = spawn(srv.rec(what), argv, sys.executable, marker, paths.logs / "daemons.log")
        paths.records.put(proc)
        pids.append(proc.pid)
        if not alive:
            os.kill(proc.pid, signal.SIGKILL)
            _wait_gone(proc.pid)


def _wait_gone(pid: int) -> None:
    for _ in range(500):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def restarted(paths: _core.Paths, monkeypatch: pytest.MonkeyPatch, broken: set[str], slot: int) -> list[str]:
    """The servers up(servers=1, slots=3, slot=slot) would restart, when those in `broken` fail their probe."""
    reset: list[str] = []
    monkeypatch.setattr(_core, "_server_problem", lambda srv: "broken" if srv.name in broken else None)
    monkeypatch.setattr(_core, "_reset_server", lambda srv: reset.append(srv.name))
    everyone = [_core.Server(n, paths) for n in (1, 2, 3)]
    chosen = [srv.name for srv in _core._servers_to_restart(everyone, servers=1, slot=slot)]
    assert chosen == reset
    return chosen


def test_another_slots_server_killed_with_the_machine_is_restarted(
    paths: _core.Paths, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    record(paths, _core.Server(1, paths), started)
    record(paths, _core.Server(2, paths), started, alive=False)
    record(paths, _core.Server(3, paths), started, alive=False)
    assert restarted(paths, monkeypatch, broken={"tslab-h2", "tslab-h3"}, slot=0) == ["tslab-h2", "tslab-h3"]


def test_another_slots_server_never_started_is_started(
    paths: _core.Paths, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    record(paths, _core.Server(1, paths), started)
    record(paths, _core.Server(3, paths), started)
    assert restarted(paths, monkeypatch, broken={"tslab-h2"}, slot=0) == ["tslab-h2"]


def test_another_slots_running_server_is_left_to_its_worker_even_when_it_fails_the_probe(
    paths: _core.Paths, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        record(paths, _core.Server(n, paths), started)
    # Its worker's test may have broken it on purpose (CI stop 27): not this worker's to reset.
    assert restarted(paths, monkeypatch, broken={"tslab-h2", "tslab-h3"}, slot=0) == []


def test_this_slots_server_is_restarted_when_it_fails_the_probe_though_it_runs(
    paths: _core.Paths, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        record(paths, _core.Server(n, paths), started)
    assert restarted(paths, monkeypatch, broken={"tslab-h2"}, slot=1) == ["tslab-h2"]
    assert restarted(paths, monkeypatch, broken=set(), slot=1) == []


def test_known_hosts_lines_come_from_the_labs_own_host_keys(paths: _core.Paths) -> None:
    srv = _core.Server(2, paths)
    srv.dir.mkdir(parents=True)
    srv.host_key.with_name(srv.host_key.name + ".pub").write_text("ssh-ed25519 AAAAkey tslab-h2 host key\n")
    assert _core._known_hosts_line(srv) == f"tslab-h2,{srv.ip} ssh-ed25519 AAAAkey"
