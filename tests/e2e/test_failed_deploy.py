"""A deploy that fails its health gate leaves each server's files as they were, and shows no secret
anywhere: not in its output with -v (tracebacks included), not in its TAGSHIP_TRACE file."""

from __future__ import annotations

from pathlib import Path

import lab
from tests.apprepo import ssh
from tests.e2e.test_server_values import SECRET, secrets_app

# v2 logs its configuration at boot, as many apps do: the failed gate's message carries the new
# container's last log lines, so the secrets reach tagship's error text and must be masked there.
LOGS_ITS_CONFIG = (
    "    restart: unless-stopped\n"
    '    command: ["/bin/sh", "-c", "echo \\"app config: DB_PASSWORD=$$DB_PASSWORD API_KEY=$$API_KEY\\"; '
    'exec /bin/sh /app.sh"]\n'
)


def remote_bytes(server: lab.LabServer, path: str) -> str:
    """A file on the server as base64 (byte for byte), or "" if it is missing."""
    return ssh(server, "sh", "-c", f"base64 < {path}").stdout


def test_a_failed_health_gate_puts_the_compose_file_back_and_shows_no_secret(
    the_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = secrets_app(the_lab, tmp_path, docker_config, "failed-gate")
    app.release("v1")
    first = app.tagship("deploy")
    assert first.returncode == 0, first.stderr
    files = [f"{app.remote_path}/compose.yaml", f"{app.remote_path}/.env"]
    before = {(s.name, f): remote_bytes(s, f) for s in the_lab.servers for f in files}
    assert all(before.values())

    compose = app.path / "compose.yaml"
    compose.write_text(compose.read_text().replace("    restart: unless-stopped\n", LOGS_ITS_CONFIG))
    app.release("v2", broken=True)
    trace = tmp_path / "trace.log"
    failed = app.tagship("-v", "deploy", extra_env={"TAGSHIP_TRACE": str(trace)})

    assert failed.returncode == 8, failed.stderr
    assert "Traceback (most recent call last)" in failed.stderr, "-v shows the traceback"
    assert "app config: DB_PASSWORD=" in failed.stderr, "the container's log lines are in the message"
    assert "put the previous compose.yaml back" in failed.stderr
    assert "does not trust" not in first.stderr + failed.stderr, "real Docker output passes the listing checks"
    for server in the_lab.servers:
        for path in files:
            assert remote_bytes(server, path) == before[(server.name, path)], f"{server.name}: {path}"
    seen = {"output": failed.stdout + failed.stderr, "trace": trace.read_text()}
    assert "docker login" in seen["trace"], "the trace lists the commands"
    for where, text in seen.items():
        for secret in (the_lab.registry_password, SECRET, "ak_live_0123456789"):
            assert secret not in text, f"a secret in the {where}"
