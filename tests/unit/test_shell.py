"""The persistent shell's protocol, against the real server-side loop run by the local sh.

Over ssh the same loop runs on the server (the end-to-end tests cover that path); here the loop
talks to the client directly, so every framing case can be checked quickly.
"""

from __future__ import annotations

import base64
import io
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tagship.errors import ConnectError
from tagship.output import Output
from tagship.remote import server, transport
from tagship.remote.transport import SHELL_LOOP, Result, Shell, SshTransport


@pytest.fixture
def shell() -> Iterator[Shell]:
    s = Shell(["sh", "-c", SHELL_LOOP])
    assert s.start(5).ok and s.alive
    yield s
    s.close()


def run(shell: Shell, line: str, stdin: bytes | None = None, timeout: float | None = 10) -> Result:
    result = shell.run(line, stdin, timeout)
    assert result is not None
    return result


def test_exit_code_stdout_and_stderr_come_back_separately(shell: Shell) -> None:
    result = run(shell, "echo out; echo err >&2; exit 3")
    assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_stdin_bytes_arrive_exactly_including_nul_newlines_and_no_final_newline(shell: Shell) -> None:
    data = b"a\x00b\n\nc'd\"e$(f)`g`\\h"
    assert run(shell, "cat", data).raw == data


def test_empty_stdin_and_no_stdin_both_read_as_eof(shell: Shell) -> None:
    assert run(shell, "cat", b"").stdout == ""
    assert run(shell, "cat").stdout == ""  # /dev/null: a command reading stdin does not hang


def test_large_stdin_and_binary_output(shell: Shell) -> None:
    data = os.urandom(200_000)
    result = run(shell, "cat", data)
    assert result.raw == data
    assert len(run(shell, "head -c 1000000 /dev/zero").raw) == 1_000_000


def test_quoted_argv_with_hostile_values_is_run_as_words_not_code(shell: Shell) -> None:
    hostile = ["printf", "%s|", "a b", "$(touch /tmp/tagship-pwned)", "'", '"', ";rm -rf x", "\n"]
    result = run(shell, shlex.join(hostile))
    assert result.stdout == "a b|$(touch /tmp/tagship-pwned)|'|\"|;rm -rf x|\n|"
    assert not os.path.exists("/tmp/tagship-pwned")


def test_many_commands_in_a_row_keep_the_framing(shell: Shell) -> None:
    for i in range(50):
        result = run(shell, f"printf '%s' {i}; printf 'e{i}' >&2")
        assert (result.stdout, result.stderr) == (str(i), f"e{i}")


def test_the_session_pid_is_exported_and_alive_while_the_shell_is(shell: Shell) -> None:
    pid = int(run(shell, 'printf %s "$TAGSHIP_SESSION_PID"').stdout)
    assert os.path.isdir(f"/proc/{pid}")
    shell.close()
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone, or a zombie not yet reaped


def test_a_timeout_kills_the_shell_and_later_commands_are_refused_for_a_fresh_session(shell: Shell) -> None:
    result = run(shell, "sleep 5", timeout=0.5)
    assert result.code != 0 and "timed out" in result.stderr
    assert not shell.alive
    assert shell.run("true", None, 5) is None  # the transport then opens a session of its own


def test_a_shell_that_dies_under_a_command_reports_a_lost_session(shell: Shell) -> None:
    result = run(shell, "kill -9 $TAGSHIP_SESSION_PID")
    assert result.code == 255 and not shell.alive


def test_a_shell_that_ended_between_commands_is_not_used(shell: Shell) -> None:
    shell.proc.kill()
    shell.proc.wait()
    assert shell.run("echo hi", None, 5) is None  # the transport opens a session instead
    assert not shell.alive


def test_a_busy_shell_is_not_shared(shell: Shell) -> None:
    assert shell.busy.acquire(blocking=False)
    try:
        assert shell.run("true", None, 5) is None
    finally:
        shell.busy.release()


def test_a_server_without_the_tools_answers_no_and_the_shell_is_not_used() -> None:
    s = Shell(["/bin/sh", "-c", f"PATH=/nonexistent; {SHELL_LOOP}"])
    assert s.start(5).ok
    assert not s.alive
    assert s.run("true", None, 5) is None


