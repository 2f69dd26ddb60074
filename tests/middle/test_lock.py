"""The deploy lock: a failure is recorded before the lock is released; a held lock changes nothing; waiting for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship.builders import lock
from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.engine.session import Session
from tagship.errors import ConnectError, LockedError, RegistryError
from tagship.output import Output
from tagship.remote.transport import Result
from tagship.runtime.compose.target import targets_for
from tests.middle.clock import FakeClock
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import FakeHost
from tests.middle.recorder import CLOSE, CONNECT, Call, Script, in_order, printed
from tests.middle.settings import CONFIG, H1, H2, write_config

BOB = lock.Holder("bob-token", "bob", "laptop", 4242, "deploy", "v9", "2026-11-27T10:02:00Z")


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def test_a_failure_after_the_lock_is_recorded_on_every_server_before_the_lock_is_released(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("docker pull", Result(1, "", "manifest unknown"), server=H1, first=True)
    with pytest.raises(RegistryError, match=f"{H1} could not pull reg/ns/app:v2"):
        deploy(config, out)
    for name, host in hosts.items():
        in_order(
            script.shown(name),
            ["<take lock>", "history entry: deploy v2 failed", "<append audit log>", "<release own lock>", CLOSE],
        )
        last = host.history()[-1]
        assert (last.version, last.kind, last.result) == ("v2", "deploy", "failed"), name
        assert "could not pull" in last.error and host.lock_holder == "", name
        assert "failed in" in host.files["/srv/app/.tagship/audit.log"].splitlines()[-1], name


def test_a_lock_held_on_the_second_server_releases_the_first_and_writes_no_history(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    hosts[H2].lock_holder = BOB.json()
    history_before = {name: host.history() for name, host in hosts.items()}
    with pytest.raises(LockedError, match=f"deploy lock on {H2} held by bob on laptop") as caught:
        deploy(config, out)
    assert caught.value.exit_code == 3
    in_order(script.shown(H1), ["<take lock>", "<release own lock>", CLOSE])
    assert not any("<append history>" in c for c in script.shown()), "a run that never held every lock records none"
    # Only the readiness check before the lock (docker and compose answer): nothing else ran on a server.
    ran = [c for c in script.shown(H1) + script.shown(H2) if c.startswith("docker")]
    assert all(c.startswith(("docker version", "docker compose version")) for c in ran), ran
    assert hosts[H1].lock_holder == "" and hosts[H2].lock_holder == BOB.json(), "bob's lock is bob's"
    assert {name: host.history() for name, host in hosts.items()} == history_before
    assert hosts[H1].env_tag() == hosts[H2].env_tag() == "v1"


def test_locks_are_taken_one_server_after_another_in_identity_order_so_two_runs_never_split_them(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    """The run that holds the first server's lock (by the servers' identities) is the one that gets
    them all: a run finding it held touches no other server's lock, so two runs started together
    can't each take a part of the servers and both give up (or wait for each other)."""
    first, second = sorted((H1, H2), key=lambda name: identity(hosts[name]))
    hosts[first].lock_holder = BOB.json()
    with pytest.raises(LockedError, match=f"deploy lock on {first} held by bob"):
        deploy(config, out)
    assert not [c for c in script.shown(second) if "lock>" in c], "the second server's lock was touched"
    assert hosts[second].lock_holder == ""


def identity(host: FakeHost) -> str:
    return lock.parse_identity(host.answer(Call(host.server, "", lock.identity())).stdout)


def test_two_configs_naming_one_server_differently_take_its_lock_in_the_same_order(
    tmp_path: Path, config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    """One machine names the servers h1 and h2, another by aliases in the other name order: both
    runs lock the servers in one order (their host keys'), so they cannot each hold one and wait."""
    aliases = {"root@zz-alias.invalid": hosts[H1], "root@aa-alias.invalid": hosts[H2]}
    for alias, host in aliases.items():
        script.on(lambda call: True, host.answer, server=alias)
    (tmp_path / "other").mkdir()
    other = write_config(
        tmp_path / "other", text=CONFIG.replace(H1, "root@zz-alias.invalid").replace(H2, "root@aa-alias.invalid")
    )
    by_name = {**hosts, **aliases}

    def lock_order(cfg: Config) -> list[str]:
        start = len(script.calls)
        session = Session(targets_for(cfg, Connections(cfg, out), ("compose.yaml",)), out, "deploy", "v2", "alice")
        session.take_locks()
        session.release_locks()
        return [by_name[c.server].prefix for c in script.calls[start:] if "<take lock>" in c.shown]

    assert lock_order(config) == lock_order(other)
    assert sorted(lock_order(config)) == ["h1", "h2"]


def test_an_unreachable_server_stops_the_deploy_before_any_lock_is_taken(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on(CONNECT, ConnectError(f"cannot connect to {H2}: connection refused"), server=H2, first=True)
    with pytest.raises(ConnectError, match="connection refused"):
        deploy(config, out)
    assert not any("<take lock>" in c or "<append history>" in c for c in script.shown())
    assert all(host.lock_holder == "" and host.env_tag() == "v1" for host in hosts.values())


def lock_session(config: Config, out: Output, wait: float) -> Session:
    """A session on h1 alone that waits up to `wait` seconds for the lock."""
    first = targets_for(config, Connections(config, out), ("compose.yaml",))[:1]
    return Session(first, out, "deploy", "v2", "alice", lock_wait=wait)


def test_waiting_for_the_lock_takes_it_once_the_holder_lets_go(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], clock: FakeClock
) -> None:
    script.on("<take lock>", Result(lock.HELD, BOB.json(), ""), server=H1, times=2, first=True)
    session = lock_session(config, out, wait=5)
    target = session.targets[0]
    session.take_lock(target)
    assert session.locked == [target] and hosts[H1].lock_holder == session.holder.json()
    assert clock.sleeps == [1.0, 1.0]
    assert [c for c in script.shown(H1) if "<take lock>" in c] == [script.shown(H1)[0]] * 3
    assert printed(out).count(f"{H1}: waiting up to 5s for the deploy lock held by bob on laptop") == 1
    in_order(script.shown(H1), ["<take lock>", "<take lock>", "<take lock>", "<append audit log>"])


def test_waiting_for_the_lock_gives_up_at_the_deadline(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], clock: FakeClock
) -> None:
    hosts[H1].lock_holder = BOB.json()
    session = lock_session(config, out, wait=2)
    with pytest.raises(LockedError, match="held by bob on laptop since 2026-11-27T10:02:00Z"):
        session.take_lock(session.targets[0])
    assert session.locked == [] and clock.sleeps == [1.0, 1.0]
    assert sum("<take lock>" in c for c in script.shown(H1)) == 3
