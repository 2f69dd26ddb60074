"""Bastions: ssh.jump (TAGSHIP_SSH_JUMP), an address's own -J, and the ssh argv they give."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tagship import config as config_mod
from tagship.builders.command import Command
from tagship.engine.connections import connections
from tagship.errors import EXIT_USAGE, ConfigError, ConnectError
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import Result, SshTransport

BASE = 'servers = ["deploy@web1", "web2 -J ops@other:2222", "local"]\n[app]\npath = "/srv/app"\n'


def load(root: Path, text: str = "", environ: dict[str, str] | None = None) -> config_mod.Config:
    (root / "tagship.toml").write_text(BASE + text, encoding="utf-8")
    return config_mod.load(root, environ or {})


def refused(root: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(root, text, environ)
    assert caught.value.exit_code == EXIT_USAGE
    return str(caught.value)


@pytest.mark.parametrize(
    "spec",
    ["bastion", "ops@bastion.example.com", "ops@10.0.0.1:2222", "ssh://ops@bastion:22", "a,b@c:2,ssh://d",
     "[fd00::1]:22", "jump_1.example", "none"],
)  # fmt: skip
def test_jump_specs_ssh_takes_are_accepted(spec: str) -> None:
    assert server.jump_problem(spec) is None


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("-oProxyCommand=sh", "must not start with -"),
        ("bastion,-oProxyCommand=sh", "must not start with -"),
        ("ops@-bastion", "is not [user@]host[:port]"),
        ("bastion other", "must not contain spaces"),
        ("bastion\n", "control characters"),
        ("bastion\x1b[2J", "control characters"),
        ("a,,b", "an empty hop"),
        ("a,", "an empty hop"),
        ("bastion:99999", "invalid port"),
        ("bastion:0", "invalid port"),
        ("bastion;reboot", "is not [user@]host[:port]"),
        ("$(reboot)", "is not [user@]host[:port]"),
        ("b" * 1001, "at most 1000"),
    ],
)
def test_jump_specs_that_are_not_hops_are_refused(spec: str, why: str) -> None:
    assert why in (server.jump_problem(spec) or "")


def test_the_key_and_its_variable_reach_the_config_and_say_where_they_came_from(tmp_path: Path) -> None:
    config = load(tmp_path, '[ssh]\njump = "ops@bastion:2222"\n')
    assert config.ssh.jump == "ops@bastion:2222" and config.source_of("ssh.jump") == "tagship.toml"
    config = load(tmp_path, '[ssh]\njump = "ops@bastion:2222"\n', {"TAGSHIP_SSH_JUMP": "gw1,gw2"})
    assert config.ssh.jump == "gw1,gw2" and config.source_of("ssh.jump") == "TAGSHIP_SSH_JUMP"
    assert load(tmp_path).ssh.jump == ""


def test_an_environment_sets_or_clears_the_jump(tmp_path: Path) -> None:
    text = '[ssh]\njump = "bastion"\n[environments.inside.ssh]\njump = ""\n[environments.dmz.ssh]\njump = "dmz-gw"\n'
    (tmp_path / "tagship.toml").write_text(BASE + text)
    assert config_mod.load(tmp_path, {}, "inside").ssh.jump == ""
    dmz = config_mod.load(tmp_path, {}, "dmz")
    assert dmz.ssh.jump == "dmz-gw" and dmz.source_of("ssh.jump") == "environments.dmz"


@pytest.mark.parametrize(
    ("text", "environ", "problem"),
    [
        ('[ssh]\njump = "-oProxyCommand=sh"\n', {}, "  ssh.jump: a hop must not start with -"),
        ('[ssh]\njump = "bastion other"\n', {}, "  ssh.jump: a hop must not contain spaces"),
        ('[ssh]\njump = "bastion\\n"\n', {}, "  ssh.jump: must not contain control characters"),
        ("[ssh]\njump = 22\n", {}, "  ssh.jump: must be a string"),
        ("", {"TAGSHIP_SSH_JUMP": "-J"}, "  ssh.jump: a hop must not start with -"),
        ("", {"TAGSHIP_SSH_JUMP": "gw\t"}, "  ssh.jump: must not contain control characters"),
        ('[environments.prod.ssh]\njump = "a b"\n', {"TAGSHIP_ENVIRONMENT": "prod"},
         "  environments.prod.ssh.jump: a hop must not contain spaces"),
        ('[ssh]\njump = "gw"\noptions = ["ConnectTimeout=3", "ProxyJump=other"]\n', {},
         "  ssh.options[1]: names a proxy too; set either ssh.jump or this option"),
        ('[ssh]\njump = "gw"\noptions = ["ProxyCommand ssh -W %h:%p gw"]\n', {},
         "  ssh.options[0]: names a proxy too"),
    ],
)  # fmt: skip
def test_a_bad_jump_is_refused_with_its_key(tmp_path: Path, text: str, environ: dict[str, str], problem: str) -> None:
    assert problem in refused(tmp_path, text, environ)


def test_a_bad_jump_is_exit_2_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "tagship.toml").write_text(BASE + '[ssh]\njump = "-oProxyCommand=touch /tmp/x"\n')
    done = subprocess.run(
        [sys.executable, "-m", "tagship", "config"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == EXIT_USAGE
    assert "ssh.jump: a hop must not start with -" in done.stderr


@pytest.mark.parametrize(
    "address",
    ["web1 -J -oProxyCommand=sh", "web1 -o ProxyJump=a,,b", "web1 -J 'gw other'", "web1 -o proxyjump=$(id)"],
)
def test_an_addresss_own_jump_is_checked_the_same_way(address: str) -> None:
    with pytest.raises(ConfigError, match=r"servers\[0\]: invalid jump host"):
        server.parse(address, where="servers[0]")


@pytest.mark.parametrize(
    ("address", "option"),
    [
        # ssh_config's rule: the key ends at the first space or "=", whichever comes first
        ('web1 -o "ProxyCommand=ssh -W %h:%p ops@bastion"', "ProxyCommand=ssh -W %h:%p ops@bastion"),
        ('web1 -o "ProxyCommand ssh -W %h:%p ops@bastion"', "ProxyCommand=ssh -W %h:%p ops@bastion"),
        ('web1 -o "ProxyJump = ops@bastion:22"', "ProxyJump=ops@bastion:22"),
        ('web1 -o "ProxyJump ops@bastion:22"', "ProxyJump=ops@bastion:22"),
    ],
)
def test_an_addresss_own_o_option_reaches_ssh_with_its_value_as_written(address: str, option: str) -> None:
    """-o "ProxyCommand=ssh -W %h:%p b" reached ssh as ProxyCommand=ssh=-W %h:%p b (the first space
    made an "="), and -o "ProxyJump = b" was refused."""
    assert server.parse(address).ssh_args()[-3:] == ["-o", option, "web1"]


def test_a_jump_of_two_words_in_an_addresss_o_option_is_refused_as_it_is_written() -> None:
    with pytest.raises(ConfigError, match=r"a hop must not contain spaces, got 'ops@a b'"):
        server.parse('web1 -o "ProxyJump=ops@a b"', where="servers[0]")


def ssh_for(address: str, jump: str) -> SshTransport:
    return SshTransport(server=server.parse(address), out=Output(quiet=True), jump=jump)


def test_the_jump_is_on_every_ssh_command_line_before_the_destination() -> None:
    ssh = ssh_for("deploy@web1 -p 2222", "ops@bastion:22,gw2")
    assert ssh.base_args()[-2:] == ["-J", "ops@bastion:22,gw2"]
    assert ssh.base_args(master=True)[-2:] == ["-J", "ops@bastion:22,gw2"]
    argv = ssh.argv(Command(("docker", "ps")))
    destination = ["-J", "ops@bastion:22,gw2", "-p", "2222", "-l", "deploy", "web1"]
    assert argv[argv.index("-J") : argv.index("--")] == destination
    assert argv.count("-J") == 1 and "ProxyJump=ops@bastion:22,gw2" not in argv


def test_an_addresss_own_jump_wins_over_the_key() -> None:
    argv = ssh_for("deploy@web1 -J ops@other:2222", "bastion").argv(Command(("true",)))
    assert "-J" not in argv and "bastion" not in argv
    assert argv[argv.index("--") - 5 :] == ["-l", "deploy", "-o", "ProxyJump=ops@other:2222", "web1", "--", "true"]
    # A ProxyCommand of its own too: ssh would take whichever it reads first.
    assert "-J" not in ssh_for("web1 -o 'ProxyCommand=nc %h %p'", "bastion").argv(Command(("true",)))
    assert "-J" not in ssh_for("web1", "").base_args()


def test_the_runs_transports_get_the_configs_jump(tmp_path: Path) -> None:
    config = load(tmp_path, '[ssh]\njump = "bastion"\n')
    with connections(config, Output(quiet=True)) as owner:
        first, second, local = (owner.get(s) for s in config.servers)
        assert isinstance(first, SshTransport) and first.base_args()[-2:] == ["-J", "bastion"]
        assert isinstance(second, SshTransport) and "-J" not in second.base_args()
        assert not isinstance(local, SshTransport)
    assert [s.jump_host(config.ssh.jump) for s in config.servers] == ["bastion", "ops@other:2222", ""]


def test_a_connection_failure_names_the_jump_since_either_hop_may_have_failed() -> None:
    refused = Result(255, "", "ssh: Could not resolve hostname bastion: Name or service not known\n")
    with pytest.raises(ConnectError, match="cannot connect to deploy@web1 through bastion: unknown host name"):
        ssh_for("deploy@web1", "bastion")._raise_for_connection(refused)
    with pytest.raises(ConnectError, match="cannot connect to web1 -J gw: unknown host name"):
        ssh_for("web1 -J gw", "bastion")._raise_for_connection(refused)


def test_a_connection_closed_through_a_jump_says_the_jump_may_be_why() -> None:
    # What ssh prints when the bastion cannot reach the server (the jump's own error is hidden by ControlPersist).
    closed = Result(255, "", "kex_exchange_identification: Connection closed by remote host\r\n")
    with pytest.raises(ConnectError) as caught:
        ssh_for("web1", "ops@bastion")._raise_for_connection(closed)
    assert caught.value.message == "cannot connect to web1 through ops@bastion: connection closed by the server"
    assert "the jump host ops@bastion may not reach the server's sshd" in (caught.value.hint or "")
    with pytest.raises(ConnectError) as direct:
        ssh_for("web1", "")._raise_for_connection(closed)
    assert direct.value.hint == "check sshd's logs on the server"
