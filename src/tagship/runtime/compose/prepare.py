"""Before anything switches: Docker and Compose answer, files are in place, the image is on the server;
then the .env the release needs (and its undo)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from tagship import messages
from tagship.builders import docker, envfile, override
from tagship.builders.command import Command
from tagship.builders.doctor import first_line
from tagship.builders.untrusted import printable
from tagship.config import Config
from tagship.errors import CommandFailed, ConfigError, MissingToolError, RegistryError, TagshipError
from tagship.release.image import REVISION_LABEL
from tagship.release.shipping import LocalRegistry
from tagship.release.version import Release
from tagship.remote.transport import Transport, tail
from tagship.runtime.compose.target import App, Target

NOT_FOUND = 127
DISK_FULL = "no space left on device"  # strerror(ENOSPC), as docker pull reports it


def check_server(target: Target) -> None:
    """Docker and Compose v2 must answer on the server before anything changes."""
    t = target.transport
    result = t.run(docker.version(), show=False, check=False)
    if result.code == NOT_FOUND:
        raise MissingToolError(
            messages.t("prepare.docker_not_installed", name=t.name),
            hint=messages.t("prepare.install_docker_engine_there"),
        )
    if not result.ok:
        raise MissingToolError(
            messages.t("prepare.docker_engine_does_not", name=t.name),
            hint=messages.t("prepare.start_systemctl_start_docker"),
            detail=tail(result.stderr),
        )
    if not t.run(docker.compose_version(), show=False, check=False).ok:
        raise compose_missing(t)


def compose_missing(transport: Transport) -> MissingToolError:
    """Compose v2 is missing: say so, naming a Compose v1 the server has (easily taken for v2)."""
    v1 = transport.run(docker.compose_v1_version(), show=False, check=False)
    found = printable(first_line(v1.stdout)) if v1.ok else ""
    if found:
        what = messages.t("drills.compose_v1_only", server=transport.name, version=found)
        return MissingToolError(what, hint=messages.t("drills.install_compose_v2"))
    return MissingToolError(
        messages.t("prepare.docker_compose_v_docker", name=transport.name),
        hint=messages.t("prepare.install_docker_compose_plugin"),
    )


def login_server(config: Config, target: Target) -> None:
    """Log in to the registry in a client config directory of this run's own (see forget_login)."""
    reg = config.registry
    if not target.docker_config:
        made = target.transport.run(docker.login_dir(), show=False)
        target.project = replace(target.project, docker_config=made.stdout.strip())
    login = docker.login(reg.url, reg.username, reg.password, config_dir=target.docker_config)
    result = target.transport.run(login, check=False)
    if not result.ok:
        message, hint = registry_trouble(config, target.name, result.stderr)
        raise RegistryError(message, hint=hint, detail=tail(result.stderr))


def registry_trouble(config: Config, server: str, stderr: str) -> tuple[str, str]:
    reg = config.registry
    return docker.registry_trouble(stderr, url=reg.url, server=server, password_env=reg.password_env)


def pull(config: Config, target: Target, *, release: Release) -> None:
    """The server pulls this run's image by its digest and names it with the release's tag (what
    compose runs); a pinned release's reference holds the digest already."""
    try:
        target.transport.run(docker.pull(release.exact, target.docker_config), stream=True)
    except CommandFailed as exc:
        if DISK_FULL in exc.stderr_tail:  # not the registry's fault: its advice would mislead
            raise TagshipError(
                messages.t("drills.pull_disk_full", server=target.name, image=release.ref),
                hint=messages.t("drills.free_disk", server=target.name),
                detail=exc.stderr_tail,
            ) from exc
        if docker.registry_failure(exc.stderr_tail) not in ("", docker.REFUSED):
            # Without a login the pull is the first to meet the registry (and with one, a route
            # or certificate that changed since); a refusal here is about the image: said below.
            message, hint = registry_trouble(config, target.name, exc.stderr_tail)
            raise RegistryError(message, hint=hint, detail=exc.stderr_tail) from exc
        raise RegistryError(
            messages.t("prepare.could_not_pull", name=target.name, ref=release.ref),
            hint=messages.t("prepare.check_server_s_route"),
            detail=exc.stderr_tail,
        ) from exc

    if release.exact != release.ref:
        target.transport.run(docker.tag(release.exact, release.ref), show=False)


