"""A plan is a list of steps, each with its undo; the executor undoes finished steps on failure."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tagship.errors import TagshipError, UnfinishedError
from tagship.output import Output

Action = Callable[[], None]


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


@dataclass(frozen=True)
class Step:
    """One unit of work; undo (if any) puts things back as they were before it ran."""

    title: str
    action: Action
    undo: Action | None = None
    no_return_hint: str = ""  # set on the point of no return (see Plan.point_of_no_return)


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    out: Output | None = None

    def add(self, title: str, action: Action, undo: Action | None = None) -> None:
        self.steps.append(Step(title, action, undo))

    def point_of_no_return(self, live: str, hint: str) -> None:
        """From here on a failure undoes nothing before this point: what it did is live and stays.

        live: what is true once here ("v3 is live on every server"); hint: what a failure after it
        leaves behind, and what takes care of it.
        """
        self.steps.append(Step(live, _nothing, no_return_hint=hint))

    def add_each(
        self, title: str, items: Sequence[T], action: Callable[[T], None], undo: Callable[[T], None] | None = None
    ) -> None:
        """One step that runs action for every item (server) at once; undone for each item it did."""
        done: list[T] = []

        def run_all() -> None:
            done.clear()
            _parallel(items, action, done, undo, self.out)

        def undo_all() -> None:
            assert undo is not None
            _parallel(list(reversed(done)), undo, [], None, self.out)

        self.add(title, run_all, undo_all if undo is not None else None)


def _parallel(
    items: Sequence[T], action: Callable[[T], None], done: list[T], undo: Callable[[T], None] | None, out: Output | None
) -> None:
    """Run action on all items in threads; if any fails, undo the ones that succeeded, raise the first error."""
    if len(items) <= 1:
        for item in items:
            action(item)
            done.append(item)
        return
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [(item, pool.submit(action, item)) for item in items]
        errors: list[BaseException] = []
        for item, future in futures:
            error = future.exception()
            if error is None:
                done.append(item)
            else:
                errors.append(error)
    if not errors:
        return
    for extra in errors[1:]:
        if out is not None:
            out.error(str(extra), getattr(extra, "detail", ""))
    if undo is not None:
        for item in reversed(done):
            try:
                undo(item)
            except TagshipError as exc:
                if out is not None:
                    out.error(f"could not undo on {item.name}: {exc}", exc.detail)
    raise errors[0]


def apply(plan: Plan, out: Output) -> None:
    """Run every step in order; on any failure undo the finished ones in reverse, then re-raise."""
    finished: list[Step] = []
    passed: Step | None = None  # the point of no return, once reached
    try:
        for step in plan.steps:
            if step.no_return_hint:
                passed = step
                finished.clear()  # forward only from here: the steps before it stay done
                out.info(f"{step.title} (the point of no return: a failure from here undoes nothing)")
                continue
            out.banner(step.title)
            started = time.monotonic()
            step.action()
            out.done(step.title, time.monotonic() - started)
            finished.append(step)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        undo_finished(finished, out, reason)
        if passed is not None and isinstance(exc, (TagshipError, KeyboardInterrupt)):
            raise UnfinishedError(passed.title, passed.no_return_hint, exc) from exc
        raise


def _nothing() -> None:
    """The point of no return's action: it only marks a place in the plan."""


def undo_finished(finished: list[Step], out: Output, reason: str) -> None:
    """Undo finished steps, newest first; an undo that fails is reported and the rest still run."""
    pending = [step for step in reversed(finished) if step.undo is not None]
    if not pending:
        return
    out.warn(f"{reason}: undoing {len(pending)} finished step(s)")
    for step in pending:
        assert step.undo is not None
        out.banner(f"undo: {step.title}")
        try:
            step.undo()
        except TagshipError as exc:
            out.error(f"could not undo {step.title!r}: {exc}", exc.detail)
