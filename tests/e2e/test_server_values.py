"""env.values and env.secrets_file: written into the servers' .env (mode 0600), read back by the real
Compose exactly, and nowhere else: not in tagship's output, the plan, history or the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lab
from tagship.builders import envfile
from tests.apprepo import AppRepo, ssh
from tests.conftest import new_app

# Values a user's .env or secrets file holds, each of which a naive KEY=value line would change.
HOSTILE = [
    "plain",
    "with space",
    "quote'single",
    'quote"double',
    "both'\"quotes",
    "dollar$HOME",
    "${HOME}",
    "dollars$$two",
    "back\\slash",
    "trailing\\",
    "hash # not a comment",
    "#leading",
    "multi\nline",
    "tab\there",
    "  padded  ",
    "",
    "=equals=",
    "ünïcødé 中文",
    "`backtick` $(cmd) ; | &",
    "-leading-dash",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_encoded_value_is_read_back_by_compose_exactly(tmp_path: Path, value: str) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: busybox\n    environment:\n      V: ${V}\n")
    (tmp_path / ".env").write_text(envfile.set_encoded("OTHER=1\nV=old # kept\n", "V", envfile.encode(value)))
    done = subprocess.run(
        ["docker", "compose", "--project-directory", str(tmp_path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stdout)["services"]["a"]["environment"]["V"]
    assert seen.replace("$$", "$") == value  # compose config writes a literal $ as $$
    assert "# kept" in (tmp_path / ".env").read_text()


SECRET = "s3cr3t pa$$word 'with' \"quotes\""


def secrets_app(the_lab: lab.Lab, tmp_path: Path, docker_config: Path, name: str) -> AppRepo:
    app = new_app(the_lab, tmp_path / "app", docker_config, name)
    compose = (app.path / "compose.yaml").read_text()
    compose = compose.replace(
        "    restart: unless-stopped\n",
        "    restart: unless-stopped\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n"
        "      GREETING: ${GREETING}\n      API_KEY: ${API_KEY}\n",
    )
    (app.path / "compose.yaml").write_text(compose)
    config = app.path / "tagship.toml"
    text = config.read_text().replace('[env]\nseed = ".env"\n', '[env]\nseed = ".env"\nsecrets_file = "secrets.env"\n')
    config.write_text(text + "\n[env.values]\nGREETING = \"hello 'world' $USER\"\n")
    (app.path / ".gitignore").write_text(".env\nsecrets.env\n")
    (app.path / "secrets.env").write_text(
        "# production secrets\n" + f"DB_PASSWORD={envfile.encode(SECRET)}\n" + "API_KEY=ak_live_0123456789\n"
    )
    return app


def test_values_and_secrets_reach_the_container_and_nothing_else(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = secrets_app(the_lab, tmp_path, docker_config, "values")
    app.release("v1")
    dry = app.tagship("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    deployed = app.tagship("-v", "deploy")
    assert deployed.returncode == 0, deployed.stderr
    for text in (dry.stdout + dry.stderr, deployed.stdout + deployed.stderr):
        assert "ak_live_0123456789" not in text and "s3cr3t" not in text
    assert "DB_PASSWORD" in deployed.stderr, "the names are shown, not the values"
    for server in the_lab.servers:
        env = ssh(server, "stat", "-c", "%a", f"{app.remote_path}/.env").stdout.strip()
        assert env == "600", server.name
        container = lab.server_docker(server, "ps", "-q", "--filter", "label=com.docker.compose.service=web")
        seen = lab.server_docker(server, "exec", container.stdout.split()[0], "env").stdout
        assert f"DB_PASSWORD={SECRET}\n" in seen, server.name
        assert "API_KEY=ak_live_0123456789\n" in seen and "GREETING=hello 'world' $USER\n" in seen, server.name
        kept = ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl", f"{app.remote_path}/.tagship/audit.log")
        assert "ak_live" not in kept.stdout and "s3cr3t" not in kept.stdout and "API_KEY" not in kept.stdout


def test_a_secrets_file_committed_to_git_is_refused_before_anything_runs(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = secrets_app(the_lab, tmp_path, docker_config, "values-committed")
    (app.path / ".gitignore").write_text(".env\n")
    app.release("v1")  # commits secrets.env
    refused = app.tagship("deploy")
    assert refused.returncode == 2, refused.stderr
    assert "env.secrets_file: 'secrets.env' is committed to git" in refused.stderr
    assert "git rm --cached secrets.env" in refused.stderr
    assert "ak_live_0123456789" not in refused.stderr
    for server in the_lab.servers:
        assert ssh(server, "test", "-e", app.remote_path).returncode != 0, "no server was touched"


PROC_SECRET = "sk_proc_sampled_9f8e7d6c5b4a"


class Sampler:
    """Reads every process's argv and environment over and over, noting each process of this test's
    run that shows a needle: a descendant of `root` (tagship, once started) or a process in one of
    the servers' network namespaces. Other workers deploy to servers of their own with the same lab
    password, and one of them runs a CI recipe whose runner environment holds it on purpose (CI run
    21 of stop 29 caught that recipe's `docker login`)."""

    def __init__(self, needles: dict[str, bytes], servers: list[lab.LabServer]) -> None:
        self.needles = needles
        self.netns = {os.stat(f"/run/netns/{server.name}").st_ino for server in servers}
        self.root = 0
        # (pid, parent pid, file, argv) of each process that showed a needle
        self.found: dict[str, set[tuple[int, int, str, str]]] = {name: set() for name in needles}
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + 300  # bounded, like every loop in the tests
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.rounds += 1
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    self._look(int(entry.name))

    def _look(self, pid: int) -> None:
        for file in ("cmdline", "environ"):
            try:
                data = Path(f"/proc/{pid}/{file}").read_bytes()
            except OSError:
                continue
            for name, needle in self.needles.items():
                if needle in data and self._ours(pid):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    self.found[name].add((pid, _parent(pid), file, argv.strip()))

    def _ours(self, pid: int) -> bool:
        """Whether pid is this test's: in a server's network namespace, or below root."""
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in self.netns:
                return True
            while pid > 1:
                if pid == self.root:
                    return True
                pid = _parent(pid)
        except (OSError, ValueError, IndexError):
            return False
        return False


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_no_process_but_tagship_itself_shows_the_registry_password_or_a_secret(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    """Issue 11: /proc/*/cmdline and /proc/*/environ of every process on this machine (the lab
    servers' sshd, shells, docker CLIs and dockerd share its process table) sampled during a deploy."""
    app = secrets_app(the_lab, tmp_path, docker_config, "proc-sampled")
    compose = app.path / "compose.yaml"  # the containers get none of the secrets: only .env holds them
    compose.write_text(compose.read_text().split("    environment:\n", 1)[0])
    # A secret of its own: other tests' containers that were given theirs may still run.
    (app.path / "secrets.env").write_text(f"API_KEY={PROC_SECRET}\n")
    app.release("v1")
    env = {**os.environ, **app.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    needles = {"password": the_lab.registry_password.encode(), "secret": PROC_SECRET.encode()}
    with Sampler(needles, list(the_lab.servers)) as sampler:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tagship", "-C", str(app.path), "-v", "deploy"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sampler.root = proc.pid
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert sampler.rounds > 20, "the sampling ran all along the deploy"
    argv = " ".join(proc.args)  # type: ignore[arg-type]
    # A tagship run's own start environment, whichever test started it (parallel workers run theirs
    # with the same lab password); a child between fork and exec is still tagship (its argv and start
    # environment are the parent's).
    tagship = f"{sys.executable} -m tagship "
    others = {f for f in sampler.found["password"] if not f[3].startswith(tagship)}
    assert (proc.pid, os.getpid(), "environ", argv) in sampler.found["password"], "the sampling can see it"
    assert others == set(), "only tagship's own start environment holds the password"
    assert sampler.found["secret"] == set(), "the secret travels in the .env's bytes only"
    for server in the_lab.servers:
        assert PROC_SECRET in ssh(server, "cat", f"{app.remote_path}/.env").stdout
