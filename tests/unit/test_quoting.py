"""Quoting happens once, in the transport (shlex.join): any argv reaches the server's shell as words, never code."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import server
from tagship.remote.transport import SHELL_LOOP, Shell, SshTransport

HOSTILE = [
    "$(touch canary)",
    "`touch canary`",
    "; touch canary",
    "| touch canary",
    "&& touch canary",
    "\ntouch canary",
    "\rtouch canary",
    "> canary",
    "-n",
    "--",
    "'",
    '"',
    "\\",
    "*",
    "~",
    "$HOME",
    "",
    "é ✓ \u2028",
]
_words = st.lists(
    st.sampled_from(HOSTILE) | st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    max_size=6,
)


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shell's working directory: whatever a broken quoting ran would leave files here."""
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def over_ssh(server_dir: Path) -> Iterator[SshTransport]:
    """An ssh transport whose persistent shell is the server-side loop under the local sh, started in
    server_dir: the line tagship sends is what a server's shell gets."""
    here = os.getcwd()
    os.chdir(server_dir)  # the shell inherits it; never the repository, whatever a failing example runs
    try:
        shell = Shell(["sh", "-c", SHELL_LOOP])
    finally:
        os.chdir(here)
    assert shell.start(5).ok and shell.alive
    ssh = SshTransport(server=server.parse("deploy@web1"), out=Output(quiet=True))
    ssh._shell, ssh._opened = shell, True  # connected: commands go to that shell
    yield ssh
    shell.close()


@settings(deadline=None, max_examples=60)  # each example is a round trip through sh
@given(_words)
def test_any_argv_comes_back_word_for_word_and_runs_nothing(
    over_ssh: SshTransport, server_dir: Path, words: list[str]
) -> None:
    result = over_ssh.run(Command(("printf", "%s\\0", "first", *words)), show=False)  # printf runs once for none
    assert result.raw.split(b"\0")[:-1] == [b"first", *(w.encode() for w in words)]
    assert list(server_dir.iterdir()) == [], "no word ran as a command or a redirection"


def test_over_ssh_the_remote_line_is_the_same_quoted_line_after_the_options_end() -> None:
    ssh = SshTransport(server=server.parse("deploy@web1 -p 2222"), out=Output(quiet=True))
    try:
        words = ("printf", "%s", "$(touch canary)", "-oProxyCommand=x")
        argv = ssh.argv(Command(words))
        assert argv[-2:] == ["--", shlex.join(words)], "one argument for the server's shell, after `--`"
        assert shlex.split(argv[-1]) == list(words)
    finally:
        ssh.close()
