"""[hooks.local] and [notify] around a whole `tagship deploy` and `tagship rollback` (recording transports;
the webhooks go to a real HTTP receiver on 127.0.0.1)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagship import config as config_mod
from tagship.builders.report import Report
from tagship.commands import deploy as deploy_command
from tagship.commands import rollback as rollback_command
from tagship.config import Config
from tagship.engine import outcome
from tagship.errors import EXIT_FAILED, InterruptedUndone, RegistryError, TagshipError, UnfinishedError
from tagship.output import Output
from tagship.remote import interrupt, server
from tagship.remote.transport import Result
from tests.middle.fake_checkout import LOCAL, FakeCheckout
from tests.middle.fake_host import ENV, FakeHost, attach, record
from tests.middle.recorder import CLOSE, Call, RecordingTransport, Script, in_order, printed
from tests.middle.settings import H1, H2, PASSWORD, write_config
from tests.receiver import TOKEN, closed_port, receiving

HOOKS = """
[hooks.local]
before_build = ["make check"]
before_deploy = ["./ci-green.sh $TAGSHIP_VERSION"]
after_deploy = ["./smoke.sh"]
on_failure = ["./page-me.sh"]
"""
NOTIFY = '\n[notify]\nurl_env = "TAGSHIP_WEBHOOK_URL"\n'


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # the receiver is on this machine
    yield


def configured(tmp_path: Path, extra: str, webhook_url: str = "") -> Config:
    """tagship.toml with extra, loaded with the registry password and the webhook's URL in the environment."""
    write_config(tmp_path, extra)
    return config_mod.load(tmp_path, {"TAGSHIP_REGISTRY_PASSWORD": PASSWORD, "TAGSHIP_WEBHOOK_URL": webhook_url})


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def hooks_run(script: Script) -> list[Call]:
    """The local hooks, in the order they ran (each is `sh -c <in directory> sh DIR LINE`)."""
    return [c for c in script.of(LOCAL) if c.argv[:2] == ("sh", "-c")]


def env_of(call: Call) -> dict[str, str]:
    assert call.command is not None
    return dict(call.command.env)


def fail_hook(script: Script, line: str) -> None:
    script.on(lambda c: c.argv[-1:] == (line,), Result(1, "", "CI is red for v2\n"), server=LOCAL, first=True)


def untouched(script: Script, hosts: dict[str, FakeHost]) -> None:
    for name, host in hosts.items():
        assert [c for c in script.shown(name) if c != CLOSE] == [], f"{name} got commands"
        assert host.env_tag() == "v1" and host.served() == "app-web-1", name
        assert [r.version for r in host.history()] == ["v1"] and host.lock_holder == "", name


