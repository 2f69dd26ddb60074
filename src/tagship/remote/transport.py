"""The one place that starts processes: locally, or on a server through the system ssh client."""

from __future__ import annotations

import base64
import contextlib
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from tagship.builders import envfile, scripts
from tagship.builders.command import Command, mask
from tagship.errors import CommandFailed, ConnectError, MissingToolError, TagshipError
from tagship.messages import t
from tagship.output import Output
from tagship.remote import interrupt
from tagship.remote.server import Server

SSH_ERROR = 255
TAIL_LINES = 15
CONTROL_PREFIX = "tagship-ssh-"
# A control directory empty for this long belongs to no live connection: a run's master removes its
# socket on exit, and ControlPersist (30 s) ends the master of a run that was killed.
STALE_CONTROL_SECONDS = 120


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
    """The connector interface: run a command (with stdin when the Command carries it), put a file,
    run an interactive command, connect and close. LocalTransport and SshTransport implement it;
    subclasses decide how argv reaches the machine."""

    server: Server
    out: Output
    spawned = "local"  # how a spawned command runs here (TAGSHIP_TRACE)

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
        echo: bool = False,
        show: bool = True,
        timeout: float | None = None,
        binary: bool = False,
    ) -> Result:
        """Run cmd; raise CommandFailed on error.

        stream: show its output live, line by line, prefixed with the server name (long commands:
        pulls, builds; over ssh these get a session of their own). echo: show it when done.
        """
        interrupt.check()
        if show:
            self.out.command(self.name, cmd.shown())
        env = {**os.environ, **dict(cmd.env)} if cmd.env else None
        on_line = (lambda line: self.out.server_line(self.name, mask(line, cmd.secrets))) if stream else None
        started = time.monotonic()
        shell = None if stream else self._shell_for(cmd)
        result = shell.run(shlex.join(cmd.argv), cmd.stdin, timeout) if shell else None  # output comes whole
        via = self.spawned if result is None else "shell"
        try:
            if result is None:
                result = _spawn(self.argv(cmd), cmd.stdin, env, timeout, on_line, binary)
        except FileNotFoundError as exc:
            raise MissingToolError(
                t("transport.not_installed_this_machine", filename=exc.filename),
                hint=t("transport.install_try_again_see"),
            ) from exc
        _trace(self.name, cmd, started, result.code, via)
        if echo and not stream:
            for line in (result.stdout + result.stderr).splitlines():
                self.out.server_line(self.name, mask(line, cmd.secrets))
        self._raise_for_connection(result)
        if check and not result.ok:
            raise CommandFailed(
                self.name,
                cmd.shown(),
                result.code,
                mask(tail(result.stderr or result.stdout), cmd.secrets),
            )
        return result

    def put(self, path: str, data: bytes, note: str, mode: int = 0o600, *, private: bool = False) -> None:
        """Write a file on the machine atomically (mode if new: it may hold secrets; private: no access
        for group and others in any case); the bytes travel on stdin, never in argv."""
        self.run(envfile.write(path, data, note, new_mode=mode, private=private))

    def interactive(self, cmd: Command) -> int:
        """Run cmd attached to this terminal (stdin, stdout and stderr are ours; on a server with a TTY
        when cmd.tty); its exit code."""
        interrupt.check()
        return subprocess.call(self.interactive_argv(cmd))

    def interactive_argv(self, cmd: Command) -> list[str]:
        return self.argv(cmd)

    def _shell_for(self, cmd: Command) -> Shell | None:
        """The persistent shell that can take cmd, if any (a busy or dead one returns no result)."""
        return None

    def _raise_for_connection(self, result: Result) -> None:
        """Local commands have no connection to lose."""

    def forward_remote(self, local_port: int) -> int:
        """Let the machine reach this machine's 127.0.0.1:local_port at its own 127.0.0.1:PORT; PORT."""
        return local_port  # this machine is the machine: no tunnel

    def cancel_forward(self, remote_port: int, local_port: int) -> None:
        """End a forward_remote."""

    def connect_soon(self) -> None:
        """Start connecting in the background, while local work runs (connect() then waits for it)."""

    def connect(self) -> None:
        """Open the connection to the machine (nothing to do locally)."""

    def close(self) -> None:
        """Release connection resources."""


