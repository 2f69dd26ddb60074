"""Deploy a release to every server: check, pull everywhere, then switch server by server."""

from __future__ import annotations

import json
import stat
import time
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from tagship.builders import compose, docker, envfile, override
from tagship.builders.command import Command
from tagship.config import Config
from tagship.engine.plan import Plan, apply
from tagship.engine.session import Session, recorded
from tagship.engine.target import Target, connect_early, targets_for
from tagship.errors import CommandFailed, ConfigError, HealthError, MissingToolError, RegistryError, TagshipError
from tagship.output import Output
from tagship.release import image as build
from tagship.release import version as release_mod
from tagship.release.image import Source
from tagship.release.version import Release
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, Transport, tail
from tagship.runtime.compose import switch

NOT_FOUND = 127


def check_server(target: Target) -> None:
    """Docker and Compose v2 must answer on the server before anything changes."""
    t = target.transport
    result = t.run(docker.version(), show=False, check=False)
    if result.code == NOT_FOUND:
        raise MissingToolError(f"docker is not installed on {t.name}", hint="install Docker Engine there")
    if not result.ok:
        raise MissingToolError(
            f"the Docker engine on {t.name} does not answer",
            hint="start it (systemctl start docker) and make sure this user may use it",
            detail=tail(result.stderr),
        )
    if not t.run(docker.compose_version(), show=False, check=False).ok:
        raise MissingToolError(
            f"Docker Compose v2 (`docker compose`) is missing on {t.name}",
            hint="install the docker-compose-plugin package there (Compose v1 is not enough)",
        )


def login_server(config: Config, target: Target) -> None:
    reg = config.registry
    result = target.transport.run(docker.login(reg.url, reg.username, reg.password), check=False)
    if not result.ok:
        raise RegistryError(
            f"registry {reg.url} refused the login on {target.name}",
            hint="check that the server can reach the registry and the credentials are right",
            detail=tail(result.stderr),
        )


def pull(target: Target, *, release: Release) -> None:
    try:
        target.transport.run(docker.pull(release.ref), stream=True)
    except CommandFailed as exc:
        raise RegistryError(
            f"{target.name} could not pull {release.ref}",
            hint="check the server's route to the registry and its login",
            detail=exc.stderr_tail,
        ) from exc


def upload(config: Config, target: Target, *, source: Source) -> None:
    """Create the project directory and copy the configured files from the tagged tree."""
    t = target.transport
    t.run(Command(("mkdir", "-p", target.project.directory)))
    for name in config.app.upload:
        path = source.tree / name
        data = path.read_bytes()
        dest = str(PurePosixPath(target.project.directory) / name)
        note = f"{name} from the tagged tree ({len(data)} bytes)"
        t.run(envfile.write(dest, data.decode(), note, new_mode=stat.S_IMODE(path.stat().st_mode)))


def read_env(target: Target) -> str | None:
    """The server's current .env text, or None if it has none."""
    result = target.transport.run(envfile.read(target.env_path), show=False, check=False)
    if result.code == envfile.ABSENT:
        return None
    if not result.ok:
        raise CommandFailed(target.name, f"read {target.env_path}", result.code, tail(result.stderr))
    return result.stdout


def new_env(config: Config, source: Source, release: Release, current: str | None) -> str:
    """The .env text for the release: tag (and image name) set, everything else kept."""
    text = current if current is not None else _seed(config)
    text = envfile.set_value(text, source.tag_key, release.tag_value)
    if source.image_key:
        text = envfile.set_value(text, source.image_key, release.repository)
    if uses_proxy(config, source):
        # So that the user's own `docker compose ...` in that directory includes the override.
        files = envfile.get_value(text, "COMPOSE_FILE") or ":".join(source.compose_files)
        if override.FILE_NAME not in files.split(":"):
            text = envfile.set_value(text, "COMPOSE_FILE", f"{files}:{override.FILE_NAME}")
    return text


def uses_proxy(config: Config, source: Source) -> bool:
    """The zero-downtime switch applies to a web service that publishes ports (or has host names)."""
    web = source.rendered["services"][source.service.name]
    return config.proxy.enabled and (bool(web.get("ports")) or bool(config.proxy.hosts))


def _seed(config: Config) -> str:
    if not config.env.seed:
        return ""
    return (config.root / config.env.seed).read_text(encoding="utf-8")


def write_env(target: Target, text: str, note: str) -> None:
    target.transport.run(envfile.write(target.env_path, text, note))


