"""Start-up time of the command line: `tagship --help` and `tagship deploy --help` in fresh processes.

Run from the repository root: `python bench/cli_start.py [--runs 31] [--rev ea4deb7]`.

Each run starts a new `python -m tagship ...` process (the code of this checkout's src/, or of
--rev's, on PYTHONPATH) and measures its wall time to exit, output discarded. The baseline, measured
in the same rounds, is `python -c pass`: the interpreter's own start, which no CLI can go below; the
difference is what tagship adds. `import click` is shown too, the framework's share. The commands
take turns within each round, so a change in the machine's load touches them all alike. Beside the
wall time, each process's CPU time (user + system, from wait4): on a busy machine the wall time
includes waiting for a core, the CPU time does not. Target (issue 13): `tagship --help` at most
150 ms. Prints medians and minimums, in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 150.0


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process, in milliseconds."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed (wait status {status})")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def snapshot(rev: str, into: Path) -> Path:
    """src/ as of a commit, for a before/after comparison."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def cases(rev_src: Path | None, rev: str) -> list[tuple[str, list[str], str]]:
    """(label, argv, PYTHONPATH) for every command measured."""
    python = sys.executable
    here = str(ROOT / "src")
    found = [
        ("python -c pass (baseline)", [python, "-c", "pass"], ""),
        ("python -c 'import click'", [python, "-c", "import click"], ""),
        ("tagship --help", [python, "-m", "tagship", "--help"], here),
        ("tagship deploy --help", [python, "-m", "tagship", "deploy", "--help"], here),
        ("tagship --lang zh --help", [python, "-m", "tagship", "--lang", "zh", "--help"], here),
        ("tagship completion bash", [python, "-m", "tagship", "completion", "bash"], here),
    ]
    if rev_src is not None:
        found += [
            (f"tagship --help @ {rev}", [python, "-m", "tagship", "--help"], str(rev_src)),
            (f"tagship deploy --help @ {rev}", [python, "-m", "tagship", "deploy", "--help"], str(rev_src)),
        ]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="fresh processes per command (default 31)")
    parser.add_argument("--rev", default="", help="also measure src/ as of this commit (e.g. the argparse CLI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rev_src = snapshot(args.rev, Path(scratch)) if args.rev else None
        measured_cases = cases(rev_src, args.rev)
        times: dict[str, list[float]] = {label: [] for label, _, _ in measured_cases}
        cpu: dict[str, list[float]] = {label: [] for label, _, _ in measured_cases}
        load_before = os.getloadavg()[0]
        for _ in range(args.runs):
            for label, argv, path in measured_cases:
                env = {**os.environ, "PYTHONPATH": path} if path else dict(os.environ)
                env.pop("_TAGSHIP_COMPLETE", None)
                wall, used = measured(argv, env)
                times[label].append(wall)
                cpu[label].append(used)
        load_after = os.getloadavg()[0]
    report(times, cpu, args.runs, load_before, load_after)
    return 0


def report(
    times: dict[str, list[float]], cpu: dict[str, list[float]], runs: int, load_before: float, load_after: float
) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"CLI start-up, {now}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"Python {platform.python_version()}, Click {version('click')}, HEAD {commit.stdout.strip()}")
    print(f"{runs} fresh processes per command; load average (1 min) {load_before:.1f} -> {load_after:.1f}")
    print()
    baseline = statistics.median(next(iter(times.values())))
    cpu_baseline = statistics.median(next(iter(cpu.values())))
    print(f"{'':<36} {'wall time, ms':^34} {'CPU time, ms':^20}".rstrip())
    print(f"{'command':<36} {'median':>10} {'min':>8} {'over base':>14} {'median':>9} {'over base':>10}")
    for label, values in times.items():
        median, used = statistics.median(values), statistics.median(cpu[label])
        print(
            f"{label:<36} {median:>10.1f} {min(values):>8.1f} {median - baseline:>+14.1f}"
            f" {used:>9.1f} {used - cpu_baseline:>+10.1f}"
        )
    help_median = statistics.median(times["tagship --help"])
    verdict = "met" if help_median <= TARGET_MS else "MISSED"
    print(f"\ntarget: tagship --help <= {TARGET_MS:.0f} ms median: {verdict} ({help_median:.1f} ms)")


if __name__ == "__main__":
    sys.exit(main())
