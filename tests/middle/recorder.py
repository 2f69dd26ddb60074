"""A transport that starts no process: it records every command and answers from scripted replies.

The real plan, executor and steps run on top of it, so the middle tier asserts command sequences,
undo order, interrupts and choices in milliseconds. Rules are tried in order and the first match
wins; a command no rule matches gets exit 0 and no output.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from tagship.builders.command import Command, mask
from tagship.engine import connections as connections_mod
from tagship.errors import CommandFailed
from tagship.output import Output
from tagship.remote import interrupt
from tagship.remote.server import Server
from tagship.remote.transport import Result, Transport, tail

CONNECT = "(connect)"
CLOSE = "(close)"
OK = Result(0, "", "")
TUNNEL_PORT = 40001  # a server's end of an ssh -R tunnel


@dataclass(frozen=True)
class Call:
    """One thing a transport was asked to do: a command (shown as the user would see it), a connect or a close."""

    server: str
    shown: str
    command: Command | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        return self.command.argv if self.command else ()

    @property
    def stdin(self) -> str:
        return (self.command.stdin or b"").decode("utf-8", "surrogateescape") if self.command else ""


Matcher = str | Callable[[Call], bool]  # a string matches when the shown command contains it
Answer = Result | Callable[[Call], Result] | BaseException


def starts(prefix: str) -> Callable[[Call], bool]:
    """Match commands whose shown form starts with prefix."""
    return lambda call: call.shown.startswith(prefix)


def sequence(*results: Result) -> Callable[[Call], Result]:
    """Answer with each result in turn; the last one repeats."""
    pending = list(results)

    def next_result(call: Call) -> Result:
        return pending.pop(0) if len(pending) > 1 else pending[0]

    return next_result


@dataclass
class Rule:
    match: Matcher
    answer: Answer
    server: str | None = None  # only on this server
    times: int | None = None  # used at most this often, then skipped

    def matches(self, call: Call) -> bool:
        if self.times == 0 or (self.server is not None and call.server != self.server):
            return False
        return self.match in call.shown if isinstance(self.match, str) else self.match(call)


@dataclass
class Script:
    """The replies every recording transport of a test answers from, and the calls they all recorded."""

    rules: list[Rule] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on(
        self,
        match: Matcher,
        answer: Answer,
        *,
        server: str | None = None,
        times: int | None = None,
        first: bool = False,
    ) -> None:
        """Add a rule after the others, or before them all with first (an injected failure beats the defaults)."""
        rule = Rule(match, answer, server, times)
        with self._lock:
            if first:
                self.rules.insert(0, rule)
            else:
                self.rules.append(rule)

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def answer(self, call: Call) -> Result:
        """Record the call, then answer it (the answer runs outside the lock: it may wait for another server)."""
        with self._lock:
            self.calls.append(call)
            rule = next((r for r in self.rules if r.matches(call)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
        if rule is None:
            return OK
        if isinstance(rule.answer, BaseException):
            raise rule.answer
        if isinstance(rule.answer, Result):
            return rule.answer
        return rule.answer(call)

    def shown(self, server: str | None = None) -> list[str]:
        """The shown commands, in order (of one server, if given)."""
        with self._lock:
            return [c.shown for c in self.calls if server is None or c.server == server]

    def of(self, server: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.server == server]


@dataclass
class RecordingTransport(Transport):
    """Transport's interface with scripted answers; never starts a process."""

    script: Script = field(default_factory=Script)
    _closed: bool = False

    def run(
        self,
        cmd: Command,
        *,
        check: bool = True,
        stream: bool = False,
        echo: bool = False,
        show: bool = True,
        timeout: float | None = None,
        binary: bool = False,
    ) -> Result:
        interrupt.check()  # as the real one: a thread stopped by an interrupt runs nothing more
        if show:
            self.out.command(self.name, cmd.shown())
        result = self.script.answer(Call(self.name, cmd.shown(), cmd))
        if check and not result.ok:
            raise CommandFailed(
                self.name, cmd.shown(), result.code, mask(tail(result.stderr or result.stdout), cmd.secrets)
            )
        return result

    def interactive(self, cmd: Command) -> int:
        return self.run(cmd, check=False).code

    def forward_remote(self, local_port: int) -> int:
        """As ssh -O forward: the server's end of the tunnel is its port TUNNEL_PORT."""
        result = self.script.answer(Call(self.name, f"(forward -R 127.0.0.1:0:127.0.0.1:{local_port})"))
        if not result.ok:
            raise CommandFailed(self.name, "ssh -O forward", result.code, result.stderr)
        return TUNNEL_PORT

    def cancel_forward(self, remote_port: int, local_port: int) -> None:
        self.script.answer(Call(self.name, f"(cancel -R 127.0.0.1:{remote_port}:127.0.0.1:{local_port})"))

    def connect(self) -> None:
        interrupt.check()
        self.script.answer(Call(self.name, CONNECT))

    def close(self) -> None:
        if not self._closed:  # as the real one: closing twice closes once
            self._closed = True
            self.script.record(Call(self.name, CLOSE))


def plug(monkeypatch: pytest.MonkeyPatch, script: Script) -> None:
    """Make every Connections hand out recording transports that answer from script."""

    def for_server(
        server: Server,
        out: Output,
        *,
        ssh_config: str = "",
        ssh_options: tuple[str, ...] = (),
        connect_timeout: int = 10,
        jump: str = "",
    ) -> Transport:
        return RecordingTransport(server=server, out=out, script=script)

    monkeypatch.setattr(connections_mod, "for_server", for_server)


def printed(out: Output) -> str:
    """What a test's Output wrote to the terminal (its err stream is a StringIO)."""
    assert isinstance(out.err, io.StringIO)
    return out.err.getvalue()


def in_order(shown: Sequence[str], needles: Sequence[str]) -> list[int]:
    """The index of each needle in shown, each found after the previous one; AssertionError if one is missing."""
    found: list[int] = []
    start = 0
    for needle in needles:
        index = next((i for i in range(start, len(shown)) if needle in shown[i]), None)
        if index is None:
            listing = "\n".join(f"  {i:3} {line[:160]}" for i, line in enumerate(shown))
            raise AssertionError(f"{needle!r} not sent after command {start - 1}; the commands were:\n{listing}")
        found.append(index)
        start = index + 1
    return found
