"""Release history and audit log kept on each server, in PROJECT/.tagship/ (builders and parsers).

releases.jsonl: one JSON object per release attempt (deploy or rollback), oldest first.
audit.log: one line per action, append-only: time, who, what.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from tagship.builders import scripts
from tagship.builders.command import Command, sh

STATE_DIR = ".tagship"
HISTORY_FILE = "releases.jsonl"
AUDIT_FILE = "audit.log"

_APPEND = scripts.load("history_append")
_READ = scripts.load("history_read")


@dataclass(frozen=True)
class Record:
    """One release attempt on one server."""

    version: str
    image: str
    kind: str  # deploy | rollback
    result: str  # succeeded | failed
    at: str  # ISO 8601, UTC
    commit: str = ""
    digest: str = ""
    deployed_by: str = ""
    seconds: float = 0.0
    error: str = ""
    env: dict[str, str] = field(default_factory=dict)  # the .env values this release set

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def state_dir(project_dir: str) -> str:
    return str(PurePosixPath(project_dir) / STATE_DIR)


def append(project_dir: str, record: Record) -> Command:
    return sh(
        _APPEND,
        state_dir(project_dir),
        HISTORY_FILE,
        name="append history",
        stdin=record.line().encode(),
        stdin_note=f"history entry: {record.kind} {record.version} {record.result}",
    )


def read(project_dir: str) -> Command:
    return sh(_READ, state_dir(project_dir), HISTORY_FILE, name="read history")


def audit(project_dir: str, line: str) -> Command:
    """Append one line to the audit log; the text travels on stdin, never through the shell."""
    text = line.replace("\n", " ").strip() + "\n"
    return sh(
        _APPEND,
        state_dir(project_dir),
        AUDIT_FILE,
        name="append audit log",
        stdin=text.encode(),
        stdin_note="audit line",
    )


def parse(text: str) -> list[Record]:
    """Records from releases.jsonl; a damaged line is skipped rather than failing the command."""
    records = []
    known = set(Record.__dataclass_fields__)
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and {"version", "image", "kind", "result", "at"} <= set(data):
            records.append(Record(**{k: v for k, v in data.items() if k in known}))
    return records


def deployed_versions(records: list[Record]) -> list[Record]:
    """Successful deploys, one per version (its latest), in the order they were deployed."""
    latest: dict[str, Record] = {}
    for record in records:
        if record.kind == "deploy" and record.result == "succeeded":
            latest.pop(record.version, None)
            latest[record.version] = record
    return list(latest.values())


def previous(records: list[Record], current: str) -> Record | None:
    """The release deployed before the current one (by deploy order, not by tag order)."""
    chain = deployed_versions(records)
    versions = [r.version for r in chain]
    if current in versions:
        index = versions.index(current)
        return chain[index - 1] if index > 0 else None
    return chain[-1] if chain else None


def find(records: list[Record], version: str) -> Record | None:
    """The latest successful record of a version (deploy or rollback)."""
    for record in reversed(records):
        if record.version == version and record.result == "succeeded":
            return record
    return None
