"""The deploying side: read the tagged tree's compose project, build the image, push it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tagship.builders import compose, docker, envfile
from tagship.config import DEFAULT_TAG_KEY, Config
from tagship.errors import CommandFailed, ConfigError, MissingToolError, RegistryError
from tagship.messages import t
from tagship.release.version import Release
from tagship.remote.transport import Transport


@dataclass(frozen=True)
class Source:
    """The tagged tree's compose project as tagship needs it."""

    tree: Path
    compose_files: tuple[str, ...]  # relative to the compose project's directory (subdir of the tree)
    service: compose.ServiceSpec
    tag_key: str  # "" when the compose file spells out a fixed tag: the override sets the image
    image_key: str
    raw_image: str
    local_env: str
    rendered: dict[str, Any]
    declared_name: str = ""  # the compose file's own top-level name:, if it sets one
    subdir: str = ""  # the compose project's directory in the tree ("" for its root): the first file's

    @property
    def project_dir(self) -> Path:
        return self.tree / self.subdir


def check_local_tools(local: Transport) -> None:
    """Docker engine and Compose v2 on the deploying machine, with how to get them."""
    if local.run(docker.version(), show=False, check=False).code != 0:
        raise MissingToolError(
            t("image.cannot_reach_docker_engine"),
            hint=t("image.install_docker_start_docker"),
        )
    if local.run(docker.compose_version(), show=False, check=False).code != 0:
        raise MissingToolError(
            t("image.docker_compose_v_docker"),
            hint=t("image.install_docker_compose_plugin"),
        )


def read_source(config: Config, local: Transport, tree: Path) -> Source:
    """Find the compose file, the service and the .env keys in the tagged tree."""
    # COMPOSE_FILE may come from the .env at the repository's root; the project's own .env is the
    # one in the first file's directory, as Compose reads it (deploy/compose.yaml: deploy/.env).
    root_env = read_text(config.root / config.env.file, "env.file")
    files = compose_files(tree, config.app.compose_files, root_env, os.environ)
    subdir = project_subdir(files)
    env_path = tree / subdir / config.env.file
    working_env = config.root / subdir / config.env.file
    copied = not env_path.exists() and working_env.exists()
    if copied:
        # .env is usually not committed; compose needs it to interpolate the tagged file. It leaves
        # the tree again before the build (below): with `COPY . .` its secrets would be in the image.
        shutil.copyfile(working_env, env_path)
    try:
        # Read where the user keeps it: an error names their file, not the temporary tree's copy.
        local_env = read_text(working_env if copied else env_path, "env.file")
        return _read_rendered(config, local, tree, files, subdir, local_env)
    finally:
        if copied:
            env_path.unlink(missing_ok=True)


def _read_rendered(
    config: Config, local: Transport, tree: Path, files: tuple[str, ...], subdir: str, local_env: str
) -> Source:
    project = compose_project(tree, files)
    relative = project.files
    result = local.run(compose.config_json(project), show=False, check=False)
    if not result.ok:
        raise ConfigError(t("image.compose_rejects_tagged", files=files[0]), detail=result.stderr.strip())
    rendered = compose.parse_config(result.stdout)
    name = compose.pick_service(rendered, config.app.service)
    raw_image = _raw_image(_uninterpolated(local, project, files), name)
    tag_key, image_key = _env_keys(config, raw_image, name, files[0])
    spec = compose.service_spec(rendered, name)
    _check_inside(tree, spec, name)
    declares = compose.declares_name([read_text(tree / f) for f in files])
    declared = str(rendered.get("name") or "") if declares else ""
    return Source(tree, relative, spec, tag_key, image_key, raw_image, local_env, rendered, declared, subdir)


def compose_project(root: Path, files: tuple[str, ...]) -> compose.Project:
    """The compose project of these files (paths relative to root): its directory is the first file's."""
    subdir = project_subdir(files)
    return compose.Project(str(root / subdir), tuple(str(PurePosixPath(f).relative_to(subdir or ".")) for f in files))


