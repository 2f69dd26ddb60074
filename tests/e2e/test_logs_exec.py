"""`tagship logs` and `tagship exec` against the lab's two servers (issue 13)."""

from __future__ import annotations

import contextlib
import os
import pty
import queue
import select
import signal
import subprocess
import threading
import time

import lab
from tests.apprepo import SRC, TAGSHIP, AppRepo, deploy, ssh


def test_logs_tail_shows_both_servers_prefixed(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    done = app.tagship("logs", "--tail", "5")
    assert done.returncode == 0, done.stderr
    for server in the_lab.servers:
        assert f"[{server.name}] " in done.stderr and "serving version v1" in done.stderr, done.stderr
        mine = [line for line in done.stderr.splitlines() if line.startswith(f"  [{server.name}] ")]
        assert any("serving version v1" in line for line in mine), done.stderr


def test_logs_follow_streams_both_servers_and_stops_cleanly_on_ctrl_c(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    proc, seen = app.tagship_until("serving version v1", "logs", "-f")
    assert proc.stderr is not None
    # Read on in a thread: select() on the pipe cannot see lines the file object has already buffered
    # (tagship_until read with its iterator), and waited in vain for one of them in CI run 14.
    lines: queue.Queue[str] = queue.Queue()

    def read_on() -> None:
        for line in proc.stderr or ():
            lines.put(line)

    reader = threading.Thread(target=read_on, daemon=True)
    reader.start()
    wanted = {f"[{s.name}] " for s in the_lab.servers}
    deadline = time.monotonic() + 20
    while not all(any(w in line and "serving version" in line for line in seen) for w in wanted):
        assert time.monotonic() < deadline, "".join(seen)
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
    assert proc.wait(timeout=20) == 130
    reader.join(timeout=20)
    rest = "".join(lines.get() for _ in range(lines.qsize()))
    assert "Traceback" not in rest, rest
    for server in the_lab.servers:  # the servers hung up the terminals: nothing follows the logs there
        follows = f"ps -eo args | grep -F -- '{app.remote_path}/compose.yaml' | grep -c '[l]ogs --no-color --follow'"
        left = ssh(server, "sh", "-c", f"sleep 1; {follows} || true")
        assert left.stdout.strip() == "0", (server.name, left.stdout, left.stderr)


def test_exec_prints_the_version_and_returns_the_remote_exit_code(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    done = app.tagship("exec", "--", "cat", "/www/version.txt")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "v1"
    assert app.tagship("exec", "--", "sh", "-c", "exit 3").returncode == 3
    other = app.tagship("exec", "--server", the_lab.servers[1].name, "--new", "--", "cat", "/www/version.txt")
    assert (other.returncode, other.stdout.strip()) == (0, "v1"), other.stderr


def test_exec_interactive_gets_a_pseudo_terminal(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    env = {**os.environ, **app.env, "PYTHONPATH": SRC}
    argv = [*TAGSHIP, "-C", str(app.path), "exec", "-i", "--", "sh", "-c", "tty; exit 4"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: tagship on a terminal, as typed by hand
        os.execvpe(argv[0], argv, env)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: tagship ended
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert "/dev/pts/" in text, text
    assert os.waitstatus_to_exitcode(status) == 4, text
    plain = subprocess.run(
        [*TAGSHIP, "-C", str(app.path), "exec", "--", "sh", "-c", "tty"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert "not a tty" in plain.stdout, plain.stdout + plain.stderr
