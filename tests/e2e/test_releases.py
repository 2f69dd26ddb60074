"""Releases kept on the servers: history, rollback under load, prune, the deploy lock."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import lab
from lab.load import Load
from tagship.engine.plan import INTERRUPT_AT_STEP, KILL_AT_STEP, PAUSE_AT_STEP
from tests.apprepo import AppRepo, deploy, served, ssh


def rollback_under_load(the_lab: lab.Lab, app: AppRepo, *args: str, project: Path | None = None) -> tuple[str, float]:
    """Roll back with load running and a 5-second request in flight at the switch (the new release boots 2 s)."""
    h1 = the_lab.servers[0]
    before = served(the_lab, app)[0]
    load = Load(h1.ip, app.port, slow_path="/cgi-bin/slow").start()
    load.answered(25)
    slow = load.slow_request()
    started = time.monotonic()
    result = app.tagship("rollback", *args, project=project)
    seconds = time.monotonic() - started
    load.answered(25)
    report = load.stop()
    assert result.returncode == 0, result.stderr
    assert slow.sent == 1 and slow.failed == 0 and slow.versions == [before], "the drain waited for it"
    assert report.failed == 0, f"{report.failed} of {report.sent} failed: {report.errors()}"
    assert report.sent > 100
    for sequence in report.version_sequences():
        assert len(sequence) <= 2, f"the version switched more than once: {sequence}"
    return result.stdout, seconds


def test_history_rollback_prune(the_lab: lab.Lab, app: AppRepo, tmp_path: Path) -> None:
    config = app.path / "tagship.toml"
    config.write_text(config.read_text() + "\n[releases]\nkeep = 3\n")
    app.git("commit", "--quiet", "--all", "--message", "keep 3")
    for version in ("v1", "v2", "v3"):
        deploy(app, version)
    assert served(the_lab, app) == ["v3", "v3"]

    out, _ = rollback_under_load(the_lab, app)
    assert "rolled back to" in out and out.strip().endswith(":v2")
    assert served(the_lab, app) == ["v2", "v2"]

    # As from another machine: a copy of the project's files without its git history.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(app.path, elsewhere, ignore=shutil.ignore_patterns(".git"))
    rollback_under_load(the_lab, app, "v1", project=elsewhere)
    assert served(the_lab, app) == ["v1", "v1"]
    for server in the_lab.servers:
        assert "APP_IMAGE_TAG=v1\n" in ssh(server, "cat", f"{app.remote_path}/.env").stdout

    listing = app.tagship("releases")
    assert listing.returncode == 0, listing.stderr
    for server in the_lab.servers:
        assert f"{server.name} (current: v1)" in listing.stdout
    assert "* v1" in listing.stdout and "rollback" in listing.stdout and "succeeded" in listing.stdout
    as_json = app.tagship("--json", "releases")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    (event,) = [e for e in events if e["event"] == "releases"]
    history = event["servers"][0]["releases"]
    assert [(r["version"], r["kind"]) for r in history] == [
        ("v1", "deploy"),
        ("v2", "deploy"),
        ("v3", "deploy"),
        ("v2", "rollback"),
        ("v1", "rollback"),
    ]
    assert all(r["result"] == "succeeded" and r["commit"] for r in history)
    assert all(r["deployed_by"].startswith("Test Deployer") for r in history[:4])
    here = f"{getpass.getuser()}@{socket.gethostname()}"
    assert here in history[4]["deployed_by"] and "Test Deployer" not in history[4]["deployed_by"]
    assert history[0]["digest"].startswith("sha256:")

    # v4 makes four releases: with keep = 3 the deploy prunes v1 (neither current nor previous).
    deploy(app, "v4")
    refused = app.tagship("rollback", "v1")
    assert refused.returncode == 2
    assert "v1 is no longer retained" in refused.stderr and "v2, v3, v4" in refused.stderr
    assert served(the_lab, app) == ["v4", "v4"]
    events = [json.loads(line) for line in app.tagship("--json", "releases").stdout.splitlines()]
    (event,) = [e for e in events if e["event"] == "releases"]
    for server in event["servers"]:
        kept = {r["version"]: r["retained"] for r in server["releases"]}
        assert kept == {"v1": False, "v2": True, "v3": True, "v4": True}, kept
    text = app.tagship("releases").stdout
    assert all(line.split()[5] == "pruned" for line in text.splitlines() if " v1 " in line), text
    pruned = app.tagship("prune")
    assert pruned.returncode == 0, pruned.stderr
    for server in the_lab.servers:
        tags = ssh(
            server,
            "docker",
            "image",
            "ls",
            "--format",
            "{{.Tag}}",
            app.repository,
        )
        assert sorted(tags.stdout.split()) == ["v2", "v3", "v4"]
        audit = ssh(server, "cat", f"{app.remote_path}/.tagship/audit.log").stdout
        assert "rollback v1 succeeded" in audit and "deploy v4 started" in audit


def test_lock_a_second_deploy_exits_3_and_a_killed_deploy_can_be_recovered(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    app.release("v2")
    first = app.tagship_at({PAUSE_AT_STEP: "read each server's release"}, "deploy")  # holds the lock
    second = app.tagship("deploy")
    refused = app.tagship("lock", "release")  # the holder is alive: freeing its lock would let two runs collide
    assert refused.returncode == 3 and "looks alive" in refused.stderr and "--force" in refused.stderr, refused
    waiting = "waiting up to 300s for the deploy lock held by Test Deployer"
    waiter, _ = app.tagship_until(waiting, "deploy", "--lock-wait", "300")
    os.kill(first.pid, signal.SIGCONT)
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.returncode == 3, second.stderr
    assert "deploy lock on tslab-h" in second.stderr and "held by Test Deployer" in second.stderr
    assert "deploy v2" in second.stderr and "tagship lock release" in second.stderr
    _, waited = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, waited  # --lock-wait: took the lock once the first deploy let go
    assert served(the_lab, app) == ["v2", "v2"]

    app.release("v3")
    interrupted = app.tagship_at({INTERRUPT_AT_STEP: "wait until the new web is healthy"}, "deploy")
    _, said = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, said
    assert "interrupted: undoing" in said and "could not undo" not in said, said
    assert served(the_lab, app) == ["v2", "v2"], "an interrupted deploy leaves the old release serving"
    assert app.tagship("lock", "status").returncode == 0, "Ctrl-C released the lock"
    for server in the_lab.servers:
        assert "APP_IMAGE_TAG=v2\n" in ssh(server, "cat", f"{app.remote_path}/.env").stdout
        images = ssh(server, "docker", "ps", "--format", "{{.Image}}").stdout
        assert f"{app.repository}:v3" not in images, "the half-started v3 container was removed"

    victim = app.tagship_at({KILL_AT_STEP: "wait until the new web is healthy"}, "deploy")
    victim.communicate(timeout=120)
    assert victim.returncode == -signal.SIGKILL
    assert served(the_lab, app) == ["v2", "v2"], "the app keeps serving after tagship is killed"
    status = app.tagship("lock", "status")
    assert status.returncode == 3, status.stderr
    assert "looks dead" in status.stdout
    released = app.tagship("lock", "release")
    assert released.returncode == 0 and "released the lock" in released.stdout
    assert app.tagship("lock", "status").returncode == 0
    deploy(app, "v4")
    assert served(the_lab, app) == ["v4", "v4"]


def test_ctrl_c_after_the_switch_keeps_the_new_release_and_the_next_deploy_retires_the_rest(
    the_lab: lab.Lab, app: AppRepo
) -> None:
    h1 = the_lab.servers[0]
    deploy(app, "v1")
    app.release("v2")
    load = Load(h1.ip, app.port, slow_path="/cgi-bin/slow").start()
    # Stopped while the new web boots; Ctrl-C as the drain starts, after the switch.
    switches = {PAUSE_AT_STEP: "wait until the new web is healthy", INTERRUPT_AT_STEP: "drain and stop the old web"}
    draining = app.tagship_at(switches, "deploy")
    slow = load.slow_request()  # 5 s on v1 in h1, in flight at the switch
    os.kill(draining.pid, signal.SIGCONT)
    _, said = draining.communicate(timeout=120)
    report = load.stop()
    assert draining.returncode == 130, said
    assert "v2 is live on every server, nothing was undone" in said and "undoing" not in said, said
    assert served(the_lab, app) == ["v2", "v2"]
    assert report.failed == 0 and slow.failed == 0 and slow.versions == ["v1"], report.errors()
    assert app.tagship("lock", "status").returncode == 0, "the lock was released"
    events = [json.loads(line) for line in app.tagship("--json", "releases").stdout.splitlines()]
    (event,) = [e for e in events if e["event"] == "releases"]
    latest = event["servers"][0]["releases"][-1]
    assert (latest["version"], latest["result"]) == ("v2", "succeeded"), latest

    def app_images(server: lab.LabServer, *options: str) -> list[str]:
        images = ssh(server, "docker", "ps", *options, "--format", "{{.Image}}").stdout.split()
        return sorted(i.rsplit(":", 1)[1] for i in images if i.startswith(app.repository))

    assert app_images(h1) == ["v1", "v2"], "v1 still runs on h1, without traffic"
    deploy(app, "v3")
    assert [app_images(s, "--all") for s in the_lab.servers] == [["v3"], ["v3"]], "the next deploy retired it"

    # The app crashed (its container exited): the next deploy starts a new container of its own
    # release; compose would otherwise start the stopped v3 container again as the "new" one.
    crash = ssh(h1, "sh", "-c", 'docker stop $(docker ps -q --filter ancestor="$1")', "sh", f"{app.repository}:v3")
    assert crash.returncode == 0 and app_images(h1) == [], crash.stderr
    deploy(app, "v4")
    assert served(the_lab, app) == ["v4", "v4"]
    assert [app_images(s, "--all") for s in the_lab.servers] == [["v4"], ["v4"]]