def project_subdir(files: tuple[str, ...]) -> str:
    """The compose project's directory (the first file's), relative to the repository; every file must
    be in it or below it, since on the servers the project directory is app.path."""
    subdir = str(PurePosixPath(files[0]).parent)
    subdir = "" if subdir == "." else subdir
    outside = [f for f in files if subdir and not PurePosixPath(f).is_relative_to(subdir)]
    if outside or any(".." in PurePosixPath(f).parts for f in files):
        raise ConfigError(
            t("image.compose_files_every_file", files=", ".join(files), value=subdir or "the repository root"),
            hint=t("image.servers_compose_project_directory"),
        )
    return subdir


def _check_inside(tree: Path, spec: compose.ServiceSpec, service: str) -> None:
    """The build context must be inside the tagged tree: never a directory of the deploying machine."""
    if spec.build is None or "://" in spec.build.context or spec.build.context.startswith("git@"):
        return
    context = Path(spec.build.context)
    if not context.resolve().is_relative_to(tree.resolve()):
        raise ConfigError(
            t("image.service_build_context_outside", service=service, context=spec.build.context),
            hint=t("image.image_built_tagged_commit"),
        )


def project_name(source: Source, server_dir: str) -> str:
    """The compose project name the server will use: COMPOSE_PROJECT_NAME, the file's name:, else the
    directory's name (never the temporary tree's, where the local render ran)."""
    from_env = envfile.get_value(source.local_env, "COMPOSE_PROJECT_NAME") or ""
    return compose.normalized_name(from_env or source.declared_name or PurePosixPath(server_dir).name)


def compose_files(
    root: Path, configured: tuple[str, ...], env_text: str, environ: Mapping[str, str], where: str = ""
) -> tuple[str, ...]:
    """The project's compose files as Compose picks them: app.compose_files (configured), else
    COMPOSE_FILE (the environment, then .env), else the one default file in the directory."""
    where = where or t("image.tagged_tree")
    files = configured or compose.files_named(env_text, environ)
    if files:
        missing = [name for name in files if not (root / name).is_file()]
        if missing:
            raise ConfigError(t("image.compose_file_not", missing=", ".join(missing), where=where))
        return files
    found = compose.find_file(os.listdir(root))
    if found is None:
        raise ConfigError(
            t("image.no_compose_file_looked", where=where, CANDIDATE_FILES=", ".join(compose.CANDIDATE_FILES)),
            hint=t("image.name_your_files_compose"),
        )
    return (found,)


def _uninterpolated(local: Transport, project: compose.Project, files: tuple[str, ...]) -> dict[str, Any]:
    """The project as Compose merges it (include:, extends:, several files), its ${VARIABLES} kept:
    where the tag variable is found."""
    result = local.run(compose.config_json(project, interpolate=False), show=False, check=False)
    if not result.ok:
        raise ConfigError(t("image.compose_rejects_tagged", files=files[0]), detail=result.stderr.strip())
    return compose.parse_config(result.stdout)


def read_text(path: Path, key: str = "") -> str:
    """A local text file (a compose file, .env) as Compose reads it: UTF-8; "" if it is not there.
    key: the config key that names it, said with the error."""
    if not path.is_file():
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = t("image.not_utf8", path=path, byte=f"0x{exc.object[exc.start]:02x}", at=exc.start)
        raise ConfigError(f"{key}: {problem}" if key else problem) from None


def _raw_image(data: dict[str, Any], service: str) -> str:
    services = data.get("services", {})
    svc = services.get(service, {}) if isinstance(services, dict) else {}
    return str(svc.get("image", "")) if isinstance(svc, dict) else ""