def restore_env(target: Target) -> None:
    """Put back the .env that was there before this deploy (or remove the one it created)."""
    if target.previous_env is None:
        target.transport.run(Command(("rm", "-f", "--", target.env_path)))
    else:
        write_env(target, target.previous_env, "the previous .env")


def running_containers(target: Target, service: str) -> list[dict[str, Any]]:
    """docker inspect of the service's containers."""
    t = target.transport
    name = str(target.web.rendered.get("name") or "")  # known after the proxy switch observed the project
    if name:
        ids = list(target.containers().running_of(service))
    else:
        ids = t.run(compose.ps_ids(target.project, service), show=False).stdout.split()
    if not ids:
        return []
    result = t.run(docker.inspect(*ids), show=False, check=False)
    parsed: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return parsed


def verify(config: Config, target: Target, *, service: str, release: Release, settle: bool = True) -> None:
    """The service's containers run the new image; with settle, they also stay up for verify.stable_seconds.

    After a health-gated switch there is nothing to wait for (settle=False): one check.
    """
    t = target.transport
    if t.dry_run:
        return
    want = t.run(docker.image_id(release.ref), show=False).stdout.strip()
    deadline = time.monotonic() + (config.verify.timeout if settle else 0)
    stable_for = config.verify.stable_seconds if settle else 0
    stable_since: float | None = None
    while True:
        problem = container_problem(running_containers(target, service), want, release.ref)
        now = time.monotonic()
        if problem:
            stable_since = None
            if now >= deadline or problem.final:
                raise HealthError(f"{t.name}: {problem.text}", detail=_last_logs(target, service))
        elif stable_since is None:
            stable_since = now
        if stable_since is not None and now - stable_since >= stable_for:
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class Problem:
    """Why the service is not (yet) running the release; final: waiting cannot fix it."""

    text: str
    final: bool = False


def container_problem(containers: list[dict[str, Any]], image_id: str, ref: str) -> Problem | None:
    """Why the service is not (yet) running the release, or None when it is."""
    if not containers:
        return Problem("the service has no container")
    for c in containers:
        state, name = c.get("State", {}), c.get("Name", "?").lstrip("/")
        if c.get("Image") != image_id:
            return Problem(f"the service runs image {c.get('Config', {}).get('Image')!r}, not {ref}", final=True)
        if state.get("Restarting") or c.get("RestartCount", 0):
            return Problem(f"container {name} is restarting")
        if not state.get("Running"):
            return Problem(f"container {name} exited with code {state.get('ExitCode')}", final=True)
    return None


def _last_logs(target: Target, service: str) -> str:
    cmd = Command((*target.project.base(), "logs", "--no-color", "--tail", "20", service))
    result = target.transport.run(cmd, show=False, check=False)
    return tail(result.stdout + result.stderr, 20)


def recreate(config: Config, target: Target, *, source: Source, release: Release) -> None:
    """The simple switch: `docker compose up -d SERVICE` (replaced by the proxy switch)."""
    target.transport.run(compose.up(target.project, source.service.name), stream=True)


def plan_servers(config: Config, targets: list[Target], source: Source, release: Release, plan: Plan) -> None:
    """Steps on the servers, each run on all servers at once: check and pull everywhere, then switch."""
    plan.add_each("check docker and compose", targets, check_server)
    plan.add_each("prepare the project directory", targets, partial(upload, config, source=source))
    if config.registry.has_credentials:
        plan.add_each(f"registry login {config.registry.url}", targets, partial(login_server, config))
    if config.registry.url:
        plan.add_each(f"pull {release.image}", targets, partial(pull, release=release))
    plan_switch(config, targets, source, release, plan)


def plan_switch(config: Config, targets: list[Target], source: Source, release: Release, plan: Plan) -> None:
    """Set the tag and switch every server to the release (image already on the servers)."""
    plan.add_each(
        f"set {source.tag_key}={release.version} in {config.env.file}",
        targets,
        partial(_set_env, config, source=source, release=release),
        restore_env,
    )
    web = source.service.name
    if uses_proxy(config, source):
        switch.plan_phase_one(config, targets, source, release, plan)
        # Once every server has switched, undoing would route users back to old containers
        # that phase two stops: from here a failure leaves the new release live.
        plan.point_of_no_return(
            f"{release.version} is live on every server",
            hint=f"old {web} containers not yet stopped get no traffic; the next deploy or rollback retires them",
        )
        switch.plan_phase_two(config, targets, source, plan)
        verify_step = partial(verify, config, service=web, release=release, settle=False)
    else:
        replace = partial(recreate, config, source=source, release=release)
        back = partial(_switch_back, config, source=source, release=release)
        plan.add_each(f"switch {web} to {release.version}", targets, replace, back)
        verify_step = partial(verify, config, service=web, release=release)
    plan.add_each(f"verify {web} runs {release.version}", targets, verify_step)


