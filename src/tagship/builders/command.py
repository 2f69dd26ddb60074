"""Commands are data: argv plus optional stdin, with secrets masked in every rendering."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

MASK = "***"


@dataclass(frozen=True)
class Command:
    """A process to run somewhere; builders return these and never run anything."""

    argv: tuple[str, ...]
    stdin: bytes | None = None
    # Values to replace with *** wherever the command or its output is shown.
    secrets: tuple[str, ...] = ()
    # A short description of stdin for --dry-run and logs (stdin itself may be secret).
    stdin_note: str = ""
    # Extra environment for local commands only (e.g. DOCKER_CONFIG); never sent over SSH.
    env: tuple[tuple[str, str], ...] = field(default=())
    # Long fixed arguments (scripts) shown by a short name, e.g. ("set -e ...", "<atomic write>").
    labels: tuple[tuple[str, str], ...] = ()
    # Run on a pseudo-terminal on the server (ssh -t): a program that wants a terminal (a Django
    # shell), or one that must end with its session (SIGHUP) rather than at its next write (logs -f).
    tty: bool = False

    def shown(self) -> str:
        """The command as a shell line, secrets masked, long fixed scripts by name."""
        names = dict(self.labels)
        text = " ".join(names[arg] if arg in names else shlex.quote(arg) for arg in self.argv)
        if self.stdin_note:
            text += f"  <<< {self.stdin_note}"
        return mask(text, self.secrets)


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret value in text with ***, also where it appears JSON-escaped (a value with
    a quote, a backslash or a non-ASCII character, in --json output or a server's JSON) or as Python
    shows it in an exception's text (repr, in a -v traceback)."""
    for secret in secrets:
        if not secret:
            continue
        escaped = (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1])
        for form in sorted({secret, *escaped}, key=len, reverse=True):
            text = text.replace(form, MASK)
    return text


def sh(script: str, *args: str, name: str = "", stdin: bytes | None = None, stdin_note: str = "") -> Command:
    """A fixed POSIX sh script; variable values travel as positional args, never in the script."""
    labels = ((script, f"<{name}>"),) if name else ()
    return Command(("sh", "-c", script, "sh", *args), stdin=stdin, stdin_note=stdin_note, labels=labels)
