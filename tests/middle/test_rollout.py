"""[rollout] on recording transports: a canary first, rolling batches, the watch after a switch, the summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import HealthError, InterruptedUndone
from tagship.output import Output
from tagship.remote import interrupt
from tagship.remote.transport import Result
from tests.middle.clock import FakeClock
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import AUDIT, FakeHost, attach
from tests.middle.recorder import Call, Script, printed
from tests.middle.settings import H1, H2, write_config


def deploy(config: Config, out: Output, *, dry_run: bool = False) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=dry_run))


def rollout(tmp_path: Path, text: str) -> Config:
    return write_config(tmp_path, f"\n[rollout]\n{text}\n")


def summary(out: Output) -> list[str]:
    """The summary table's rows, each with single spaces between its cells."""
    lines = printed(out).split("summary:\n", 1)[1].splitlines()
    return [" ".join(line.split()) for line in lines if line.startswith("  ")]


def switched(script: Script, server: str) -> bool:
    """The server got the new release's containers started (its batch ran up to the switch)."""
    return any("--scale web=2 web" in line for line in script.shown(server))


def first_at(script: Script, server: str, needle: str) -> int:
    return next(i for i, c in enumerate(script.calls) if c.server == server and needle in c.shown)


def last_at(script: Script, server: str, needle: str) -> int:
    return max(i for i, c in enumerate(script.calls) if c.server == server and needle in c.shown)


def back_route_sent(script: Script, server: str, action: str) -> str:
    """The back route the first proxy_routes.sh ACTION (switch, reroute) on server sent."""
    argv = next(c.argv for c in script.of(server) if "<switch routes>" in c.shown and f"sh {action} " in c.shown)
    return argv[argv.index(action) + 6]


