"""`tagship doctor`: check this machine and every server, one line each, every problem with its fix.

Read-only and takes no lock. A server that cannot be reached is one problem line; the others are
still checked (all at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from tagship import messages
from tagship.builders import docker, lock, proxy
from tagship.builders import doctor as checks_mod
from tagship.builders import status as status_mod
from tagship.builders.command import Command
from tagship.builders.doctor import OK, PROBLEM, WARN, Check
from tagship.config import Config
from tagship.engine.session import connect
from tagship.errors import ConfigError, MissingToolError, TagshipError
from tagship.output import Output
from tagship.release import shipping
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, Result, Transport
from tagship.runtime import Target, read_each, runtime_for

LOCAL = "local"
_STATUS_WORDS = {OK: "doctor.status_ok", WARN: "doctor.status_warn", PROBLEM: "doctor.status_problem"}


def doctor(out: Output, load: Callable[[], Config]) -> list[Check]:
    """Run every check and print them; load reads the config (a config that fails is one problem line)."""
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    # The config first: loading it takes the registry password out of the environment, which the
    # checks' children (docker, ssh) would inherit otherwise. Its line still follows the local ones.
    config: Config | None = None
    try:
        config = load()
    except ConfigError as exc:
        problem = Check(LOCAL, "config", PROBLEM, exc.message, exc.hint or messages.t("doctor.fix_config"))
    found = local_checks(local)
    if config is None:
        found.append(problem)
    else:
        out.add_secret(config.registry.password)
        for webhook in config.notify:
            out.add_secret(webhook.url)
        found.append(Check(LOCAL, "config", OK, messages.t("doctor.config_loads", count=len(config.servers))))
        if config.image.over_ssh:
            found.append(_registry_program())
        found += server_checks(config, out)
    _print(found, out)
    return found


def local_checks(local: Transport) -> list[Check]:
    """git, the docker CLI with Compose v2 (deploy builds and pushes here) and ssh on this machine."""
    git = _ask(local, checks_mod.git_version())
    docker_cli = _ask(local, checks_mod.docker_client_version())
    compose = _ask(local, docker.compose_version()) if docker_cli and docker_cli.ok else None
    ssh = _ask(local, checks_mod.ssh_version())
    return [
        _tool("git", git, messages.t("doctor.install_git")),
        _tool("docker", docker_cli, messages.t("doctor.install_docker")),
        _compose(LOCAL, compose, messages.t("doctor.install_compose_here")),
        _tool("ssh", ssh, messages.t("doctor.install_ssh")),
    ]


def _registry_program() -> Check:
    """image.transport = "ssh" runs a registry on this machine for each deploy."""
    path = shipping.program()
    if not path:
        return Check(
            LOCAL, "docker-registry", PROBLEM, messages.t("doctor.registry_needed"), messages.t(shipping.INSTALL_HINT)
        )
    return Check(LOCAL, "docker-registry", OK, messages.t("doctor.registry_found", path=path))


def _ask(transport: Transport, cmd: Command) -> Result | None:
    """The command's result; None if its program is not installed."""
    try:
        return transport.run(cmd, show=False, check=False)
    except MissingToolError:
        return None


def _tool(name: str, result: Result | None, fix: str) -> Check:
    if result is None or not result.ok:
        return Check(LOCAL, name, PROBLEM, messages.t("doctor.tool_missing", name=name), fix)
    return Check(LOCAL, name, OK, checks_mod.first_line(result.stdout or result.stderr))


def _compose(where: str, result: Result | None, fix: str) -> Check:
    major = checks_mod.compose_major(result.stdout) if result and result.ok else None
    if major is None or major < 2:
        what = messages.t("doctor.compose_missing") + (
            "" if major is None else messages.t("doctor.found_major", major=major)
        )
        return Check(where, "compose", PROBLEM, what, messages.t("doctor.compose_v1", fix=fix))
    return Check(where, "compose", OK, f"Docker Compose {checks_mod.first_line(result.stdout if result else '')}")


def server_checks(config: Config, out: Output) -> list[Check]:
    """Every server's checks, all servers at once, in the configured servers' order."""
    per_server = read_each(config, out, messages.t("doctor.check_each_server"), lambda target: _server(config, target))
    return [check for checks in per_server for check in checks]


def _server(config: Config, target: Target) -> list[Check]:
    name = target.name
    try:
        connect(target)
    except TagshipError as exc:
        return [Check(name, "ssh", PROBLEM, exc.message, exc.hint or messages.t("doctor.ssh_by_hand"))]
    jump = target.server.jump_host(config.ssh.jump)
    found = [
        Check(
            name,
            "ssh",
            OK,
            messages.t("doctor.reachable") + (messages.t("doctor.through_jump", jump=jump) if jump else ""),
        )
    ]
    try:
        found += _docker(config, target)
        found.append(_lock(target))
    except TagshipError as exc:  # a command that failed in a way no check expects
        found.append(Check(name, "server", PROBLEM, str(exc), messages.t("doctor.command_by_hand")))
    return found


