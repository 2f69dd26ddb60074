"""A plan is data: steps with a title, the servers they run on, what they show and their undo.

`render` prints it (a dry run runs nothing); `apply` runs the steps in order and, on a failure or an
interrupt, undoes every step that finished or started, newest first.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tagship.errors import InterruptedUndone, TagshipError, UnfinishedError
from tagship.messages import t
from tagship.output import Output

Action = Callable[[], None]
LOCAL = "this machine"


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


@dataclass(frozen=True)
class Step:
    """One unit of work; undo (if any) puts things back as they were before it ran or started."""

    title: str
    servers: tuple[str, ...]
    action: Action
    undo: Action | None = None
    undo_title: str = ""
    shows: tuple[str, ...] = ()  # what a reader of the plan should see: key commands, files written
    no_return_hint: str = ""  # set on the point of no return (see Plan.point_of_no_return)


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    out: Output | None = None
    # An undo of this plan failed (and was reported): after a Ctrl-C, the run must not say that
    # everything is as it was (commands/deploy.py, rollback.py).
    undo_failed: bool = field(default=False, init=False)

    def add(
        self,
        title: str,
        action: Action,
        undo: Action | None = None,
        *,
        servers: tuple[str, ...] = (LOCAL,),
        undo_title: str = "",
        shows: Sequence[str] = (),
    ) -> None:
        self.steps.append(Step(title, servers, action, undo, undo_title, tuple(shows)))

    def point_of_no_return(self, live: str, hint: str) -> None:
        """From here on a failure undoes nothing before this point: what it did is live and stays.

        live: what is true once here ("v3 is live on every server"); hint: what a failure after it
        leaves behind, and what takes care of it.
        """
        self.steps.append(Step(live, (), _nothing, no_return_hint=hint))

    def add_each(
        self,
        title: str,
        items: Sequence[T],
        action: Callable[[T], None],
        undo: Callable[[T], None] | None = None,
        *,
        undo_title: str = "",
        shows: Sequence[str] = (),
    ) -> None:
        """One step that runs action for every item (server) at once.

        Its undo runs for each item whose action finished or started: an action cut short by a
        failure elsewhere or by Ctrl-C may have changed something, so undo functions must tolerate
        a half-done action.
        """
        touched: list[T] = []

        def undo_one(item: T) -> None:
            assert undo is not None
            try:
                undo(item)
            except Exception:  # reported where it is caught (_undo_each)
                self.undo_failed = True
                raise

        checked = undo_one if undo is not None else None

        def run_all() -> None:
            touched.clear()
            _parallel(items, _reported(title, action, self.out), touched, checked, self.out)

        def undo_all() -> None:
            assert checked is not None
            _undo_each(list(reversed(touched)), checked, self.out)

        servers = tuple(item.name for item in items)
        self.add(
            title,
            run_all,
            undo_all if undo is not None else None,
            servers=servers,
            undo_title=undo_title or (t("plan.undo_2", title=title) if undo else ""),
            shows=shows,
        )

    @property
    def numbered(self) -> int:
        """How many steps run (the point of no return only marks a place)."""
        return sum(1 for step in self.steps if not step.no_return_hint)

    def render(self, first: int = 1) -> list[str]:
        """The plan as text: numbered steps (from first: plans that run one after the other number on,
        as the steps are counted when they start), where each runs, what it shows, how it is undone."""
        lines: list[str] = []
        number = first - 1
        for step in self.steps:
            if step.no_return_hint:
                lines.append("   -- " + t("plan.render_no_return", title=step.title))
                continue
            number += 1
            lines.append(f"{number:>2}. {step.title}  [{', '.join(step.servers)}]")
            lines.extend(f"      {line}" for shown in step.shows for line in shown.splitlines())
            if step.undo is not None:
                lines.append("      " + t("plan.render_on_failure", undo=step.undo_title or t("plan.render_undo")))
        return lines


def _parallel(
    items: Sequence[T],
    action: Callable[[T], None],
    touched: list[T],
    undo: Callable[[T], None] | None,
    out: Output | None,
) -> None:
    """Run action on all items; if any fails or an interrupt comes, undo every item it touched, then raise.

    touched collects the items whose action started (in order), so the step's own undo, run later by
    apply for a failure in a later step, covers them too.
    """
    if len(items) <= 1:
        for item in items:
            touched.append(item)
            try:
                action(item)
            except BaseException:
                _undo_here(touched, undo, out)
                raise
        return
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures: list[tuple[T, Future[None]]] = []
        try:
            for item in items:
                touched.append(item)
                futures.append((item, pool.submit(action, item)))
            wait([f for _, f in futures])
        except BaseException:  # Ctrl-C in the main thread: the threads stop at their next command
            wait([f for _, f in futures])
            _undo_here(touched, undo, out)
            raise
    errors = [e for _, f in futures if (e := f.exception()) is not None]
    if not errors:
        return
    for extra in errors[1:]:
        if out is not None:
            out.error(str(extra), getattr(extra, "detail", ""))
    _undo_here(touched, undo, out)
    raise errors[0]


def _reported(title: str, action: Callable[[T], None], out: Output | None) -> Callable[[T], None]:
    """action, telling out when each item starts and ends it (the progress view's per-server lines)."""
    if out is None:
        return action

    def run(item: T) -> None:
        out.server_status(title, item.name, "started")
        started = time.monotonic()
        try:
            action(item)
        except BaseException:
            out.server_status(title, item.name, "failed", time.monotonic() - started)
            raise
        out.server_status(title, item.name, "done", time.monotonic() - started)

    return run


def _undo_here(touched: list[T], undo: Callable[[T], None] | None, out: Output | None) -> None:
    """Undo a step on the items it touched, right where it failed (the step never counts as finished)."""
    if undo is not None:
        _undo_each(list(reversed(touched)), undo, out)
    touched.clear()


def _undo_each(items: list[T], undo: Callable[[T], None], out: Output | None) -> None:
    """Undo on each item, one after the other; an undo that fails is reported and the rest still run."""
    for item in items:
        try:
            undo(item)
        except Exception as exc:  # not tagship's own too: the next undo must run whatever this one raised
            if out is not None:
                out.error(t("plan.could_not_undo_2", name=item.name, exc=_failure(exc, out)), _detail(exc))


@dataclass
class Interruption:
    """What a Ctrl-C left behind, learnt where the plans run and said once the run has ended.

    Before its point of no return a run undoes what it did; when every undo went through, the
    command ends with errors.InterruptedUndone ("the old release still serves and the lock is
    free"), said outside the history and the hooks, which record the Ctrl-C itself.
    """

    undone: bool = False

    @contextmanager
    def learnt(self, undone: Callable[[], bool]) -> Iterator[None]:
        """Around the plans: on a Ctrl-C, whether everything was undone (after a point of no return
        apply raises UnfinishedError instead, so it never lands here)."""
        try:
            yield
        except KeyboardInterrupt:
            self.undone = undone()
            raise

    @contextmanager
    def said(self) -> Iterator[None]:
        """Around the whole run: a Ctrl-C that left everything as it was ends in the line that says so."""
        try:
            yield
        except KeyboardInterrupt:
            if self.undone:
                raise InterruptedUndone from None
            raise


def all_undone(*plans: Plan) -> bool:
    """No undo of these plans failed."""
    return not any(plan.undo_failed for plan in plans)


def apply(plan: Plan, out: Output) -> None:
    """Run every step in order; on any failure undo the finished ones in reverse, then re-raise."""
    finished: list[Step] = []
    passed: Step | None = None  # the point of no return, once reached
    try:
        for step in plan.steps:
            if step.no_return_hint:
                passed = step
                finished.clear()  # forward only from here: the steps before it stay done
                out.info(t("plan.point_no_return_failure", title=step.title))
                continue
            out.banner(step.title)
            _kill_switch()
            started = time.monotonic()
            step.action()
            finished.append(step)  # before anything else: an interrupt from here on undoes it too
            out.done(step.title, time.monotonic() - started)
    except BaseException as exc:
        reason = t("common.interrupted") if isinstance(exc, KeyboardInterrupt) else t("plan.failed")
        if not undo_finished(finished, out, reason):
            plan.undo_failed = True
        if passed is not None and isinstance(exc, (TagshipError, KeyboardInterrupt)):
            raise UnfinishedError(passed.title, passed.no_return_hint, exc) from exc
        raise


# Test only (issue 11's SIGKILL and Ctrl-C drills): TAGSHIP_TEST_KILL_AT_STEP=N kills this process
# with SIGKILL as the Nth step it runs starts (numbered as a dry run numbers them; a rollback's two
# plans count on: connect 1, lock 2, its switch from 3); TAGSHIP_TEST_INTERRUPT_AT_STEP=N sends it
# SIGINT there instead, as Ctrl-C in its terminal does (its children run in sessions of their own);
# TAGSHIP_TEST_PAUSE_AT_STEP=N stops it there (SIGSTOP; its ssh connections stay open) until the test,
# having done what it needs at that exact point, sends SIGCONT. Unset, they do nothing.
KILL_AT_STEP = "TAGSHIP_TEST_KILL_AT_STEP"
INTERRUPT_AT_STEP = "TAGSHIP_TEST_INTERRUPT_AT_STEP"
PAUSE_AT_STEP = "TAGSHIP_TEST_PAUSE_AT_STEP"
_steps_started = itertools.count(1)


def _kill_switch() -> None:
    number = str(next(_steps_started))
    if os.environ.get(KILL_AT_STEP) == number:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(INTERRUPT_AT_STEP) == number:
        os.kill(os.getpid(), signal.SIGINT)
    if os.environ.get(PAUSE_AT_STEP) == number:
        os.kill(os.getpid(), signal.SIGSTOP)


def _nothing() -> None:
    """The point of no return's action: it only marks a place in the plan."""


def undo_finished(finished: list[Step], out: Output, reason: str) -> bool:
    """Undo finished steps, newest first; an undo that fails is reported and the rest still run.
    True if every undo went through."""
    pending = [step for step in reversed(finished) if step.undo is not None]
    if not pending:
        return True
    undone = True
    out.warn(t("plan.undoing_finished_step_s", reason=reason, count=len(pending)))
    for step in pending:
        assert step.undo is not None
        out.banner(step.undo_title or t("plan.undo", title=step.title))
        try:
            step.undo()
        except Exception as exc:  # not tagship's own too: the next undo must run whatever this one raised
            out.error(t("plan.could_not_undo", title=step.title, exc=_failure(exc, out)), _detail(exc))
            undone = False
    return undone


def _failure(exc: Exception, out: Output) -> str:
    """What an undo's exception says: tagship's own as it is, any other named as unexpected (its
    traceback with -v, through out, so masked like every line)."""
    if isinstance(exc, TagshipError):
        return str(exc)
    if out.verbose:
        out.traceback("".join(traceback.format_exception(exc)))
    return t("common.unexpected", kind=type(exc).__name__, text=exc)


def _detail(exc: Exception) -> str:
    return exc.detail if isinstance(exc, TagshipError) else ""