def forget_login(target: Target) -> None:
    """Remove the run's docker client config directory (and the registry credential in it); best effort."""
    if target.docker_config:
        target.transport.run(docker.remove_login_dir(target.docker_config), show=False, check=False)
        target.project = replace(target.project, docker_config="")


def receive_over_ssh(registry: LocalRegistry, target: Target, *, release: Release, force: bool) -> None:
    """image.transport = "ssh": the server's engine pulls the release's image from this machine's
    registry through a tunnel on its ssh connection (only the layers it lacks travel).

    Tags are immutable here too, the server being where they live: an image of that name built from
    the same commit stays (nothing travels), one with other content is refused unless --force.
    """
    t = target.transport
    found = t.run(docker.label(release.image, REVISION_LABEL), show=False, check=False)
    if found.ok and found.stdout.strip() == release.commit:
        t.out.info(
            messages.t(
                "prepare.has_commit_already_nothing", name=t.name, image=release.image, commit=release.commit[:12]
            )
        )
        return
    if found.ok and not force:
        raise RegistryError(
            messages.t(
                "prepare.has_already_other_content",
                name=t.name,
                image=release.image,
                value=found.stdout.strip()[:12] or "?",
            ),
            hint=messages.t("prepare.tags_are_immutable_tag"),
        )
    registry.send(t, release.image)


@dataclass
class ProxyImage:
    """The proxy image (proxy.image) on the servers: what check_proxy_image learned, for the steps
    that ship it through the user's registry (or over ssh) to the servers that cannot pull it."""

    image: str
    mirror: str  # where it travels through the user's registry ("" without one, or over ssh)
    missing: dict[str, str] = field(default_factory=dict)  # server -> the last lines of its failed pull
    key: str = "proxy.image"  # the setting that names it (proxy.listener_image: the port listeners')
    over_ssh: LocalRegistry | None = None  # image.transport = "ssh": the registry on this machine

    @classmethod
    def of(cls, config: Config, key: str = "proxy.image", over_ssh: LocalRegistry | None = None) -> ProxyImage:
        reg = config.registry
        image = config.proxy.listener_image if key == "proxy.listener_image" else config.proxy.image
        mirror = docker.mirror_ref(reg.url, reg.namespace, image) if reg.url and over_ssh is None else ""
        return cls(image, mirror, key=key, over_ssh=over_ssh)

    @property
    def way(self) -> str:
        """How it reaches a server that cannot pull it."""
        return (
            messages.t("prepare.over_ssh")
            if self.over_ssh is not None
            else messages.t("prepare.through_mirror", mirror=self.mirror)
        )

    @property
    def what(self) -> str:
        return (
            messages.t("prepare.listener_image")
            if self.key == "proxy.listener_image"
            else messages.t("prepare.proxy_image")
        )

    @property
    def step(self) -> str:
        """The title of the step that checks every server has it."""
        if self.key == "proxy.listener_image":
            return messages.t("prepare.listener_image_step", image=self.image)
        return messages.t("prepare.proxy_image_step", image=self.image)

    def fix(self, servers: str) -> str:
        return messages.t("prepare.proxy_image_fix", key=self.key, image=self.image, servers=servers)


def check_proxy_image(proxy_image: ProxyImage, target: Target) -> None:
    """The proxy image is on the server, or the server pulls it; else it is noted for shipping through
    the registry (refused at once when there is none)."""
    t, image = target.transport, proxy_image.image
    if t.run(docker.image_id(image), show=False, check=False).ok:
        return
    result = t.run(docker.pull(image), stream=True, check=False)
    if result.ok:
        return
    if not proxy_image.mirror and proxy_image.over_ssh is None:
        raise RegistryError(
            messages.t("prepare.cannot_pull_no_registry", name=t.name, what=proxy_image.what, image=image),
            hint=proxy_image.fix(t.name),
            detail=tail(result.stderr or result.stdout),
        )
    t.out.info(messages.t("prepare.cannot_pull_gets", name=t.name, image=image, way=proxy_image.way))
    proxy_image.missing[t.name] = tail(result.stderr or result.stdout)


