"""Release history and audit log kept on each server, in PROJECT/.tagship/ (builders and parsers).

releases.jsonl: one JSON object per release attempt (deploy or rollback), oldest first.
audit.log: one line per action, append-only: time, who, what.
Each is bounded: past ROTATE_AT bytes the file becomes FILE.1 (one older generation, replaced each
time). The history keeps, in the new file, what rollback and prune read (rotated()).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tagship.builders import docker, git, scripts
from tagship.builders.command import Command, sh
from tagship.builders.untrusted import printable
from tagship.messages import t

STATE_DIR = ".tagship"
HISTORY_FILE = "releases.jsonl"
AUDIT_FILE = "audit.log"
# About 1,800 deploys of history or 9,000 audit lines: enough to read back, small on any disk.
ROTATE_AT = 1_000_000

_APPEND = scripts.load("history_append")
_READ = scripts.load("history_read")
_ROTATE = scripts.load("history_rotate")


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
    environment: str = ""  # tagship.toml's [environments.NAME] of the run; absent in older lines

    @property
    def repository(self) -> str:
        """The release's image without its tag."""
        return self.image.rsplit(":", 1)[0]

    def line(self) -> str:
        data = asdict(self)
        if not self.environment:
            del data["environment"]  # a run without environments writes the lines it always wrote
        return json.dumps(data, sort_keys=True) + "\n"


def state_dir(project_dir: str) -> str:
    return str(PurePosixPath(project_dir) / STATE_DIR)


def append(project_dir: str, record: Record) -> Command:
    """Append a record; prints the file's size after it (the caller rotates: only it knows what to keep)."""
    return sh(
        _APPEND,
        state_dir(project_dir),
        HISTORY_FILE,
        "0",
        name="append history",
        stdin=record.line().encode(),
        stdin_note=f"history entry: {record.kind} {record.version} {record.result}",
    )


def needs_rotation(append_output: str) -> bool:
    """Whether the size append() printed is past ROTATE_AT."""
    size = append_output.strip()
    return size.isdigit() and int(size) > ROTATE_AT


def rotate(project_dir: str, kept: str) -> Command:
    """Replace the history with `kept` (see rotated()); the whole old file stays as releases.jsonl.1."""
    return sh(
        _ROTATE,
        state_dir(project_dir),
        HISTORY_FILE,
        name="rotate history",
        stdin=kept.encode(),
        stdin_note="the history lines kept",
    )


