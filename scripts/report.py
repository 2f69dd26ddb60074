"""The end of scripts/test.sh: a table of its phases, the 15 slowest tests, and one line of counts.

`python scripts/report.py DIR` reads DIR/phases.tsv (name, milliseconds, exit code per line) and the
JUnit XML files pytest wrote there.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SLOWEST = 15


def phases(folder: Path) -> list[tuple[str, float, int]]:
    rows = []
    for line in (folder / "phases.tsv").read_text().splitlines():
        name, millis, code = line.split("\t")
        rows.append((name, int(millis) / 1000, int(code)))
    return rows


def cases(folder: Path) -> list[tuple[str, float, str]]:
    """(test id, seconds, outcome) of every test in the JUnit files."""
    found = []
    for path in sorted(folder.glob("*.xml")):
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "skipped"
            found.append((name, float(case.get("time") or 0), outcome))
    return found


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60):d}:{seconds % 60:04.1f}"


def main(folder: Path) -> None:
    print("\nphase                                   time     exit")
    for name, seconds, code in phases(folder):
        print(f"{name:38}  {minutes(seconds):>8}  {code:>4}")
    tests = cases(folder)
    if not tests:
        return
    print(f"\nthe {SLOWEST} slowest tests")
    for name, seconds, outcome in sorted(tests, key=lambda test: -test[1])[:SLOWEST]:
        print(f"{minutes(seconds):>8}  {outcome:7}  {name}")
    counts = {outcome: sum(1 for test in tests if test[2] == outcome) for outcome in ("passed", "failed", "skipped")}
    line = f"tests: {counts['passed']} passed, {counts['failed']} failed"
    print("\n" + line + (f", {counts['skipped']} skipped" if counts["skipped"] else ""))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
