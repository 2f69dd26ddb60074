"""The executor runs steps in order and undoes finished ones in reverse when one fails."""

import io

import pytest

from tagship.engine.plan import Plan, apply
from tagship.errors import HealthError, TagshipError, UnfinishedError
from tagship.output import Output


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


def live_plan(log: list[str], failure: BaseException) -> Plan:
    plan = Plan()
    plan.add("switch", lambda: log.append("switch"), lambda: log.append("switch back"))
    plan.point_of_no_return("v3 is live on every server", hint="old containers get no traffic")
    plan.add("retire one", lambda: log.append("retire one"), lambda: log.append("undo retire one"))

    def broken() -> None:
        raise failure

    plan.add("retire two", broken)
    return plan


def test_a_failure_after_the_point_of_no_return_undoes_nothing_before_it() -> None:
    log: list[str] = []
    with pytest.raises(UnfinishedError) as caught:
        apply(live_plan(log, HealthError("docker stop failed", detail="daemon said no")), quiet())
    assert log == ["switch", "retire one", "undo retire one"], "the switch stays"
    error = caught.value
    assert error.exit_code == 9 and error.detail == "daemon said no"
    assert str(error).startswith("v3 is live on every server, nothing was undone; then: docker stop failed")


def test_ctrl_c_after_the_point_of_no_return_keeps_the_release_and_exits_130() -> None:
    log: list[str] = []
    with pytest.raises(UnfinishedError) as caught:
        apply(live_plan(log, KeyboardInterrupt()), quiet())
    assert log == ["switch", "retire one", "undo retire one"]
    assert caught.value.exit_code == 130 and "interrupted" in str(caught.value)


class Server:
    def __init__(self, name: str) -> None:
        self.name = name


def test_an_undo_that_raises_an_unexpected_error_stops_no_other_undo() -> None:
    """An undo that raises something other than tagship's own (a bug, an OSError) is reported,
    masked, and every remaining undo still runs, per server and per step; the run ends with the
    failure that started the undo (its exit code)."""
    log: list[str] = []
    out = quiet()
    out.add_secret("s3cret")

    def undo_server(server: Server) -> None:
        if server.name == "h2":
            raise OSError("no such file: s3cret.env")
        log.append(f"undo upload {server.name}")

    def bad_step_undo() -> None:
        raise ValueError("bad value s3cret")

    plan = Plan(out=out)
    plan.add("one", lambda: None, lambda: log.append("undo 1"))
    plan.add_each("upload", [Server("h1"), Server("h2"), Server("h3")], lambda s: None, undo_server)
    plan.add("two", lambda: None, bad_step_undo)
    plan.add("three", lambda: None, lambda: log.append("undo 3"))

    def broken() -> None:
        raise HealthError("not healthy")

    plan.add("gate", broken)
    with pytest.raises(HealthError) as caught:
        apply(plan, out)
    assert caught.value.exit_code == 8
    assert log == ["undo 3", "undo upload h3", "undo upload h1", "undo 1"]
    assert isinstance(out.err, io.StringIO)
    said = out.err.getvalue()
    assert "could not undo on h2: unexpected OSError: no such file: ***.env" in said
    assert "could not undo 'two': unexpected ValueError: bad value ***" in said
    assert "s3cret" not in said