def test_a_canary_that_fails_leaves_the_other_servers_untouched_and_goes_back_itself(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    config = rollout(tmp_path, f'strategy = "canary"\ncanary = "{H2}"\ncanary_watch = 0')
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2", crash_on_start=True))
    with pytest.raises(HealthError):
        deploy(config, out)
    assert switched(script, H2) and not switched(script, H1), "the canary goes first; the rest never start"
    assert not any("docker pull" in line for line in script.shown(H1)), "nothing of the release reaches h1"
    for name, host in hosts.items():
        assert host.env_tag() == "v1" and host.served() == "app-web-1", name
        assert host.lock_holder == "", name
    assert [(r.version, r.result) for r in hosts[H2].history()][-1] == ("v2", "failed")
    assert [(r.version, r.result) for r in hosts[H1].history()] == [("v1", "succeeded")], "no entry: never started"
    assert "not deployed" in hosts[H1].files[AUDIT]
    assert "the canary: root@h2.invalid" in printed(out)
    assert summary(out)[1:] == [
        "root@h1.invalid v1 (kept) not started -",
        "root@h2.invalid v1 (kept) failed, undone 0.0",
    ]


def test_a_healthy_canary_is_watched_then_the_rest_follow(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout, clock: FakeClock
) -> None:
    config = rollout(tmp_path, 'strategy = "canary"\ncanary_watch = 30')
    deploy(config, out)
    assert last_at(script, H1, "docker stop --time 10 h1-web-1") < first_at(script, H2, "mkdir -p /srv/app")
    assert sum(clock.sleeps) >= 30, "the canary was watched for canary_watch seconds"
    for name, host in hosts.items():
        assert host.env_tag() == "v2" and host.served() == "app-web-2", name
        assert [(r.version, r.result) for r in host.history()][-1] == ("v2", "succeeded"), name
        assert "lb_policy first" not in host.routes["back"], f"{name}: the old release is no backup after the watch"
    # While watched, the back tier (host names, the gate) keeps the old container last, as a backup.
    switch, reroute = (back_route_sent(script, H1, action) for action in ("switch", "reroute"))
    assert "reverse_proxy app-web-2:8080 app-web-1:8080 {" in switch and "lb_policy first" in switch
    assert "reverse_proxy app-web-2:8080 {" in reroute and "lb_policy" not in reroute
    rows = summary(out)
    assert rows[0] == "server release result seconds"
    assert [row.rsplit(" ", 1)[0] for row in rows[1:]] == [
        "root@h1.invalid v1 -> v2 switched",
        "root@h2.invalid v1 -> v2 switched",
    ]


def test_rolling_batches_of_one_switch_one_server_after_the_other(
    tmp_path: Path,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = rollout(tmp_path, 'strategy = "rolling"\nbatch = 1\npause = 7')
    monkeypatch.setattr(deploy_command, "time", clock)
    deploy(config, out)
    assert last_at(script, H1, "history entry") > first_at(script, H2, "mkdir -p /srv/app"), "one history at the end"
    assert last_at(script, H1, "docker rm --force h1-worker-1") < first_at(script, H2, "mkdir -p /srv/app")
    assert 7 in clock.sleeps, "rollout.pause between the batches"
    assert all(host.env_tag() == "v2" for host in hosts.values())
    assert "batch 2 of 2: root@h2.invalid" in printed(out)


def test_a_failed_second_batch_is_undone_and_the_first_keeps_the_new_release(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    config = rollout(tmp_path, 'strategy = "rolling"\nbatch = "50%"')
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2", crash_on_start=True))
    with pytest.raises(HealthError):
        deploy(config, out)
    assert hosts[H1].env_tag() == "v2" and hosts[H1].served() == "app-web-2"
    assert hosts[H2].env_tag() == "v1" and hosts[H2].served() == "app-web-1"
    assert [(r.version, r.result, r.error) for r in hosts[H1].history()][-1] == ("v2", "succeeded", "")
    assert [(r.version, r.result) for r in hosts[H2].history()][-1] == ("v2", "failed")
    assert [row.rsplit(" ", 1)[0] for row in summary(out)[1:]] == [
        "root@h1.invalid v1 -> v2 switched",
        "root@h2.invalid v1 (kept) failed, undone",
    ]


def test_a_release_that_crashes_during_the_watch_is_switched_back_to_the_old_containers(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout, clock: FakeClock
) -> None:
    config = rollout(tmp_path, "watch = 20")
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2", crash_after_switch=True))
    with pytest.raises(HealthError, match=r"h2.invalid: the new web container exited with code 1 \d+s after"):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.env_tag() == "v1" and host.served() == "app-web-1", name
        assert host.listener_serves() == ["app-web-1"], name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], f"{name}: the old one never stopped"


def test_a_release_restarted_by_its_policy_while_probed_in_the_watchs_last_second_is_switched_back(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout, clock: FakeClock
) -> None:
    """A crash that the container's restart policy hides from the probe (it answers again before
    the probe's tries end) is seen in its restart count, also in the watch's last check."""
    config = rollout(tmp_path, "watch = 1")
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2", restart_while_probed=True))
    with pytest.raises(HealthError, match=r"h2.invalid: the new web container crashed and is restarting"):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.env_tag() == "v1" and host.served() == "app-web-1", name


def test_the_watch_holds_the_old_containers_until_it_ends(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout, clock: FakeClock
) -> None:
    config = rollout(tmp_path, "watch = 20")
    deploy(config, out)
    assert sum(clock.sleeps) >= 20, "the switched release was watched for rollout.watch seconds"
    for host in hosts.values():
        assert host.env_tag() == "v2" and [c.id for c in host.running("web")] == [f"{host.prefix}-web-2"]


def reroute_refused(call: Call) -> Result:
    return Result(1, "", "adapting config: unknown directive")


def reroute_done_then_ctrl_c(hosts: dict[str, FakeHost]) -> Callable[[Call], Result]:
    def answer(call: Call) -> Result:
        hosts[H2].answer(call)  # the server rerouted; the client was stopped before the reply
        interrupt.stop_running()
        raise KeyboardInterrupt

    return answer


@pytest.mark.parametrize("how", ["refused", "ctrl-c"])
def test_a_failure_at_the_reroute_after_the_watch_puts_every_server_back_on_the_old_routes(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout, clock: FakeClock,
    how: str,
) -> None:  # fmt: skip
    """The step after the watch keeps the switch's undo: h1 already rerouted, h2 refused or
    interrupted there, and both go back to the routes from before the switch."""
    config = rollout(tmp_path, "watch = 20")
    answer = reroute_refused if how == "refused" else reroute_done_then_ctrl_c(hosts)
    script.on("sh reroute ", answer, server=H2, times=1, first=True)
    with pytest.raises(HealthError if how == "refused" else InterruptedUndone):
        deploy(config, out)
    assert back_route_sent(script, H1, "reroute"), "h1 had rerouted before h2's step failed"
    for name, host in hosts.items():
        assert host.env_tag() == "v1" and host.served() == "app-web-1", name
        assert "lb_policy" not in host.routes["back"], f"{name}: neither the watched route nor the rerouted one"
        assert host.listener_serves() == ["app-web-1"], name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], name


def test_a_dry_run_shows_each_batch(tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout) -> None:
    config = rollout(tmp_path, 'strategy = "canary"\ncanary_watch = 45')
    deploy(config, out, dry_run=True)
    text = printed(out)
    assert "-- the canary: root@h1.invalid, watched 45s" in text
    assert "-- batch 2 of 2: root@h2.invalid" in text
    assert text.count("watch the new web for 45s") == 1
    numbers = [int(n) for n in re.findall(r"^\s*(\d+)\. ", text, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1)), "numbered on across the batches, as the steps are counted"
    assert not [c for c in script.calls if c.server in (H1, H2)], "a dry run touches no server"


def test_ctrl_c_in_the_second_batch_does_not_say_the_old_release_still_serves(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    """The first batch switched for good: a Ctrl-C in the second is the bare interrupt (130), not the
    line that says the old release still serves."""
    config = rollout(tmp_path, 'strategy = "rolling"\nbatch = "50%"')
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2"))

    def ctrl_c(call: Call) -> Result:
        interrupt.stop_running()  # what the signal handler does, before raising KeyboardInterrupt
        raise KeyboardInterrupt

    script.on("docker pull reg/ns/app@", ctrl_c, server=H2, first=True)
    with pytest.raises(KeyboardInterrupt):
        deploy(config, out)
    interrupt.reset()
    assert hosts[H1].env_tag() == "v2" and hosts[H2].env_tag() == "v1"
