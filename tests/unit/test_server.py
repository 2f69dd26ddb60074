import pytest

from tagship.errors import ConfigError
from tagship.remote.server import parse


@pytest.mark.parametrize(
    ("text", "host", "user", "port", "args"),
    [
        ("web1", "web1", "", None, ["web1"]),
        ("deploy@10.0.0.5", "10.0.0.5", "deploy", None, ["-l", "deploy", "10.0.0.5"]),
        ("deploy@10.0.0.5:2222", "10.0.0.5", "deploy", 2222, ["-p", "2222", "-l", "deploy", "10.0.0.5"]),
        ("ssh://root@host.example:2022", "host.example", "root", 2022, ["-p", "2022", "-l", "root", "host.example"]),
        ("user@server-ip -p 2022", "server-ip", "user", 2022, ["-p", "2022", "-l", "user", "server-ip"]),
        ("root@[::1]:2200", "::1", "root", 2200, ["-p", "2200", "-l", "root", "::1"]),
        ("-p 22 root@h", "h", "root", 22, ["-p", "22", "-l", "root", "h"]),
    ],
)
def test_server_address_forms(text: str, host: str, user: str, port: int | None, args: list[str]) -> None:
    server = parse(text)
    assert (server.host, server.user, server.port) == (host, user, port)
    assert server.ssh_args() == args


def test_jump_and_options_are_kept_as_ssh_options() -> None:
    server = parse("app@10.1.0.4 -J bastion -o StrictHostKeyChecking=yes")
    assert server.ssh_args() == ["-l", "app", "-o", "ProxyJump=bastion", "-o", "StrictHostKeyChecking=yes", "10.1.0.4"]


def test_local_is_the_local_machine() -> None:
    assert parse("local").is_local


@pytest.mark.parametrize(
    "text",
    ["", "user@host -p", "user@host -p abc", "h:99999", "-oProxyCommand=x", "a b", "user@-host", "host;rm -rf /"],
)
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse(text)
