"""`tagship logs` and `tagship exec` on two scripted servers: which commands reach which server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship import cli
from tagship.builders.command import Command
from tagship.commands import execute, logs
from tagship.config import Config
from tagship.errors import ConfigError, TagshipError
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_host import FakeHost, attach
from tests.middle.recorder import Script, printed
from tests.middle.settings import H1, H2

BASE = "docker compose --project-directory /srv/app --file /srv/app/compose.yaml"
WITH_OVERRIDE = f"{BASE} --file /srv/app/compose.tagship.yaml"


def sent(script: Script, server: str, verb: str) -> list[Command]:
    """The compose `verb` commands the server got."""
    return [
        c.command for c in script.of(server) if c.command and f" {verb} " in f" {c.shown} " and "compose" in c.shown
    ]


def test_logs_reads_the_deployed_service_on_every_server_with_since_and_tail(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["-C", str(tmp_path), "logs", "--since", "10m", "--tail", "5"])
    assert code == 0, capsys.readouterr().err
    for server in (H1, H2):
        (cmd,) = sent(script, server, "logs")
        assert cmd.shown() == f"{BASE} logs --no-color --since=10m --tail=5 -- web"
        assert not cmd.tty
    assert not any("<take lock>" in shown for shown in script.shown()), "logs takes no lock"


def test_logs_follow_streams_every_server_on_a_terminal_and_another_service_by_name(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    assert logs.logs(config, out, logs.LogsOptions(service="worker", follow=True)) == 0
    for server in (H1, H2):
        (cmd,) = sent(script, server, "logs")
        assert cmd.shown() == f"{BASE} logs --no-color --follow -- worker" and cmd.tty


def test_logs_of_an_unknown_service_names_the_known_ones_and_reads_no_logs(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    with pytest.raises(ConfigError, match="unknown service 'nope'") as raised:
        logs.logs(config, out, logs.LogsOptions(service="nope"))
    assert "db, web, worker" in raised.value.hint
    assert not sent(script, H1, "logs") and not sent(script, H2, "logs")


def test_logs_a_server_whose_logs_fail_is_named_the_other_still_read_exit_1(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    script.on(lambda call: " logs " in call.shown, Result(1, "", "boom"), server=H1, first=True)
    assert logs.logs(config, out, logs.LogsOptions()) == 1
    assert f"{H1}: docker compose logs ended with exit code 1" in printed(out)
    assert sent(script, H2, "logs")


def test_exec_runs_in_the_first_servers_container_and_returns_the_commands_exit_code(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on(lambda call: " exec " in call.shown, Result(3, "", ""), first=True)
    code = cli.main(["-C", str(tmp_path), "exec", "--", "sh", "-c", "exit 3; $(id)"])
    assert code == 3
    (cmd,) = sent(script, H1, "exec")
    assert cmd.argv[-5:] == ("--no-TTY", "web", "sh", "-c", "exit 3; $(id)") and not cmd.tty
    assert cmd.shown() == f"{BASE} exec --no-TTY web sh -c 'exit 3; $(id)'"
    assert not sent(script, H2, "exec"), "only the first server"


def test_exec_interactive_on_a_named_server_in_a_one_off_container_of_another_service(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    options = execute.ExecOptions(("python", "manage.py", "shell"), server=H2, service="worker", interactive=True)
    assert execute.execute(config, out, options) == 0
    (cmd,) = sent(script, H2, "exec")
    assert cmd.shown() == f"{BASE} exec worker python manage.py shell" and cmd.tty
    assert not sent(script, H1, "exec")
    new = execute.ExecOptions(("cat", "/www/version.txt"), new=True)
    assert execute.execute(config, out, new) == 0
    (cmd,) = sent(script, H1, "run")
    assert cmd.shown() == f"{BASE} run --rm --no-deps --no-TTY web cat /www/version.txt" and not cmd.tty


def test_exec_uses_tagships_override_when_the_servers_env_lists_it(config: Config, out: Output, script: Script) -> None:
    attach(script, FakeHost(H1, "h1", fixed_tag=True), FakeHost(H2, "h2", fixed_tag=True))
    assert execute.execute(config, out, execute.ExecOptions(("true",), new=True)) == 0
    (cmd,) = sent(script, H1, "run")
    assert cmd.shown() == f"{WITH_OVERRIDE} run --rm --no-deps --no-TTY web true"


def test_exec_refuses_an_unknown_server_and_an_app_never_deployed(config: Config, out: Output, script: Script) -> None:
    attach(script, FakeHost(H1, "h1", records=()), FakeHost(H2, "h2"))
    with pytest.raises(ConfigError, match="no server 'web9'") as raised:
        execute.execute(config, out, execute.ExecOptions(("true",), server="web9"))
    assert H1 in raised.value.hint and H2 in raised.value.hint
    with pytest.raises(TagshipError, match="nothing deployed in /srv/app"):
        execute.execute(config, out, execute.ExecOptions(("true",)))
    assert not any(" exec " in c.shown for c in script.calls)