@dataclass
class LocalTransport(Transport):
    """Runs commands on this machine (the `local` server, and git/docker on the deploying side)."""

    def start(self, cmd: Command, log: str) -> Background:
        """Start a long-running command in the background (its output to the file log); stop() ends it."""
        interrupt.check()
        self.out.command(self.name, cmd.shown())
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                ["sh", "-c", WATCHDOG, "sh", *cmd.argv],  # it dies with tagship, even a SIGKILLed one
                stdin=subprocess.PIPE,  # never written: its end of file tells the watchdog tagship is gone
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # out of the terminal's Ctrl-C: the plan's undo stops it
            )
        return Background(proc)


class Background:
    """A process LocalTransport.start left running."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to it and its group, then SIGKILL if it does not end within 5 s."""
        _stop_group(self.proc)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()


@dataclass
class SshTransport(Transport):
    """Runs commands through the system OpenSSH client over one multiplexed connection."""

    ssh_config: str = ""
    ssh_options: tuple[str, ...] = ()
    connect_timeout: int = 10
    jump: str = ""  # ssh.jump: ProxyJump unless the address names its own way in
    spawned = "session"
    _control_dir: str = ""
    _control_dir_made: threading.Lock = field(default_factory=threading.Lock)  # the background connect races it
    _shell: Shell | None = None
    _connecting: threading.Thread | None = None
    _connect_error: TagshipError | None = None
    _opened: bool = False
    _closed: bool = False

    def control_dir(self) -> str:
        """The directory of this run's control socket, made on first use: a transport that never
        runs anything (a dry run's) leaves nothing behind."""
        with self._control_dir_made:
            if not self._control_dir:
                if self._closed:  # a connect still under way when close() was interrupted: nothing new
                    raise ConnectError(t("transport.connecting_interrupted", raw=self.server.raw))
                # A private directory keeps the control socket away from other users and other runs.
                remove_stale_control_dirs()
                self._control_dir = tempfile.mkdtemp(prefix=CONTROL_PREFIX)
        return self._control_dir

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
            f"ControlPath={self.control_dir()}/%C",
            "ControlPersist=30",  # a master left behind by a killed run ends when idle
        )
        for option in options:
            args += ["-o", option]
        for option in self.ssh_options:
            args += ["-o", option]
        # Every command of the run, the master and `-O exit` too: the master carries the jump, the
        # others ride on its socket. The jump hops read their own options from ssh_config (as ssh -J does).
        return args + self.server.jump_args(self.jump)

    @property
    def destination(self) -> str:
        """The server as messages name it: with the jump tagship adds, since either hop may be what failed."""
        jump = self.server.jump_args(self.jump)
        return f"{self.server.raw} through {jump[1]}" if jump else self.server.raw

    def argv(self, cmd: Command) -> list[str]:
        # The remote side runs a shell line: quoting happens here, once, for every value. A tty
        # command gets a pseudo-terminal although our stdin is none (-tt): when its session ends
        # (tagship stopped it), the server hangs the terminal up and the program ends with it.
        tty = ["-tt", "-o", "LogLevel=ERROR"] if cmd.tty else []  # LogLevel: no "connection closed" line
        return [*self.base_args(), *tty, *self.server.ssh_args(), "--", shlex.join(cmd.argv)]

    def interactive_argv(self, cmd: Command) -> list[str]:
        # -t only when asked: ssh then gives the server a terminal if ours is one.
        tty = ["-t", "-o", "LogLevel=ERROR"] if cmd.tty else []
        return [*self.base_args(), *tty, *self.server.ssh_args(), "--", shlex.join(cmd.argv)]

    def forward_remote(self, local_port: int) -> int:
        # On the run's one connection (ControlMaster): the server's sshd picks a free loopback port.
        self.connect()
        spec = f"127.0.0.1:0:127.0.0.1:{local_port}"
        result = self._control("forward", spec)
        port = result.stdout.strip()
        if not result.ok or not port.isdigit():
            raise ConnectError(
                t("transport.ssh_could_not_open", name=self.name, local_port=local_port),
                hint=t("transport.server_s_sshd_must"),
                detail=tail(result.stderr or result.stdout),
            )
        return int(port)

    def cancel_forward(self, remote_port: int, local_port: int) -> None:
        self._control("cancel", f"127.0.0.1:{remote_port}:127.0.0.1:{local_port}")

    def _control(self, request: str, spec: str) -> Result:
        """A request to the run's ControlMaster (ssh -O): forward or cancel a reverse tunnel."""
        started = time.monotonic()
        self.out.command(self.name, f"ssh -O {request} -R {spec} (on this run's connection)")
        argv = [*self.base_args(), "-O", request, "-R", spec, *self.server.ssh_args()]
        result = _spawn(argv, None, None, 30, None, False)
        _trace(self.name, Command(("ssh", "-O", request, "-R", spec)), started, result.code, "control")
        return result

    def _raise_for_connection(self, result: Result) -> None:
        if result.code != SSH_ERROR:
            return
        reason = connection_problem(result.stderr)
        if reason:
            what, hint = reason
            jump = self.server.jump_host(self.jump)
            said = t(hint)
            if jump and what == CLOSED:
                # With ControlPersist, ssh sends the jump's own stderr to /dev/null: say what it may have been.
                said = t("transport.jump_closed_hint", jump=jump)
            raise ConnectError(t("transport.cannot_connect", destination=self.destination, what=t(what)), hint=said)

    def _shell_for(self, cmd: Command) -> Shell | None:
        # Streamed output (pulls, builds), large stdin (images) and a terminal get an ssh session of their own.
        return self._shell if len(cmd.stdin or b"") <= SHELL_STDIN_LIMIT and not cmd.tty else None

    def connect_soon(self) -> None:
        if self._connecting:
            return
        self._connecting = threading.Thread(target=self._connect_in_background, daemon=True)
        self._connecting.start()

    def _connect_in_background(self) -> None:
        # Kept in _connect_error; connect() raises it. An interrupt stops this thread quietly.
        with contextlib.suppress(TagshipError, KeyboardInterrupt):
            self._open()

    def connect(self) -> None:
        """Open the run's one connection to the server (fail early, clearly); later commands ride on it.

        The connection's first session is the persistent shell (see Shell); ControlPersist keeps the
        connection in the background until close(), or until it has been idle that long if this
        process is killed. Commands the shell does not take run as sessions of the same connection.
        """
        if self._connecting:
            self._connecting.join()
        self._open()

    def _open(self) -> None:
        """Connect once; a failure is kept and raised again to every later caller."""
        if self._opened:
            if self._connect_error:
                raise self._connect_error
            return
        self._opened = True
        try:
            self._start_shell()
        except TagshipError as exc:
            self._connect_error = exc
            raise
        except KeyboardInterrupt:
            self._connect_error = ConnectError(t("transport.connecting_interrupted", raw=self.server.raw))
            raise

    def host_key_checking_off(self) -> str:
        """Why the user's own ssh options or configuration turn host-key checking off for this server
        ("" when they do not), as `ssh -G` resolves them: tagship never turns it off itself."""
        argv = [*self.base_args(), "-G", *self.server.ssh_args()]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return ""  # connecting reports a missing or broken ssh
        return unchecked_reason(done.stdout)

    def _warn_if_unchecked(self) -> None:
        reason = self.host_key_checking_off()
        if reason:
            self.out.warn(t("transport.host_key_checking_off", name=self.name, reason=reason))

    def _start_shell(self) -> None:
        self._warn_if_unchecked()
        started = time.monotonic()
        argv = [*self.base_args(master=True), *self.server.ssh_args(), "--", shlex.join(("sh", "-c", SHELL_LOOP))]
        shell = Shell(argv)
        result = shell.start(self.connect_timeout + 10)
        _trace(self.name, Command(("ssh", "(connect)")), started, result.code, "connect")
        self._raise_for_connection(result)
        if not result.ok:  # ssh said something we do not recognise: still a connection failure (exit 6)
            raise ConnectError(
                t("transport.cannot_connect_ssh_exit", destination=self.destination, code=result.code),
                hint=t("transport.run_same_ssh_hand"),
                detail=tail(result.stderr or result.stdout),
            )
        self._shell = shell if shell.alive else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The directory goes whatever happens while this waits: a connect still timing out (join)
        # or a shell still ending is where a Ctrl-C or SIGTERM comes, and there is no second close.
        try:
            if self._connecting:
                self._connecting.join()
            if self._shell:
                self._shell.close()
                self._shell = None
            if not self._control_dir:
                return  # nothing ever ran: no connection to end, no directory to remove
            subprocess.run(
                [*self.base_args(), "-O", "exit", *self.server.ssh_args()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        finally:  # also when ssh is missing or the run is interrupted here
            with self._control_dir_made:  # a connect still under way makes no new one (control_dir)
                if self._control_dir:
                    shutil.rmtree(self._control_dir, ignore_errors=True)


_swept = threading.Event()


def remove_stale_control_dirs() -> None:
    """Remove, once per process, the empty control directories that killed runs left behind (a run
    that ends removes its own). Only empty ones of this user's, untouched for STALE_CONTROL_SECONDS:
    a live run's directory holds its socket, and a new one is younger."""
    if _swept.is_set():
        return
    _swept.set()
    now = time.time()
    uid = os.getuid() if hasattr(os, "getuid") else None
    with contextlib.suppress(OSError), os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            if not entry.name.startswith(CONTROL_PREFIX):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                mine = uid is None or info.st_uid == uid
                if mine and entry.is_dir(follow_symlinks=False) and now - info.st_mtime > STALE_CONTROL_SECONDS:
                    os.rmdir(entry.path)  # refuses a directory that is not empty


def unchecked_reason(resolved: str) -> str:
    """From `ssh -G` output: the settings that turn host-key checking off ("" if none)."""
    options: dict[str, str] = {}
    for line in resolved.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key.lower(), value.strip())
    strict = options.get("stricthostkeychecking", "").lower()
    if strict in ("false", "no", "off"):
        return "StrictHostKeyChecking no"
    # accept-new trusts a key it has not seen; with no file to remember it in, every key is new.
    if strict == "accept-new" and options.get("userknownhostsfile", "").split() == ["/dev/null"]:
        return "StrictHostKeyChecking accept-new with UserKnownHostsFile /dev/null"
    return ""


# The persistent shell's server side (builders/scripts/shell_loop.sh says how its protocol works).
# Stdin, which may hold a secret, goes straight from the connection to the command.
SHELL_LOOP = scripts.load("shell_loop")
# LocalTransport.start's wrapper (builders/scripts/watchdog.sh): the command ends when tagship does.
WATCHDOG = scripts.load("watchdog")
SHELL_STDIN_LIMIT = 1024 * 1024  # larger stdin (an image) goes through a session of its own


def shell_request(line: str, stdin: bytes | None) -> bytes:
    """One request for the persistent shell."""
    size = "-" if stdin is None else str(len(stdin))
    # surrogateescape: a value read as bytes that are not UTF-8 goes back as those bytes, as argv does.
    encoded = base64.b64encode(line.encode("utf-8", "surrogateescape")).decode()
    return f"R {encoded} {size}\n".encode() + (stdin or b"")


class Shell:
    """A shell session kept open on the server: a command costs a round trip, not a new ssh session.

    Opening an ssh session (sshd forks, PAM, the login shell) takes about 0.1 s even over an open
    connection; a deploy runs dozens of short commands. One caller at a time; a busy or dead shell
    returns None and the caller opens a session of its own.
    """

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # out of the terminal's Ctrl-C: see interrupt.py
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.errors: list[bytes] = []
        self.pending = b""
        self.alive = False
        self.busy = threading.Lock()
        self._errors_pump = threading.Thread(target=_pump, args=(self.proc.stderr, self.errors, None), daemon=True)
        self._errors_pump.start()

    def start(self, timeout: float) -> Result:
        """Wait for the server's READY (or NO: the shell is not usable there, the connection is).

        Lines before it (a login script that prints a banner even without a terminal) are skipped.
        """
        deadline = time.monotonic() + timeout
        answer: bytes | None = b""
        try:
            with interrupt.running(self._kill):
                while answer not in (None, b"READY", b"NO"):
                    answer = self._line(deadline)
        except TimeoutError:
            self._kill()
            return Result(SSH_ERROR, "", self._stderr() + f"\n(timed out after {timeout:.0f}s)\n")
        if answer is None:
            return Result(self._wait(), "", self._stderr())
        self.alive = answer == b"READY"
        if not self.alive:
            self.close()
        return Result(0, "", "")

    def run(self, line: str, stdin: bytes | None, timeout: float | None) -> Result | None:
        if self.alive and self.proc.poll() is not None:
            self.alive = False  # ended between commands (killed on the server, say): a session still works
        if not self.alive or not self.busy.acquire(blocking=False):
            return None
        try:
            with interrupt.running(self._kill):
                return self._request(line, stdin, timeout)
        except BaseException:  # Ctrl-C, SIGTERM: the rest of this reply would be read as the next one's
            self._kill()
            raise
        finally:
            self.busy.release()

    def _request(self, line: str, stdin: bytes | None, timeout: float | None) -> Result:
        deadline = time.monotonic() + timeout if timeout else None
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(shell_request(line, stdin))
            self.proc.stdin.flush()
            header = self._line(deadline)
            if header is None or not header.startswith(b"T "):
                return self._lost()
            code, out_size, err_size = (int(word) for word in header.split()[1:4])
            out, err = self._exact(out_size, deadline), self._exact(err_size, deadline)
        except TimeoutError:
            self._kill()
            return Result(-9, "", f"\n(timed out after {timeout:.0f}s)\n")
        except (OSError, ValueError):
            return self._lost()
        if out is None or err is None:
            return self._lost()
        return Result(code, out.decode(errors="replace"), err.decode(errors="replace"), out)

    def _lost(self) -> Result:
        """The session ended under a command: report it like a failed ssh session."""
        self.alive = False
        code = self._wait()
        return Result(SSH_ERROR, "", self._stderr() or t("transport.session_ended", code=code))

    def _line(self, deadline: float | None) -> bytes | None:
        while b"\n" not in self.pending:
            if not self._fill(deadline):
                return None
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def _exact(self, size: int, deadline: float | None) -> bytes | None:
        while len(self.pending) < size:
            if not self._fill(deadline):
                return None
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def _fill(self, deadline: float | None) -> bool:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, 65536)
        self.pending += chunk
        return bool(chunk)

    def _stderr(self) -> str:
        if self.proc.poll() is not None:
            # ssh has exited, but its last words (why it failed) may still be in the pipe. Bounded:
            # a ProxyJump helper that outlives ssh keeps the pipe open.
            self._errors_pump.join(timeout=0.5)
        return b"".join(self.errors).decode(errors="replace")

    def _wait(self) -> int:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            return self.proc.wait()

    def _kill(self) -> None:
        self.alive = False
        self.proc.kill()

    def close(self) -> None:
        """End the shell: closing its stdin ends the loop on the server."""
        self.alive = False
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        self._wait()


