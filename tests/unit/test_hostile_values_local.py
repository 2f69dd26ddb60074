"""The 224 hostile values of tests/e2e/test_hostile_values.py through tagship's persistent-shell
protocol (its real client, `Shell`) with dash, bash and BusyBox as `sh`, and through a session's
command line with each of them as the login shell, on this machine: each arrives as one argument,
byte for byte, and none runs anything.

The lab test runs them over real SSH with each as `sh`, but root's login shell there is bash; here
the login shell (what sshd hands a session's command line to) is each of the three too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagship.remote.transport import SHELL_LOOP, Shell
from tests.e2e.test_hostile_values import CANARY, SHOW, hostile_values

SHELLS = {"dash": "dash", "bash": "bash", "busybox": "busybox"}


def need(program: str) -> str:
    found = shutil.which(program)
    assert found, f"{program} is needed (dash, bash and busybox are part of the test setup)"
    return found


@pytest.fixture
def sh_is(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """PATH's `sh` is the given shell (bash called `sh` runs in POSIX mode, as where /bin/sh is bash)."""
    shell = str(request.param)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to(need(SHELLS[shell]))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield shell


def login_argv(login: str, line: str) -> list[str]:
    """How sshd runs a command line: the user's login shell, `-c LINE`."""
    return ["busybox", "sh", "-c", line] if login == "busybox" else [need(SHELLS[login]), "-c", line]


SIGNATURES = {"dash": "Illegal option", "bash": "GNU bash", "busybox": "BusyBox"}


@pytest.fixture
def no_canary() -> Iterator[None]:
    Path(CANARY).unlink(missing_ok=True)
    yield
    assert not Path(CANARY).exists(), "a fragment of a value was executed"


@pytest.mark.parametrize("sh_is", list(SHELLS), indirect=True)
def test_through_the_persistent_shell_each_value_is_one_argument_under_each_sh(sh_is: str, no_canary: None) -> None:
    # The loop and each request's line run under `sh`; the login shell (bash, as on the lab servers)
    # only starts the loop.
    said = subprocess.run(login_argv("bash", "sh --help 2>&1 | head -n 1"), capture_output=True, text=True)
    assert SIGNATURES[sh_is] in said.stdout
    shell = Shell(login_argv("bash", shlex.join(("sh", "-c", SHELL_LOOP))))
    try:
        assert shell.start(10).ok and shell.alive, f"the persistent shell starts under {sh_is}"
        for value in hostile_values():
            argv = ("sh", "-c", SHOW, "-", value)
            found = shell.run(shlex.join(argv), None, 10)
            assert found is not None and found.stdout == expected(value), f"{value!r:.80}"
        assert shell.alive, "no value killed the persistent shell"
    finally:
        shell.close()


@pytest.mark.parametrize("login", list(SHELLS))
def test_through_a_session_each_value_is_one_argument_under_each_login_shell(login: str, no_canary: None) -> None:
    # A session's command line is parsed by the login shell alone (sshd runs `SHELL -c LINE`).
    for value in hostile_values():
        # argv is encoded with surrogateescape, as for ssh: bytes that are not UTF-8 go as they are.
        session = subprocess.run(login_argv(login, shlex.join(("sh", "-c", SHOW, "-", value))), capture_output=True)
        assert session.stdout.decode() == expected(value), f"{value!r:.80}"


def expected(value: str) -> str:
    """What SHOW prints for a value that arrived as the one argument, byte for byte."""
    return f"1:{value.encode('utf-8', 'surrogateescape').hex()}"
