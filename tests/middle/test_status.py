"""`tagship status` on two scripted servers: release, containers, proxy and lock; drift and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagship import cli
from tagship.builders import lock
from tagship.commands import status as status_command
from tagship.config import Config
from tagship.errors import ConnectError
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_host import ENV, Container, FakeHost, image_id
from tests.middle.recorder import CONNECT, Script
from tests.middle.settings import H1, H2

BOB = lock.Holder("bob-token", "bob", "laptop", 4242, "deploy", "v9", "2026-11-27T10:02:00Z")


@pytest.fixture(autouse=True)
def unlocked(script: Script) -> None:
    """FakeHost knows no lock status script: by default no server is locked."""
    script.on("<lock status>", Result(0, "", ""))


def held_by_bob(script: Script, server: str) -> None:
    script.on("<lock status>", Result(0, BOB.json() + "\nconnection=alive\n", ""), server=server, first=True)


def run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str]:
    code = cli.main(["-C", str(tmp_path), *words, "status"])
    return code, capsys.readouterr().out


def test_status_reports_the_release_its_containers_the_proxy_and_a_held_lock(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    held_by_bob(script, H2)
    servers = status_command.status(config, out)
    assert [s.server for s in servers] == [H1, H2]
    assert all(s.healthy for s in servers)
    text = out.out.getvalue()  # type: ignore[attr-defined]
    assert f"{H1}: v1 since 2026-11-26T07:00:00Z (deploy)" in text
    assert "  lock    free" in text
    assert "  lock    held by bob on laptop since 2026-11-27T10:02:00Z (deploy v9, pid 4242)" in text
    assert "  proxy   tagship-proxy running; listeners: tagship-proxy-18100 running" in text
    for service in ("db", "web", "worker"):
        assert any(line.split()[:3] == [service, f"app-{service}-1", "running"] for line in text.splitlines()), service
    assert "web      app-web-1     running  -       sha256:app-v1" in text
    assert text.count("  drift   none") == 2
    assert not any("<take lock>" in c for c in script.shown()), "status takes no lock"


def test_status_json_is_one_event_with_every_server(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    held_by_bob(script, H1)
    code, text = run_cli(tmp_path, capsys, "--json")
    events = [json.loads(line) for line in text.splitlines()]
    (event,) = [e for e in events if e["event"] == "status"]
    assert code == 0
    first, second = event["servers"]
    assert (first["server"], first["current"], first["reachable"], first["drift"]) == (H1, "v1", True, [])
    assert first["lock"] == {"holder": json.loads(BOB.json()), "alive": True} and second["lock"] is None
    assert {(c["service"], c["state"], c["image_id"]) for c in first["containers"]} == {
        ("web", "running", image_id("v1")),
        ("worker", "running", image_id("v1")),
        ("db", "running", "sha256:postgres"),
    }
    assert first["listeners"] == [{"name": "tagship-proxy-18100", "app": "app", "running": True}]


def test_a_web_container_on_another_image_is_drift_exit_1_and_named(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    hosts[H2].images["reg/ns/app:v0"] = image_id("v0")
    hosts[H2].containers["h2-web-2"] = Container("h2-web-2", "web", 2, image_id("v0"))
    code, text = run_cli(tmp_path, capsys)
    assert code == 1
    h1, h2 = text.split(f"{H2}:")
    assert "drift   none" in h1
    assert "  drift   app-web-2 (web) runs sha256:app-v0, not v1's image" in h2


def test_a_worker_on_another_image_is_not_drift_of_the_deployed_service(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    hosts[H2].containers["h2-worker-2"] = Container("h2-worker-2", "worker", 2, image_id("v0"))
    assert run_cli(tmp_path, capsys)[0] == 0


def test_an_env_edited_by_hand_is_drift(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    hosts[H1].files[ENV] = hosts[H1].files[ENV].replace("APP_IMAGE_TAG=v1", "APP_IMAGE_TAG=v7")
    first, second = status_command.status(config, out)
    assert first.current == "v7" and not first.healthy and second.healthy
    assert first.drift == [
        ".env sets APP_IMAGE_TAG=v7, but the last succeeded release is v1",
        "the image of v7, the current release, is not on the server",
    ]


def test_an_unreachable_server_is_reported_with_the_others_and_exits_1(
    tmp_path: Path, config: Config, script: Script, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    script.on(CONNECT, ConnectError(f"cannot connect to {H2}: connection refused"), server=H2, first=True)
    code, text = run_cli(tmp_path, capsys)
    assert code == 1
    assert f"{H1}: v1 since" in text
    assert f"{H2}: unreachable or unreadable: cannot connect to {H2}: connection refused" in text