def test_a_deploy_runs_each_local_hook_at_its_moment_with_the_release_facts(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(configured(tmp_path, HOOKS), out)
    hooks = hooks_run(script)
    assert [c.argv[-1] for c in hooks] == ["make check", "./ci-green.sh $TAGSHIP_VERSION", "./smoke.sh"]
    assert all(c.argv[-2] == str(tmp_path) for c in hooks), "in the project directory"
    every = [c.shown for c in script.calls]
    in_order(every, ["make check", "docker build", "docker push", "./ci-green.sh", "(connect)", "./smoke.sh"])
    released = max(i for i, c in enumerate(every) if "<release own lock>" in c)
    assert every.index(hooks[2].shown) > released, "after the deploy, its locks freed"
    before, after = env_of(hooks[1]), env_of(hooks[2])
    assert before["TAGSHIP_VERSION"] == "v2" and before["TAGSHIP_COMMIT"] == checkout.commit
    assert before["TAGSHIP_IMAGE"] == "reg/ns/app:v2" and before["TAGSHIP_SERVERS"] == f"{H1},{H2}"
    assert before["TAGSHIP_DEPLOYER"].startswith("Alice (") and before["TAGSHIP_COMMAND"] == "deploy"
    assert "TAGSHIP_RESULT" not in before, "a before hook runs before there is a result"
    assert after["TAGSHIP_RESULT"] == "succeeded" and float(after["TAGSHIP_DURATION"]) >= 0
    assert "TAGSHIP_ERROR" not in after


def test_a_failing_before_deploy_hook_changes_nothing_on_any_server(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    fail_hook(script, "./ci-green.sh $TAGSHIP_VERSION")
    with pytest.raises(
        TagshipError, match=re.escape("the before_deploy hook `./ci-green.sh $TAGSHIP_VERSION` failed")
    ) as e:
        deploy(configured(tmp_path, HOOKS), out)
    assert e.value.exit_code == EXIT_FAILED and "CI is red for v2" in e.value.detail
    untouched(script, hosts)
    ran = [c.argv[-1] for c in hooks_run(script)]
    assert ran == ["make check", "./ci-green.sh $TAGSHIP_VERSION", "./page-me.sh"], "then on_failure, not after"
    failure = env_of(hooks_run(script)[-1])
    assert failure["TAGSHIP_RESULT"] == "failed"
    assert failure["TAGSHIP_ERROR"].startswith("the before_deploy hook `./ci-green.sh $TAGSHIP_VERSION` failed")


def test_a_failing_before_build_hook_stops_before_the_build(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    fail_hook(script, "make check")
    with pytest.raises(TagshipError, match="the before_build hook `make check` failed"):
        deploy(configured(tmp_path, HOOKS), out)
    assert not [c for c in script.shown(LOCAL) if c.startswith(("docker build", "docker push"))]
    untouched(script, hosts)


def test_on_failure_runs_when_the_deploy_fails_and_the_webhook_says_why(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("docker pull reg/ns/app@", Result(1, "", "pull access denied"), server=H2, first=True)
    with receiving() as receiver:
        config = configured(tmp_path, HOOKS + NOTIFY, receiver.url)
        with pytest.raises(RegistryError):
            deploy(config, out)
    assert [c.argv[-1] for c in hooks_run(script)][-1] == "./page-me.sh"
    assert "./smoke.sh" not in [c.argv[-1] for c in hooks_run(script)]
    error = env_of(hooks_run(script)[-1])["TAGSHIP_ERROR"]
    assert error.startswith(f"{H2} could not pull reg/ns/app:v2")
    page = next(i for i, c in enumerate(script.calls) if c.argv[-1:] == ("./page-me.sh",))
    released = max(i for i, c in enumerate(script.calls) if "<release own lock>" in c.shown)
    assert page > released, "the servers' locks are free before the hooks take their time"
    (message,) = receiver.received
    facts = message.json()
    assert (facts["command"], facts["version"], facts["result"]) == ("deploy", "v2", "failed")
    assert facts["error"] == error and "\n" not in facts["error"], "the error's first line"
    for host in hosts.values():
        assert host.env_tag() == "v1", "the failed deploy was undone"


def test_a_deploy_notification_reaches_the_webhook_with_the_facts_and_its_url_is_never_shown(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    with receiving() as receiver:
        deploy(
            configured(
                tmp_path, HOOKS + NOTIFY.replace("\n[notify]\n", '\n[notify]\nformat = "slack"\n'), receiver.url
            ),
            out,
        )
    (message,) = receiver.received
    text = message.json()["text"]
    assert text.startswith(f"tagship deploy v2 succeeded on {H1}, {H2} in ")
    assert text.endswith("s (reg/ns/app:v2, by Alice (" + text.split("by Alice (", 1)[1])
    assert "notify[0] (slack, 127.0.0.1): notified (success)" in printed(out)
    assert TOKEN not in printed(out)
    for call in script.calls:
        assert TOKEN not in call.shown and PASSWORD not in call.shown
        assert not any(TOKEN in value or PASSWORD in value for value in (*call.argv, *env_of_any(call))), call.shown


def env_of_any(call: Call) -> list[str]:
    return [value for _, value in call.command.env] if call.command else []


def test_a_dead_webhook_only_warns_and_the_deploy_succeeds(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    deploy(configured(tmp_path, NOTIFY, dead), out)
    assert "warning: notify[0] (json, 127.0.0.1): notification not delivered (" in printed(out)
    assert TOKEN not in printed(out)
    for host in hosts.values():
        assert host.env_tag() == "v2" and host.history()[-1].result == "succeeded"


def test_a_failing_after_deploy_hook_only_warns(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on(lambda c: c.argv[-1:] == ("./smoke.sh",), Result(2, "", "502 from /up\n"), server=LOCAL, first=True)
    deploy(configured(tmp_path, HOOKS), out)
    assert "warning: the after_deploy hook `./smoke.sh` failed (exit 2); the deploy result stands" in printed(out)
    assert "./page-me.sh" not in [c.argv[-1] for c in hooks_run(script)]


def test_a_dry_run_shows_the_hooks_and_runs_none_and_notifies_nobody(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    with receiving() as receiver:
        config = configured(tmp_path, HOOKS + NOTIFY, receiver.url)
        deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    assert hooks_run(script) == [] and receiver.received == []
    shown = printed(out)
    in_order(shown.splitlines(), ["run the before_build hooks", "make check", "build reg/ns/app:v2", "push"])
    in_order(shown.splitlines(), ["push", "run the before_deploy hooks", "./ci-green.sh", "connect to the servers"])


def rolled_back_servers(script: Script) -> dict[str, FakeHost]:
    servers = [FakeHost(name, name[5:7], "v2", ("v1", "v2"), (record("v1"), record("v2"))) for name in (H1, H2)]
    for host in servers:
        host.files[ENV] += "COMPOSE_FILE=compose.yaml:compose.tagship.yaml\n"  # as a deploy leaves it
    return attach(script, *servers)


def test_a_rollback_runs_the_deploy_hooks_and_notifies_as_a_rollback(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = rolled_back_servers(script)
    with receiving() as receiver:
        rollback_command.rollback(configured(tmp_path, HOOKS + NOTIFY, receiver.url), out)
    ran = hooks_run(script)
    assert [c.argv[-1] for c in ran] == ["./ci-green.sh $TAGSHIP_VERSION", "./smoke.sh"], "no build: no before_build"
    assert env_of(ran[0])["TAGSHIP_COMMAND"] == "rollback" and env_of(ran[0])["TAGSHIP_VERSION"] == "v1"
    in_order([c.shown for c in script.calls], ["<read history>", "./ci-green.sh", "<atomic write> sh /srv/app/.env"])
    facts = receiver.received[0].json()
    assert (facts["command"], facts["version"], facts["result"]) == ("rollback", "v1", "succeeded")
    assert all(host.env_tag() == "v1" for host in hosts.values())


def test_a_rollback_whose_before_deploy_hook_fails_changes_nothing_and_frees_the_locks(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = rolled_back_servers(script)
    fail_hook(script, "./ci-green.sh $TAGSHIP_VERSION")
    with pytest.raises(TagshipError, match="the before_deploy hook"):
        rollback_command.rollback(configured(tmp_path, HOOKS), out)
    for name, host in hosts.items():
        assert host.env_tag() == "v2" and host.served() == "app-web-1", name
        assert [r.version for r in host.history()] == ["v1", "v2"], "no history entry: nothing changed"
        assert host.lock_holder == "", name
    assert [c.argv[-1] for c in hooks_run(script)][-1] == "./page-me.sh"


def test_a_deploy_live_everywhere_but_unfinished_is_told_as_succeeded_with_what_did_not_finish(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    # As the history records it: the release is live on every server (exit 9), a later step failed.
    script.on("--scale worker=2 worker", Result(1, "", "no space left on device"), server=H2, first=True)
    with receiving() as receiver:
        config = configured(tmp_path, HOOKS + NOTIFY, receiver.url)
        with pytest.raises(UnfinishedError):
            deploy(config, out)
    last = hooks_run(script)[-1]
    assert last.argv[-1] == "./smoke.sh"
    assert env_of(last)["TAGSHIP_RESULT"] == "succeeded"
    assert env_of(last)["TAGSHIP_ERROR"].startswith("v2 is live on every server, nothing was undone")
    facts = receiver.received[0].json()
    assert facts["result"] == "succeeded" and facts["error"] == env_of(last)["TAGSHIP_ERROR"]


def test_an_interrupted_deploy_runs_on_failure_and_notifies(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    def ctrl_c(call: Call) -> Result:
        interrupt.stop_running()  # what the signal handler does, before raising KeyboardInterrupt
        raise KeyboardInterrupt

    script.on("docker pull reg/ns/app@", ctrl_c, server=H1, first=True)
    with receiving() as receiver:
        config = configured(tmp_path, HOOKS + NOTIFY, receiver.url)
        with pytest.raises(InterruptedUndone):
            deploy(config, out)
    last = hooks_run(script)[-1]
    assert (last.argv[-1], env_of(last)["TAGSHIP_ERROR"]) == ("./page-me.sh", "interrupted")
    assert receiver.received[0].json()["error"] == "interrupted"


@pytest.mark.parametrize(
    ("raised", "told"),
    [
        (TagshipError(f"login refused for deploy:{PASSWORD}\nthe registry said: 401"), "login refused for deploy:***"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom"),
    ],
)
def test_the_error_told_is_the_first_line_with_secrets_masked_and_the_run_still_fails(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout, raised: Exception, told: str
) -> None:
    out.add_secret(PASSWORD)
    local = RecordingTransport(server=server.parse(LOCAL), out=out, script=script)
    report = Report("deploy", "v2", checkout.commit, "reg/ns/app:v2", (H1,), "Alice")
    config = configured(tmp_path, HOOKS)
    with pytest.raises(type(raised)), outcome.reported(config, out, local, report, started=time.monotonic()):
        raise raised
    assert env_of(hooks_run(script)[-1])["TAGSHIP_ERROR"] == told
