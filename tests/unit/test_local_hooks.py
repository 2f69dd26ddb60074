"""engine/local_hooks with real processes (through LocalTransport): environment, directory, failures."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from tagship.builders.report import Report
from tagship.engine import local_hooks
from tagship.engine.plan import Plan
from tagship.errors import EXIT_FAILED, TagshipError
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import LocalTransport

REPORT = Report(
    command="deploy",
    version="v2",
    commit="c0ffee" * 6 + "abcd",
    image="reg/ns/app:v2",
    servers=("web1", "deploy@web2 -p 2022"),
    deployer="Alice (alice@laptop)",
)


@pytest.fixture
def local() -> LocalTransport:
    return LocalTransport(server=server.parse("local"), out=Output(out=io.StringIO(), err=io.StringIO()))


def printed(local: LocalTransport) -> str:
    assert isinstance(local.out.err, io.StringIO)
    return local.out.err.getvalue()


def test_a_hook_runs_in_the_project_directory_with_the_facts_in_its_environment(
    tmp_path: Path, local: LocalTransport
) -> None:
    ended = replace(REPORT, result="failed", error="the new release did not become healthy", seconds=12.34)
    local_hooks.run_after(
        "on_failure", ['env > seen.env; pwd > seen.dir; echo "hook says $TAGSHIP_RESULT"'], local, tmp_path, ended
    )
    seen = dict(line.split("=", 1) for line in (tmp_path / "seen.env").read_text().splitlines() if "=" in line)
    assert (tmp_path / "seen.dir").read_text().strip() == str(tmp_path)
    assert seen["TAGSHIP_VERSION"] == "v2" and seen["TAGSHIP_COMMIT"] == "c0ffee" * 6 + "abcd"
    assert seen["TAGSHIP_IMAGE"] == "reg/ns/app:v2" and seen["TAGSHIP_SERVERS"] == "web1,deploy@web2 -p 2022"
    assert seen["TAGSHIP_DEPLOYER"] == "Alice (alice@laptop)" and seen["TAGSHIP_COMMAND"] == "deploy"
    assert (seen["TAGSHIP_RESULT"], seen["TAGSHIP_DURATION"]) == ("failed", "12.3")
    assert seen["TAGSHIP_ERROR"] == "the new release did not become healthy"
    assert "PATH" in seen, "the hook keeps tagship's own environment"
    assert "[local] hook says failed" in printed(local), "its output is shown as it runs"


def test_a_failing_before_hook_stops_the_run_with_exit_1_and_the_later_hooks_never_run(
    tmp_path: Path, local: LocalTransport
) -> None:
    lines = ["true", "echo 'CI is red for v2' >&2; exit 3", "touch ran-too-far"]
    with pytest.raises(TagshipError) as caught:
        local_hooks.run_before("before_deploy", lines, local, tmp_path, REPORT)
    assert caught.value.exit_code == EXIT_FAILED
    assert str(caught.value).startswith(
        "the before_deploy hook `echo 'CI is red for v2' >&2; exit 3` failed (exit 3); the deploy stopped there"
    )
    assert "CI is red for v2" in caught.value.detail
    assert not (tmp_path / "ran-too-far").exists()


def test_a_failing_after_hook_only_warns_and_the_rest_still_run(tmp_path: Path, local: LocalTransport) -> None:
    ended = replace(REPORT, result="succeeded", seconds=1.0)
    local_hooks.run_after("after_deploy", ["exit 4", "touch still-ran"], local, tmp_path, ended)
    assert (tmp_path / "still-ran").exists()
    assert "warning: the after_deploy hook `exit 4` failed (exit 4); the deploy result stands" in printed(local)


def test_before_hooks_are_a_plan_step_only_when_there_are_some(tmp_path: Path, local: LocalTransport) -> None:
    plan = Plan()
    local_hooks.plan_before(plan, "before_build", (), local, tmp_path, REPORT)
    assert plan.steps == []
    local_hooks.plan_before(plan, "before_build", ["make check", "./lint.sh"], local, tmp_path, REPORT)
    assert plan.render() == [
        " 1. run the before_build hooks on this machine  [this machine]",
        "      make check",
        "      ./lint.sh",
    ]
    assert not list(tmp_path.iterdir()), "planning runs nothing"
