"""A failure or an interrupt during a deploy: which undos run, in which order, and what the servers keep."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import CommandFailed, HealthError, InterruptedUndone, RegistryError, TagshipError, UnfinishedError
from tagship.output import Output
from tagship.remote import interrupt
from tagship.remote.transport import Result
from tagship.runtime.compose import verify
from tests.middle.clock import FakeClock
from tests.middle.fake_checkout import LOCAL, FakeCheckout
from tests.middle.fake_host import COMPOSE, ENV, OLD_OVERRIDE, OVERRIDE, FakeHost, attach
from tests.middle.recorder import Call, Script, in_order
from tests.middle.settings import CONFIG, H1, H2, write_config

ORIGINAL_ENV = "# the app's settings\nAPP_IMAGE_TAG=v1\nAPP_PORT=18100\n"
ORIGINAL_COMPOSE = "services:\n  web:\n    image: reg/ns/app:${APP_IMAGE_TAG}\n"  # v1's, as the servers have it


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def undo_kind(call: Call, host: FakeHost) -> str:
    """Which undo a command belongs to ("" if it is no undo's)."""
    if "<restore routes>" in call.shown:
        return "proxy back"
    if call.argv[:3] == ("docker", "rm", "--force") and all(i in host.created for i in call.argv[3:]):
        return "remove new"
    if call.shown.endswith("<<< previous override") or call.argv == ("rm", "-f", "--", OVERRIDE):
        return "override back"
    if call.shown.endswith("<<< the previous .env") or call.argv == ("rm", "-f", "--", ENV):
        return "env back"
    if "<<< the previous compose.yaml" in call.shown or call.argv == ("rm", "-f", "--", COMPOSE):
        return "compose back"
    return ""


def undos(script: Script, hosts: dict[str, FakeHost]) -> list[tuple[str, str]]:
    """(undo, server) of every undo command sent, in the order sent."""
    found = [(undo_kind(c, hosts[c.server]), c.server) for c in script.calls if c.server in hosts]
    return [pair for pair in found if pair[0]]


def fail_upload(script: Script, hosts: dict[str, FakeHost]) -> None:
    full = Result(1, "", "No space left on device")
    script.on(f"<atomic write> sh {COMPOSE} ", full, server=H2, times=1, first=True)


def fail_pull(script: Script, hosts: dict[str, FakeHost]) -> None:
    script.on("docker pull reg/ns/app@", Result(1, "", "manifest unknown"), server=H2, first=True)


def fail_env_write(script: Script, hosts: dict[str, FakeHost]) -> None:
    full = Result(1, "", "No space left on device")
    script.on("<atomic write> sh /srv/app/.env ", full, server=H2, times=1, first=True)


def fail_start_new(script: Script, hosts: dict[str, FakeHost]) -> None:
    script.on("--scale web=2 web", Result(1, "", "no space left on device"), server=H2, first=True)


def crash_new_release(script: Script, hosts: dict[str, FakeHost]) -> None:
    hosts[H2].crash_on_start = True


def refuse_switch(script: Script, hosts: dict[str, FakeHost]) -> None:
    refused = Result(1, "back changed\nfront refused\n", "adapting config: unknown directive")
    script.on("<switch routes>", refused, server=H2, first=True)


ENV_BACK = [("env back", H2), ("env back", H1)]
COMPOSE_BACK = [("compose back", H2), ("compose back", H1)]
OVERRIDE_BACK = [("override back", H2), ("override back", H1)]
REMOVE_NEW = [("remove new", H2), ("remove new", H1)]

FAILURES: list[tuple[str, Callable[[Script, dict[str, FakeHost]], None], type[TagshipError], list[tuple[str, str]]]] = [
    # h2's write failed: its compose.yaml may be half written, so it is put back too
    ("the compose.yaml upload", fail_upload, CommandFailed, COMPOSE_BACK),
    ("the pull", fail_pull, RegistryError, COMPOSE_BACK),
    ("the .env write", fail_env_write, CommandFailed, [*ENV_BACK, *COMPOSE_BACK]),
    # h2 started nothing: only h1's new container is removed; never an old one
    ("start new", fail_start_new, CommandFailed, [("remove new", H1), *OVERRIDE_BACK, *ENV_BACK, *COMPOSE_BACK]),
    ("health wait", crash_new_release, HealthError, [*REMOVE_NEW, *OVERRIDE_BACK, *ENV_BACK, *COMPOSE_BACK]),
    # h2's refused switch put its own routes back (its undo finds nothing of that switch left to revert)
    (
        "proxy switch",
        refuse_switch,
        HealthError,
        [("proxy back", H2), ("proxy back", H1), *REMOVE_NEW, *OVERRIDE_BACK, *ENV_BACK, *COMPOSE_BACK],
    ),
]


@pytest.mark.parametrize(("inject", "error", "expected"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_a_failure_undoes_the_finished_steps_newest_first_on_every_server(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    inject: Callable[[Script, dict[str, FakeHost]], None],
    error: type[TagshipError],
    expected: list[tuple[str, str]],
) -> None:
    inject(script, hosts)
    with pytest.raises(error):
        deploy(config, out)
    assert undos(script, hosts) == expected
    for name, host in hosts.items():  # users are on v1 everywhere, as before the deploy
        assert host.files[ENV] == ORIGINAL_ENV, name
        assert host.files[COMPOSE] == ORIGINAL_COMPOSE, f"{name}: v1's compose file beside v1's .env"
        assert host.files[OVERRIDE] == OLD_OVERRIDE, name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], name
        assert host.served() == "app-web-1", name
        assert [c.id for c in host.containers.values() if c.service == "web"] == [f"{host.prefix}-web-1"], name
        assert (host.history()[-1].version, host.history()[-1].result) == ("v2", "failed"), name
        assert host.lock_holder == "", name


def test_a_failure_after_the_point_of_no_return_undoes_nothing(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("docker stop --time 10 h2-web-1", Result(1, "", "cannot stop container"), server=H2, first=True)
    with pytest.raises(UnfinishedError, match="v2 is live on every server, nothing was undone") as caught:
        deploy(config, out)
    assert caught.value.exit_code == 9
    assert undos(script, hosts) == []
    for name, host in hosts.items():
        assert host.env_tag() == "v2" and host.served() == "app-web-2", name
        assert f"{host.prefix}-web-2" in [c.id for c in host.running("web")], name
        last = host.history()[-1]
        assert (last.version, last.result) == ("v2", "succeeded"), name
        assert "docker stop --time 10 h2-web-1" in last.error, name
    assert [c.id for c in hosts[H2].running("web")] == ["h2-web-1", "h2-web-2"], "the old one is left for the next run"
    assert [c.id for c in hosts[H1].running("web")] == ["h1-web-2"]


def test_an_interrupt_while_starting_new_containers_removes_them_on_both_servers(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    h1_started = threading.Event()

    def h1_checks_its_new_container(call: Call) -> Result:
        h1_started.set()  # h1's last command of the step: its action finishes right after
        return hosts[H1].answer(call)

    def ctrl_c_while_h2_starts(call: Call) -> Result:
        assert h1_started.wait(timeout=5)
        hosts[H2].answer(call)  # compose had started the container when Ctrl-C came
        interrupt.stop_running()  # what the signal handler does, before raising KeyboardInterrupt
        raise KeyboardInterrupt

    script.on("docker inspect --type container h1-web-2", h1_checks_its_new_container, server=H1, times=1, first=True)
    script.on("--scale web=2 web", ctrl_c_while_h2_starts, server=H2, first=True)
    with pytest.raises(InterruptedUndone):
        deploy(config, out)
    assert undos(script, hosts) == [*REMOVE_NEW, *OVERRIDE_BACK, *ENV_BACK, *COMPOSE_BACK]
    assert [c for c in script.shown(H1) if c.startswith("docker rm")] == ["docker rm --force h1-web-2"]
    assert [c for c in script.shown(H2) if c.startswith("docker rm")] == ["docker rm --force h2-web-2"]
    for name, host in hosts.items():
        assert host.files[ENV] == ORIGINAL_ENV and host.files[COMPOSE] == ORIGINAL_COMPOSE, name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], name
        assert host.history()[-1].result == "failed" and host.lock_holder == "", name
        undo_then_record = ["docker rm --force", "<<< the previous .env", "deploy v2 failed", "<release own lock>"]
        in_order(script.shown(name), undo_then_record)
    interrupt.reset()


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """tagship's own SIGINT and SIGTERM handlers, as the CLI installs them; pytest's put back after."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_a_real_ctrl_c_while_new_containers_start_removes_them_on_both_servers(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    signal_handlers: None,
) -> None:
    h1_started = threading.Event()

    def h1_checks_its_new_container(call: Call) -> Result:
        h1_started.set()
        return hosts[H1].answer(call)

    def sigint_while_h2_starts(call: Call) -> Result:
        assert h1_started.wait(timeout=5)
        hosts[H2].answer(call)
        os.kill(os.getpid(), signal.SIGINT)  # the main thread gets KeyboardInterrupt; this command is stopped
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                interrupt.check()
            except KeyboardInterrupt:
                return Result(-15, "", "")  # what a command stopped by the interrupt returns
            time.sleep(0.001)
        raise AssertionError("the interrupt never reached this server's thread")

    script.on("docker inspect --type container h1-web-2", h1_checks_its_new_container, server=H1, times=1, first=True)
    script.on("--scale web=2 web", sigint_while_h2_starts, server=H2, first=True)
    with pytest.raises(InterruptedUndone):
        deploy(config, out)
    assert undos(script, hosts) == [*REMOVE_NEW, *OVERRIDE_BACK, *ENV_BACK, *COMPOSE_BACK]
    for name, host in hosts.items():
        assert host.files[ENV] == ORIGINAL_ENV and host.served() == "app-web-1", name
        assert host.files[COMPOSE] == ORIGINAL_COMPOSE, name
        assert [c.id for c in host.containers.values() if c.service == "web"] == [f"{host.prefix}-web-1"], name
        assert host.history()[-1].error == "KeyboardInterrupt" and host.lock_holder == "", name


def test_an_interrupt_on_a_single_server_removes_its_new_container(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    config = write_config(tmp_path, text=CONFIG.replace(f', "{H2}"', ""))
    hosts = attach(script, FakeHost(H1, "h1"))

    def ctrl_c(call: Call) -> Result:
        hosts[H1].answer(call)
        interrupt.stop_running()
        raise KeyboardInterrupt

    script.on("--scale web=2 web", ctrl_c, server=H1, first=True)
    with pytest.raises(InterruptedUndone):
        deploy(config, out)
    assert undos(script, hosts) == [("remove new", H1), ("override back", H1), ("env back", H1), ("compose back", H1)]
    assert {c.server for c in script.calls} == {LOCAL, H1}
    assert [c.id for c in hosts[H1].running("web")] == ["h1-web-1"] and hosts[H1].files[ENV] == ORIGINAL_ENV
    assert hosts[H1].files[COMPOSE] == ORIGINAL_COMPOSE


@pytest.mark.parametrize(
    "command",
    [
        f"<atomic write> sh {COMPOSE} ",
        "docker pull reg/ns/app@",
        "<atomic write> sh /srv/app/.env ",
        "<atomic write> sh /srv/app/compose.tagship.yaml ",
        "--scale web=2 web",
        "<probe until 2xx>",
        # The switch's reply never arrives: its undo still reverts what that switch (named before it
        # was sent) changed, before the new container it routes to is removed.
        "<switch routes>",
    ],
    ids=["compose.yaml upload", "pull", ".env write", "override write", "start new", "health probe", "proxy switch"],
)
def test_an_interrupt_at_each_step_leaves_every_server_on_the_old_release(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout, command: str
) -> None:
    def ctrl_c_after_the_server_did_it(call: Call) -> Result:
        hosts[H2].answer(call)  # the command ran to its end on the server; the client was stopped
        interrupt.stop_running()
        raise KeyboardInterrupt

    script.on(command, ctrl_c_after_the_server_did_it, server=H2, times=1, first=True)
    with pytest.raises(InterruptedUndone):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.files[ENV] == ORIGINAL_ENV and host.files[OVERRIDE] == OLD_OVERRIDE, name
        assert host.files[COMPOSE] == ORIGINAL_COMPOSE, f"{name}: v1's compose file beside v1's .env"
        assert [c.id for c in host.containers.values() if c.service == "web"] == [f"{host.prefix}-web-1"], name
        assert host.served() == "app-web-1", f"{name}: the proxy routes users to a container that runs"
        assert host.history()[-1].result == "failed" and host.lock_holder == "", name


def test_a_failed_deploy_removes_a_compose_file_the_server_did_not_have(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    del hosts[H1].files[COMPOSE]  # a first deploy to h1
    crash_new_release(script, hosts)
    with pytest.raises(HealthError):
        deploy(config, out)
    assert COMPOSE not in hosts[H1].files
    assert hosts[H2].files[COMPOSE] == ORIGINAL_COMPOSE
    assert ("rm", "-f", "--", COMPOSE) in [c.argv for c in script.calls if c.server == H1]


def test_an_unchanged_compose_file_is_neither_written_nor_put_back(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    for host in hosts.values():
        host.files[COMPOSE] = checkout.compose_file  # the servers have the tagged tree's compose.yaml
    crash_new_release(script, hosts)
    with pytest.raises(HealthError):
        deploy(config, out)
    assert not [c for c in script.calls if f"<atomic write> sh {COMPOSE}" in c.shown]
    assert [kind for kind, _ in undos(script, hosts)] == ["remove new"] * 2 + ["override back"] * 2 + ["env back"] * 2


def test_a_plain_switch_undone_brings_the_old_release_up_with_its_own_compose_file(
    tmp_path: Path,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify, "time", clock)  # the verify timeout passes without waiting
    config = write_config(tmp_path, "\n[proxy]\nenabled = false\n\n[verify]\nstable_seconds = 0\n")
    crash_new_release(script, hosts)
    with pytest.raises(HealthError):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.files[COMPOSE] == ORIGINAL_COMPOSE and host.files[ENV] == ORIGINAL_ENV, name
        # compose brings v1 up again only once v1's compose file and .env are back
        in_order(script.shown(name), ["<<< the previous compose.yaml", "<<< the previous .env", "up --detach web"])
