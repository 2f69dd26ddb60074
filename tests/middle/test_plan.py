"""The deploy plan is data: its steps, servers and undos are known, and printed, before anything runs."""

from __future__ import annotations

import re
from pathlib import Path

from tagship import messages
from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.engine.plan import LOCAL as LOCAL_NAME
from tagship.engine.plan import Plan
from tagship.output import Output
from tagship.release.version import Release
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport
from tagship.runtime import BatchOptions
from tagship.runtime.compose.switch import plan_deploy
from tagship.runtime.compose.target import App, targets_for
from tests.middle.fake_checkout import LOCAL, FakeCheckout
from tests.middle.fake_host import FakeHost
from tests.middle.recorder import Script, printed
from tests.middle.settings import H1, H2

BOTH = f"[{H1}, {H2}]"

# The servers' part (plan_deploy); connecting, "check docker and compose" and the lock come before it.
TITLES = [
    "proxy image caddy:2-alpine",
    "push caddy:2-alpine to the registry, if a server cannot pull it",
    "listener image haproxy:lts-alpine",
    "push haproxy:lts-alpine to the registry, if a server cannot pull it",
    "prepare the project directory",
    "registry login reg",
    "pull reg/ns/app:v2",
    "servers that lack caddy:2-alpine pull it from the registry",
    "servers that lack haproxy:lts-alpine pull it from the registry",
    "set APP_IMAGE_TAG=v2 in .env",
    "read the compose project",
    "write compose.tagship.yaml",
    "network tagship",
    "start services that are not running",
    "start new web (v2) beside the old",
    "proxy tagship-proxy up, a listener per port",
    "wait until the new web is healthy",
    "hand the host ports to the proxy",
    "switch the proxy to the new web",
    "v2 is live on every server",
    "drain and stop the old web",
    "remove listeners of ports no longer published",
    "replace workers",
    "verify web runs v2",
]

SHIP = "push caddy:2-alpine to the registry, if a server cannot pull it"  # on this machine
SHIP_LISTENER = "push haproxy:lts-alpine to the registry, if a server cannot pull it"

UNDOS = {
    "prepare the project directory": "put the previous compose.yaml back",
    "set APP_IMAGE_TAG=v2 in .env": "put the previous .env back",
    "write compose.tagship.yaml": "put the previous compose.tagship.yaml back",
    "start new web (v2) beside the old": "remove the new web containers",
    "proxy tagship-proxy up, a listener per port": "remove the listeners this run started",
    "switch the proxy to the new web": "route the proxy back to the old containers",
}


def deploy_plan(config: Config, out: Output, app: App, tree: Path, release: Release) -> tuple[Plan, Connections]:
    conns = Connections(config, out)
    plan = Plan(out=out)
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    plan_deploy(config, targets_for(config, conns, app.compose_files), app, tree, release, plan, BatchOptions(local))
    return plan, conns


def test_the_deploy_plan_has_its_steps_in_order_and_makes_no_connection(
    config: Config, out: Output, tagged_app: App, tree: Path, release: Release, script: Script
) -> None:
    plan, conns = deploy_plan(config, out, tagged_app, tree, release)
    assert [step.title for step in plan.steps] == TITLES
    assert conns.opened == 0 and script.calls == []
    live = TITLES.index("v2 is live on every server")
    assert plan.steps[live].no_return_hint and not plan.steps[live].servers
    for step in plan.steps[:live] + plan.steps[live + 1 :]:
        assert step.servers == ((LOCAL_NAME,) if step.title in (SHIP, SHIP_LISTENER) else (H1, H2)), step.title
        assert step.undo_title == UNDOS.get(step.title, ""), step.title
        assert (step.undo is not None) == (step.title in UNDOS), step.title


