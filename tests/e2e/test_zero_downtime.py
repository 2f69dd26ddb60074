"""Zero failed requests through the proxy during a good deploy and during a broken one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lab
from lab.load import Load, LoadReport
from tagship.engine.plan import PAUSE_AT_STEP
from tests.apprepo import AppRepo, fetch, ssh
from tests.conftest import new_app


def assert_clean(report: LoadReport, expected_versions: list[str]) -> None:
    assert report.failed == 0, f"{report.failed} of {report.sent} requests failed: {report.errors()}"
    for sequence in report.version_sequences():
        assert sequence == expected_versions[-len(sequence) :] and sequence, sequence


def test_good_then_broken_deploy_under_load_drop_nothing(the_lab: lab.Lab, app: AppRepo) -> None:
    h1 = the_lab.servers[0]
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"

    # (a) a good deploy v1 -> v2 with load and one 5-second request in flight at switch time
    app.release("v2")
    load = Load(h1.ip, app.port, slow_path="/cgi-bin/slow").start()
    load.answered(25)
    # Stopped as the new container boots (2 s): a 5-second request sent now is in flight at the switch.
    proc = app.tagship_at({PAUSE_AT_STEP: "wait until the new web is healthy"}, "deploy")
    slow = load.slow_request()
    os.kill(proc.pid, signal.SIGCONT)
    _, said = proc.communicate(timeout=300)
    load.answered(25)
    report = load.stop()
    assert proc.returncode == 0, said
    assert slow.sent == 1 and slow.failed == 0 and slow.versions == ["v1"], slow.errors
    assert_clean(report, ["v1", "v2"])
    assert report.sent > 500
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v2"

    # (b) a broken v3 never becomes healthy: the deploy fails, users keep v2, .env says v2
    app.release("v3", broken=True)
    load = Load(h1.ip, app.port).start()
    broken = app.tagship("deploy")
    report = load.stop()
    assert broken.returncode == 8, broken.stderr
    assert "did not become healthy" in broken.stderr and "the proxy was not switched" in broken.stderr
    assert "broken release, not serving" in broken.stderr, "the message shows the new container's log"
    assert_clean(report, ["v2"])
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v2"
        env = ssh(server, "cat", f"{app.remote_path}/.env")
        assert "APP_IMAGE_TAG=v2" in env.stdout


def test_a_new_app_on_a_new_port_never_interrupts_an_app_already_served(
    the_lab: lab.Lab, app: AppRepo, tmp_path: Path, docker_config: Path
) -> None:
    """Issue 9, item 3: app B's first deploy (a new port) and its next one, under load on app A."""
    h1 = the_lab.servers[0]
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    other = new_app(the_lab, tmp_path / "other", docker_config, "second-app-new-port")
    proxy_before = _container_ids(h1, "tagship-proxy", f"tagship-proxy-{app.port}")

    load = Load(h1.ip, app.port).start()
    load.answered(25)
    other.release("v1")
    first = other.tagship("deploy")
    other.release("v2")
    second = other.tagship("deploy")
    load.answered(25)
    report = load.stop()

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "recreating" not in first.stderr + second.stderr
    assert_clean(report, ["v1"])
    assert report.sent > 300
    assert _container_ids(h1, "tagship-proxy", f"tagship-proxy-{app.port}") == proxy_before, "neither was recreated"
    assert fetch(f"http://{h1.ip}:{other.port}/version.txt") == "v2"
    assert fetch(f"http://{h1.ip}:{app.port}/version.txt") == "v1"


def _container_ids(server: lab.LabServer, *names: str) -> list[str]:
    return lab.server_docker(server, "inspect", "--format", "{{.Id}}", *names).stdout.split()
