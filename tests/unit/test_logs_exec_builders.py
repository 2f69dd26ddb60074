"""The commands of `tagship logs` and `tagship exec`, argv exactly, and how a terminal reaches ssh."""

from __future__ import annotations

import shlex

from tagship.builders import compose
from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import Shell, SshTransport

PROJECT = compose.Project("/srv/my app", ("compose.yaml", "compose.tagship.yaml"))
BASE = (
    "docker",
    "compose",
    "--project-directory",
    "/srv/my app",
    "--file",
    "/srv/my app/compose.yaml",
    "--file",
    "/srv/my app/compose.tagship.yaml",
)
HOSTILE = "$(touch /tmp/pwned); rm -rf / `id`"


def test_logs_of_a_service_with_every_option() -> None:
    cmd = compose.logs(PROJECT, "web", follow=True, since="10m", tail=5)
    assert cmd.argv == (*BASE, "logs", "--no-color", "--follow", "--since=10m", "--tail=5", "--", "web")
    assert cmd.tty, "a followed stream ends with its session"


def test_logs_without_options_is_a_plain_read_without_a_terminal() -> None:
    cmd = compose.logs(PROJECT, "worker")
    assert cmd.argv == (*BASE, "logs", "--no-color", "--", "worker")
    assert not cmd.tty


def test_logs_values_stay_one_word_each_and_cannot_become_options() -> None:
    cmd = compose.logs(PROJECT, "-x", since=f"--follow {HOSTILE}", tail=0)
    assert cmd.argv[-5:] == ("--no-color", f"--since=--follow {HOSTILE}", "--tail=0", "--", "-x")
    assert cmd.argv[-1] == "-x", "the service comes after --"
    assert shlex.split(shlex.join(cmd.argv)) == list(cmd.argv)


def test_exec_in_the_running_container_without_and_with_a_terminal() -> None:
    argv = ("sh", "-c", HOSTILE)
    plain = compose.exec_in(PROJECT, "web", argv)
    assert plain.argv == (*BASE, "exec", "--no-TTY", "web", "sh", "-c", HOSTILE) and not plain.tty
    tty = compose.exec_in(PROJECT, "web", ("python", "manage.py", "shell"), tty=True)
    assert tty.argv == (*BASE, "exec", "web", "python", "manage.py", "shell") and tty.tty


def test_a_one_off_container_without_and_with_a_terminal() -> None:
    plain = compose.run_once(PROJECT, "web", ("cat", "/www/version.txt"))
    assert plain.argv == (*BASE, "run", "--rm", "--no-deps", "--no-TTY", "web", "cat", "/www/version.txt")
    assert not plain.tty
    tty = compose.run_once(PROJECT, "web", ("sh",), tty=True)
    assert tty.argv == (*BASE, "run", "--rm", "--no-deps", "web", "sh") and tty.tty


def ssh() -> SshTransport:
    return SshTransport(server=server.parse("deploy@web1 -p 2222"), out=Output(quiet=True))


def test_a_tty_command_gets_a_forced_terminal_and_the_same_quoted_line() -> None:
    t = ssh()
    try:
        words = ("printf", "%s", HOSTILE)
        plain, tty = t.argv(Command(words)), t.argv(Command(words, tty=True))
        assert "-tt" not in plain and "-t" not in plain
        assert tty[: len(t.base_args())] == t.base_args()
        assert tty[len(t.base_args()) : len(t.base_args()) + 3] == ["-tt", "-o", "LogLevel=ERROR"]
        assert tty[-2:] == plain[-2:] == ["--", shlex.join(words)]
    finally:
        t.close()


def test_an_interactive_command_gets_a_terminal_only_when_asked() -> None:
    t = ssh()
    try:
        words = ("sh", "-c", "tty")
        assert "-t" not in t.interactive_argv(Command(words))
        argv = t.interactive_argv(Command(words, tty=True))
        assert argv[len(t.base_args()) : len(t.base_args()) + 3] == ["-t", "-o", "LogLevel=ERROR"]
        assert argv[-2:] == ["--", shlex.join(words)]
    finally:
        t.close()


def test_the_persistent_shell_never_takes_a_tty_command() -> None:
    t = ssh()
    try:
        t._shell = object.__new__(Shell)  # a connected shell: plain commands go to it
        assert t._shell_for(Command(("true",))) is t._shell
        assert t._shell_for(Command(("true",), tty=True)) is None
    finally:
        t._shell = None
        t.close()