def ship_proxy_image(proxy_image: ProxyImage, local: Transport) -> None:
    """On this machine, for the servers that cannot pull the proxy image: get it (here already, or
    pulled), tag it into the registry and push it there (the registry login step already ran)."""
    if not proxy_image.missing:
        return
    image, mirror = proxy_image.image, proxy_image.mirror
    servers = ", ".join(sorted(proxy_image.missing))
    if not local.run(docker.image_id(image), show=False, check=False).ok:
        result = local.run(docker.pull(image), stream=True, check=False)
        if not result.ok:
            why = [f"{name}: {text}" for name, text in sorted(proxy_image.missing.items())]
            raise RegistryError(
                messages.t("prepare.cannot_pull_neither_can", servers=servers, what=proxy_image.what, image=image),
                hint=proxy_image.fix(servers),
                detail="\n".join(
                    [*why, messages.t("prepare.this_machine", error=tail(result.stderr or result.stdout))]
                ),
            )
    if proxy_image.over_ssh is not None:
        proxy_image.over_ssh.push(local, image)
        return
    local.run(docker.tag(image, mirror))
    try:
        local.run(docker.push(mirror), stream=True)
    except CommandFailed as exc:
        raise RegistryError(
            messages.t("prepare.push_failed", mirror=mirror, what=proxy_image.what, image=image, servers=servers),
            hint=messages.t("prepare.check_that_you_are", fix=proxy_image.fix(servers)),
            detail=exc.stderr_tail,
        ) from exc


def receive_proxy_image(proxy_image: ProxyImage, target: Target) -> None:
    """A server that could not pull the proxy image pulls it from the registry, under the name
    proxy.image (so `docker run` and the gate find it)."""
    if target.name not in proxy_image.missing:
        return
    if proxy_image.over_ssh is not None:
        proxy_image.over_ssh.send(target.transport, proxy_image.image)
        return
    t, image, mirror = target.transport, proxy_image.image, proxy_image.mirror
    try:
        t.run(docker.pull(mirror, target.docker_config), stream=True)
    except CommandFailed as exc:
        raise RegistryError(
            messages.t(
                "prepare.could_not_pull_shipped", name=t.name, mirror=mirror, what=proxy_image.what, image=image
            ),
            hint=proxy_image.fix(t.name),
            detail=exc.stderr_tail,
        ) from exc
    t.run(docker.tag(mirror, image))


def upload(config: Config, target: Target, *, tree: Path, subdir: str = "") -> None:
    """Create the project directory and copy the configured files from the tagged tree; a file's
    place on the server is its place relative to the compose project's directory (subdir).

    Each file's previous bytes are read first and kept for restore_uploads: a deploy undone before
    the point of no return must not leave the new release's compose file beside the old .env.
    """
    t = target.transport
    target.previous_uploads = {}
    t.run(Command(("mkdir", "-p", target.project.directory)))
    for name in config.app.upload:
        path = upload_file(tree, name)
        data = path.read_bytes()
        dest = str(PurePosixPath(target.project.directory) / upload_place(name, subdir))
        before = read_file(target, dest)
        if before == data:
            continue  # the server has these bytes already: nothing to write, nothing to undo
        if PurePosixPath(dest).parent != PurePosixPath(target.project.directory):
            t.run(Command(("mkdir", "-p", str(PurePosixPath(dest).parent))))
        # Kept before the write starts: an undo must also cover a write cut short.
        target.previous_uploads[dest] = before
        t.put(dest, data, f"{name} from the tagged tree ({len(data)} bytes)", mode=stat.S_IMODE(path.stat().st_mode))


def read_file(target: Target, path: str) -> bytes | None:
    """A file's bytes on the server, or None if it has none."""
    result = target.transport.run(envfile.read(path), show=False, check=False)
    if result.code == envfile.ABSENT:
        return None
    if not result.ok:
        raise CommandFailed(target.name, messages.t("prepare.read_file", path=path), result.code, tail(result.stderr))
    return result.raw if result.raw else result.stdout.encode("utf-8", "surrogateescape")


def restore_uploads(target: Target) -> None:
    """Put back the files upload replaced, byte for byte (mode and owner kept), and remove the ones it
    created, newest first. Once done it forgets them, so a second call changes nothing."""
    t = target.transport
    for dest, before in reversed(list(target.previous_uploads.items())):
        if before is None:
            t.run(Command(("rm", "-f", "--", dest)))
        else:
            t.put(dest, before, f"the previous {PurePosixPath(dest).name} ({len(before)} bytes)")
    target.previous_uploads = {}


