"""The one place that starts processes: locally, or on a server through the system ssh client."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from .command import Command, mask
from .errors import CommandFailed, ConnectError, MissingToolError
from .output import Output
from .server import Server

SSH_ERROR = 255
TAIL_LINES = 15


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    code: int
    stdout: str
    stderr: str
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == 0


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last lines of some output, for error messages."""
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass
class Transport:
    """Runs commands for one server. Subclasses decide how argv reaches the machine."""

    server: Server
    out: Output
    dry_run: bool = False

    @property
    def name(self) -> str:
        return self.server.name

    def argv(self, cmd: Command) -> list[str]:
        """The local argv that runs cmd on this transport's machine."""
        return list(cmd.argv)

    def run(
        self,
        cmd: Command,
        *,
        check: bool = True,
        stream: bool = False,
        show: bool = True,
        timeout: float | None = None,
        binary: bool = False,
    ) -> Result:
        """Run cmd; stream its output prefixed with the server name; raise CommandFailed on error."""
        if show:
            self.out.command(self.name, cmd.shown())
        if self.dry_run:
            return Result(0, "", "")
        env = {**os.environ, **dict(cmd.env)} if cmd.env else None
        on_line = (lambda line: self.out.server_line(self.name, mask(line, cmd.secrets))) if stream else None
        try:
            result = _spawn(self.argv(cmd), cmd.stdin, env, timeout, on_line, binary)
        except FileNotFoundError as exc:
            raise MissingToolError(
                f"{exc.filename} is not installed on this machine",
                hint="install it and try again (see README: Requirements)",
            ) from exc
        self._raise_for_connection(result)
        if check and not result.ok:
            raise CommandFailed(
                self.name,
                cmd.shown(),
                result.code,
                mask(tail(result.stderr or result.stdout), cmd.secrets),
            )
        return result

    def _raise_for_connection(self, result: Result) -> None:
        """Local commands have no connection to lose."""

    def close(self) -> None:
        """Release connection resources."""


@dataclass
class LocalTransport(Transport):
    """Runs commands on this machine (the `local` server, and git/docker on the deploying side)."""


@dataclass
class SshTransport(Transport):
    """Runs commands through the system OpenSSH client over one multiplexed connection."""

    ssh_config: str = ""
    ssh_options: tuple[str, ...] = ()
    connect_timeout: int = 10
    _control_dir: str = ""
    _master: bool = False

    def __post_init__(self) -> None:
        # A private directory keeps the control socket away from other users and other runs.
        self._control_dir = tempfile.mkdtemp(prefix="tagship-ssh-")

    def base_args(self, master: bool = False) -> list[str]:
        """ssh options shared by every command of this run (the master opens the one connection)."""
        args = ["ssh"]
        if self.ssh_config:
            args += ["-F", self.ssh_config]
        options = (
            "BatchMode=yes",  # never a password or host-key prompt: fail with a message instead
            f"ConnectTimeout={self.connect_timeout}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            f"ControlMaster={'yes' if master else 'no'}",
            f"ControlPath={self._control_dir}/%C",
            "ControlPersist=30",  # a master left behind by a killed run ends when idle
        )
        for option in options:
            args += ["-o", option]
        for option in self.ssh_options:
            args += ["-o", option]
        return args

    def argv(self, cmd: Command) -> list[str]:
        # The remote side runs a shell line: quoting happens here, once, for every value.
        return [*self.base_args(master=self._master), *self.server.ssh_args(), "--", shlex.join(cmd.argv)]

    def _raise_for_connection(self, result: Result) -> None:
        if result.code != SSH_ERROR:
            return
        reason = connection_problem(result.stderr)
        if reason:
            raise ConnectError(f"cannot connect to {self.server.raw}: {reason[0]}", hint=reason[1])

    def connect(self) -> None:
        """Open the run's one connection to the server (fail early, clearly); later commands ride on it.

        The first command runs as the ControlMaster; ControlPersist then keeps that connection in
        the background until close(), or until it has been idle that long if this process is killed.
        """
        if self.dry_run:
            return
        self._master = True
        try:
            self.run(Command(("true",)), show=False)
        finally:
            self._master = False

    def close(self) -> None:
        if self.dry_run:
            return
        subprocess.run(
            [*self.base_args(), "-O", "exit", *self.server.ssh_args()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        try:
            for entry in os.listdir(self._control_dir):
                os.unlink(os.path.join(self._control_dir, entry))
            os.rmdir(self._control_dir)
        except OSError:
            pass


_CONNECTION_PROBLEMS = (
    (
        "Host key verification failed",
        "unknown or changed host key",
        "check the server's key and add it to known_hosts (ssh once by hand, or ssh-keyscan); "
        "tagship never turns host-key checking off",
    ),
    (
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "the host key changed",
        "verify the server, then fix known_hosts (ssh-keygen -R HOST)",
    ),
    (
        "Permission denied",
        "SSH authentication failed",
        "load your key into ssh-agent or set IdentityFile in ~/.ssh/config for this host",
    ),
    ("Could not resolve hostname", "unknown host name", "check the server address or its Host entry in ~/.ssh/config"),
    ("timed out", "connection timed out", "check the address, the network and any bastion (ProxyJump)"),
    ("Connection refused", "connection refused", "is sshd running on that port?"),
    ("No route to host", "no route to host", "check the address and the network"),
    ("Network is unreachable", "network unreachable", "check the address and the network"),
    ("Connection closed", "connection closed by the server", "check sshd's logs on the server"),
)


def connection_problem(stderr: str) -> tuple[str, str] | None:
    """Recognise an ssh client failure in its stderr: (what happened, what to do)."""
    for needle, what, hint in _CONNECTION_PROBLEMS:
        if needle.lower() in stderr.lower():
            return what, hint
    return None


def _pump(pipe: IO[bytes], sink: list[bytes], on_line: Callable[[str], None] | None) -> None:
    for chunk in iter(pipe.readline, b""):
        sink.append(chunk)
        if on_line is not None:
            on_line(chunk.decode(errors="replace").rstrip("\n"))
    pipe.close()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


def _spawn(
    argv: list[str],
    stdin: bytes | None,
    env: dict[str, str] | None,
    timeout: float | None,
    on_line: Callable[[str], None] | None,
    binary: bool,
) -> Result:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, out, None if binary else on_line)),
        threading.Thread(target=_pump, args=(proc.stderr, err, on_line)),
    ]
    if stdin is not None:
        assert proc.stdin is not None
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin)))
    for thread in threads:
        thread.daemon = True
        thread.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        err.append(f"\n(timed out after {timeout:.0f}s)\n".encode())
    for thread in threads:
        thread.join()
    raw = b"".join(out)
    return Result(code, raw.decode(errors="replace"), b"".join(err).decode(errors="replace"), raw)


def for_server(
    server: Server,
    out: Output,
    *,
    dry_run: bool,
    ssh_config: str = "",
    ssh_options: tuple[str, ...] = (),
    connect_timeout: int = 10,
) -> Transport:
    """The right transport for a server."""
    if server.is_local:
        return LocalTransport(server=server, out=out, dry_run=dry_run)
    return SshTransport(
        server=server,
        out=out,
        dry_run=dry_run,
        ssh_config=ssh_config,
        ssh_options=ssh_options,
        connect_timeout=connect_timeout,
    )
