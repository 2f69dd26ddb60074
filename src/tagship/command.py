"""Commands are data: argv plus optional stdin, with secrets masked in every rendering."""

from __future__ import annotations

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
    # A name shown instead of a long fixed script (argv[2] of `sh -c SCRIPT sh ARGS`).
    script_name: str = ""

    def shown(self) -> str:
        """The command as a shell line, secrets masked."""
        text = f"sh -c <{self.script_name}> " + shlex.join(self.argv[3:]) if self.script_name else shlex.join(self.argv)
        if self.stdin_note:
            text += f"  <<< {self.stdin_note}"
        return mask(text, self.secrets)


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret value in text with ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def sh(script: str, *args: str, name: str = "", stdin: bytes | None = None, stdin_note: str = "") -> Command:
    """A fixed POSIX sh script; variable values travel as positional args, never in the script."""
    return Command(("sh", "-c", script, "sh", *args), stdin=stdin, stdin_note=stdin_note, script_name=name)
