"""requirements/dev.lock against pyproject.toml: the stamp that ties them, and the pins that must fit.

`python -m tests.lockfile stamp LOCK` (run by scripts/lock.sh) writes the stamp; the unit test
tests/unit/test_lockfile.py fails when pyproject.toml's requirements changed since the lock was made,
or when a pin falls outside a range pyproject.toml asks for.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements" / "dev.lock"
STAMP = "# pyproject-requirements-sha256: "


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """Every requirement the lock must satisfy: runtime, every extra, and the build backend."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    found = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        found.extend(extra)
    found.extend(data["build-system"]["requires"])
    return found


def inputs_digest(pyproject: Path = PYPROJECT) -> str:
    """A digest of what the lock was resolved from (the requirements and the Python range)."""
    data = tomllib.loads(pyproject.read_text())
    inputs = {"requires-python": data["project"].get("requires-python"), "requirements": requirements(pyproject)}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def stamp(lock: Path, pyproject: Path = PYPROJECT) -> None:
    """Write (or replace) the stamp line under the lock's header."""
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(STAMP)]
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    lines.insert(header, STAMP + inputs_digest(pyproject))
    lock.write_text("\n".join(lines) + "\n")


def stamped_digest(lock: Path = LOCK) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(STAMP):
            return line.removeprefix(STAMP).strip()
    return None


def pins(lock: Path = LOCK) -> dict[str, list[tuple[str, str]]]:
    """Normalised name -> [(version, environment marker)] for each pin (a universal lock may pin twice)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?$", line)
        if match:
            name, version, marker = match.groups()
            found.setdefault(normalise(name), []).append((version, marker or ""))
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    if sys.argv[1:2] != ["stamp"] or len(sys.argv) != 3:
        sys.exit("usage: python -m tests.lockfile stamp LOCK")
    stamp(Path(sys.argv[2]))
