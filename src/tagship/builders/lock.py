"""The per-app deploy lock on each server: an atomic mkdir in PROJECT/.tagship/lock (builders, parsers)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from tagship.builders import scripts
from tagship.builders.command import Command, sh
from tagship.builders.history import state_dir
from tagship.builders.untrusted import printable
from tagship.messages import t

HELD = 3  # exit code of the acquire script when someone else holds the lock

# The scripts are in scripts/lock_*.sh. Acquire records the PID of the holder's SSH connection
# (its sshd process), which status reports as alive or gone.
_ACQUIRE = scripts.load("lock_acquire")
_STATUS = scripts.load("lock_status")
# Release removes the lock only if it is ours (the token), so a late release never frees someone else's.
_RELEASE = scripts.load("lock_release")
_FORCE_RELEASE = scripts.load("lock_force_release")
# The server's own identity (its SSH host keys, else its machine-id): the lock order's key.
_IDENTITY = scripts.load("lock_identity")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, recorded in holder.json."""

    token: str
    who: str
    host: str
    pid: int
    command: str
    version: str
    since: str

    def json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """Who, where, since when and what, for messages; the fields came from the server, so each is
        shown printable (no escape sequence of theirs reaches the terminal)."""
        who, host, since, command, version = map(
            printable, (self.who, self.host, self.since, self.command, self.version)
        )
        return t("lock.holder", who=who, host=host, since=since, command=command, version=version, pid=self.pid)


def acquire(project_dir: str, holder: Holder) -> Command:
    return sh(
        _ACQUIRE,
        state_dir(project_dir),
        name="take lock",
        stdin=holder.json().encode(),
        stdin_note=f"lock holder {holder.who}",
    )


def identity() -> Command:
    """Print the server's identity, the same whatever name a client reached it by (see parse_identity)."""
    return sh(_IDENTITY, name="server identity")


def parse_identity(text: str) -> str:
    """A digest of identity()'s output (server text: only hashed); "" when the server printed none."""
    return hashlib.sha256(text.strip().encode()).hexdigest() if text.strip() else ""


def status(project_dir: str) -> Command:
    return sh(_STATUS, state_dir(project_dir), name="lock status")


def release(project_dir: str, token: str) -> Command:
    return sh(_RELEASE, state_dir(project_dir), token, name="release own lock")


def force_release(project_dir: str) -> Command:
    return sh(_FORCE_RELEASE, state_dir(project_dir), name="release lock")


HOLDER_TEXT_LIMIT = 1000  # tagship writes a name, a host, a version: a megabyte "name" is no holder's


def parse_holder(text: str) -> Holder | None:
    """The holder from holder.json text (None if missing, unreadable, or of the wrong types)."""
    first = text.strip().split("\n")[0] if text.strip() else ""
    try:
        data = json.loads(first)
    except (ValueError, RecursionError):  # also a 5000-digit number (ValueError), deep nesting (RecursionError)
        return None
    if not isinstance(data, dict) or not _well_typed(data):
        return None
    return Holder(**{k: data[k] for k in Holder.__dataclass_fields__})


def _well_typed(data: dict[str, Any]) -> bool:
    """Every field present with its type; the pid a process id (lock status hands it to os.kill)."""
    pid = data.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**22:
        return False
    texts = [data.get(k) for k in Holder.__dataclass_fields__ if k != "pid"]
    return all(isinstance(text, str) and len(text) <= HOLDER_TEXT_LIMIT for text in texts)


def parse_status(text: str) -> tuple[Holder | None, bool | None]:
    """(holder, connection alive?) from the status script; (None, None) when unlocked."""
    if not text.strip():
        return None, None
    return parse_holder(text), "connection=alive" in text
