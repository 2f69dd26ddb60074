"""The health wait: Docker's health status, or HTTP probes in the proxy, until healthy, unhealthy, exited, too late."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tagship.builders.override import PublishedPort
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.errors import HealthError
from tagship.output import Output
from tagship.remote.transport import Result
from tagship.runtime.compose import switch
from tagship.runtime.compose.target import Target, targets_for
from tests.middle.clock import FakeClock
from tests.middle.recorder import Call, Script, sequence
from tests.middle.settings import H1

NEW = "h1-web-2"
INSPECT = f"docker inspect --type container {NEW}"
# Ten tries a tenth of a second apart, for a second at most.
PROBE = "docker exec tagship-proxy sh -c <probe until 2xx> sh http://app-web-2:8080/up 0.1 10 1"


def inspected(running: bool = True, health: str | None = None, exit_code: int = 0) -> Result:
    state: dict[str, Any] = {"Running": running, "Restarting": False, "ExitCode": exit_code}
    if health is not None:
        state["Health"] = {"Status": health}
    return Result(0, json.dumps([{"Id": NEW, "State": state, "RestartCount": 0}]), "")


@pytest.fixture
def target(config: Config, out: Output, script: Script) -> Target:
    """h1 after its new container started (what start_new learned)."""
    script.on("docker logs --tail 20", Result(0, "listening on :8080\npanic: no database\n", ""))
    found = targets_for(config, Connections(config, out), ("compose.yaml",))[0]
    found.web.new = {NEW: "app-web-2"}
    found.web.ports = (PublishedPort(18100, 8080),)
    return found


def wait(config: Config, target: Target) -> None:
    switch.wait_healthy(config, target, service="web")


def probe_batch(clock: FakeClock, code: int) -> Callable[[Call], Result]:
    """A batch of HTTP probes inside the proxy: it takes its second, then answers."""

    def answer(call: Call) -> Result:
        clock.now += switch.PROBE_BATCH_SECONDS
        return Result(code, "", "")

    return answer


def test_a_docker_healthcheck_is_polled_until_healthy(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    starting, healthy = inspected(health="starting"), inspected(health="healthy")
    script.on(INSPECT, sequence(starting, starting, healthy))
    wait(config, target)
    assert script.shown(H1) == [INSPECT] * 3, "Docker's own check decides: no HTTP probe"
    assert clock.sleeps == [0.1, 0.1]


def test_an_unhealthy_container_fails_at_once_with_its_last_log_lines(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    script.on(INSPECT, sequence(inspected(health="starting"), inspected(health="unhealthy")))
    with pytest.raises(
        HealthError, match=r"is unhealthy \(Docker healthcheck is unhealthy\); the proxy was not"
    ) as caught:
        wait(config, target)
    assert "panic: no database" in caught.value.detail
    assert script.shown(H1) == [INSPECT, INSPECT, "docker logs --tail 20 h1-web-2"]
    assert clock.sleeps == [0.1]


def test_a_container_that_exits_fails_before_the_timeout(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    script.on(INSPECT, inspected(running=False, exit_code=3))
    with pytest.raises(HealthError, match=f"{H1}: the new web container exited with code 3"):
        wait(config, target)
    assert clock.sleeps == []


def test_a_container_that_stays_starting_fails_at_the_health_timeout(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    script.on(INSPECT, inspected(health="starting"))
    with pytest.raises(HealthError, match=r"did not become healthy in 5s \(Docker healthcheck is starting\)"):
        wait(config, target)
    assert sum(clock.sleeps) == pytest.approx(config.health.timeout, abs=0.15), "polled until the timeout, not past it"


def test_without_a_docker_healthcheck_http_probes_run_in_the_proxy_until_one_answers(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    script.on(INSPECT, inspected())
    script.on(PROBE, probe_batch(clock, 1), times=2)
    script.on(PROBE, probe_batch(clock, 0))
    wait(config, target)
    assert script.shown(H1) == [INSPECT, PROBE, INSPECT, PROBE, INSPECT, PROBE]
    assert clock.sleeps == [], "the probes wait inside the proxy"


def test_http_probes_stop_when_the_container_exits(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    script.on(INSPECT, sequence(inspected(), inspected(running=False, exit_code=137)))
    script.on(PROBE, probe_batch(clock, 1))
    with pytest.raises(HealthError, match="exited with code 137"):
        wait(config, target)
    assert [c for c in script.shown(H1) if c == PROBE] == [PROBE]


def with_check(health: str, test: list[str], timeout_ns: int = 3_000_000_000) -> Result:
    """docker inspect of a container whose compose file (or image) declares a Docker healthcheck."""
    info = json.loads(inspected(health=health).stdout)[0]
    info["Config"] = {"Healthcheck": {"Test": test, "Interval": 30_000_000_000, "Timeout": timeout_ns}}
    return Result(0, json.dumps([info]), "")


EXEC = f"<healthcheck until it passes> sh {NEW} 0.1 10 3"


@pytest.mark.parametrize(
    ("test", "argv"),
    [
        (
            ["CMD-SHELL", "python -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:8000/healthz/\")'"],
            "/bin/sh -c",
        ),
        (["CMD", "redis-cli", "ping"], "redis-cli ping"),
    ],
    ids=["CMD-SHELL", "CMD"],
)
def test_the_containers_own_healthcheck_runs_at_tagships_pace_not_dockers_interval(
    config: Config, target: Target, script: Script, clock: FakeClock, test: list[str], argv: str
) -> None:
    script.on(INSPECT, with_check("starting", test))  # Docker's first check is 30 s away
    script.on(EXEC, probe_batch(clock, 1), times=1)
    script.on(EXEC, probe_batch(clock, 0))
    started = clock.now
    wait(config, target)
    sent = script.shown(H1)
    assert sent == [INSPECT, sent[1], INSPECT, sent[3]] and all(EXEC in c for c in sent[1::2]), sent
    assert argv in sent[1], "the same command Docker runs"
    assert clock.now - started < 3, "passed after two batches, long before Docker's 30 s interval"


def test_docker_calling_the_container_unhealthy_fails_even_while_tagships_check_waits(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    test = ["CMD", "redis-cli", "ping"]
    script.on(INSPECT, sequence(with_check("starting", test), with_check("unhealthy", test)))
    script.on(EXEC, probe_batch(clock, 1))
    with pytest.raises(
        HealthError, match=r"is unhealthy \(its healthcheck command did not pass; Docker healthcheck is unhealthy\)"
    ):
        wait(config, target)


def test_health_mode_http_probes_http_even_with_a_docker_healthcheck(
    config: Config, target: Target, script: Script, clock: FakeClock
) -> None:
    http = replace(config, health=replace(config.health, mode="http"))
    script.on(INSPECT, with_check("starting", ["CMD", "true"]))
    script.on(PROBE, probe_batch(clock, 0))
    wait(http, target)
    assert script.shown(H1) == [INSPECT, PROBE]
