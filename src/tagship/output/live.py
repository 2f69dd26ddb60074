"""The progress view on a terminal: the running step with a spinner and its time, a line per server
under it (running, done, failed, with its own time and its latest output line), finished steps left
printed with their timing.

Rich draws it. This module is imported only when a terminal shows progress, so `tagship --help`,
pipes and --json never load Rich.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from tagship.messages import t

STARTED, DONE, FAILED = "started", "done", "failed"
# A finished step lists each server's time when it took this long: where a deploy's seconds go;
# below it, a line of zeros per step would bury the steps.
EACH_SERVER_FROM = 1.0


@dataclass
class _Row:
    """One server (or this machine) under the running step."""

    spinner: Spinner
    state: str = ""  # "" while only its output is known: a step that is not run server by server
    started: float = 0.0
    seconds: float = 0.0
    latest: str = ""  # the last line of output or the last command


@dataclass
class _Step:
    title: str
    started: float
    spinner: Spinner
    rows: dict[str, _Row] = field(default_factory=dict)


class Progress:
    """A live view of one step at a time on a terminal; thread-safe (a step runs its servers at once).

    Steps start and finish on one thread (the plan's executor); servers and lines arrive from any."""

    def __init__(self, stream: IO[str], *, force_terminal: bool = False, colour: bool = True) -> None:
        # force_terminal: a test's StringIO drawn as the terminal would be.
        self.console = Console(
            file=stream,
            force_terminal=force_terminal or None,
            no_color=not colour,
            highlight=False,
            emoji=False,
        )
        self._lock = threading.RLock()
        self._step: _Step | None = None
        self._live: Live | None = None

    @property
    def active(self) -> bool:
        """A step is on screen: lines must be printed above it, through the view."""
        with self._lock:
            return self._step is not None

    def start_step(self, title: str) -> None:
        """Show title as the running step (a step still on screen ended without finishing)."""
        self._end_unfinished()
        live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,  # on stop the live lines go; the finished step is printed in their place
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with self._lock:
            self._step = _Step(title, time.monotonic(), Spinner("dots", style="bold blue"))
            self._live = live
        live.start()

    def finish_step(self, title: str, seconds: float) -> None:
        """The step ended well: leave it printed with its time (and each server's, when several ran a long one)."""
        step = self._end()
        if step is None:
            return
        self.console.print(Text(t("progress.step_done", title=title, seconds=f"{seconds:.1f}"), style="green"))
        timed = [(name, row) for name, row in step.rows.items() if row.state in (DONE, FAILED)]
        if len(timed) > 1 and seconds >= EACH_SERVER_FROM:
            each = ", ".join(f"{name} {row.seconds:.1f}s" for name, row in timed)
            self.console.print(Text(f"    {each}", style="dim"))

    def server(self, name: str, state: str, seconds: float | None) -> None:
        """A server started, finished or failed its part of the running step."""
        with self._lock:
            row = self._row(name)
            if row is None:
                return
            row.state = state
            if state == STARTED:
                row.started = time.monotonic()
            elif seconds is not None:
                row.seconds = seconds

    def latest(self, name: str, line: str) -> None:
        """The newest line of output (or command) of a server: shown in its row, replacing the last."""
        with self._lock:
            row = self._row(name)
            if row is not None and line.strip():
                row.latest = line.strip()

    def print(self, line: str) -> None:
        """A line that stays (painted with ANSI colours or plain), above the running step."""
        self.console.print(Text.from_ansi(line), soft_wrap=True)

    def close(self) -> None:
        """End the view: a step still on screen ended without finishing."""
        self._end_unfinished()

    def _row(self, name: str) -> _Row | None:
        if self._step is None:
            return None
        return self._step.rows.setdefault(name, _Row(Spinner("dots", style="cyan")))

    def _end_unfinished(self) -> None:
        step = self._end()
        if step is not None:
            seconds = time.monotonic() - step.started
            ended = t("progress.step_ended", title=step.title, seconds=f"{seconds:.1f}")
            self.console.print(Text(ended, style="yellow"))

    def _end(self) -> _Step | None:
        """Take the step off the screen; the step it was.

        Rich's own lock is never taken while ours is held: its refresh thread holds its lock when it
        asks _render (which takes ours) for the view."""
        with self._lock:
            step, live = self._step, self._live
            self._step, self._live = None, None
        if live is not None:
            live.stop()
        return step

    def _render(self) -> RenderableType:
        with self._lock:
            step = self._step
            if step is None:
                return Text("")
            now = time.monotonic()
            head = Table.grid(padding=(0, 1))
            head.add_row(step.spinner, Text(step.title, style="bold"), Text(f"{now - step.started:.1f}s", style="dim"))
            rows = Table.grid(padding=(0, 1), expand=True)
            rows.add_column(width=2)
            rows.add_column(no_wrap=True)
            rows.add_column(no_wrap=True)
            rows.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
            for name, row in step.rows.items():
                rows.add_row("", Text(name, style="bold"), *_state_cells(row, now))
            return Group(head, rows) if step.rows else head


def _state_cells(row: _Row, now: float) -> tuple[RenderableType, Text]:
    """What a server's row says after its name: its state and time, then its latest line."""
    latest = Text(row.latest, style="dim")
    if row.state == DONE:
        return Text(t("progress.server_done", seconds=f"{row.seconds:.1f}"), style="green"), latest
    if row.state == FAILED:
        return Text(t("progress.server_failed", seconds=f"{row.seconds:.1f}"), style="red"), latest
    if row.state == STARTED:
        row.spinner.update(text=Text(t("progress.server_running", seconds=f"{now - row.started:.1f}")))
        return row.spinner, latest
    return row.spinner, latest