def test_a_failed_background_connect_is_raised_by_every_connect(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  UserKnownHostsFile /dev/null\n")
    ssh = SshTransport(
        server=server.parse("127.0.0.1:1"), out=Output(quiet=True), ssh_config=str(config), connect_timeout=3
    )
    ssh.connect_soon()  # port 1 on loopback: refused at once
    for _ in range(2):
        with pytest.raises(ConnectError, match="connection refused"):
            ssh.connect()
    ssh.close()


def test_an_interrupted_request_retires_the_shell_so_no_later_reply_is_misread(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tagship.remote.transport.select.select", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shell.run("sleep 0.2; echo late", None, 5)
    monkeypatch.undo()
    assert not shell.alive
    assert shell.run("echo next", None, 5) is None


def test_why_ssh_failed_is_read_to_the_end_even_after_it_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    # ssh's last stderr line says why it failed (that picks exit code 6 and the hint), and it may
    # still be in the pipe when the process has already exited: a slow reader makes that certain.
    real_pump = transport._pump

    def slow_pump(*args: Any) -> None:
        time.sleep(0.2)
        real_pump(*args)

    monkeypatch.setattr(transport, "_pump", slow_pump)
    s = Shell(["sh", "-c", "echo 'Host key verification failed.' >&2; exit 255"])
    result = s.start(5)
    assert (result.code, result.stderr) == (255, "Host key verification failed.\n")


def test_a_login_banner_before_the_loop_is_skipped() -> None:
    s = Shell(["sh", "-c", f"echo 'Welcome to prod-1'; echo; {SHELL_LOOP}"])
    assert s.start(5).ok and s.alive
    result = s.run("echo hi", None, 5)
    assert result is not None and result.stdout == "hi\n"
    s.close()


@pytest.mark.parametrize("login_shell", ["dash", "bash", "busybox sh"])
def test_the_loop_runs_under_each_common_sh(login_shell: str) -> None:
    """Debian's dash, RHEL's bash, Alpine's busybox: stdin the command leaves unread must not leak."""
    argv = login_shell.split()
    if not shutil.which(argv[0]):
        pytest.fail(f"{argv[0]} is not installed (scripts/install-system.sh installs it)")
    s = Shell([*argv, "-c", SHELL_LOOP])
    assert s.start(5).ok and s.alive
    data = os.urandom(300_000)
    for line, stdin, expected in [
        ("cat", data, data),
        ("head -c 3", b"abcdef", b"abc"),  # leaves 3 bytes unread
        ("exit 7", b"x" * 100_000, b""),  # reads none of it
        ("echo after", None, b"after\n"),
    ]:
        result = s.run(line, stdin, 10)
        assert result is not None and result.raw == expected
    s.close()


def test_a_request_carries_bytes_that_are_not_utf8_as_those_bytes() -> None:
    """A value read as bytes (surrogateescape) reaches the server as those bytes; it no longer kills the shell."""
    request = transport.shell_request("printf %s '\udcff\udcfe'", None)
    head, encoded, size = request.decode().split()
    assert (head, size) == ("R", "-")
    assert base64.b64decode(encoded) == b"printf %s '\xff\xfe'"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ((), ""),
        (("StrictHostKeyChecking=no",), "StrictHostKeyChecking no"),
        (("StrictHostKeyChecking=accept-new",), ""),
        (("StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/dev/null"), "accept-new with UserKnownHostsFile"),
        (("UserKnownHostsFile=/dev/null",), ""),  # nothing is known: every connection fails, none is trusted
    ],
)
def test_host_key_checking_turned_off_by_the_users_options_is_found_as_ssh_resolves_them(
    tmp_path: Path, options: tuple[str, ...], reason: str
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    ConnectTimeout 5\n")
    t = SshTransport(
        server=server.parse("deploy@web1.invalid"), out=Output(), ssh_config=str(config), ssh_options=options
    )
    try:
        found = t.host_key_checking_off()
    finally:
        t.close()
    assert (reason in found) if reason else found == ""


def test_host_key_checking_off_in_an_ssh_config_file_is_found_too(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host web1.invalid\n    StrictHostKeyChecking no\n")
    t = SshTransport(server=server.parse("web1.invalid"), out=Output(), ssh_config=str(config))
    try:
        assert t.host_key_checking_off() == "StrictHostKeyChecking no"
    finally:
        t.close()


def test_connecting_with_host_key_checking_off_warns_before_anything_is_sent() -> None:
    err = io.StringIO()
    t = SshTransport(
        server=server.parse("web1.invalid"),
        out=Output(out=io.StringIO(), err=err),
        ssh_options=("StrictHostKeyChecking=no",),
        connect_timeout=2,
    )
    try:
        with pytest.raises(ConnectError):
            t.connect()  # .invalid never resolves
    finally:
        t.close()
    assert "web1.invalid: host-key checking is off in your ssh settings (StrictHostKeyChecking no)" in err.getvalue()