def _switch_back(config: Config, target: Target, *, source: Source, release: Release) -> None:
    # The .env goes back first so that compose brings the previous release up again.
    restore_env(target)
    recreate(config, target, source=source, release=release)


def _set_env(config: Config, target: Target, *, source: Source, release: Release) -> None:
    target.previous_env = None if target.transport.dry_run else read_env(target)
    text = new_env(config, source, release, target.previous_env)
    note = f".env with {source.tag_key}={release.version}"
    write_env(target, text, note)


@dataclass(frozen=True)
class DeployOptions:
    version: str = ""
    allow_dirty: bool = False
    dry_run: bool = False
    lock_wait: float = 0.0
    force: bool = False


def run(config: Config, out: Output, options: DeployOptions) -> Release:
    """The whole deploy: version from git, build and push locally, then the servers' plan."""
    if not config.servers:
        raise ConfigError("no servers configured", hint="add servers to tagship.toml (or set REMOTE_HOST)")
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    version, commit = release_mod.resolve_version(local, str(config.root), options.version, options.allow_dirty)
    build.check_local_tools(local)
    transports = connect_early(config, out, options.dry_run)  # connecting while the image builds
    try:
        return _deploy(config, out, options, local, transports, version, commit)
    finally:
        for transport in transports:
            transport.close()  # normally already closed with the session


def _deploy(
    config: Config,
    out: Output,
    options: DeployOptions,
    local: LocalTransport,
    transports: list[Transport],
    version: str,
    commit: str,
) -> Release:
    tree = release_mod.export_tree(local, str(config.root), commit)
    try:
        source = build.read_source(config, local, tree)
        repository = release_mod.repository(config, source.raw_image, source.local_env)
        deployer = release_mod.deployer_name(local, str(config.root))
        release = Release(version, commit, repository, deployer, pinned=config.image.pin_digest)
        _check_registry_needed(config, release)
        out.info(f"deploying {release.image} (commit {commit[:12]}) to {len(config.servers)} server(s)")
        targets = targets_for(config, out, source.compose_files, transports=transports)
        session = Session(targets, out, "deploy", version, release.deployer, lock_wait=options.lock_wait)
        plan = Plan(out=out)
        builder = LocalTransport(server=local.server, out=out, dry_run=options.dry_run)
        if config.registry.url:
            plan.add(f"registry login {config.registry.url}", partial(build.login_local, config, builder))
            plan.add(
                f"check {release.image} in the registry", partial(build.check_tag, builder, release, options.force)
            )
        plan.add(f"build {release.image}", partial(build.build_image, config, builder, source, release))
        if config.registry.url:
            plan.add(f"push {release.image}", partial(build.push_image, config, builder, release))
        session.plan_open(plan)
        plan_servers(config, targets, source, release, plan)
        if not options.dry_run:
            plan.add_each(
                f"prune images beyond the last {config.releases.keep}",
                targets,
                partial(prune_quietly, config, source=source, deploying=version),
            )
        with recorded(session, release, partial(release_env, source, release)):
            apply(plan, out)
    finally:
        release_mod.remove_tree(tree)
    return release


def release_env(source: Source, release: Release) -> dict[str, str]:
    """The .env values a release sets (restored as they were by a rollback)."""
    values = {source.tag_key: release.tag_value}
    if source.image_key:
        values[source.image_key] = release.repository
    return values


def prune_quietly(config: Config, target: Target, *, source: Source, deploying: str) -> None:
    """Prune old images after a good deploy; a failure here is only a warning."""
    from tagship.commands import releases  # releases imports this module

    try:
        releases.prune_target(config, target, source, deploying)
    except TagshipError as exc:
        target.transport.out.warn(f"{target.name}: prune failed: {exc}")


def _check_registry_needed(config: Config, release: Release) -> None:
    remote = [s.raw for s in config.servers if not s.is_local]
    if remote and not config.registry.url and "/" not in release.repository.split(":")[0]:
        raise ConfigError(
            f"no registry configured, and {', '.join(remote)} cannot get {release.image} without one",
            hint="set registry.url in tagship.toml (or REGISTRY_URL)",
        )