# What the ssh client's stderr says -> the catalog ids of what happened and what to do.
_CONNECTION_PROBLEMS = (
    ("Host key verification failed", "transport.host_key_unknown", "transport.host_key_unknown_hint"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "transport.host_key_changed", "transport.host_key_changed_hint"),
    ("Permission denied", "transport.auth_failed", "transport.auth_failed_hint"),
    ("Could not resolve hostname", "transport.unknown_host", "transport.unknown_host_hint"),
    ("timed out", "transport.timed_out", "transport.timed_out_hint"),
    ("Connection refused", "transport.refused", "transport.refused_hint"),
    ("No route to host", "transport.no_route", "transport.check_network"),
    ("Network is unreachable", "transport.unreachable", "transport.check_network"),
    ("Connection closed", "transport.closed", "transport.closed_hint"),
)
CLOSED = _CONNECTION_PROBLEMS[-1][1]


def connection_problem(stderr: str) -> tuple[str, str] | None:
    """Recognise an ssh client failure in its stderr: (what happened, what to do), as catalog ids."""
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


def _trace(server: str, cmd: Command, started: float, code: int, via: str) -> None:
    """With TAGSHIP_TRACE=FILE, append each command's timing (where the seconds go).

    via: local, shell (the server's persistent shell), session (an ssh session of its own), connect.
    """
    path = os.environ.get("TAGSHIP_TRACE")
    if not path:
        return
    took = time.monotonic() - started
    line = f"{time.time():.3f} {took:6.3f}s {server} rc={code} {via} {mask(cmd.shown(), cmd.secrets)[:200]}\n"
    with open(path, "a", encoding="utf-8") as trace:
        trace.write(line)


