"""Processes: start daemons, recognise them again later, and stop them by PID.

A daemon the lab starts is recorded as (pid, start time, command line). A later run trusts a
PID only when all three still match, so a stale record naming a dead or reused PID is never
mistaken for the daemon. Nothing here looks processes up by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class LabError(RuntimeError):
    """Something in the lab could not be set up; the message says what and shows log tails."""


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return f"(no log at {path})"
    text = data.decode(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in text) or f"(log {path} is empty)"


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a short command, capture its output, raise LabError on failure when check."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            env=dict(env) if env is not None else None,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]} (run scripts/install-system.sh first)") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}\n{(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; fields follow the last ")".
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks since boot, or None."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def ns_id(pid: int | str, kind: str) -> tuple[int, int] | None:
    """(device, inode) of a process's namespace of the given kind ("net", "mnt")."""
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def protected_pids() -> set[int]:
    """This process and its ancestors: never signalled, wherever they run."""
    pids = {0, 1}
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        fields = _stat_fields(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return pids


def exe(pid: int) -> str | None:
    """The program a process runs (resolved path), or None."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


@dataclass(frozen=True)
class Proc:
    """A process the lab started: PID, start time, program, and a marker in its command line.

    The marker (a config or pidfile path unique to that daemon) survives daemons that rewrite
    their process title (sshd); the start time rules out a reused PID.
    """

    name: str
    pid: int
    start: int
    exe: str
    marker: str

    def alive(self) -> bool:
        if start_time(self.pid) != self.start or exe(self.pid) != self.exe:
            return False
        return self.marker in " ".join(cmdline(self.pid) or ())

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "pid": self.pid,
                "start": self.start,
                "exe": self.exe,
                "marker": self.marker,
            }
        )

    @staticmethod
    def from_json(text: str) -> Proc:
        data = json.loads(text)
        return Proc(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start=int(data["start"]),
            exe=str(data["exe"]),
            marker=str(data["marker"]),
        )


class Records:
    """Process records kept as small JSON files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def get(self, name: str) -> Proc | None:
        """The recorded process if it is still that very process, else None."""
        try:
            proc = Proc.from_json(self._path(name).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return proc if proc.alive() else None

    def put(self, proc: Proc) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(proc.name).with_suffix(".tmp")
        tmp.write_text(proc.to_json())
        tmp.replace(self._path(proc.name))

    def drop(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json"))


def spawn(
    name: str,
    argv: Sequence[str],
    program: str,
    marker: str,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Proc:
    """Start a long-running process detached from us (own session, output appended to log).

    argv may start with wrappers (nsenter, unshare) that exec into program; we wait until the
    process runs program itself, so the recorded identity is the daemon's own.
    """
    program = os.path.realpath(program)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"\n--- {stamp} lab starts: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=dict(env) if env is not None else None,
            )
        except OSError as exc:
            raise LabError(f"cannot start {name}: {exc}") from exc
    deadline = time.monotonic() + timeout
    while True:
        if popen.poll() is not None:
            raise LabError(f"{name} exited at once (status {popen.returncode}); log {log}:\n{tail(log)}")
        start = start_time(popen.pid)
        if start is not None and exe(popen.pid) == program:
            proc = Proc(name=name, pid=popen.pid, start=start, exe=program, marker=marker)
            if proc.alive():
                return proc
        if time.monotonic() > deadline:
            popen.kill()
            raise LabError(f"{name} did not exec {program} within {timeout:.0f}s:\n{tail(log)}")
        time.sleep(0.02)


def wait_gone(pids: Iterable[tuple[int, int | None]], timeout: float) -> list[int]:
    """Wait until each (pid, start) is gone; return the PIDs still there after timeout."""
    left = list(pids)
    deadline = time.monotonic() + timeout
    while left:
        left = [(p, s) for p, s in left if start_time(p) is not None and start_time(p) == s]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return [p for p, _ in left]


def terminate(pids: Iterable[int], grace: float = 5.0) -> list[int]:
    """SIGTERM the given PIDs, SIGKILL what is left after grace; return survivors."""
    protected = protected_pids()
    targets = [(p, start_time(p)) for p in set(pids) if p not in protected]
    targets = [(p, s) for p, s in targets if s is not None]
    for pid, _ in targets:
        _signal(pid, signal.SIGTERM)
    left = wait_gone(targets, grace)
    if not left:
        return []
    for pid in left:
        _signal(pid, signal.SIGKILL)
    return wait_gone([(p, s) for p, s in targets if p in left], 5.0)


def stop(proc: Proc | None, grace: float = 10.0) -> None:
    """Stop one recorded process if it is still that process."""
    if proc is None or not proc.alive():
        return
    left = terminate([proc.pid], grace)
    if left:
        raise LabError(f"{proc.name} (pid {proc.pid}) did not exit after SIGKILL")


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def pids_in_ns(kind: str, ident: tuple[int, int] | None) -> list[int]:
    """All PIDs whose namespace of that kind is ident (e.g. everything in a netns)."""
    if ident is None:
        return []
    return [pid for pid in all_pids() if ns_id(pid, kind) == ident]


def pids_in_cgroup(name: str) -> list[int]:
    """All PIDs in cgroup NAME (and below) in any v1 hierarchy or the v2 tree."""
    pids: set[int] = set()
    root = Path("/sys/fs/cgroup")
    candidates = [root / name, *(p / name for p in root.iterdir() if p.is_dir())]
    for base in candidates:
        if not base.is_dir():
            continue
        for procs in base.rglob("cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                continue
    return sorted(pids)


def remove_cgroup(name: str) -> None:
    """Remove the (empty) cgroup directories NAME left behind in every hierarchy."""
    root = Path("/sys/fs/cgroup")
    for base in [root / name, *(p / name for p in root.iterdir() if p.is_dir())]:
        if not base.is_dir():
            continue
        for sub in sorted((d for d in base.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()