def _env_keys(config: Config, raw_image: str, service: str, file: str) -> tuple[str, str]:
    """(tag key, image name key) of .env; ("", "") for a fixed tag, which tagship's override replaces."""
    found = compose.image_vars(raw_image)
    if found.fixed:
        if config.env.tag_key:
            raise ConfigError(
                t(
                    "image.service_has_fixed_image",
                    file=file,
                    service=service,
                    raw_image=raw_image,
                    tag_key=config.env.tag_key,
                ),
                hint=t("image.remove_env_tag_key", literal_repo=found.literal_repo, tag_key=config.env.tag_key),
            )
        return "", ""
    tag_key = config.env.tag_key or found.tag_key or DEFAULT_TAG_KEY
    if not found.tag_key:
        raise ConfigError(
            t("image.service_has_image_which", file=file, service=service, value=raw_image or "(none)"),
            hint=t("image.write_image_registry_name", tag_key=tag_key),
        )
    if found.tag_key != tag_key:
        raise ConfigError(
            t("image.service_takes_tag_but", file=file, service=service, tag_key=found.tag_key, tag_key2=tag_key),
            hint=t("image.make_them_same_server"),
        )
    return tag_key, config.env.image_key or found.name_key


REVISION_LABEL = "org.opencontainers.image.revision"


def check_tag(local: Transport, release: Release, force: bool) -> None:
    """Tags are immutable: the same content (or the same commit) is a no-op, other content is refused."""
    result = local.run(docker.manifest_inspect(release.image), show=False, check=False)
    if not result.ok:
        return  # not in the registry yet (or not readable: the push will say why)
    manifest_digest, config_digest = docker.manifest_digests(result.stdout)
    local_id = local.run(docker.image_id(release.image), show=False, check=False).stdout.strip()
    if not (local_id and local_id == config_digest):
        local.run(docker.pull(release.image), stream=True)  # to read which commit the registry's image is
    revision = local.run(docker.label(release.image, REVISION_LABEL), show=False, check=False).stdout.strip()
    if revision != release.commit:
        if not force:
            raise RegistryError(
                t("image.already_registry_other_content", image=release.image, value=revision[:12] or "?"),
                hint=t("image.tags_are_immutable_tag"),
            )
        return  # --force: build and push over it
    local.out.info(t("image.already_registry_commit_no", image=release.image, commit=release.commit[:12]))
    release.in_registry = True
    release.digest = manifest_digest


def build_image(config: Config, local: Transport, source: Source, release: Release) -> None:
    """Build the image from the tagged tree, labelled with version and commit."""
    if release.in_registry:
        return
    spec = source.service.build
    args = dict(spec.args) if spec else {}
    args.update(dict(config.image.build_args))
    labels = (
        ("org.opencontainers.image.version", release.version),
        (REVISION_LABEL, release.commit),
    )
    if spec is not None and not config.image.dockerfile:
        context = str(source.project_dir / spec.context) if not os.path.isabs(spec.context) else spec.context
        dockerfile = str(Path(context) / spec.dockerfile) if spec.dockerfile else ""
        target = config.image.target or spec.target
    elif config.image.dockerfile:
        context = str(source.tree / config.image.context)
        dockerfile = str(source.tree / config.image.dockerfile)
        target = config.image.target
    else:
        raise ConfigError(
            t("image.service_has_no_build", name=source.service.name),
            hint=t("image.add_build_compose_yaml"),
        )
    cmd = docker.build(
        release.image,
        context,
        dockerfile=dockerfile,
        platform=config.image.platform,
        target=target,
        args=tuple(sorted(args.items())),
        labels=labels,
    )
    local.run(cmd, stream=True)


def login_local(config: Config, local: Transport) -> None:
    """Log the local client in when credentials are configured (else its own login is used)."""
    reg = config.registry
    if not reg.has_credentials:
        return
    result = local.run(docker.login(reg.url, reg.username, reg.password), check=False)
    if not result.ok:
        raise RegistryError(
            t("image.registry_refused_login", url=reg.url, username=reg.username),
            hint=t("image.check_user_password", password_env=reg.password_env),
            detail=result.stderr.strip(),
        )


def push_image(config: Config, local: Transport, release: Release) -> None:
    """Push the image and note its registry digest on the release."""
    if release.in_registry:
        return
    try:
        result = local.run(docker.push(release.image), stream=True)
    except CommandFailed as exc:
        raise RegistryError(
            t("image.push_failed", image=release.image),
            hint=t("image.check_registry_address_that", password_env=config.registry.password_env),
            detail=exc.stderr_tail,
        ) from exc
    release.digest = docker.pushed_digest(result.stdout) or release.digest
