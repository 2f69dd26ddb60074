"""The executor runs steps in order and undoes finished ones in reverse when one fails."""

import io

import pytest

from tagship.errors import HealthError, TagshipError
from tagship.output import Output
from tagship.plan import Plan, apply


def quiet() -> Output:
    return Output(err=io.StringIO(), out=io.StringIO())


def test_failure_undoes_finished_steps_newest_first_and_reraises() -> None:
    log: list[str] = []
    plan = Plan()
    plan.add("one", lambda: log.append("do 1"), lambda: log.append("undo 1"))
    plan.add("two", lambda: log.append("do 2"))
    plan.add("three", lambda: log.append("do 3"), lambda: log.append("undo 3"))

    def broken() -> None:
        raise HealthError("not healthy")

    plan.add("four", broken, lambda: log.append("undo 4 must not run"))
    with pytest.raises(HealthError):
        apply(plan, quiet())
    assert log == ["do 1", "do 2", "do 3", "undo 3", "undo 1"]


def test_a_failing_undo_is_reported_and_the_others_still_run() -> None:
    log: list[str] = []
    out = quiet()

    def bad_undo() -> None:
        raise TagshipError("cannot restore")

    plan = Plan()
    plan.add("one", lambda: None, lambda: log.append("undo 1"))
    plan.add("two", lambda: None, bad_undo)
    plan.add("boom", lambda: (_ for _ in ()).throw(TagshipError("boom")))
    with pytest.raises(TagshipError, match="boom"):
        apply(plan, out)
    assert log == ["undo 1"]
    assert isinstance(out.err, io.StringIO) and "cannot restore" in out.err.getvalue()


def test_ctrl_c_also_undoes() -> None:
    log: list[str] = []
    plan = Plan()
    plan.add("one", lambda: None, lambda: log.append("undo 1"))

    def interrupt() -> None:
        raise KeyboardInterrupt

    plan.add("two", interrupt)
    with pytest.raises(KeyboardInterrupt):
        apply(plan, quiet())
    assert log == ["undo 1"]