def _spawn(
    argv: list[str],
    stdin: bytes | None,
    env: dict[str, str] | None,
    timeout: float | None,
    on_line: Callable[[str], None] | None,
    binary: bool,
) -> Result:
    started: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for proc in started:
            _stop_group(proc)

    # Registered before the process exists, so an interrupt at any moment stops it (see interrupt.held).
    with interrupt.running(stop):
        with interrupt.held(stop):
            started.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    start_new_session=True,  # out of the terminal's Ctrl-C: see interrupt.py
                )
            )
        return _wait_for(started[0], stdin, timeout, on_line, binary)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command and its children (docker's plugins, ssh's ProxyCommand): its own group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)


def _wait_for(
    proc: subprocess.Popen[bytes],
    stdin: bytes | None,
    timeout: float | None,
    on_line: Callable[[str], None] | None,
    binary: bool,
) -> Result:
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
    ssh_config: str = "",
    ssh_options: tuple[str, ...] = (),
    connect_timeout: int = 10,
    jump: str = "",
) -> Transport:
    """The right transport for a server."""
    if server.is_local:
        return LocalTransport(server=server, out=out)
    return SshTransport(
        server=server,
        out=out,
        ssh_config=ssh_config,
        ssh_options=ssh_options,
        connect_timeout=connect_timeout,
        jump=jump,
    )
