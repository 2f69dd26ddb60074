"""`tagship status` and `tagship doctor` against the lab's real servers (issue 13)."""

from __future__ import annotations

import json
from typing import Any

import lab
from tests.apprepo import AppRepo, deploy, ssh


def status_event(app: AppRepo) -> dict[str, Any]:
    done = app.tagship("--json", "status")
    events: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines()]
    (event,) = [e for e in events if e["event"] == "status"]
    return {**event, "exit": done.returncode}


def test_status_reports_the_release_its_containers_listeners_and_drift(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    event = status_event(app)
    assert event["exit"] == 0, event
    servers = event["servers"]
    assert len(servers) == len(the_lab.servers)
    for server in servers:
        assert server["reachable"] and server["current"] == "v1" and server["drift"] == [], server
        web = [c for c in server["containers"] if c["service"] == "web"]
        assert len(web) == 1 and web[0]["running"] and web[0]["image"].endswith(":v1"), web
        assert server["proxy"]["state"] == "running"
        assert [entry["name"] for entry in server["listeners"]] == [f"tagship-proxy-{app.port}"]
        assert server["lock"] is None

    # Someone edits the tag in one server's .env by hand: status names the drift and exits 1.
    h2 = the_lab.servers[1]
    assert ssh(h2, "sed", "-i", "s/^APP_IMAGE_TAG=.*/APP_IMAGE_TAG=v9/", f"{app.remote_path}/.env").returncode == 0
    event = status_event(app)
    assert event["exit"] == 1
    drifted = {s["server"]: s["drift"] for s in event["servers"]}
    assert [name for name, drift in drifted.items() if drift] == [h2.name], drifted


def test_doctor_passes_on_the_lab_and_names_a_dead_lock_with_its_fix(the_lab: lab.Lab, app: AppRepo) -> None:
    deploy(app, "v1")
    healthy = app.tagship("doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    # A lock left by a run that died: its connection no longer exists.
    h1 = the_lab.servers[0]
    lock_dir = f"{app.remote_path}/.tagship/lock"
    holder = (
        '{"token": "t", "who": "ghost", "host": "x", "pid": 1, "command": "deploy", "version": "v0", "since": "now"}'
    )
    made = ssh(
        h1,
        "sh",
        "-c",
        f"mkdir -p {lock_dir} && echo '{holder}' > {lock_dir}/holder.json && echo 999999 > {lock_dir}/connection",
    )
    assert made.returncode == 0, made.stderr
    sick = app.tagship("doctor")
    assert sick.returncode == 1
    assert "tagship lock release" in sick.stdout + sick.stderr