def _docker(config: Config, target: Target) -> list[Check]:
    """Docker and Compose v2 answer (the deploy's own check), the disk, the proxy's image and container."""
    t, name = target.transport, target.name
    try:
        runtime_for(config).check_server(target)
    except MissingToolError as exc:
        return [Check(name, "docker", PROBLEM, exc.message, exc.hint)]
    engine = checks_mod.first_line(t.run(docker.version(), show=False, check=False).stdout)
    found = [Check(name, "docker", OK, f"Docker Engine {engine}")]
    found.append(
        _compose(
            name,
            t.run(docker.compose_version(), show=False, check=False),
            messages.t("doctor.install_compose_there"),
        )
    )
    found.append(_disk(target))
    registry = _registry(config, target)
    if registry is not None:
        found.append(registry)
    if config.proxy.enabled:
        found += _proxy(config, target)
    return found


def _registry(config: Config, target: Target) -> Check | None:
    """From the server, what its next pull needs: the registry answers, its certificate is trusted and
    it takes the login (in a client config directory of the doctor's own, removed at once). None when
    images do not come from a registry."""
    reg = config.registry
    if not reg.url or config.image.over_ssh:
        return None
    t = target.transport
    config_dir = t.run(docker.login_dir(), show=False).stdout.strip()
    try:
        if reg.has_credentials:
            login = docker.login(reg.url, reg.username, reg.password, config_dir=config_dir)
            result = t.run(login, show=False, check=False)
            answered, ok_id = result.ok, "registry.answers"
        else:
            result = t.run(docker.registry_probe(reg.url, config_dir), show=False, check=False)
            answered, ok_id = result.ok or docker.registry_answered(result.stderr), "registry.answers_anonymous"
    finally:
        t.run(docker.remove_login_dir(config_dir), show=False, check=False)
    if answered:
        return Check(target.name, "registry", OK, messages.t(ok_id, url=reg.url))
    detail, fix = docker.registry_trouble(result.stderr, url=reg.url, server=target.name, password_env=reg.password_env)
    return Check(target.name, "registry", PROBLEM, detail, fix)


def _disk(target: Target) -> Check:
    t = target.transport
    root = checks_mod.parse_root_dir(t.run(checks_mod.docker_root_dir(), show=False, check=False).stdout)
    if not root:
        return Check(
            target.name, "disk", WARN, messages.t("doctor.no_root_dir"), messages.t("doctor.docker_info_there")
        )
    available = checks_mod.parse_available_bytes(t.run(checks_mod.disk_free(root), show=False, check=False).stdout)
    return checks_mod.disk_check(target.name, root, available)


def _image_check(target: Target, what: str, image: str) -> Check:
    if target.transport.run(docker.image_id(image), show=False, check=False).ok:
        return Check(target.name, what, OK, messages.t("doctor.image_present", image=image))
    fix = messages.t("doctor.image_fix", image=image)
    return Check(target.name, what, WARN, messages.t("doctor.image_absent", image=image), fix)


def _proxy(config: Config, target: Target) -> list[Check]:
    t, name, container = target.transport, target.name, config.proxy.name
    found = [_image_check(target, "proxy-image", config.proxy.image)]
    if not config.proxy.hosts:  # the port listeners' image
        found.append(_image_check(target, "listener-image", config.proxy.listener_image))
    state = status_mod.parse_container_state(t.run(proxy.inspect(container), show=False, check=False).stdout)
    if state == status_mod.ABSENT:
        found.append(Check(name, "proxy", OK, messages.t("doctor.proxy_absent", container=container)))
    elif state == "running":
        found.append(Check(name, "proxy", OK, messages.t("doctor.proxy_running", container=container)))
    else:
        fix = messages.t("doctor.proxy_start", container=container)
        found.append(
            Check(name, "proxy", PROBLEM, messages.t("doctor.proxy_stopped", container=container, state=state), fix)
        )
    return found


def _lock(target: Target) -> Check:
    text = target.transport.run(lock.status(target.project_dir), show=False).stdout
    holder, alive = lock.parse_status(text)
    if alive is None:
        return Check(target.name, "lock", OK, messages.t("doctor.lock_free"))
    who = holder.describe() if holder else messages.t("session.unknown_holder")
    if alive:
        return Check(
            target.name,
            "lock",
            WARN,
            messages.t("doctor.lock_held_alive", who=who),
            messages.t("doctor.lock_wait"),
        )
    return Check(
        target.name,
        "lock",
        PROBLEM,
        messages.t("doctor.lock_held_dead", who=who),
        messages.t("doctor.lock_release"),
    )


def _print(found: list[Check], out: Output) -> None:
    problems = sum(c.status == PROBLEM for c in found)
    warnings = sum(c.status == WARN for c in found)
    if out.json_mode:
        out.event("doctor", checks=[asdict(c) for c in found], problems=problems, warnings=warnings)
        return
    for check in found:
        fix = messages.t("doctor.fix", fix=check.fix) if check.fix else ""
        out.result(
            messages.t(
                "doctor.check_line",
                status=f"{messages.t(_STATUS_WORDS[check.status]):<7}",
                where=check.where,
                name=check.name,
                detail=check.detail,
                fix=fix,
            )
        )
    if problems:
        out.result(messages.t("doctor.problem_s_warning_s", problems=problems, warnings=warnings))
    else:
        out.result(
            messages.t("doctor.no_problems_warning_s", warnings=warnings)
            if warnings
            else messages.t("doctor.no_problems")
        )
