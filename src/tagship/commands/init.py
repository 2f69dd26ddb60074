"""`tagship init`: write a working tagship.toml from the project's compose file and .env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tagship.builders import compose, envfile
from tagship.config import CONFIG_FILE, DEFAULT_TAG_KEY
from tagship.errors import ConfigError
from tagship.messages import t
from tagship.output import Output
from tagship.release import image
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, Transport


def init(root: Path, out: Output, *, force: bool = False) -> Path:
    """Write tagship.toml; refuse to overwrite one unless forced."""
    if not root.is_dir():
        raise ConfigError(t("config.no_project_directory", root=root))
    target = root / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(t("init.already_exists", target=target), hint=t("init.pass_force_overwrite"))
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    target.write_text(render(root, dict(os.environ), local), encoding="utf-8")  # what config.load reads
    out.result(t("init.wrote_review_servers_registry", target=target))
    return target


def render(root: Path, environ: dict[str, str], local: Transport | None = None) -> str:
    """The tagship.toml text for the project under root (local: this machine, where Compose merges
    the project's files; a quiet one by default)."""
    local = local or LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=Output(quiet=True))
    env_text = _read_env(root / ".env")
    files = image.compose_files(root, (), env_text, environ, where=str(root))
    # The project's own .env is the one beside its first compose file (deploy/.env for deploy/compose.yaml).
    project_env = root / image.project_subdir(files) / ".env"
    env_text = _read_env(project_env) if project_env.exists() else env_text
    services = _services(root, files, local)
    service = _built_service(services)
    raw_image = str(services.get(service, {}).get("image", ""))
    found = compose.image_vars(raw_image)
    image_name = environ.get("IMAGE_NAME") or (envfile.get_value(env_text, found.name_key) if found.name_key else "")
    servers = environ.get("REMOTE_HOST", "")
    lines = [
        "# tagship configuration; every key is documented in README.md (Configuration).",
        f"servers = [{_q(servers)}]" if servers else '# servers = ["deploy@web1.example.com", "web2"]',
        "",
        "[app]",
        f"service = {_q(service)}",
        f"path = {_q(environ.get('REMOTE_PROJECT_PATH', '/srv/' + root.name))}  # project directory on servers",
        f"compose_files = [{', '.join(_q(name) for name in files)}]",
        f"# upload = [{', '.join(_q(name) for name in files)}]  # copy them from the tagged tree on every deploy",
        "",
        "[env]",
        f"tag_key = {_q(found.tag_key or DEFAULT_TAG_KEY)}"
        if not found.fixed
        else "# no tag_key: the image's tag is fixed; tagship sets the release's image in compose.tagship.yaml",
    ]
    if found.name_key:
        lines.append(f"image_key = {_q(found.name_key)}")
    lines += ["", "[image]", f"name = {_q(image_name or found.literal_repo.rsplit('/', 1)[-1] or root.name)}"]
    lines += [
        'platform = "linux/amd64"',
        '# transport = "ssh"  # no registry: images go over each server\'s SSH connection (docs/shipping.md)',
        "",
        "[registry]",
    ]
    lines.append(f"url = {_q(environ.get('REGISTRY_URL', ''))}  # e.g. registry.example.com:5000")
    lines.append(f"namespace = {_q(environ.get('REGISTRY_NAMESPACE', ''))}")
    lines.append('# username = "deploy"   # the password is read from $TAGSHIP_REGISTRY_PASSWORD')
    return "\n".join(lines) + "\n"


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _q(value: str) -> str:
    """value as a TOML basic string: whatever the environment or .env held, the file stays valid TOML
    (a newline in REMOTE_HOST is then refused by name when the config is loaded, not by a TOML error)."""
    if any("\ud800" <= char <= "\udfff" for char in value):  # undecodable bytes of an environment variable
        raise ConfigError(t("init.cannot_write_into_not", value=value, CONFIG_FILE=CONFIG_FILE))
    return '"' + "".join(_TOML_ESCAPES.get(char) or _toml_char(char) for char in value) + '"'


def _toml_char(char: str) -> str:
    # TOML allows no control character but tab raw in a basic string: the others as \uXXXX.
    return f"\\u{ord(char):04x}" if char < " " or char == "\x7f" else char


def _read_env(path: Path) -> str:
    # A secret of other bytes than UTF-8 in .env is none of init's business; _q refuses such a value
    # only if init would write it.
    return path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""


def _services(root: Path, files: tuple[str, ...], local: Transport) -> dict[str, dict[str, Any]]:
    """The services as Compose merges the files (include:, extends:, overrides), nothing interpolated."""
    for name in files:  # first, what tagship can name clearly: not UTF-8, not YAML, nested too deeply
        text = image.read_text(root / name)
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(t("init.not_valid_yaml", value=root / name, exc=exc)) from exc
        except RecursionError:  # PyYAML builds nested sequences and mappings recursively
            raise ConfigError(t("init.nested_too_deeply", path=root / name)) from None
    project = image.compose_project(root, files)
    result = local.run(compose.config_json(project, interpolate=False), show=False, check=False)
    if not result.ok:
        raise ConfigError(t("init.compose_rejects", files=", ".join(files)), detail=result.stderr.strip())
    services = compose.parse_config(result.stdout).get("services") or {}
    if not services:
        raise ConfigError(t("init.no_services", files=", ".join(files)))
    return {str(k): v for k, v in services.items() if isinstance(v, dict)}


def _built_service(services: dict[str, dict[str, Any]]) -> str:
    built = [name for name, svc in services.items() if "build" in svc]
    if len(built) == 1:
        return built[0]
    return "app" if "app" in services else (built or sorted(services))[0]
