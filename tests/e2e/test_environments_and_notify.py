"""Issue 12 on the lab: `-e staging` and `-e production` deploy to their own servers with their own
values, and every run's notification reaches a local webhook receiver in each format."""

from __future__ import annotations

import json
from pathlib import Path

import lab
from tests.apprepo import fetch, ssh
from tests.conftest import new_app
from tests.receiver import TOKEN, Received, receiving

FORMATS = ("json", "slack", "feishu", "dingtalk", "wecom")


def line_of(received: Received) -> str:
    """The chat line of a webhook body, wherever its format puts it."""
    body = received.json()
    fmt = received.path.rsplit("/", 1)[1]
    if fmt in ("json", "slack"):
        return str(body["text"])
    if fmt == "feishu":
        assert body["msg_type"] == "text"
        return str(body["content"]["text"])
    assert body["msgtype"] == "text", fmt  # dingtalk, wecom
    return str(body["text"]["content"])


def test_each_environment_deploys_to_its_servers_with_its_values_and_every_format_is_notified(
    fleet_lab: lab.Lab, tmp_path: Path, docker_config: Path
) -> None:
    h1, h2, h3 = fleet_lab.servers
    app = new_app(fleet_lab, tmp_path / "app", docker_config, "environments")
    config = app.path / "tagship.toml"
    text = config.read_text().split("\n", 1)[1]  # the common servers go: each environment names its own
    text += "".join(f'\n[[notify]]\nurl_env = "HOOK_{fmt.upper()}"\nformat = "{fmt}"\n' for fmt in FORMATS)
    text += (
        f'\n[environments.staging]\nservers = ["{h3.name}"]\n'
        '[environments.staging.env.values]\nSTAGE = "staging"\n'
        f'\n[environments.production]\nservers = ["{h1.name}", "{h2.name}"]\n'
        '[environments.production.env.values]\nSTAGE = "production"\n'
    )
    config.write_text(text)
    app.release("v1")
    with receiving(answer=b'{"code": 0, "errcode": 0}') as receiver:
        hooks = {f"HOOK_{fmt.upper()}": f"{receiver.url}/{fmt}" for fmt in FORMATS}
        staging = app.tagship("deploy", "-e", "staging", extra_env=hooks)
        assert staging.returncode == 0, staging.stderr
        assert fetch(f"http://{h3.ip}:{app.port}/version.txt") == "v1"
        for server in (h1, h2):
            assert ssh(server, "test", "-e", app.remote_path).returncode == 1, f"{server.name}: not staging's"
        after_staging = list(receiver.received)

        app.release("v2")
        production = app.tagship("deploy", "-e", "production", extra_env=hooks)
        assert production.returncode == 0, production.stderr
        after_production = receiver.received[len(after_staging) :]

    assert [fetch(f"http://{s.ip}:{app.port}/version.txt") for s in (h1, h2, h3)] == ["v2", "v2", "v1"]
    for server, stage in ((h1, "production"), (h2, "production"), (h3, "staging")):
        env = ssh(server, "cat", f"{app.remote_path}/.env").stdout
        assert f"STAGE={stage}\n" in env, server.name
        entry = json.loads(ssh(server, "cat", f"{app.remote_path}/.tagship/releases.jsonl").stdout.splitlines()[-1])
        assert entry["environment"] == stage, server.name
    for received, version, stage, servers in (
        (after_staging, "v1", "staging", h3.name),
        (after_production, "v2", "production", f"{h1.name}, {h2.name}"),
    ):
        assert sorted(r.path.rsplit("/", 1)[1] for r in received) == sorted(FORMATS), "one post per format"
        for post in received:
            assert post.content_type.startswith("application/json"), post.path
            line = line_of(post)
            assert line.startswith(f"tagship deploy {version} to {stage} succeeded on {servers} in "), line
    facts = next(r.json() for r in after_production if r.path.endswith("/json"))
    assert (facts["environment"], facts["servers"], facts["result"]) == ("production", [h1.name, h2.name], "succeeded")
    assert TOKEN not in staging.stdout + staging.stderr + production.stdout + production.stderr