def upload_file(tree: Path, name: str) -> Path:
    """The file an app.upload entry names in the tagged tree (config.py refused absolute paths and ..);
    one that is missing, or a link out of the tree, is a config error before anything runs."""
    path = tree / name
    if not path.is_file() or not path.resolve().is_relative_to(tree.resolve()):
        raise ConfigError(
            messages.t("prepare.app_upload_not_file", name=name),
            hint=messages.t("prepare.list_files_committed_tag"),
        )
    return path


def upload_place(name: str, subdir: str) -> str:
    """Where an uploaded file goes, relative to the project directory on the server."""
    if not subdir:
        return name
    if not PurePosixPath(name).is_relative_to(subdir):
        raise ConfigError(
            messages.t("prepare.app_upload_outside_compose", name=name, subdir=subdir),
            hint=messages.t("prepare.servers_app_path_upload", subdir=subdir),
        )
    return str(PurePosixPath(name).relative_to(subdir))


def read_env(target: Target) -> str | None:
    """The server's current .env text, or None if it has none."""
    result = target.transport.run(envfile.read(target.env_path), show=False, check=False)
    if result.code == envfile.ABSENT:
        return None
    if not result.ok:
        raise CommandFailed(
            target.name, messages.t("prepare.read", env_path=target.env_path), result.code, tail(result.stderr)
        )
    return env_text(result.raw) if result.raw else result.stdout


def env_text(raw: bytes) -> str:
    """A .env's bytes as text for editing: a byte that is not UTF-8 survives (surrogateescape), so
    writing it back (env_bytes) gives the same bytes, also in the undo of a failed deploy."""
    return raw.decode("utf-8", "surrogateescape")


def env_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def new_env(app: App, release: Release, current: str | None, seed: Callable[[], str]) -> str:
    """The .env text for the release: its values set, everything else kept (seed: a new server's .env)."""
    text = current if current is not None else seed()
    for key, value in app.env_for(release).items():
        text = envfile.set_value(text, key, value)
    for key, encoded in app.settings:
        text = envfile.set_encoded(text, key, encoded)
    if app.proxied or app.image_in_override:
        # So that the user's own `docker compose ...` in that directory includes the override.
        files = envfile.get_value(text, "COMPOSE_FILE") or ":".join(app.compose_files)
        if override.FILE_NAME not in files.split(":"):
            text = envfile.set_value(text, "COMPOSE_FILE", f"{files}:{override.FILE_NAME}")
    return text


def seed_text(config: Config) -> str:
    """The local file that seeds a server's .env when it has none (env.seed), or nothing.

    Read only for a server that has no .env, so a CI runner without the (often git-ignored) file
    deploys to servers that have theirs; where one has none, a missing file is a config error
    naming env.seed before that server's .env is written (it was a FileNotFoundError)."""
    if not config.env.seed:
        return ""
    path = config.root / config.env.seed
    try:
        return env_text(path.read_bytes())
    except OSError as exc:
        raise ConfigError(messages.t("prepare.seed_unreadable", path=path, strerror=exc.strerror or exc)) from None


def set_env(target: Target, *, app: App, release: Release, seed: Callable[[], str]) -> None:
    """Write the release's values into the server's .env (atomically; the previous text is kept for the undo)."""
    target.previous_env = read_env(target)
    target.env_read = True
    text = new_env(app, release, target.previous_env, seed)
    if app.image_in_override and text == target.previous_env:
        return  # the override sets the image; the .env names it in COMPOSE_FILE already
    values = ", ".join(f"{k}={v}" for k, v in app.env_for(release).items())
    more = f" and {', '.join(key for key, _ in app.settings)}" if app.settings else ""
    write_env(target, text, f".env with {values or 'COMPOSE_FILE'}{more}", private=bool(app.settings))


def write_env(target: Target, text: str, note: str, *, private: bool = False) -> None:
    target.transport.put(target.env_path, env_bytes(text), note, private=private)


def restore_env(target: Target) -> None:
    """Put back the .env that was there before (or remove the one this run created).

    Nothing to do when the previous .env was never read: set_env was stopped before it changed anything.
    """
    if not target.env_read:
        return
    if target.previous_env is None:
        target.transport.run(Command(("rm", "-f", "--", target.env_path)))
    else:
        write_env(target, target.previous_env, "the previous .env")
