"""What a user sees on a terminal during long work (the live progress view), and the plain lines a pipe,
NO_COLOR, TERM=dumb and -q get: the same bytes as before the view existed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyte
import pytest

from tagship.engine.plan import Plan, apply
from tagship.errors import CommandFailed
from tagship.output import Output, live

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    name: str


def screen_of(text: str, columns: int = 100) -> list[str]:
    """The terminal's lines after it has drawn text (a real VT emulator; \\n returns the carriage as a tty does)."""
    screen = pyte.Screen(columns, 40)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(text)
    return [line.rstrip() for line in screen.display if line.strip()]


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the view never showed it"
        time.sleep(0.02)


def deploy_like(out: Output, release_h2: threading.Event | None = None) -> Plan:
    """A build on this machine with many lines of output, then a pull on two servers (h2 the slower)."""
    plan = Plan(out=out)

    def build() -> None:
        out.command("this machine", "docker build --tag reg/app:v2 .")
        for number in range(1, 201):
            out.server_line("this machine", f"#{number} RUN layer {number}")

    def pull(server: Server) -> None:
        out.command(server.name, "docker pull reg/app:v2")
        out.server_line(server.name, f"v2: Pulling from app ({server.name})")
        if server.name == "h2" and release_h2 is not None:
            assert release_h2.wait(10)

    plan.add("build reg/app:v2", build)
    plan.add_each("pull reg/app:v2", [Server("h1"), Server("h2")], pull)
    return plan


def test_a_terminal_shows_the_running_step_each_server_state_and_the_latest_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "EACH_SERVER_FROM", 0.0)  # this test's steps are quick
    err = io.StringIO()
    out = Output(out=io.StringIO(), err=err, live=True)
    go = threading.Event()
    runner = threading.Thread(target=apply, args=(deploy_like(out, go), out))
    runner.start()
    try:
        # While h2 still pulls: the step with its time, h1 done with its time, h2 running, each with its latest line.
        def pulling() -> bool:
            shown = "\n".join(screen_of(err.getvalue()))
            return "✓ done" in shown and "running" in shown

        wait_for(pulling)
        shown = screen_of(err.getvalue())
    finally:
        go.set()
        runner.join()
    pull = next(line for line in shown if "pull reg/app:v2" in line and line.rstrip().endswith("s"))
    assert pull.lstrip()[0] in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", pull  # a spinner before the running step
    h1 = next(line for line in shown if line.lstrip().startswith("h1"))
    h2 = next(line for line in shown if line.lstrip().startswith("h2"))
    assert "✓ done 0." in h1 and "v2: Pulling from app (h1)" in h1
    assert "running" in h2 and "v2: Pulling from app (h2)" in h2
    # The build's 200 lines did not scroll by: its step stays as one line with its timing.
    assert shown[0].startswith("✓ build reg/app:v2 (0.") and shown[0].endswith("s)")
    assert not any("RUN layer" in line for line in shown)

    out.result("deployed reg/app:v2")
    final = screen_of(err.getvalue())
    assert final[0].startswith("✓ build reg/app:v2 (")
    assert final[1].startswith("✓ pull reg/app:v2 (")
    assert final[2].strip().startswith("h1 0.") and ", h2 " in final[2], "each server's time stays under the step"
    assert len(final) == 3, f"no spinner or live line is left behind: {final}"


def test_the_view_masks_secrets_and_escapes_a_servers_control_characters() -> None:
    err = io.StringIO()
    out = Output(out=io.StringIO(), err=err, live=True)
    out.add_secret("hunter2")
    go = threading.Event()
    plan = Plan(out=out)

    def login(server: Server) -> None:
        out.command(server.name, "docker login --password hunter2")
        out.server_line(server.name, "\x1b]0;owned\x07 password hunter2 accepted")
        assert go.wait(10)

    plan.add_each("registry login", [Server("h1")], login)
    runner = threading.Thread(target=apply, args=(plan, out))
    runner.start()
    try:
        wait_for(lambda: "accepted" in err.getvalue())
    finally:
        go.set()
        runner.join()
    out.close()
    text = err.getvalue()
    assert "hunter2" not in text and "\x1b]0;" not in text and "\x07" not in text
    assert "\\x1b]0;owned\\x07 password *** accepted" in text


def test_a_quick_step_leaves_one_line_without_each_servers_time() -> None:
    err = io.StringIO()
    out = Output(out=io.StringIO(), err=err, live=True)
    apply(deploy_like(out), out)
    out.close()
    shown = screen_of(err.getvalue())
    assert len(shown) == 2 and shown[1].startswith("✓ pull reg/app:v2 (0.0s)"), shown


def test_with_v_a_terminal_keeps_every_output_line_above_the_view() -> None:
    err = io.StringIO()
    out = Output(out=io.StringIO(), err=err, live=True, verbose=True)
    apply(deploy_like(out), out)
    out.close()
    text = err.getvalue()
    assert all(f"  [this machine] #{n} RUN layer {n}\n" in text for n in range(1, 201))
    assert "  [h2] $ docker pull reg/app:v2" in text
    assert screen_of(text, 100)[-1].startswith("✓ pull reg/app:v2 (")