def rendered_steps(lines: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Title -> (its servers, the lines under it), from render()."""
    steps: dict[str, tuple[str, list[str]]] = {}
    under: list[str] = []
    for line in lines:
        match = re.fullmatch(r"\s*\d+\. (.+)  \[(.+)\]", line)
        if match:
            under = []
            steps[match.group(1)] = (match.group(2), under)
        elif line.startswith("      "):
            under.append(line.strip())
    return steps


def test_the_rendered_plan_shows_servers_undos_and_the_point_of_no_return(
    config: Config, out: Output, tagged_app: App, tree: Path, release: Release
) -> None:
    lines = deploy_plan(config, out, tagged_app, tree, release)[0].render()
    steps = rendered_steps(lines)
    assert list(steps) == [t for t in TITLES if t != "v2 is live on every server"]
    for title, (servers, under) in steps.items():
        assert servers == (LOCAL_NAME if title in (SHIP, SHIP_LISTENER) else f"{H1}, {H2}"), title
        undo = [line for line in under if line.startswith("on failure:")]
        assert undo == ([f"on failure: {UNDOS[title]}"] if title in UNDOS else []), title
    assert steps["pull reg/ns/app:v2"][1] == ["docker pull reg/ns/app@<digest>, tag it reg/ns/app:v2"]
    upload_undo = "on failure: put the previous compose.yaml back"
    assert steps["prepare the project directory"][1] == ["upload compose.yaml", upload_undo]
    mirror = "reg/ns/tagship-proxy:caddy-2-alpine"
    assert steps["proxy image caddy:2-alpine"][1] == [
        "docker image inspect caddy:2-alpine, else docker pull caddy:2-alpine"
    ]
    assert steps[SHIP][1] == [f"docker tag caddy:2-alpine {mirror}", f"docker push {mirror}"]
    pull_proxy = steps["servers that lack caddy:2-alpine pull it from the registry"][1]
    assert pull_proxy == [f"docker pull {mirror}", f"docker tag {mirror} caddy:2-alpine"]
    assert steps["listener image haproxy:lts-alpine"][1] == [
        "docker image inspect haproxy:lts-alpine, else docker pull haproxy:lts-alpine"
    ]
    scale_up = "docker compose up --detach --no-deps --no-recreate --scale web=N+1 web"
    assert scale_up in steps["start new web (v2) beside the old"][1]
    assert "container_name: !reset null" in steps["write compose.tagship.yaml"][1]  # the override, in full
    no_return = lines.index(
        "   -- v2 is live on every server: the point of no return (a failure after it undoes nothing)"
    )
    assert lines[no_return - 1] == "      on failure: route the proxy back to the old containers"
    assert lines[no_return + 1] == f"20. drain and stop the old web  {BOTH}"


def test_a_dry_run_deploy_builds_nothing_and_sends_nothing_to_the_servers(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    assert {call.server for call in script.calls} == {LOCAL}
    assert not any("docker build" in c or "docker push" in c for c in script.shown(LOCAL))
    assert all(host.env_tag() == "v1" for host in hosts.values())
    shown = printed(out)
    assert "nothing runs in a dry run" in shown and f"build reg/ns/app:v2  [{LOCAL_NAME}]" in shown
    assert f"connect to the servers  {BOTH}" in shown and f"check docker and compose  {BOTH}" in shown
    assert "on failure: remove the new web containers" in shown


def test_a_dry_run_under_a_chinese_locale_prints_the_plan_in_chinese(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    messages.choose(None, {"LANG": "zh_CN.UTF-8"})
    try:
        deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    finally:
        messages.choose("en", {})
    lines = printed(out).splitlines()
    # A step's title, the plan's heading, its undos and its point of no return are tagship's words; the
    # lines a step shows (commands, files written) and the servers' own output are not.
    own = [
        line
        for line in lines
        if not line.startswith("  [") and (not line.startswith("      ") or line.strip().startswith("失败时"))
    ]
    assert len(own) > 30
    assert [line for line in own if not re.search(r"[\u4e00-\u9fff]", line)] == []
    assert f"连接服务器  {BOTH}" in printed(out) and "删除新的 web 容器" in printed(out)
    assert "v2 已在每台服务器上线" in printed(out) and "不可回退点" in printed(out)


def test_a_dry_run_names_the_env_values_and_secrets_file_keys_it_writes_but_no_value(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    from tagship.remote.transport import Result
    from tests.middle.settings import CONFIG, write_config

    script.on("ls-files --error-unmatch", Result(1, "", ""), server=LOCAL, first=True)  # not in git
    env = '[env]\nsecrets_file = "secrets.env"\nvalues = { LOG_LEVEL = "warn-level-value", SITE = "site-value" }\n'
    config = write_config(tmp_path, text=CONFIG.replace("[env]\n", env))
    (tmp_path / "secrets.env").write_text("DB_PASSWORD=db-secret-value\nAPI_KEY=api-secret-value\n")
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    lines = printed(out).splitlines()
    step = next(i for i, line in enumerate(lines) if line.endswith(f". set APP_IMAGE_TAG=v2 in .env  {BOTH}"))
    assert lines[step + 1] == (
        "      also sets LOG_LEVEL, SITE, DB_PASSWORD, API_KEY (env.values, env.secrets_file; values not shown)"
    )
    for value in ("warn-level-value", "site-value", "db-secret-value", "api-secret-value"):
        assert value not in printed(out)
