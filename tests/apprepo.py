"""A git repository holding the bundled example app, for end-to-end tests of the real CLI."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import lab
from tagship.commands.demo import copy_app
from tagship.engine.plan import PAUSE_AT_STEP

# The code under test, run as the command users type (never a `tagship` found on PATH).
TAGSHIP = [sys.executable, "-m", "tagship"]
SRC = str(Path(__file__).resolve().parents[1] / "src")

# A session that shares the lab with others (TAGSHIP_TEST_KEEP_SERVERS: nothing is wiped) takes
# ports of its own, so two sessions' apps never claim the same port.
_PORT_BASE = 20000 + (os.getpid() % 100) * 40 if os.environ.get("TAGSHIP_TEST_KEEP_SERVERS") else 18100
_ports = itertools.count(_PORT_BASE)

# The lab registry outlives test sessions and its tags are immutable: each session pushes under its own namespace.
# Parallel workers (pytest-xdist) each have one of their own.
SESSION_NAMESPACE = "tests-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + os.environ.get("PYTEST_XDIST_WORKER", "")


DRY_RUN_STEP = re.compile(r"^\s*(\d+)\. (.+?)  \[", re.MULTILINE)  # a dry run's numbered steps


def next_port() -> int:
    """A host port no other test of this session uses."""
    return next(_ports)


@dataclass
class AppRepo:
    """The example app in a git repo, with helpers to release versions and run tagship."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    remote_path: str = ""
    repository: str = ""  # where tagship pushes this app's images
    app_dir: str = ""  # where the app's files are in the repository ("" for its root)

    @classmethod
    def create(cls, path: Path, env: dict[str, str], dotenv: str, compose: str = "", port: int = 0) -> AppRepo:
        path.mkdir(parents=True, exist_ok=True)
        copy_app(path)
        if compose:
            (path / "compose.yaml").write_text(compose)
        (path / ".env").write_text(dotenv)
        (path / ".gitignore").write_text(".env\n")
        repo = cls(path, env, port)
        repo.git("init", "--quiet", "--initial-branch=main")
        repo.git("config", "user.name", "Test Deployer")
        repo.git("config", "user.email", "test@tagship.invalid")
        return repo

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True)
        return done.stdout

    def release(self, version: str, *, broken: bool = False, tag: bool = True, crash_after: float = 0) -> None:
        """Commit a version of the app (served at /version.txt) and tag it; crash_after: it serves
        that many seconds, then its process dies (and Docker restarts it)."""
        www = self.path / self.app_dir / "www"
        (www / "version.txt").write_text(version + "\n")
        crash_file = www / "crash_after"
        if crash_after:
            crash_file.write_text(f"{crash_after:g}\n")
        elif crash_file.exists():
            crash_file.unlink()
        broken_file = www / "broken"
        if broken:
            broken_file.write_text("this release never becomes healthy\n")
        elif broken_file.exists():
            broken_file.unlink()
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--message", f"Release {version}")
        if tag:
            self.git("tag", version)

    def tagship_until(self, marker: str, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
        """Start tagship and return once a stderr line contains marker (the process goes on).

        It leads a process group of its own, as a command typed in a terminal does: os.killpg then
        signals it with its children (ssh, docker), as Ctrl-C there would.
        """
        env = {**os.environ, **self.env, "PYTHONPATH": SRC}
        argv = [*TAGSHIP, "-C", str(self.path), *args]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                return proc, seen
        raise AssertionError(f"tagship ended before {marker!r}:\n{''.join(seen)}")

    def step_number(self, title: str, *command: str) -> int:
        """The number of the step of `command` whose title starts with `title`, as its dry run (and the
        test switches TAGSHIP_TEST_*_AT_STEP) number it; a deploy's steps only."""
        dry = self.tagship(*command, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        for number, text in DRY_RUN_STEP.findall(dry.stderr):
            if text.startswith(title):
                return int(number)
        raise AssertionError(f"no step {title!r} in the dry run:\n{dry.stderr}")

    def tagship_at(self, switches: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
        """Start tagship with test switches (engine/plan.py: PAUSE_AT_STEP, INTERRUPT_AT_STEP,
        KILL_AT_STEP) each set to the step of that title; with the pause, return once it has stopped
        there (SIGCONT goes on).

        This is the way to act at an exact point of a run: a test that reads the step's banner and then
        acts may act late, on a busy machine even after the run ended. Its output is read at the end
        (communicate): a run stopped there has written little.
        """
        numbers = {switch: str(self.step_number(title, *args)) for switch, title in switches.items()}
        env = {**os.environ, **self.env, "PYTHONPATH": SRC, **numbers}
        argv = [*TAGSHIP, "-C", str(self.path), *args]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        if PAUSE_AT_STEP in switches:
            deadline = time.monotonic() + 300
            while not stopped(proc.pid):
                if proc.poll() is not None or time.monotonic() > deadline:
                    _, said = proc.communicate(timeout=60)
                    raise AssertionError(f"tagship did not stop at {switches[PAUSE_AT_STEP]!r}:\n{said}")
                time.sleep(0.02)
        return proc

    def tagship(
        self, *args: str, extra_env: dict[str, str] | None = None, project: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real tagship command in this repo (or in project, a copy of it)."""
        env = {**os.environ, **self.env, "PYTHONPATH": SRC, **(extra_env or {})}
        where = str(project or self.path)
        return subprocess.run([*TAGSHIP, "-C", where, *args], capture_output=True, text=True, env=env, timeout=600)


def stopped(pid: int) -> bool:
    """The process is stopped (SIGSTOP): its state in /proc/PID/stat is T."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def ssh(server: lab.LabServer, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command on a lab server over plain ssh (argv joined by the remote shell)."""
    return subprocess.run(["ssh", server.name, shlex.join(argv)], capture_output=True, text=True, timeout=60)


def fetch(url: str, timeout: float = 3) -> str:
    """GET a URL, body stripped; raises on failure."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode().strip())


def served(the_lab: lab.Lab, app: AppRepo) -> list[str]:
    """The version each lab server serves on the app's port."""
    return [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in the_lab.servers]


def deploy(app: AppRepo, version: str) -> None:
    """Commit and tag a version, deploy it; fails the caller unless tagship exits 0."""
    app.release(version)
    result = app.tagship("deploy")
    assert result.returncode == 0, result.stderr


def server_processes(server: lab.LabServer) -> dict[int, list[bytes]]:
    """The argv of every process in the server's network namespace (its sshd's sessions, its engine, its
    containers). The lab's servers share this machine's process table: `pkill` run on one of them would
    reach every server's processes, other test workers' runs included."""
    found: dict[int, list[bytes]] = {}
    pids = subprocess.run(["ip", "netns", "pids", server.name], capture_output=True, text=True, check=True)
    for pid in pids.stdout.split():
        try:
            found[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
    return found


def compose_up(argv: list[bytes]) -> bool:
    """The argv of the `docker compose ... up --scale` that starts the new web beside the old."""
    return argv[0].endswith(b"docker-compose") and b"up" in argv and b"--scale" in argv


def frozen_when(
    server: lab.LabServer, matches: Callable[[list[bytes]], bool], timeout: float = 60, go_on: int = 0
) -> int:
    """Wait until a process whose argv matches runs on the server, stop it (SIGSTOP), return its PID.

    Frozen, a step's command is in flight on that server for as long as the test wants, whatever the
    machine's pace; SIGCONT lets it go on. go_on: a tagship paused at the step (PAUSE_AT_STEP), sent
    SIGCONT once the watch has begun, so the command cannot start and end unseen.
    """
    deadline = time.monotonic() + timeout
    if go_on:
        os.kill(go_on, signal.SIGCONT)
    while time.monotonic() < deadline:
        for pid, argv in server_processes(server).items():
            if matches(argv):
                os.kill(pid, signal.SIGSTOP)
                return pid
        time.sleep(0.01)
    raise AssertionError(f"no such process started on {server.name} within {timeout} s")
