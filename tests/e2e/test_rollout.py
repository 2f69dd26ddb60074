"""[rollout] on three lab servers under load: a canary that fails, rolling batches of one, the watch."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import lab
from lab.load import Load, LoadReport
from tests.apprepo import AppRepo, fetch, ssh
from tests.conftest import new_app


def with_rollout(app: AppRepo, text: str) -> None:
    """Add a [rollout] table to the app's tagship.toml (committed with the next release)."""
    config = app.path / "tagship.toml"
    config.write_text(config.read_text() + f"\n[rollout]\n{text}\n")


def under_load(the_lab: lab.Lab, app: AppRepo, *args: str) -> tuple[int, str, list[LoadReport]]:
    """Run tagship with load on every server's port of the app: (exit code, stderr, each server's report)."""
    loads = [Load(server.ip, app.port, max_seconds=240).start() for server in the_lab.servers]
    result = app.tagship(*args)
    return result.returncode, result.stderr, [load.stop() for load in loads]


def assert_no_failures(the_lab: lab.Lab, reports: list[LoadReport], versions: list[str]) -> None:
    for server, report in zip(the_lab.servers, reports, strict=True):
        assert report.failed == 0, f"{server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.sent > 100, server.name
        for sequence in report.version_sequences():
            assert sequence and sequence == versions[-len(sequence) :], (server.name, sequence)


def history(server: lab.LabServer, app: AppRepo) -> list[tuple[str, str]]:
    lines = ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl").stdout.splitlines()
    return [(entry["version"], entry["result"]) for entry in map(json.loads, lines)]


def summary(stderr: str) -> list[str]:
    """The summary table's rows, cells joined by single spaces, without the seconds."""
    rows = list(itertools.takewhile(lambda row: row.startswith("  "), stderr.split("summary:\n", 1)[1].splitlines()))
    return [" ".join(row.split()[:-1]) for row in rows]


def has_image(server: lab.LabServer, ref: str) -> bool:
    return lab.server_docker(server, "image", "inspect", ref).returncode == 0


def test_a_failing_canary_goes_back_and_the_other_servers_never_see_the_release(
    fleet_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    h1, h2, h3 = fleet_lab.servers
    app = new_app(fleet_lab, tmp_path / "app", docker_config, "canary-fails")
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    with_rollout(app, f'strategy = "canary"\ncanary = "{h2.name}"\ncanary_watch = 3')
    app.release("v2", broken=True)

    code, stderr, reports = under_load(fleet_lab, app, "deploy")

    assert code == 8, stderr
    assert f"the canary: {h2.name}" in stderr and "did not become healthy" in stderr
    assert_no_failures(fleet_lab, reports, ["v1"])
    for server in fleet_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v1", server.name
        assert "APP_IMAGE_TAG=v1" in ssh(server, "cat", f"{app.remote_path}/.env").stdout, server.name
    assert history(h2, app)[-1] == ("v2", "failed")
    for untouched in (h1, h3):
        assert history(untouched, app) == [("v1", "succeeded")], f"{untouched.name}: no entry, never started"
        assert not has_image(untouched, f"{app.repository}:v2"), f"{untouched.name}: the release never reached it"
    assert summary(stderr) == [
        "server release result",
        f"{h1.name} v1 (kept) not started",
        f"{h2.name} v1 (kept) failed, undone",
        f"{h3.name} v1 (kept) not started",
    ]


def test_rolling_batches_of_one_drop_nothing_and_finish_one_server_before_the_next(
    fleet_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    app = new_app(fleet_lab, tmp_path / "app", docker_config, "rolling")
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    with_rollout(app, 'strategy = "rolling"\nbatch = 1\nwatch = 2')
    app.release("v2")

    code, stderr, reports = under_load(fleet_lab, app, "deploy")

    assert code == 0, stderr
    assert_no_failures(fleet_lab, reports, ["v1", "v2"])
    names = [server.name for server in fleet_lab.servers]
    marks = [stderr.index(f"batch {n} of 3: {name}") for n, name in enumerate(names, start=1)]
    retired = [i for i, line in enumerate(stderr.splitlines(keepends=True)) if "==> drain and stop the old web" in line]
    assert len(retired) == 3
    offsets = [sum(len(line) for line in stderr.splitlines(keepends=True)[:i]) for i in retired]
    assert marks[0] < offsets[0] < marks[1] < offsets[1] < marks[2] < offsets[2], "one server after the other"
    assert summary(stderr)[1:] == [f"{name} v1 -> v2 switched" for name in names]
    for server in fleet_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v2"
        assert history(server, app)[-1] == ("v2", "succeeded")
        listener = f"tagship-proxy-{app.port}"
        config = lab.server_docker(server, "exec", listener, "cat", "/var/lib/haproxy/tagship/listener.cfg").stdout
        assert "rolling-web-2:8080" in config and " backup" not in config, "after the watch: the new ones only"


def test_a_release_that_dies_after_the_switch_is_switched_back_by_the_watch(the_lab: lab.Lab, app: AppRepo) -> None:
    app.release("v1")
    assert app.tagship("deploy").returncode == 0
    with_rollout(app, "watch = 15")
    app.release("v2", crash_after=3)

    code, stderr, reports = under_load(the_lab, app, "deploy")

    assert code == 8, stderr
    assert "s after the switch (rollout.watch 15s); switching back to the old containers" in stderr
    assert "app: crashing" in stderr, "the message shows the new container's log"
    # While the watch runs, the listeners keep the old containers as backups: the dead one's requests
    # go there. Only a request it was answering as it died can fail (its answer cut short): at most
    # one per client connection, all at that moment.
    clients = len(reports[0].clients)
    for server, report in zip(the_lab.servers, reports, strict=True):
        failed_at = sorted(t for client in report.clients for t in client.failure_times)
        said = f"{server.name}: {report.failed} of {report.sent} failed: {report.errors()}"
        assert report.failed <= clients and (not failed_at or failed_at[-1] - failed_at[0] < 1.0), said
        print(said)
        assert all(seq[-1] == "v1" for seq in report.version_sequences()), server.name
        assert any("v2" in seq for seq in report.version_sequences()), f"{server.name}: v2 served before it died"
    for server in the_lab.servers:
        assert fetch(f"http://{server.ip}:{app.port}/version.txt") == "v1"
        assert "APP_IMAGE_TAG=v1" in ssh(server, "cat", f"{app.remote_path}/.env").stdout
        assert history(server, app)[-1] == ("v2", "failed")
