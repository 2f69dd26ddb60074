"""The remote shell scripts (builders/scripts/*.sh): shellcheck, and each run for real under dash, bash and busybox sh.

Each test runs the exact Command a builder returns, with its `sh` swapped for the shell under test. The proxy entry
point needs a Caddy container (the lab runs it); here it gets a syntax check under each shell.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tagship.builders import docker, envfile, history, lock, proxy, scripts
from tagship.builders.command import Command
from tagship.builders.override import PublishedPort

SCRIPTS = Path(scripts.__file__).parent / "scripts"
FILES = sorted(SCRIPTS.glob("*.sh"))
SHELLS = {"dash": ("dash",), "bash": ("bash",), "busybox": ("busybox", "sh")}


def need(tool: str) -> str:
    """The tool's path; CI must have it (fail), elsewhere its tests are skipped."""
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not installed; scripts/install-system.sh installs it")
    pytest.skip(f"{tool} is not installed")


@pytest.fixture(params=sorted(SHELLS))
def shell(request: pytest.FixtureRequest) -> tuple[str, ...]:
    argv: tuple[str, ...] = SHELLS[request.param]
    return (need(argv[0]), *argv[1:])


def run(shell: tuple[str, ...], cmd: Command, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a builder's `sh -c SCRIPT sh ARGS...` (from the `sh` on) under the given shell."""
    argv = cmd.argv[cmd.argv.index("sh") :]
    assert argv[1] == "-c"
    return subprocess.run([*shell, *argv[1:]], input=cmd.stdin or b"", capture_output=True, env=env, check=False)


# ---- every script ---------------------------------------------------------------------------------


def test_shellcheck_finds_nothing() -> None:
    result = subprocess.run(
        [need("shellcheck"), "--shell=sh", *map(str, FILES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_script_says_what_it_does_and_parses_under_each_shell(path: Path, shell: tuple[str, ...]) -> None:
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/sh" and lines[1].startswith("# "), path.name
    result = subprocess.run([*shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_builders_send_the_script_files_unchanged_with_values_as_arguments() -> None:
    holder = lock.Holder("t", "who", "host", 1, "deploy", "v1", "now")
    record = history.Record("v1", "img", "deploy", "succeeded", "now")
    settings = proxy.ProxySettings("tagship-proxy", "caddy:2-alpine", "net'work")
    commands = [
        lock.acquire("/srv/a'pp", holder),
        lock.status("/srv/app"),
        lock.release("/srv/app", "t"),
        lock.force_release("/srv/app"),
        lock.identity(),
        history.append("/srv/app", record),
        history.read("/srv/app"),
        history.audit("/srv/app", "line"),
        history.rotate("/srv/app", "kept\n"),
        envfile.read("/srv/app/.env"),
        envfile.write("/srv/app/.env", "A=1\n", note=""),
        proxy.ensure_network("net"),
        proxy.run(settings, (PublishedPort(80, 80),)),
        proxy.switch_sites("p", "shop", "run1", "back", "front"),
        proxy.unswitch_sites("p", "shop", "run1", ("back",)),
        proxy.list_sites("p"),
        proxy.probe_until("p", "http://x/", 0.5, 3),
        proxy.run_listener(settings, "haproxy:lts", PublishedPort(9876, 9876), proxy.ListenerRoute("shop"), 30),
        proxy.route_listener("tagship-proxy-9876", settings, proxy.ListenerRoute("shop", ("shop-web-2:80",)), 30),
        proxy.drain_listener("tagship-proxy-9876", 30),
    ]
    texts = {path.read_text() for path in FILES}
    for cmd in commands:
        script = cmd.argv[cmd.argv.index("-c") + 1]
        assert script in texts, cmd.shown()


# ---- the deploy lock ----------------------------------------------------------------------------


def test_the_server_identity_is_its_host_keys_else_its_machine_id(shell: tuple[str, ...]) -> None:
    keys = sorted(" ".join(path.read_text().split()[:2]) for path in Path("/etc/ssh").glob("ssh_host_*_key.pub"))
    machine_id = Path("/etc/machine-id")
    expected = "".join(f"{k}\n" for k in keys) or (machine_id.read_text() if machine_id.exists() else "")
    done = run(shell, lock.identity())
    assert (done.returncode, done.stdout.decode()) == (0, expected)


def holder(token: str, who: str) -> lock.Holder:
    return lock.Holder(token, who, "laptop", 42, "deploy", "v1.4.2", "2026-11-26T10:02:00Z")


def sshd_ancestor(pid: int) -> int | None:
    """The first ancestor of pid whose command is sshd* (the test itself may run over SSH)."""
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rpartition(")")[2].split()[1])
        if Path(f"/proc/{pid}/comm").read_text().startswith("sshd"):
            return pid
    return None


def test_acquire_takes_the_lock_once_and_release_needs_the_token(shell: tuple[str, ...], tmp_path: Path) -> None:
    alice, bob = holder("token-a", "Alice (alice@laptop)"), holder("token-b", "Bob")
    state = Path(history.state_dir(str(tmp_path)))
    assert run(shell, lock.status(str(tmp_path))).stdout == b""  # unlocked

    first = run(shell, lock.acquire(str(tmp_path), alice))
    assert first.returncode == 0, first.stderr
    assert (state / "lock" / "holder.json").read_text() == alice.json()
    # No sshd among the ancestors: the connection is $PPID, this test's process, alive while it runs.
    connection = int((state / "lock" / "connection").read_text())
    assert connection == (sshd_ancestor(os.getpid()) or os.getpid())
    assert lock.parse_status(run(shell, lock.status(str(tmp_path))).stdout.decode()) == (alice, True)

    second = run(shell, lock.acquire(str(tmp_path), bob))
    assert second.returncode == lock.HELD
    assert lock.parse_holder(second.stdout.decode()) == alice
    assert (state / "lock" / "holder.json").read_text() == alice.json()

    assert run(shell, lock.release(str(tmp_path), "token-b")).returncode == 0
    assert (state / "lock").is_dir(), "a release with another token keeps the lock"
    assert run(shell, lock.release(str(tmp_path), "token-a")).returncode == 0
    assert not (state / "lock").exists()
    assert run(shell, lock.release(str(tmp_path), "token-a")).returncode == 0  # a late release is harmless

    run(shell, lock.acquire(str(tmp_path), bob))
    assert run(shell, lock.force_release(str(tmp_path))).returncode == 0
    assert not (state / "lock").exists()


def test_acquire_records_the_sshd_ancestor_which_status_follows(shell: tuple[str, ...], tmp_path: Path) -> None:
    # A stand-in for OpenSSH's per-connection process: a copy of dash called sshd. Between it and the
    # script sits a shell whose name holds ") " (as the persistent shell sits between sshd and a command).
    sshd, odd = tmp_path / "sshd", tmp_path / "odd) name"
    for copy in (sshd, odd):
        shutil.copy(need("dash"), copy)
    cmd = lock.acquire(str(tmp_path), holder("t", "Alice"))
    # sshd prints its pid, runs `odd -c '"$@"; exit' odd SHELL -c SCRIPT ...`, then stays: the connection.
    # (Neither runs the command as its last one, so neither execs it in its own place.)
    connection_script = 'echo "$$"; "$0" -c \'"$@"; exit "$?"\' "$0" "$@"; echo "exit $?"; exec sleep 60'
    connection = subprocess.Popen(
        [str(sshd), "-c", connection_script, str(odd), *shell, *cmd.argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert connection.stdin and connection.stdout
        connection.stdin.write(cmd.stdin or b"")
        connection.stdin.close()
        pid, done = connection.stdout.readline(), connection.stdout.readline()
        assert done == b"exit 0\n"
        assert (tmp_path / ".tagship" / "lock" / "connection").read_bytes() == pid
        assert run(shell, lock.status(str(tmp_path))).stdout.endswith(b"connection=alive\n")
    finally:
        connection.kill()
        connection.wait()
    assert run(shell, lock.status(str(tmp_path))).stdout.endswith(b"connection=gone\n")


# ---- history and the audit log ------------------------------------------------------------------


def test_history_append_then_read_round_trips(shell: tuple[str, ...], tmp_path: Path) -> None:
    project = str(tmp_path / "app")
    assert run(shell, history.read(project)).stdout == b""  # nothing yet, and no error
    records = [
        history.Record(
            "v1", "reg/app:v1", "deploy", "succeeded", "2026-11-26T07:00:00Z", deployed_by="it's $HOME", env={"A": "v1"}
        ),
        history.Record("v2", "reg/app:v2", "deploy", "failed", "2026-11-26T08:00:00Z", error="boom\n`x`"),
    ]
    for record in records:
        assert run(shell, history.append(project, record)).returncode == 0
    assert run(shell, history.audit(project, "alice deploy v2 failed")).returncode == 0
    done = run(shell, history.read(project))
    assert done.returncode == 0 and history.parse(done.stdout.decode()) == records
    audit = Path(history.state_dir(project), history.AUDIT_FILE).read_text()
    assert audit == "alice deploy v2 failed\n"


def test_the_audit_log_rotates_past_its_limit_keeping_one_older_generation(
    shell: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "ROTATE_AT", 200)
    project = str(tmp_path / "app")
    lines = [f"2026-12-07T00:00:{n:02}Z alice deploy v{n} succeeded" for n in range(20)]  # 40-odd bytes each
    for line in lines:
        assert run(shell, history.audit(project, line)).returncode == 0
    live = Path(history.state_dir(project), history.AUDIT_FILE)
    older = live.with_name(history.AUDIT_FILE + ".1")
    assert live.stat().st_size < 200 + 50 and older.stat().st_size < 200 + 50
    kept = (older.read_text() + live.read_text()).splitlines()
    assert kept == lines[-len(kept) :] and len(kept) >= 5, "the newest lines, in order, none lost between the two"


def test_a_history_append_prints_the_size_and_a_rotation_keeps_the_old_file_whole(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    project = str(tmp_path / "app")
    record = history.Record("v1", "reg/app:v1", "deploy", "succeeded", "2026-11-26T07:00:00Z")
    sizes = [int(run(shell, history.append(project, record)).stdout) for _ in range(3)]
    assert sizes == [len(record.line()) * n for n in (1, 2, 3)]
    assert run(shell, history.rotate(project, record.line())).returncode == 0
    live = Path(history.state_dir(project), history.HISTORY_FILE)
    assert live.read_text() == record.line()
    assert live.with_name(history.HISTORY_FILE + ".1").read_text() == record.line() * 3
    assert sorted(p.name for p in live.parent.iterdir()) == ["releases.jsonl", "releases.jsonl.1"]


# ---- file read and atomic write ---------------------------------------------------------------------


def test_envfile_read_and_atomic_write(shell: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "my app" / ".env"
    assert run(shell, envfile.read(str(path))).returncode == envfile.ABSENT

    assert run(shell, envfile.write(str(path), "A=1\n", note="new")).returncode == 0
    assert path.read_text() == "A=1\n" and path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    assert run(shell, envfile.write(str(path), "A=2\n", note="edit")).returncode == 0
    assert path.stat().st_mode & 0o777 == 0o640, "the old mode is kept"
    done = run(shell, envfile.read(str(path)))
    assert (done.returncode, done.stdout) == (0, b"A=2\n")

    link = tmp_path / "link.env"
    link.symlink_to(path)
    assert run(shell, envfile.write(str(link), "A=3\n", note="via link")).returncode == 0
    assert link.is_symlink() and path.read_text() == "A=3\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [".env"], "no temporary file is left"


def test_atomic_write_keeps_the_owner_of_someone_elses_file_by_writing_in_place(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to act as another user")
    setpriv = need("setpriv")
    shared = Path(tempfile.mkdtemp(prefix="tagship-owner-"))  # pytest's tmp_path is root's alone (0700)
    shared.chmod(0o777)  # the deploy user may create files here, but the .env is root's
    path = shared / ".env"
    path.write_text("A=1\n")
    path.chmod(0o666)
    cmd = envfile.write(str(path), "A=2\nB=\xe9\n", note="as nobody")
    argv = cmd.argv[cmd.argv.index("sh") :]
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *shell, *argv[1:]]
    done = subprocess.run(as_nobody, input=cmd.stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == "A=2\nB=\xe9\n".encode()
    assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (0, 0o666), "owner and mode unchanged"
    assert sorted(p.name for p in shared.iterdir()) == [".env"], "no temporary file is left"
    shutil.rmtree(shared)


def test_a_private_write_over_someone_elses_readable_file_replaces_it_with_a_private_one(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to act as another user")
    setpriv = need("setpriv")
    shared = Path(tempfile.mkdtemp(prefix="tagship-owner-"))
    shared.chmod(0o777)
    path = shared / ".env"
    path.write_text("A=1\n")
    path.chmod(0o666)  # root's, readable by all: the deploy user may write it but not chmod it
    cmd = envfile.write(str(path), "TOKEN=s3cret\n", note="as nobody", private=True)
    argv = cmd.argv[cmd.argv.index("sh") :]
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *shell, *argv[1:]]
    done = subprocess.run(as_nobody, input=cmd.stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert path.read_text() == "TOKEN=s3cret\n"
    assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (65534, 0o600), "a new private file, the writer's"
    assert sorted(p.name for p in shared.iterdir()) == [".env"], "no temporary file is left"
    path.chmod(0o400)  # the writer's own read-only file: its new bytes still go in, the mode stays
    done = subprocess.run(as_nobody, input=b"TOKEN=other\n", capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert path.read_text() == "TOKEN=other\n" and path.stat().st_mode & 0o777 == 0o400
    shutil.rmtree(shared)


# dash and bash only: busybox sh runs its own `cat` applet, never the recording one on PATH.
@pytest.mark.parametrize("shell", [SHELLS["dash"], SHELLS["bash"]], ids=["dash", "bash"])
def test_an_atomic_write_sets_the_mode_before_it_writes_a_byte(shell: tuple[str, ...], tmp_path: Path) -> None:
    # A `cat` that records the mode of the file it writes into: the secret must land in a private file.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_cat = shutil.which("cat")
    record = f"stat -L -c %a /proc/self/fd/1 >> {tmp_path}/modes"
    (bin_dir / "cat").write_text(f'#!/bin/sh\n{record}\nexec {real_cat} "$@"\n')
    (bin_dir / "cat").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    path = tmp_path / "app" / ".env"
    path.parent.mkdir()
    path.write_text("A=1\n")
    path.chmod(0o644)
    done = run(shell, envfile.write(str(path), "TOKEN=s3cret\n", note="secret", private=True), env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "modes").read_text() == "600\n", "written into a file only its owner can read"
    assert path.read_text() == "TOKEN=s3cret\n" and path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o444)  # read-only: the new bytes still go in, and the mode stays
    done = run(shell, envfile.write(str(path), "TOKEN=other\n", note="secret", private=True), env)
    assert done.returncode == 0, done.stderr
    assert path.read_text() == "TOKEN=other\n" and path.stat().st_mode & 0o777 == 0o400


# ---- the proxy's scripts, as far as they run without Caddy ---------------------------------------------


def test_list_sites_prints_each_front_snippet(shell: tuple[str, ...], tmp_path: Path) -> None:
    cmd = proxy.list_sites("p")
    argv = [str(tmp_path) if a == proxy.CONFIG_DIR else a for a in cmd.argv]
    assert run(shell, Command(tuple(argv))).stdout == b""  # no front directory yet
    (tmp_path / "front").mkdir()
    (tmp_path / "front" / "shop.caddy").write_text(proxy.front_site("shop", ("shop.example.com", "www.example.com")))
    (tmp_path / "front" / "api.caddy").write_text(proxy.front_site("api", ()))  # served on a port: empty
    listing = run(shell, Command(tuple(argv))).stdout.decode()
    assert proxy.site_addresses(listing) == {"shop": {"shop.example.com", "www.example.com"}, "api": set()}


def test_routes_switch_and_unswitch(shell: tuple[str, ...], tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    for tier in ("front", "back"):
        (conf / tier).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "caddy").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/reloads\n')
    (bin_dir / "caddy").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def routes(cmd: Command) -> subprocess.CompletedProcess[bytes]:
        argv = tuple(str(conf) if a == proxy.CONFIG_DIR else a for a in cmd.argv)
        return run(shell, Command(argv), env)

    done = routes(proxy.switch_sites("p", "shop", "run1", "back v1\n", "front\n"))
    assert done.returncode == 0, done.stderr
    assert proxy.parse_switch(done.stdout.decode()).changed == ("back", "front")
    assert (conf / "back" / "shop.caddy").read_text() == "back v1\n"
    assert f"--address {proxy.BACK_ADMIN}" in (tmp_path / "reloads").read_text()
    done = routes(proxy.switch_sites("p", "shop", "run1", "back v2\n", "front\n"))
    assert proxy.parse_switch(done.stdout.decode()).changed == ("back",)
    assert routes(proxy.unswitch_sites("p", "shop", "run1", ("back",))).returncode == 0
    assert (conf / "back" / "shop.caddy").read_text() == "back v1\n"
    # After the watch the back route changes again within run2; its undo still restores what run2 replaced.
    assert routes(proxy.switch_sites("p", "shop", "run2", "back watched\n", "front\n")).returncode == 0
    done = routes(proxy.reroute_back("p", "shop", "run2", "back new only\n"))
    assert done.returncode == 0 and done.stdout.startswith(b"upstreams\n"), done.stderr
    assert (conf / "back" / "shop.caddy").read_text() == "back new only\n"
    assert routes(proxy.unswitch_sites("p", "shop", "run2")).returncode == 0
    assert (conf / "back" / "shop.caddy").read_text() == "back v1\n"
    # A reroute Caddy refuses leaves the watched route in place.
    routes(proxy.switch_sites("p", "shop", "run3", "back watched\n", "front\n"))
    (bin_dir / "caddy").write_text("#!/bin/sh\nexit 1\n")
    assert routes(proxy.reroute_back("p", "shop", "run3", "back new only\n")).returncode == 1
    assert (conf / "back" / "shop.caddy").read_text() == "back watched\n"
    assert sorted(f.name for f in (conf / "back").iterdir()) == ["shop.caddy", "shop.caddy.prev.run3"]


# ---- the local watchdog ------------------------------------------------------------------------------


def test_the_watchdog_ends_its_command_when_its_stdin_closes_and_keeps_its_exit_code(shell: tuple[str, ...]) -> None:
    watchdog = scripts.load("watchdog")
    helper = subprocess.Popen(
        [*shell, "-c", watchdog, "sh", "sleep", "300"], stdin=subprocess.PIPE, start_new_session=True
    )
    try:
        assert helper.stdin
        with pytest.raises(subprocess.TimeoutExpired):
            helper.wait(0.3)  # runs while the write end is open
        helper.stdin.close()  # what the death of tagship does, however it dies
        assert helper.wait(5) != 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(helper.pid, signal.SIGKILL)
    ended = subprocess.Popen([*shell, "-c", watchdog, "sh", "sh", "-c", "exit 4"], stdin=subprocess.PIPE)
    assert ended.wait(5) == 4, "a command that ends by itself gives its exit code"
    assert ended.stdin
    ended.stdin.close()


# ---- health probes ---------------------------------------------------------------------------------


def test_a_healthcheck_batch_ends_when_its_second_is_up_however_many_tries_are_left(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    """Ten tries of a check that fails after 0.4 s would take 4 s; the batch (1 s) stops after two
    or three: on a busy server the watch reads the container's state only between batches."""
    fake = tmp_path / "docker"
    fake.write_text(f"#!/bin/sh\necho try >> {tmp_path}/tries\nsleep 0.4\nexit 1\n")
    fake.chmod(0o755)
    cmd = docker.health_exec_until("web-2", 0.0, 10, 5, ("check",), seconds=1)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = run(shell, cmd, env)
    tries = (tmp_path / "tries").read_text().count("try")
    assert done.returncode == 1 and 1 <= tries <= 6, (done.returncode, tries)  # 10 without the bound
    passes = tmp_path / "docker"
    passes.write_text(f"#!/bin/sh\necho try >> {tmp_path}/passes\nexit 0\n")
    assert run(shell, cmd, env).returncode == 0 and (tmp_path / "passes").read_text().count("try") == 1


# ---- the persistent shell's server side ---------------------------------------------------------------


def test_shell_loop_answers_requests(shell: tuple[str, ...]) -> None:
    loop = subprocess.Popen([*shell, "-c", scripts.load("shell_loop")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert loop.stdin and loop.stdout

    def request(line: str, stdin: bytes | None = None) -> bytes:
        """Send one request and read its reply (the client waits for it before the next: head -c may read ahead)."""
        assert loop.stdin and loop.stdout
        size = "-" if stdin is None else str(len(stdin))
        loop.stdin.write(f"R {base64.b64encode(line.encode()).decode()} {size}\n".encode() + (stdin or b""))
        loop.stdin.flush()
        head = loop.stdout.readline()
        *_, out, err = head.split()
        return head + loop.stdout.read(int(out) + int(err))

    try:
        assert loop.stdout.readline() == b"READY\n"
        assert request("echo hi") == b"T 0 3 0\nhi\n"
        assert request("cat; exit 4", b"12345") == b"T 4 5 0\n12345"
        assert request("head -c 2", b"abcdef") == b"T 0 2 0\nab"  # the unread rest is drained
        assert request("echo oops >&2") == b"T 0 0 5\noops\n"
        assert request("exit 3") == b"T 3 0 0\n"  # nothing to send: no bytes follow the header
        assert request("printf x") == b"T 0 1 0\nx", "the last request's output is not sent again"
    finally:
        loop.stdin.close()
        assert loop.wait(5) == 0


def test_the_runs_login_dir_copies_the_users_config_and_links_the_rest(shell: tuple[str, ...], tmp_path: Path) -> None:
    own = tmp_path / "home" / ".docker"
    (own / "cli-plugins").mkdir(parents=True)
    (own / "cli-plugins" / "docker-compose").write_text("#!/bin/sh\n")
    (own / "config.json").write_text('{"auths": {"other.example": {"auth": "dXNlcjpwdw=="}}}')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")}
    done = run(shell, docker.login_dir(), env)
    assert done.returncode == 0, done.stderr
    made = Path(done.stdout.decode().strip())
    try:
        assert made.name.startswith("tagship-docker.") and made.parent == Path("/tmp")
        # A copy: this run's login written into it never reaches the user's own file.
        assert not (made / "config.json").is_symlink()
        assert (made / "config.json").read_text() == (own / "config.json").read_text()
        assert (made / "cli-plugins").resolve() == (own / "cli-plugins").resolve()
        assert (made / "cli-plugins" / "docker-compose").exists()
    finally:
        shutil.rmtree(made)


def test_the_runs_login_dir_is_empty_for_a_user_without_a_docker_config(shell: tuple[str, ...], tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = run(shell, docker.login_dir(), env)
    made = Path(done.stdout.decode().strip())
    try:
        assert done.returncode == 0 and made.is_dir()
        assert [p.name for p in made.iterdir()] == ["tagship-connection"]
    finally:
        shutil.rmtree(made)


def test_the_runs_login_dir_and_its_copy_of_the_users_logins_are_private(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    own = tmp_path / "home" / ".docker"
    own.mkdir(parents=True)
    (own / "config.json").write_text('{"auths": {"other.example": {"auth": "dXNlcjpwdw=="}}}')
    (own / "config.json").chmod(0o644)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")}
    done = run(shell, docker.login_dir(), env)
    made = Path(done.stdout.decode().strip())
    try:
        assert done.returncode == 0, done.stderr
        assert made.stat().st_mode & 0o777 == 0o700
        assert (made / "config.json").stat().st_mode & 0o777 == 0o600, "the credentials are the user's alone"
    finally:
        shutil.rmtree(made)


def test_the_runs_login_dir_removes_the_dirs_of_runs_whose_connection_is_gone(
    shell: tuple[str, ...], tmp_path: Path
) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead, alive, unmarked, foreign = (Path(tempfile.mkdtemp(prefix="tagship-docker.", dir="/tmp")) for _ in range(4))
    for path, owner in ((dead, ended.pid), (alive, os.getpid()), (foreign, ended.pid)):
        (path / "tagship-connection").write_text(f"{owner}\n")
        (path / "config.json").write_text('{"auths": {"registry.example": {"auth": "dXNlcjpwdw=="}}}')
    os.chown(foreign, 65534, 65534)  # another user's (the tests run as root)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = run(shell, docker.login_dir(), env)
    made = Path(done.stdout.decode().strip())
    try:
        assert done.returncode == 0, done.stderr
        assert not dead.exists(), "a killed run's credentials are removed"
        assert alive.is_dir() and unmarked.is_dir(), "a live run's directory, or one being made, stays"
        assert foreign.is_dir(), "another user's directory is theirs to remove"
        # Run here without sshd: the connection recorded is the process that ran the script (this test).
        assert (made / "tagship-connection").read_text() == f"{os.getpid()}\n"
    finally:
        for path in (dead, alive, unmarked, foreign, made):
            shutil.rmtree(path, ignore_errors=True)
