"""The per-app deploy lock on each server: an atomic mkdir in PROJECT/.tagship/lock (builders, parsers)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from tagship.builders.command import Command, sh
from tagship.builders.history import state_dir

HELD = 3  # exit code of the acquire script when someone else holds the lock

# mkdir is atomic: exactly one concurrent caller creates the directory. The holder's details come
# on stdin. The connection is tagship's persistent shell on the server (TAGSHIP_SESSION_PID), or
# else $PPID, the sshd process of this SSH connection; `status` tells whether it is still there.
_ACQUIRE = """set -eu
mkdir -p -- "$1"
if ! mkdir -- "$1/lock" 2>/dev/null; then
  cat -- "$1/lock/holder.json" 2>/dev/null || true
  exit 3
fi
cat > "$1/lock/holder.json"
echo "${TAGSHIP_SESSION_PID:-$PPID}" > "$1/lock/connection"
"""

_STATUS = """[ -d "$1/lock" ] || exit 0
cat -- "$1/lock/holder.json" 2>/dev/null; echo
pid=$(cat -- "$1/lock/connection" 2>/dev/null || echo 0)
if [ -d "/proc/$pid" ]; then echo "connection=alive"; else echo "connection=gone"; fi
"""

# Remove the lock only if it is ours (the token), so a late release never frees someone else's lock.
_RELEASE = 'grep -qF -- "$2" "$1/lock/holder.json" 2>/dev/null && rm -rf -- "$1/lock" || true'
_FORCE_RELEASE = 'rm -rf -- "$1/lock"'


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
        return f"{self.who} on {self.host} since {self.since} ({self.command} {self.version}, pid {self.pid})".strip()


def acquire(project_dir: str, holder: Holder) -> Command:
    return sh(
        _ACQUIRE,
        state_dir(project_dir),
        name="take lock",
        stdin=holder.json().encode(),
        stdin_note=f"lock holder {holder.who}",
    )


def status(project_dir: str) -> Command:
    return sh(_STATUS, state_dir(project_dir), name="lock status")


def release(project_dir: str, token: str) -> Command:
    return sh(_RELEASE, state_dir(project_dir), token, name="release own lock")


def force_release(project_dir: str) -> Command:
    return sh(_FORCE_RELEASE, state_dir(project_dir), name="release lock")


def parse_holder(text: str) -> Holder | None:
    """The holder from holder.json text (None if missing or unreadable)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    try:
        data = json.loads(first)
        return Holder(**{k: data[k] for k in Holder.__dataclass_fields__})
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def parse_status(text: str) -> tuple[Holder | None, bool | None]:
    """(holder, connection alive?) from the status script; (None, None) when unlocked."""
    if not text.strip():
        return None, None
    return parse_holder(text), "connection=alive" in text
