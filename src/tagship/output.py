"""The only module that writes to the terminal: banners, per-server lines, JSON events."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from tagship.builders.command import mask
from tagship.builders.untrusted import terminal_text
from tagship.messages import t


def _use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


@dataclass
class Output:
    """Writes human text to stderr/stdout, or one JSON event per line with --json."""

    json_mode: bool = False
    verbose: bool = False
    quiet: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    secrets: list[str] = field(default_factory=list)

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
        if not self.json_mode and not self.quiet:
            self.err.write(self._paint(f"==> {self._clean(title)}", "1;34") + "\n")
            self.err.flush()

    def done(self, title: str, seconds: float) -> None:
        """Say a step finished and how long it took."""
        self.event("step_done", title=title, seconds=round(seconds, 2))
        if not self.json_mode and not self.quiet:
            self.err.write(self._paint(f"    done: {self._clean(title)} ({seconds:.1f}s)", "2") + "\n")
            self.err.flush()

    def server_line(self, server: str, line: str) -> None:
        """A line of remote (or local command) output, prefixed with the server's name."""
        self.event("output", server=server, line=line)
        if not self.json_mode and (self.verbose or not self.quiet):
            text = self._clean(line.removesuffix("\r"))  # a CRLF line's \r only ends it
            self.err.write(f"  [{server}] {text}\n")
            self.err.flush()

    def command(self, server: str, shown: str) -> None:
        """Show a command about to run (always masked by the caller and again here)."""
        self.event("command", server=server, command=shown)
        if not self.json_mode and not self.quiet:
            self.err.write(self._paint(f"  [{server}] $ {self._clean(shown)}", "2") + "\n")
            self.err.flush()

    def info(self, text: str) -> None:
        """A plain message."""
        self.event("info", message=text)
        if not self.json_mode and not self.quiet:
            self.err.write(self._clean(text) + "\n")
            self.err.flush()

    def warn(self, text: str) -> None:
        """A warning."""
        self.event("warning", message=text)
        if not self.json_mode:
            self.err.write(self._paint(t("common.warning", text=self._clean(text)), "33") + "\n")
            self.err.flush()

    def error(self, text: str, detail: str = "") -> None:
        """An error line, with optional detail lines below it."""
        self.event("error", message=text, detail=detail)
        if not self.json_mode:
            self.err.write(self._paint(t("common.error", text=self._clean(text)), "1;31") + "\n")
            for line in detail.splitlines():
                self.err.write(f"  | {self._clean(line)}\n")
            self.err.flush()

    def traceback(self, text: str) -> None:
        """A traceback (-v), masked like every other line: an exception's text may quote a secret
        it was handling (a .env's content, a server's error that echoes a value)."""
        self.err.write(self._clean(text))
        self.err.flush()

    def result(self, text: str, **data: Any) -> None:
        """The final answer of a command, on stdout."""
        self.event("result", message=text, **data)
        if not self.json_mode:
            self.out.write(self._clean(text) + "\n")
            self.out.flush()
