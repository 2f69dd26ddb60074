"""What `tagship doctor` asks this machine and each server, and the parsers of the answers (pure).

Docker's and Compose's version commands are docker.version() and docker.compose_version(), as the
deploy's own check uses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tagship.builders.command import Command
from tagship.messages import t

OK, WARN, PROBLEM = "ok", "warn", "problem"  # a warning is shown but does not fail the doctor
LOW_DISK_BYTES = 2 * 1024**3  # less free space than this under Docker's root dir: the next pull may fail


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: where, what, the finding, and the fix when it is not ok."""

    where: str  # "local" or a server's name
    name: str
    status: str  # OK, WARN or PROBLEM
    detail: str
    fix: str = ""


def git_version() -> Command:
    return Command(("git", "--version"))


def docker_client_version() -> Command:
    """The docker CLI alone (no engine needed: deploy talks to the local engine only to build)."""
    return Command(("docker", "--version"))


def ssh_version() -> Command:
    """OpenSSH prints its version on stderr."""
    return Command(("ssh", "-V"))


def docker_root_dir() -> Command:
    return Command(("docker", "info", "--format", "{{.DockerRootDir}}"))


def disk_free(path: str) -> Command:
    """POSIX df in KiB: one line per file system, no wrapping (-P)."""
    return Command(("df", "-Pk", path))


def first_line(text: str) -> str:
    """The first non-empty line of a version command's output."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def compose_major(text: str) -> int | None:
    """The major version from `docker compose version --short` ("2.29.1", "v2.29.1"); None if unreadable."""
    found = re.match(r"v?(\d+)\.", first_line(text))
    return int(found.group(1)) if found else None


def parse_root_dir(text: str) -> str:
    """Docker's root directory from `docker info` ("" unless it is an absolute path)."""
    line = first_line(text)
    return line if line.startswith("/") else ""


def parse_available_bytes(text: str) -> int | None:
    """Free bytes from `df -Pk` output: the field before the capacity (NN%) on the last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    capacity = next((i for i, f in enumerate(fields) if re.fullmatch(r"\d+%|-", f)), None)
    if capacity is None or capacity == 0 or not fields[capacity - 1].isdigit():
        return None
    return int(fields[capacity - 1]) * 1024


def size(count: int) -> str:
    """Bytes for a reader: 1.5 GB, 300 MB."""
    if count >= 1024**3:
        return f"{count / 1024**3:.1f} GB"
    return f"{count / 1024**2:.0f} MB"


def disk_check(where: str, root: str, available: int | None) -> Check:
    """Enough room under Docker's root dir for the next release's image."""
    if available is None:
        return Check(where, "disk", WARN, t("doctor.no_free_space", root=root), t("doctor.df_there", root=root))
    if available < LOW_DISK_BYTES:
        return Check(
            where,
            "disk",
            PROBLEM,
            t("doctor.low_disk", available=size(available), root=root, low=size(LOW_DISK_BYTES)),
            t("doctor.free_space_hint"),
        )
    return Check(where, "disk", OK, t("doctor.free_under", available=size(available), root=root))
