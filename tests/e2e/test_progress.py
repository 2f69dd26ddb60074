"""End to end: a deploy typed at a terminal shows progress (the real command on a pseudo-terminal)."""

from __future__ import annotations

import os
import subprocess
import threading

import pyte

import lab
from tests.apprepo import SRC, TAGSHIP, AppRepo, fetch


def run_on_a_terminal(app: AppRepo, *args: str) -> tuple[int, str, str]:
    """tagship with stderr on a pseudo-terminal (as typed in one), stdout on a pipe: (exit code, stdout, screen)."""
    master, slave = os.openpty()
    env = {**os.environ, **app.env, "PYTHONPATH": SRC, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR")
    screen = pyte.Screen(160, 500)
    screen.set_mode(pyte.modes.LNM)
    stream = pyte.ByteStream(screen)

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other side is gone
                return
            if not chunk:
                return
            stream.feed(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = subprocess.run(
            [*TAGSHIP, "-C", str(app.path), *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            env=env,
            timeout=600,
        )
    finally:
        os.close(slave)
        reader.join(30)
        os.close(master)
    shown = "\n".join(line.rstrip() for line in screen.display if line.strip())
    return done.returncode, done.stdout, shown


def test_a_deploy_on_a_terminal_shows_each_step_with_its_time_and_each_servers_time(
    the_lab: lab.Lab, app: AppRepo
) -> None:
    app.release("v1")
    code, stdout, shown = run_on_a_terminal(app, "deploy")
    assert code == 0, shown
    assert stdout.startswith("deployed "), stdout
    names = [s.name for s in the_lab.servers]
    lines = shown.splitlines()
    build = [line for line in lines if line.startswith("✓ build ")]
    assert len(build) == 1 and build[0].endswith("s)"), shown
    assert any(line.startswith("✓ wait until the new web is healthy (") for line in lines), shown
    assert any(line.startswith(f"✓ pull {app.repository}:v1 (") for line in lines), shown
    each = [line.split(", ") for line in lines if line.startswith(f"    {names[0]} ")]  # steps of 1 s or more
    assert all([part.split()[0] for part in times] == names for times in each), "each server's own time"
    assert not any(line.startswith("  [") for line in lines), "no raw output lines without -v"
    assert not any(line.startswith("==> ") for line in lines), "no plain banners on a terminal"
    assert [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in the_lab.servers] == ["v1"] * len(names)
