"""Workers are replaced as their deploy.update_config says: order, parallelism, delay."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.output import Output
from tagship.remote.transport import Result
from tagship.runtime.compose import switch
from tagship.runtime.compose.target import Target, targets_for
from tests.middle.clock import FakeClock
from tests.middle.recorder import Call, Script


class Worker:
    """A worker service on one server: which of its containers run, as the commands leave them."""

    def __init__(self, old: list[str]) -> None:
        self.running = list(old)
        self.most_at_once = len(old)
        self.made = 0
        self.events: list[str] = []

    def scale(self, call: Call) -> Result:
        wanted = int(re.search(r"--scale beat=(\d+)", call.shown).group(1))  # type: ignore[union-attr]
        assert wanted >= len(self.running), "tagship never asks compose to scale down (it would pick)"
        while len(self.running) < wanted:
            self.made += 1
            name = f"new-{self.made}"
            self.running.append(name)
            self.events.append(f"start {name}")
        self.most_at_once = max(self.most_at_once, len(self.running))
        return Result(0, "", "")

    def stop(self, call: Call) -> Result:
        for name in call.argv[4:]:
            self.running.remove(name)
            self.events.append(f"stop {name}")
        return Result(0, "", "")


def replace(config: Config, out: Output, script: Script, old: list[str], declared: dict[str, Any]) -> Worker:
    worker = Worker(old)
    script.on("--scale beat=", worker.scale)
    script.on("docker stop --time", worker.stop)
    target: Target = targets_for(config, Connections(config, out), ("compose.yaml",))[0]
    target.web.rendered = {"services": {"beat": {"image": "reg/ns/app:v2", "deploy": declared}}}
    target.web.old_workers = {"beat": list(old)}
    switch.replace_workers(config, target)
    return worker


def test_a_stop_first_singleton_never_runs_twice(config: Config, out: Output, script: Script) -> None:
    worker = replace(config, out, script, ["old-1"], {"update_config": {"order": "stop-first"}})
    assert worker.events == ["stop old-1", "start new-1"]
    assert worker.most_at_once == 1 and worker.running == ["new-1"]


def test_start_first_is_the_default_for_workers(config: Config, out: Output, script: Script) -> None:
    worker = replace(config, out, script, ["old-1", "old-2"], {"replicas": 2})
    assert worker.events == ["start new-1", "start new-2", "stop old-1", "stop old-2"]
    assert worker.running == ["new-1", "new-2"]


@pytest.mark.parametrize(
    ("order", "events", "most"),
    [
        (
            "stop-first",
            ["stop old-1", "start new-1", "stop old-2", "start new-2", "stop old-3", "start new-3"],
            3,
        ),
        (
            "start-first",
            ["start new-1", "stop old-1", "start new-2", "stop old-2", "start new-3", "stop old-3"],
            4,
        ),
    ],
)
def test_parallelism_and_delay_replace_in_batches(
    config: Config, out: Output, script: Script, clock: FakeClock, order: str, events: list[str], most: int
) -> None:
    declared = {"replicas": 3, "update_config": {"order": order, "parallelism": 1, "delay": "2s"}}
    worker = replace(config, out, script, ["old-1", "old-2", "old-3"], declared)
    assert worker.events == events
    assert worker.most_at_once == most and worker.running == ["new-1", "new-2", "new-3"]
    assert clock.sleeps == [2.0, 2.0], "the declared delay between batches"
