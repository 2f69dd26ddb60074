"""A plan is a list of steps, each with its undo; the executor undoes finished steps on failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import TagshipError
from .output import Output

Action = Callable[[], None]


@dataclass(frozen=True)
class Step:
    """One unit of work; undo (if any) puts things back as they were before it ran."""

    title: str
    action: Action
    undo: Action | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    def add(self, title: str, action: Action, undo: Action | None = None) -> None:
        self.steps.append(Step(title, action, undo))


def apply(plan: Plan, out: Output) -> None:
    """Run every step in order; on any failure undo the finished ones in reverse, then re-raise."""
    finished: list[Step] = []
    try:
        for step in plan.steps:
            out.banner(step.title)
            started = time.monotonic()
            step.action()
            out.done(step.title, time.monotonic() - started)
            finished.append(step)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        undo_finished(finished, out, reason)
        raise


def undo_finished(finished: list[Step], out: Output, reason: str) -> None:
    """Undo finished steps, newest first; an undo that fails is reported and the rest still run."""
    pending = [step for step in reversed(finished) if step.undo is not None]
    if not pending:
        return
    out.warn(f"deploy {reason}: undoing {len(pending)} finished step(s)")
    for step in pending:
        assert step.undo is not None
        out.banner(f"undo: {step.title}")
        try:
            step.undo()
        except TagshipError as exc:
            out.error(f"could not undo {step.title!r}: {exc}", exc.detail)
