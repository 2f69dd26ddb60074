"""Output: what every command says, as plain lines, as a live progress view on a terminal, or as
one JSON event per line (--json; the schema: docs/json-events.md)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from tagship.builders.command import mask
from tagship.builders.untrusted import terminal_text
from tagship.messages import t

if TYPE_CHECKING:
    from tagship.output.live import Progress


def _plain_terminal() -> bool:
    """NO_COLOR or TERM=dumb: a terminal that wants plain lines, as a pipe gets them."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def _use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and not _plain_terminal()


@dataclass
class Output:
    """Writes human text to stderr/stdout, or one JSON event per line with --json."""

    json_mode: bool = False
    verbose: bool = False
    quiet: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    secrets: list[str] = field(default_factory=list)
    # The live progress view: None decides (err is a terminal, no NO_COLOR, TERM is not dumb);
    # True draws it whatever err is (tests), False never.
    live: bool | None = None
    _progress: Progress | None = field(default=None, init=False, repr=False)

    def _view(self) -> Progress | None:
        """The progress view, made on first use when this run shows one (never with --json or -q)."""
        if self._progress is None and not self.json_mode and not self.quiet and self._wants_live():
            from tagship.output.live import Progress  # Rich loads only here: --help and pipes never pay for it

            self._progress = Progress(self.err, force_terminal=self.live is True, colour=not _plain_terminal())
        return self._progress

    def _wants_live(self) -> bool:
        if self.live is not None:
            return self.live
        return self.err.isatty() and not _plain_terminal()

    def _live_step(self) -> Progress | None:
        """The view while a step is on screen (lines then go above it, through Rich)."""
        view = self._progress
        return view if view is not None and view.active else None

    def _say(self, line: str) -> None:
        """Write a line to stderr: above the running step on a terminal, else as it is."""
        view = self._live_step()
        if view is not None:
            view.print(line)
            return
        self.err.write(line + "\n")
        self.err.flush()

    def close(self) -> None:
        """End the progress view (a step still on screen is shown as ended unfinished)."""
        if self._progress is not None:
            self._progress.close()

    def add_secret(self, value: str) -> None:
        """Mask this value in everything written from now on."""
        if value and value not in self.secrets:
            self.secrets.append(value)

    def _clean(self, text: str) -> str:
        # Escapes shown, not sent: a server's output or a value from its files cannot drive the
        # terminal (the colours painted below are added after this).
        return terminal_text(mask(text, tuple(self.secrets)))

    def _masked(self, value: Any) -> Any:
        if isinstance(value, str):
            return mask(value, tuple(self.secrets))
        if isinstance(value, dict):
            return {key: self._masked(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._masked(item) for item in value]
        return value

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if _use_colour(self.err) else text

    def event(self, kind: str, **data: Any) -> None:
        """Emit a machine-readable event (only in --json mode)."""
        if self.json_mode:
            # Masked value by value before encoding: JSON escapes a secret with a quote, a backslash
            # or a non-ASCII character into a form the text would no longer show as the secret.
            payload = {"event": kind, "time": round(time.time(), 3), **self._masked(data)}
            self.out.write(self._clean(json.dumps(payload, sort_keys=True)) + "\n")
            self.out.flush()

    def banner(self, title: str) -> None:
        """Announce a step."""
        self.event("step", title=title)
        view = self._view()
        if view is not None:
            view.start_step(self._clean(title))
        elif not self.json_mode and not self.quiet:
            self._say(self._paint(f"==> {self._clean(title)}", "1;34"))

    def done(self, title: str, seconds: float) -> None:
        """Say a step finished and how long it took."""
        self.event("step_done", title=title, seconds=round(seconds, 2))
        view = self._view()
        if view is not None:
            view.finish_step(self._clean(title), seconds)
        elif not self.json_mode and not self.quiet:
            self._say(self._paint(t("progress.plain_done", title=self._clean(title), seconds=seconds), "2"))

    def server_status(self, step: str, server: str, state: str, seconds: float | None = None) -> None:
        """A server started ("started"), finished ("done") or failed ("failed") its part of a step.

        Only the progress view and --json show it: plain lines stay as they always were."""
        timing = {} if seconds is None else {"seconds": round(seconds, 2)}
        self.event("server_status", step=step, server=server, state=state, **timing)
        view = self._live_step()
        if view is not None:
            view.server(server, state, seconds)

    def server_line(self, server: str, line: str) -> None:
        """A line of remote (or local command) output, prefixed with the server's name."""
        self.event("output", server=server, line=line)
        if not self.json_mode and (self.verbose or not self.quiet):
            text = self._clean(line.removesuffix("\r"))  # a CRLF line's \r only ends it
            view = self._live_step()
            if view is not None:
                view.latest(server, text)  # a build's hundreds of lines: the newest in place; all with -v
                if not self.verbose:
                    return
            self._say(f"  [{server}] {text}")

    def command(self, server: str, shown: str) -> None:
        """Show a command about to run (always masked by the caller and again here)."""
        self.event("command", server=server, command=shown)
        if not self.json_mode and not self.quiet:
            view = self._live_step()
            if view is not None:
                view.latest(server, f"$ {self._clean(shown)}")
                if not self.verbose:
                    return
            self._say(self._paint(f"  [{server}] $ {self._clean(shown)}", "2"))

    def info(self, text: str) -> None:
        """A plain message."""
        self.event("info", message=text)
        if not self.json_mode and not self.quiet:
            self._say(self._clean(text))

    def warn(self, text: str) -> None:
        """A warning."""
        self.event("warning", message=text)
        if not self.json_mode:
            self._say(self._paint(t("common.warning", text=self._clean(text)), "33"))

    def error(self, text: str, detail: str = "") -> None:
        """An error line, with optional detail lines below it."""
        self.event("error", message=text, detail=detail)
        if not self.json_mode:
            self._say(self._paint(t("common.error", text=self._clean(text)), "1;31"))
            for line in detail.splitlines():
                self._say(f"  | {self._clean(line)}")

    def traceback(self, text: str) -> None:
        """A traceback (-v), masked like every other line: an exception's text may quote a secret
        it was handling (a .env's content, a server's error that echoes a value)."""
        self._say(self._clean(text).rstrip("\n"))

    def result(self, text: str, **data: Any) -> None:
        """The final answer of a command, on stdout."""
        self.event("result", message=text, **data)
        self.close()  # the answer comes after every step, never under a spinner
        if not self.json_mode:
            self.out.write(self._clean(text) + "\n")
            self.out.flush()
