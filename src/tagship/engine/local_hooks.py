"""[hooks.local]: shell lines run on the deploying machine, through the local transport, with the
run's facts in TAGSHIP_* variables. A failing before_* hook stops the run; the others only warn."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tagship.builders.report import Report, local_hook
from tagship.engine.plan import Plan
from tagship.errors import CommandFailed, TagshipError
from tagship.messages import t
from tagship.remote.transport import Transport


def plan_before(plan: Plan, phase: str, lines: Sequence[str], local: Transport, root: Path, report: Report) -> None:
    """A step that runs the phase's hooks (before_build, before_deploy), if there are any."""
    if lines:
        run = partial(run_before, phase, lines, local, root, report)
        plan.add(t("hooks.run_hooks_this_machine", phase=phase), run, shows=lines)


def run_before(phase: str, lines: Sequence[str], local: Transport, root: Path, report: Report) -> None:
    """Run each hook in order; the first that fails stops the run (exit 1)."""
    for line in lines:
        try:
            local.run(local_hook(line, str(root), report), stream=True)
        except CommandFailed as exc:
            raise TagshipError(
                t("hooks.hook_failed_exit_stopped", phase=phase, line=line, code=exc.code, command=report.command),
                hint=t("hooks.fix_hook_hooks_local"),
                detail=exc.stderr_tail,
            ) from exc


def run_after(phase: str, lines: Sequence[str], local: Transport, root: Path, report: Report) -> None:
    """Run every hook (after_deploy, on_failure); one that fails is a warning and the rest still run."""
    for line in lines:
        try:
            local.run(local_hook(line, str(root), report), stream=True)
        except CommandFailed as exc:
            local.out.warn(
                t("hooks.hook_failed_exit_result", phase=phase, line=line, code=exc.code, command=report.command)
            )
