"""The remote shell scripts: POSIX sh files in scripts/, shipped as package data, sent as they are."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The text of scripts/NAME.sh, exactly the string sent to `sh -c` (and run by the unit tests)."""
    return (resources.files("tagship.builders") / "scripts" / f"{name}.sh").read_text(encoding="utf-8")