def rotated(text: str, keep: int, limit: int | None = None) -> str:
    """What a history past `limit` bytes (default ROTATE_AT) keeps: its newest lines up to half the limit and, from the
    older lines, what rollback and prune read there. That is, for each release a rollback may still
    reach (the last keep + 1 deployed, the current one, the one deployed before it), its latest
    successful deploy (the deploy order `previous` and prune follow) and its latest successful record
    (the .env values a rollback writes). Lines keep their order; a line tagship cannot read is dropped
    from the older part only.
    """
    lines = [line for line in text.split("\n") if line.strip()]
    recent = _newest_within(lines, (ROTATE_AT if limit is None else limit) // 2)
    older = lines[: len(lines) - len(recent)]
    parsed = [(line, _record_or_none(line)) for line in lines]
    records = [record for _, record in parsed if record is not None]
    wanted = prune_choice(records, last_succeeded(records), "", keep + 1)  # counted generously by one
    latest: dict[str, int] = {}  # version: index of its latest successful record
    latest_deploy: dict[str, int] = {}
    for index, (_, record) in enumerate(parsed):
        if record is not None and record.result == "succeeded":
            latest[record.version] = index
            if record.kind == "deploy":
                latest_deploy[record.version] = index
    chosen = {found[v] for found in (latest, latest_deploy) for v in wanted if v in found}
    carried = [line for index, line in enumerate(older) if index in chosen]
    return "".join(line + "\n" for line in [*carried, *recent])


def _newest_within(lines: list[str], budget: int) -> list[str]:
    """The newest lines whose total size (newlines included) is at most budget; at least the newest one."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if kept and size > budget:
            break
        kept.append(line)
    return kept[::-1]


def _record_or_none(line: str) -> Record | None:
    try:
        return _record(line)
    except ValueError:
        return None


def read(project_dir: str) -> Command:
    return sh(_READ, state_dir(project_dir), HISTORY_FILE, name="read history")


def audit(project_dir: str, line: str) -> Command:
    """Append one line to the audit log; the text travels on stdin, never through the shell."""
    text = line.replace("\n", " ").strip() + "\n"
    return sh(
        _APPEND,
        state_dir(project_dir),
        AUDIT_FILE,
        str(ROTATE_AT),
        name="append audit log",
        stdin=text.encode(),
        stdin_note="audit line",
    )


def parse(text: str) -> list[Record]:
    """Records from releases.jsonl; a damaged or hostile line is skipped rather than failing the command."""
    return parse_lines(text)[0]


def parse_lines(text: str) -> tuple[list[Record], list[str]]:
    """(records, problems): each problem names a skipped line ("line 3: env key ... is not a variable name").

    The file comes from the server: whoever can write it must not reach the user's .env or terminal
    through it, so a line is kept only if every field has the type and the shape tagship writes.
    """
    records: list[Record] = []
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):  # "\n" only: a JSON string may hold U+2028
        if not line.strip():
            continue
        try:
            records.append(_record(line))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    return records, problems


_REQUIRED = ("version", "image", "kind", "result", "at")
_TEXT_FIELDS = (*_REQUIRED, "commit", "digest", "deployed_by", "error", "environment")
# What a rollback may write into .env: a variable name, and a tag, tag@digest or image repository as
# tagship records them; nothing that ends the line, starts a comment or makes Compose interpolate.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ENV_VALUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,999}")
ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # config.ENVIRONMENT_NAME_RE
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,256}")


def _record(line: str) -> Record:
    """One line as a Record; ValueError says why it cannot be one."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # also a 5000-digit number (ValueError), deep nesting (RecursionError)
        raise ValueError(t("history.not_json")) from None
    if not isinstance(data, dict):
        raise ValueError(t("history.not_object"))
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ValueError(t("history.missing", keys=", ".join(missing)))
    fields = {key: value for key, value in data.items() if key in Record.__dataclass_fields__}
    for key in _TEXT_FIELDS:
        if not isinstance(fields.get(key, ""), str):
            raise ValueError(t("history.not_string", key=key))
    fields["seconds"] = _seconds(fields.get("seconds", 0.0))
    fields["env"] = _env(fields.get("env", {}))
    _check_release(fields["version"], fields["image"], fields.get("digest", ""))
    if fields.get("environment") and not ENVIRONMENT_RE.fullmatch(fields["environment"]):
        raise ValueError(t("history.bad_environment", environment=printable(fields["environment"], 40)))
    return Record(**fields)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(t("history.bad_seconds"))
    return float(value)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(t("history.bad_env"))
    for key, text in value.items():
        if not ENV_NAME_RE.fullmatch(key):
            raise ValueError(t("history.bad_env_key", key=printable(key, 40)))
        if not isinstance(text, str) or not ENV_VALUE_RE.fullmatch(text):
            raise ValueError(t("history.bad_env_value", key=key))
    return value


def _check_release(version: str, image: str, digest: str) -> None:
    """The version, image and digest reach docker's argv, .env and compose files: only their own shapes."""
    if not git.DOCKER_TAG_RE.fullmatch(version):
        raise ValueError(t("history.bad_version", version=printable(version, 40)))
    repository, _, tag = image.rpartition(":")
    if tag != version or not docker.REPOSITORY_RE.fullmatch(repository):
        raise ValueError(t("history.bad_image", image=printable(image, 80), version=version))
    if digest and not DIGEST_RE.fullmatch(digest):
        raise ValueError(t("history.bad_digest", digest=printable(digest, 80)))


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


def last_succeeded(records: list[Record]) -> str:
    """The version of the newest release that succeeded ("" if none did)."""
    return next((r.version for r in reversed(records) if r.result == "succeeded"), "")


def prune_choice(records: list[Record], current: str, deploying: str, keep: int) -> set[str]:
    """The tags to keep: the last `keep` releases deployed, the current one and the one before it."""
    chain = [r.version for r in deployed_versions(records) if r.version != deploying]
    chain += [deploying] if deploying else []
    kept = set(chain[-keep:]) | {current}
    if current in chain[1:]:
        kept.add(chain[chain.index(current) - 1])
    return kept