def test_a_step_that_fails_ends_on_screen_before_the_error() -> None:
    err = io.StringIO()
    out = Output(out=io.StringIO(), err=err, live=True)
    plan = Plan(out=out)

    def pull(server: Server) -> None:
        if server.name == "h2":
            raise CommandFailed(server.name, "docker pull reg/app:v2", 1, "manifest unknown")

    plan.add_each("pull reg/app:v2", [Server("h1"), Server("h2")], pull)
    with pytest.raises(CommandFailed):
        apply(plan, out)
    out.close()  # as the CLI does before it reports the error
    out.error("h2: docker pull reg/app:v2 failed")
    shown = screen_of(err.getvalue())
    assert shown[0].startswith("- pull reg/app:v2 (") and shown[0].endswith("s)")
    assert shown[1] == "error: h2: docker pull reg/app:v2 failed"


def run_plain(err: IO[str], *, quiet: bool = False) -> str:
    """The deploy-like plan, a warning, an error and the result, through an Output that decides by itself."""
    out = Output(out=io.StringIO(), err=err, quiet=quiet)
    apply(deploy_like(out), out)
    out.warn("h2: prune failed")
    out.error("the health check failed", "line one\nline two")
    out.result("deployed reg/app:v2")
    out.close()
    assert isinstance(out.out, io.StringIO)
    return out.out.getvalue()


# Exactly the lines tagship wrote before the progress view (CI logs and scripts read them).
PLAIN = (
    "==> build reg/app:v2\n"
    "  [this machine] $ docker build --tag reg/app:v2 .\n"
    + "".join(f"  [this machine] #{n} RUN layer {n}\n" for n in range(1, 201))
    + "    done: build reg/app:v2 (0.0s)\n"
    "==> pull reg/app:v2\n"
)
PLAIN_END = (
    "    done: pull reg/app:v2 (0.0s)\n"
    "warning: h2: prune failed\n"
    "error: the health check failed\n"
    "  | line one\n"
    "  | line two\n"
)


def assert_plain(text: str) -> None:
    assert text.startswith(PLAIN) and text.endswith(PLAIN_END), text[-400:]
    middle = sorted(text[len(PLAIN) : -len(PLAIN_END)].splitlines())  # h1 and h2 pull at once
    assert middle == sorted(
        f"  [{s}] {line}" for s in ("h1", "h2") for line in ("$ docker pull reg/app:v2", f"v2: Pulling from app ({s})")
    )


@pytest.fixture
def terminal() -> Iterator[tuple[IO[str], int]]:
    """A pseudo-terminal: the Output writes to its slave side (isatty), the test reads the master side."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no \r added to \n: the bytes as written
    writer = os.fdopen(slave, "w", encoding="utf-8")
    try:
        yield writer, master
    finally:
        writer.close()
        os.close(master)


def read_all(master: int) -> str:
    """Everything the terminal received, until its writer closed it."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the slave side is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def run_on(terminal: tuple[IO[str], int], quiet: bool = False) -> tuple[str, str]:
    """run_plain with the terminal as stderr: (stdout, what the terminal received)."""
    writer, master = terminal
    collected: list[str] = []
    reader = threading.Thread(target=lambda: collected.append(read_all(master)))
    reader.start()
    try:
        result = run_plain(writer, quiet=quiet)
    finally:
        writer.close()
        reader.join()
    return result, collected[0]


def test_a_pipe_gets_the_plain_lines() -> None:
    err = io.StringIO()
    assert run_plain(err) == "deployed reg/app:v2\n"
    assert_plain(err.getvalue())


@pytest.mark.parametrize("variable", [("NO_COLOR", "1"), ("TERM", "dumb")], ids=["NO_COLOR", "TERM=dumb"])
def test_a_terminal_with_no_color_or_term_dumb_gets_the_same_plain_bytes_as_a_pipe(
    terminal: tuple[IO[str], int], variable: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv(*variable)
    assert terminal[0].isatty()
    _, received = run_on(terminal)
    assert_plain(received)


def test_quiet_on_a_terminal_says_only_warnings_errors_and_the_result(terminal: tuple[IO[str], int]) -> None:
    result, received = run_on(terminal, quiet=True)
    assert result == "deployed reg/app:v2\n"
    assert screen_of(received) == [
        "warning: h2: prune failed",
        "error: the health check failed",
        "  | line one",
        "  | line two",
    ]


def test_json_mode_reports_each_server_of_a_step_and_never_draws(terminal: tuple[IO[str], int]) -> None:
    writer, _ = terminal
    stream = io.StringIO()
    out = Output(json_mode=True, out=stream, err=writer)
    apply(deploy_like(out), out)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    states = [(e["server"], e["state"]) for e in events if e["event"] == "server_status"]
    assert sorted(states) == [("h1", "done"), ("h1", "started"), ("h2", "done"), ("h2", "started")]
    assert all(e["step"] == "pull reg/app:v2" for e in events if e["event"] == "server_status")
    assert out._progress is None


def test_help_and_plain_runs_never_import_rich() -> None:
    code = (
        "import io, sys\n"
        "from tagship.cli import main\n"
        "from tagship.output import Output\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "out = Output(out=io.StringIO(), err=io.StringIO())\n"
        "out.banner('build'); out.server_line('h1', 'x'); out.done('build', 1.0); out.result('ok')\n"
        "print('rich' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stderr.strip() == "False"
