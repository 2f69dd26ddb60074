"""tagship.toml, environment overrides and the original script's variables, validated once."""

from __future__ import annotations

import copy
import os
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from tagship.builders import docker, history
from tagship.builders.report import EVENTS, FORMATS
from tagship.errors import ConfigError
from tagship.remote import server as server_mod
from tagship.remote.server import Server

CONFIG_FILE = "tagship.toml"
DEFAULT_SOURCE = "default"  # Config.source_of for a value no file or variable set
ENVIRONMENT_VAR = "TAGSHIP_ENVIRONMENT"
SECRET = {"secret": True}  # field metadata: `tagship config` shows the value as ***
DEFAULT_TAG_KEY = "APP_IMAGE_TAG"

# Values that reach argv, remote paths, compose files or Caddy's config are refused unless they have
# the shape of what they name: a name with a newline or a leading "-" is a mistake or an attack.
MAX_TEXT = 1000  # names, paths, addresses
MAX_LINES = 10_000  # commands and build arguments
MAX_NUMBER = 1_000_000  # seconds (11 days), counts, ports: beyond it a typo, and time.sleep overflows
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LINES_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGISTRY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?(?:/[a-z0-9._/-]+)?")
_REFERENCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")  # an image reference (proxy.image)
_PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9/,._-]*")
_HOST_NAME_RE = re.compile(r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
ENVIRONMENT_NAME_RE = history.ENVIRONMENT_RE  # the name reaches messages, webhooks and history lines

# Variables of the original build_docker.py script, honoured when there is no tagship.toml.
LEGACY_VARS = (
    "REGISTRY_URL",
    "REGISTRY_NAMESPACE",
    "IMAGE_NAME",
    "REMOTE_HOST",
    "REMOTE_PROJECT_PATH",
)


@dataclass(frozen=True)
class AppConfig:
    service: str = ""
    path: str = ""
    compose_files: tuple[str, ...] = ()  # empty: the file Compose itself would pick
    upload: tuple[str, ...] = ()
    consumers: tuple[str, ...] | None = None  # services calling the web service by name; None: depends_on


@dataclass(frozen=True)
class EnvConfig:
    file: str = ".env"
    tag_key: str = ""  # empty: the variable compose.yaml uses for the tag, else APP_IMAGE_TAG
    image_key: str = ""
    seed: str = ""
    values: tuple[tuple[str, str], ...] = ()  # written into the server's .env on every deploy
    secrets_file: str = ""  # a local .env-style file (kept out of git) whose values are written too


@dataclass(frozen=True)
class ImageConfig:
    name: str = ""
    platform: str = "linux/amd64"
    dockerfile: str = ""
    context: str = "."
    target: str = ""
    build_args: tuple[tuple[str, str], ...] = ()
    pin_digest: bool = False  # servers run name:tag@digest, so a re-pushed tag cannot change what runs
    transport: str = "registry"  # how images reach the servers: "registry", or "ssh" (docs/shipping.md)

    @property
    def over_ssh(self) -> bool:
        return self.transport == "ssh"


@dataclass(frozen=True)
class RegistryConfig:
    url: str = ""
    namespace: str = ""
    username: str = ""
    password_env: str = "TAGSHIP_REGISTRY_PASSWORD"
    password: str = field(default="", repr=False, metadata=SECRET)

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)


@dataclass(frozen=True)
class SshConfig:
    config: str = ""
    options: tuple[str, ...] = ()
    connect_timeout: int = 10
    jump: str = ""  # ProxyJump for every server whose address names no way of its own (-J)


@dataclass(frozen=True)
class VerifyConfig:
    stable_seconds: float = 3.0
    timeout: float = 60.0


@dataclass(frozen=True)
class ProxyConfig:
    enabled: bool = True
    image: str = "caddy:2-alpine"
    # Each published port's listener: HAProxy, which takes a new route with a seamless reload that
    # never resets a client's connection (Caddy's reload does; see docs/proxy.md).
    listener_image: str = "haproxy:lts-alpine"
    name: str = "tagship-proxy"
    network: str = "tagship"
    hosts: tuple[str, ...] = ()
    drain_timeout: float = 30.0


@dataclass(frozen=True)
class HealthConfig:
    mode: str = "auto"  # auto: the container's Docker healthcheck if it has one, else http
    path: str = "/"
    port: int = 0  # container port; 0: the target of the first published port
    interval: float = 0.1
    timeout: float = 60.0


@dataclass(frozen=True)
class LocalHooksConfig:
    """[hooks.local]: shell lines run on the deploying machine (docs/notifications-and-hooks.md)."""

    before_build: tuple[str, ...] = ()
    before_deploy: tuple[str, ...] = ()
    after_deploy: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()


@dataclass(frozen=True)
class HooksConfig:
    before_switch: tuple[str, ...] = ()  # one-off commands in the new image before anything switches
    where: str = "first"  # first: on the first server only (one shared database); every: on each server
    service: str = ""  # the service whose env, volumes and networks they run with; default: the web service


@dataclass(frozen=True)
class Webhook:
    """One [notify] webhook; its URL is a secret (masked, never printed)."""

    url: str = field(default="", repr=False, metadata=SECRET)  # from `url`, or from the variable `url_env` names
    url_env: str = ""
    format: str = "json"
    on: tuple[str, ...] = ("success", "failure")


STRATEGIES = ("all", "canary", "rolling")


@dataclass(frozen=True)
class RolloutConfig:
    """[rollout]: in what order the servers switch (docs/rollout.md)."""

    strategy: str = "all"  # all: every server at once; canary: one first, then the rest; rolling: batches
    canary: str = ""  # the canary server (as in servers, or its host); "": the first server
    canary_watch: float = 60.0  # seconds the canary must stay healthy before the rest go
    batch: str = "1"  # rolling: servers per batch, N or N%
    pause: float = 0.0  # rolling: seconds between batches
    watch: float = 0.0  # seconds each switched server must stay healthy before its old containers stop


@dataclass(frozen=True)
class ReleasesConfig:
    keep: int = 5  # images of the last N releases kept on each server (current and previous always)


@dataclass(frozen=True)
class Config:
    """Everything a command needs, validated; frozen so nothing changes it mid-run."""

    root: Path
    source: str  # the file (or "environment") the values came from, for messages
    servers: tuple[Server, ...]
    app: AppConfig = AppConfig()
    env: EnvConfig = EnvConfig()
    image: ImageConfig = ImageConfig()
    registry: RegistryConfig = RegistryConfig()
    ssh: SshConfig = SshConfig()
    verify: VerifyConfig = VerifyConfig()
    proxy: ProxyConfig = ProxyConfig()
    health: HealthConfig = HealthConfig()
    releases: ReleasesConfig = ReleasesConfig()
    rollout: RolloutConfig = RolloutConfig()
    hooks: HooksConfig = HooksConfig()
    local_hooks: LocalHooksConfig = LocalHooksConfig()  # [hooks.local] in the file
    notify: tuple[Webhook, ...] = ()
    environment: str = ""  # the [environments.NAME] merged in; empty: none (the file defines none)
    environments: tuple[str, ...] = ()  # every environment the file defines
    # Where each value came from, by key path: tagship.toml, environments.NAME, or a variable's name.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source_of(self, key: str) -> str:
        """Where the value at key (`proxy.hosts`, `servers[1].host`) came from; "default" if nowhere."""
        return _source_of(self.sources, key)


class _Reader:
    """Reads typed values from one TOML table, collecting every problem with its key path."""

    def __init__(self, table: Mapping[str, Any], prefix: str, problems: list[str]) -> None:
        self.table = table
        self.prefix = prefix
        self.problems = problems
        self.seen: set[str] = set()

    def _get(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return None
        value = self.table[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.problems.append(f"{self.prefix}{key}: must be {what}")
            return None
        return value

    def text(self, key: str, default: str) -> str:
        value = self._get(key, (str,), "a string")
        return default if value is None or not self.plain(key, value) else str(value)

    def plain(self, key: str, value: str, lines: bool = False) -> bool:
        """No control character (lines: tabs and newlines allowed) and not absurdly long; else a problem."""
        found = (_LINES_CONTROL_RE if lines else _CONTROL_RE).search(value)
        if found:
            # The value itself is not shown: it may be a secret (a webhook URL, say).
            where = f"{found.group()!r} at character {found.start() + 1}"
            self.problems.append(f"{self.prefix}{key}: must not contain control characters (found {where})")
            return False
        limit = MAX_LINES if lines else MAX_TEXT
        if len(value) > limit:
            self.problems.append(f"{self.prefix}{key}: must be at most {limit} characters, got {len(value)}")
            return False
        return True

    def number(self, key: str, default: float, low: float = 0, high: float = MAX_NUMBER) -> float:
        value = self._get(key, (int, float), "a number")
        if value is None:
            return default
        if not low <= value <= high:  # TOML has nan and inf: nan fails every comparison, inf is above high
            self.problems.append(f"{self.prefix}{key}: must be a number from {low:g} to {high:g}, got {value!r}")
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, (bool,), "true or false")
        return default if value is None else bool(value)

    def strings(self, key: str, default: tuple[str, ...], lines: bool = False) -> tuple[str, ...]:
        value = self._get(key, (list,), "a list of strings")
        if value is None:
            return default
        if not all(isinstance(item, str) for item in value):
            self.problems.append(f"{self.prefix}{key}: must be a list of strings")
            return default
        if not all([self.plain(f"{key}[{i}]", item, lines) for i, item in enumerate(value)]):  # every problem
            return default
        return tuple(value)

    def mapping(self, key: str) -> tuple[tuple[str, str], ...]:
        """A table of variables: names as .env and Docker take them, values free text (they travel in argv)."""
        value = self._get(key, (dict,), "a table of strings")
        if value is None:
            return ()
        if not all(isinstance(v, str) for v in value.values()):
            self.problems.append(f"{self.prefix}{key}: values must be strings")
            return ()
        bad = [name for name in value if not VARIABLE_RE.fullmatch(name)]
        if bad:
            self.problems.append(f"{self.prefix}{key}: {bad[0][:80]!r} is not a variable name (letters, digits, _)")
            return ()
        if not all([self.plain(f"{key}.{name}", text, lines=True) for name, text in value.items()]):
            return ()
        return tuple(sorted(value.items()))

    def finish(self) -> None:
        for key in sorted(set(self.table) - self.seen):
            self.problems.append(f"{self.prefix}{key}: unknown key")


def _section(data: Mapping[str, Any], name: str, problems: list[str]) -> _Reader:
    value = data.get(name, {})
    if not isinstance(value, dict):
        problems.append(f"{name}: must be a table")
        value = {}
    return _Reader(value, f"{name}.", problems)


_SECTIONS = (
    "app",
    "env",
    "image",
    "registry",
    "ssh",
    "verify",
    "proxy",
    "health",
    "releases",
    "rollout",
    "hooks",
    "notify",
    "servers",
)


def load(
    root: Path,
    environ: Mapping[str, str] | None = None,
    environment: str | None = None,
    *,
    need_environment: bool = True,
) -> Config:
    """Load tagship.toml (if any) under root, merge the chosen environment, apply environment variables, validate.

    The environment is `environment` (-e), else $TAGSHIP_ENVIRONMENT, else the file's default_environment.
    With need_environment, a file that defines environments refuses to load without one chosen.
    """
    env = dict(os.environ if environ is None else environ)
    path = root / CONFIG_FILE
    sources: dict[str, str] = {}
    problems: list[str] = []
    data: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        source = str(path)
        tables, default = _environments(raw, problems)
        _layer(data, raw, CONFIG_FILE, sources)
    else:
        tables, default = {}, ""
        data = _legacy_data(env, sources)
        source = "environment (no tagship.toml; original script variables)"
    name = _choose(tables, default, environment, env, source, sources)
    if name:
        _layer(data, tables[name], f"environments.{name}", sources)
    elif tables and need_environment and not problems:
        raise ConfigError(
            f"{source} defines environments ({', '.join(sorted(tables))}): choose one",
            hint=f"add -e NAME, set {ENVIRONMENT_VAR}, or set default_environment in {CONFIG_FILE}",
        )
    _apply_env_overrides(data, env, sources)
    config = _build(root, source, data, env, problems)
    _check_refused(config, problems)
    if problems:
        listing = "\n".join(f"  {_placed(p, sources)}" for p in problems)
        raise ConfigError(f"invalid configuration in {source}:\n{listing}")
    _note_secrets(config, sources)
    return replace(config, environment=name, environments=tuple(sorted(tables)), sources=sources)


def _environments(raw: dict[str, Any], problems: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    """Take [environments.NAME] and default_environment out of the file's data: (tables by name, default)."""
    value = raw.pop("environments", {})
    default = raw.pop("default_environment", "")
    if not isinstance(value, dict):
        problems.append("environments: must be a table of environments ([environments.NAME])")
        value = {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        where = f"environments.{name}"
        if not ENVIRONMENT_NAME_RE.fullmatch(name):
            problems.append(f"{where[:90]}: must be a name (letters, digits, _ -, at most 64)")
        elif not isinstance(table, dict):
            problems.append(f"{where}: must be a table ([{where}])")
        else:
            for key in ("environments", "default_environment"):
                if table.pop(key, None) is not None:
                    problems.append(f"{where}.{key}: not allowed inside an environment")
            tables[name] = table
    if not isinstance(default, str):
        problems.append("default_environment: must be a string")
        default = ""
    elif default and default not in tables:
        problems.append(f"default_environment: {default[:80]!r} is not an environment ({_listing(tables)})")
        default = ""
    return tables, default


def _listing(tables: Mapping[str, Any]) -> str:
    return f"environments: {', '.join(sorted(tables))}" if tables else "no [environments.NAME] defined"


def _choose(
    tables: Mapping[str, Any],
    default: str,
    asked: str | None,
    env: Mapping[str, str],
    source: str,
    sources: dict[str, str],
) -> str:
    """The environment to merge: -e, else $TAGSHIP_ENVIRONMENT, else default_environment; "" for none."""
    given = [(name, how) for name, how in ((asked, "-e"), (env.get(ENVIRONMENT_VAR), ENVIRONMENT_VAR)) if name]
    name, how = (given or [(default, CONFIG_FILE)])[0]
    if not name:
        return ""
    if name not in tables:
        raise ConfigError(f"unknown environment {name[:80]!r} (from {how}); {source}: {_listing(tables)}")
    sources["environment"] = how
    return name


def _layer(data: dict[str, Any], layer: Mapping[str, Any], label: str, sources: dict[str, str], path: str = "") -> None:
    """Merge layer into data: tables key by key, anything else (lists too) replaced; note each value's source."""
    for key, value in layer.items():
        where = f"{path}{key}"
        old = data.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and where != "notify":
            _layer(old, value, label, sources, f"{where}.")
            continue
        data[key] = copy.deepcopy(value)
        for known in [k for k in sources if k == where or k.startswith((f"{where}.", f"{where}["))]:
            del sources[known]  # replaced: what was under it came from elsewhere
        _note(value, where, label, sources)


def _note(value: Any, where: str, label: str, sources: dict[str, str]) -> None:
    # notify is one unit, [notify] or [[notify]]: an environment's replaces the common one whole.
    if isinstance(value, dict) and value and where != "notify":
        for key, item in value.items():
            _note(item, f"{where}.{key}", label, sources)
    else:
        sources[where] = label


def _source_of(sources: Mapping[str, str], key: str) -> str:
    """The source of key, or of the nearest enclosing value set as a whole (a list, a replaced table)."""
    path = key
    while path:
        if path in sources:
            return sources[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    inside = {label for k, label in sources.items() if k.startswith((f"{key}.", f"{key}["))}
    return inside.pop() if len(inside) == 1 else DEFAULT_SOURCE  # a table whose keys all came from one place


def _placed(problem: str, sources: Mapping[str, str]) -> str:
    """A problem with a value an environment set names it there: environments.staging.proxy.hosts[0]."""
    label = _source_of(sources, problem.split(":", 1)[0])
    return f"{label}.{problem}" if label.startswith("environments.") else problem


def _note_secrets(config: Config, sources: dict[str, str]) -> None:
    """Secrets come from variables: note which one (`tagship config` shows its name, never its value)."""
    if config.registry.password:
        sources["registry.password"] = config.registry.password_env
    for number, webhook in enumerate(config.notify):
        if webhook.url_env:
            sources[f"notify[{number}].url"] = webhook.url_env


def _legacy_data(env: Mapping[str, str], sources: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    pairs = {
        "REGISTRY_URL": ("registry", "url"),
        "REGISTRY_NAMESPACE": ("registry", "namespace"),
        "IMAGE_NAME": ("image", "name"),
        "REMOTE_PROJECT_PATH": ("app", "path"),
    }
    for var, (section, key) in pairs.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
            sources[f"{section}.{key}"] = var
    if env.get("REMOTE_HOST"):
        data["servers"] = [env["REMOTE_HOST"]]
        sources["servers"] = "REMOTE_HOST"
    return data


# TAGSHIP_* variables override file values (README: "Environment variables").
ENV_OVERRIDES = {
    "TAGSHIP_SERVERS": ("servers", None),
    "TAGSHIP_PATH": ("app", "path"),
    "TAGSHIP_SERVICE": ("app", "service"),
    "TAGSHIP_REGISTRY": ("registry", "url"),
    "TAGSHIP_NAMESPACE": ("registry", "namespace"),
    "TAGSHIP_REGISTRY_USERNAME": ("registry", "username"),
    "TAGSHIP_IMAGE": ("image", "name"),
    "TAGSHIP_PLATFORM": ("image", "platform"),
    "TAGSHIP_TRANSPORT": ("image", "transport"),
    "TAGSHIP_TAG_KEY": ("env", "tag_key"),
    "TAGSHIP_SSH_CONFIG": ("ssh", "config"),
    "TAGSHIP_SSH_JUMP": ("ssh", "jump"),
    "TAGSHIP_PROXY_IMAGE": ("proxy", "image"),
    "TAGSHIP_PROXY_LISTENER_IMAGE": ("proxy", "listener_image"),
}


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str], sources: dict[str, str]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        if key is None:  # a comma-separated server list
            _layer(data, {section: [part.strip() for part in value.split(",") if part.strip()]}, var, sources)
        elif isinstance(data.setdefault(section, {}), dict):
            _layer(data, {section: {key: value}}, var, sources)


def _build(root: Path, source: str, data: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> Config:
    for key in sorted(set(data) - set(_SECTIONS)):
        problems.append(f"{key}: unknown key")
    app_r = _section(data, "app", problems)
    app = AppConfig(
        service=app_r.text("service", ""),
        path=app_r.text("path", ""),
        compose_files=app_r.strings("compose_files", AppConfig.compose_files),
        upload=app_r.strings("upload", ()),
        consumers=app_r.strings("consumers", ()) if "consumers" in app_r.table else None,
    )
    env_cfg = _read_env(_section(data, "env", problems))
    image = _read_image(_section(data, "image", problems))
    registry = _read_registry(_section(data, "registry", problems), env)
    ssh_r = _section(data, "ssh", problems)
    ssh = SshConfig(
        config=ssh_r.text("config", ""),
        options=ssh_r.strings("options", ()),
        connect_timeout=int(ssh_r.number("connect_timeout", 10, low=1)),
        jump=ssh_r.text("jump", ""),
    )
    _check_jump(ssh, problems)
    verify_r = _section(data, "verify", problems)
    verify = VerifyConfig(
        stable_seconds=verify_r.number("stable_seconds", VerifyConfig.stable_seconds),
        timeout=verify_r.number("timeout", VerifyConfig.timeout, low=1),
    )
    for reader in (app_r, verify_r, ssh_r):
        reader.finish()
    proxy = _read_proxy(_section(data, "proxy", problems))
    health = _read_health(_section(data, "health", problems))
    releases_r = _section(data, "releases", problems)
    releases = ReleasesConfig(keep=int(releases_r.number("keep", 5, low=1)))
    releases_r.finish()
    rollout = _read_rollout(_section(data, "rollout", problems))
    hooks_r = _section(data, "hooks", problems)
    local_hooks = _read_local_hooks(hooks_r)  # first: [hooks] must know its `local` table before it finishes
    hooks = _read_hooks(hooks_r)
    notify = _read_notify(data.get("notify", []), env, problems)
    servers = _read_servers(data.get("servers", []), app.path, problems)
    _check_values(env_cfg, problems)
    _check_canary(rollout, servers, problems)
    return Config(
        root=root,
        source=source,
        servers=servers,
        app=app,
        env=env_cfg,
        image=image,
        registry=registry,
        ssh=ssh,
        verify=verify,
        proxy=proxy,
        health=health,
        releases=releases,
        rollout=rollout,
        hooks=hooks,
        local_hooks=local_hooks,
        notify=notify,
    )


def _read_env(r: _Reader) -> EnvConfig:
    cfg = EnvConfig(
        file=r.text("file", ".env"),
        tag_key=r.text("tag_key", ""),
        image_key=r.text("image_key", ""),
        seed=r.text("seed", ""),
        values=r.mapping("values"),
        secrets_file=r.text("secrets_file", ""),
    )
    r.finish()
    return cfg


def _read_proxy(r: _Reader) -> ProxyConfig:
    cfg = ProxyConfig(
        enabled=r.flag("enabled", True),
        image=r.text("image", ProxyConfig.image),
        listener_image=r.text("listener_image", ProxyConfig.listener_image),
        name=r.text("name", ProxyConfig.name),
        network=r.text("network", ProxyConfig.network),
        hosts=r.strings("hosts", ()),
        drain_timeout=r.number("drain_timeout", ProxyConfig.drain_timeout),
    )
    # Both names also reach Caddy's config text (the gate forwards to NAME:PORT): Docker names only.
    for key, value in (("name", cfg.name), ("network", cfg.network)):
        if not _DOCKER_NAME.fullmatch(value):
            r.problems.append(f"proxy.{key}: must be a Docker name (letters, digits, _ . -), got {value!r}")
    r.finish()
    return cfg


_DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _read_hooks(r: _Reader) -> HooksConfig:
    cfg = HooksConfig(
        before_switch=r.strings("before_switch", (), lines=True),  # shlex splits them
        where=r.text("where", "first"),
        service=r.text("service", ""),
    )
    if cfg.where not in ("first", "every"):
        r.problems.append(f"hooks.where: must be first or every, got {cfg.where!r}")
    for number, command in enumerate(cfg.before_switch):
        if not command.strip():
            r.problems.append(f"hooks.before_switch[{number}]: must not be empty")
    r.finish()
    return cfg


def _read_local_hooks(hooks: _Reader) -> LocalHooksConfig:
    # A table inside [hooks], since it reads as what it is: hooks, run locally (not in the new image).
    r = _Reader(hooks._get("local", (dict,), "a table") or {}, "hooks.local.", hooks.problems)
    cfg = LocalHooksConfig(
        before_build=r.strings("before_build", ()),
        before_deploy=r.strings("before_deploy", ()),
        after_deploy=r.strings("after_deploy", ()),
        on_failure=r.strings("on_failure", ()),
    )
    for phase in ("before_build", "before_deploy", "after_deploy", "on_failure"):
        for number, line in enumerate(getattr(cfg, phase)):
            if not line.strip():
                r.problems.append(f"hooks.local.{phase}[{number}]: must not be empty")
    r.finish()
    return cfg


def _read_notify(value: Any, env: Mapping[str, str], problems: list[str]) -> tuple[Webhook, ...]:
    """[notify] is one webhook; [[notify]] (an array of tables) is several."""
    if isinstance(value, dict):
        tables = [("notify.", value)]
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        tables = [(f"notify[{number}].", item) for number, item in enumerate(value)]
    else:
        problems.append("notify: must be a table ([notify]) or an array of tables ([[notify]])")
        return ()
    return tuple(_read_webhook(_Reader(table, prefix, problems), env) for prefix, table in tables)


def _read_webhook(r: _Reader, env: Mapping[str, str]) -> Webhook:
    url, url_env = r.text("url", ""), r.text("url_env", "")
    cfg = Webhook(
        url=env.get(url_env, "") if url_env else url,  # an unset variable only warns when a run ends
        url_env=url_env,
        format=r.text("format", Webhook.format),
        on=r.strings("on", Webhook.on),
    )
    where = r.prefix
    if bool(url) == bool(url_env):
        r.problems.append(f"{where}url: set either url or url_env (the variable that holds the URL)")
    if url_env and not url_env.replace("_", "a").isalnum():
        r.problems.append(f"{where}url_env: must be a variable name (letters, digits, _), got {url_env!r}")
    if cfg.url and not _http_url(cfg.url):  # never echo the URL: it is a secret
        source = f"url_env: ${url_env} must hold" if url_env else "url: must be"
        r.problems.append(f"{where}{source} an http:// or https:// URL")
    if cfg.format not in FORMATS:
        r.problems.append(f"{where}format: must be one of {', '.join(FORMATS)}, got {cfg.format!r}")
    for event in cfg.on:
        if event not in EVENTS:
            r.problems.append(f"{where}on: must list success and/or failure, got {event!r}")
    r.finish()
    return cfg


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _read_rollout(r: _Reader) -> RolloutConfig:
    batch = r._get("batch", (int, str), 'a number of servers or a percentage (2 or "50%")')
    cfg = RolloutConfig(
        strategy=r.text("strategy", "all"),
        canary=r.text("canary", ""),
        canary_watch=r.number("canary_watch", RolloutConfig.canary_watch),
        batch=RolloutConfig.batch if batch is None else str(batch),
        pause=r.number("pause", 0.0),
        watch=r.number("watch", 0.0),
    )
    if cfg.strategy not in STRATEGIES:
        r.problems.append(f"rollout.strategy: must be one of {', '.join(STRATEGIES)}, got {cfg.strategy[:80]!r}")
    if batch is not None and batch_size(cfg.batch, 100) is None:
        r.problems.append(
            f"rollout.batch: must be a whole number from 1 or a percentage from 1% to 100%, got {batch!r:.80}"
        )
    r.finish()
    return cfg


_BATCH_RE = re.compile(r"([1-9][0-9]{0,5})(%?)")


def batch_size(batch: str, servers: int) -> int | None:
    """Servers per batch out of `servers`: N, or N% rounded up (at least 1); None if batch is not either."""
    found = _BATCH_RE.fullmatch(batch)  # ASCII digits only: int() takes other scripts' digits too
    if not found:
        return None
    number, percent = int(found.group(1)), found.group(2)
    if not percent:
        return number
    if number > 100:
        return None
    return max(1, -(-servers * number // 100))


def canary_server(rollout: RolloutConfig, servers: Sequence[Server]) -> Server | None:
    """The server rollout.canary names (its address as written, its name as shown, or its host); the
    first server when it names none; None when no server matches."""
    if not rollout.canary:
        return servers[0] if servers else None
    return next((s for s in servers if rollout.canary in (s.raw, s.name, s.host)), None)


def _check_canary(rollout: RolloutConfig, servers: Sequence[Server], problems: list[str]) -> None:
    if rollout.canary and servers and canary_server(rollout, servers) is None:
        names = ", ".join(server.name for server in servers)
        problems.append(f"rollout.canary: {rollout.canary[:80]!r} is not a configured server (the servers: {names})")


def _read_health(r: _Reader) -> HealthConfig:
    cfg = HealthConfig(
        mode=r.text("mode", "auto"),
        path=r.text("path", "/"),
        port=int(r.number("port", 0, high=65535)),
        interval=r.number("interval", HealthConfig.interval, low=0.1),
        timeout=r.number("timeout", 60.0, low=1),
    )
    if cfg.mode not in ("auto", "http", "docker"):
        r.problems.append(f"health.mode: must be auto, http or docker, got {cfg.mode!r}")
    if not cfg.path.startswith("/"):
        r.problems.append(f"health.path: must start with /, got {cfg.path!r}")
    r.finish()
    return cfg


TRANSPORTS = ("registry", "ssh")


def _read_image(r: _Reader) -> ImageConfig:
    cfg = ImageConfig(
        name=r.text("name", ""),
        platform=r.text("platform", ImageConfig.platform),
        dockerfile=r.text("dockerfile", ""),
        context=r.text("context", "."),
        target=r.text("target", ""),
        build_args=r.mapping("build_args"),
        pin_digest=r.flag("pin_digest", False),
        transport=r.text("transport", ImageConfig.transport),
    )
    if cfg.transport not in TRANSPORTS:
        r.problems.append(f"image.transport: must be one of {', '.join(TRANSPORTS)}, got {cfg.transport[:80]!r}")
    elif cfg.over_ssh and cfg.pin_digest:
        # The digest is the registry's; images shipped over ssh have none the servers could pin.
        r.problems.append('image.pin_digest: needs image.transport = "registry" (images sent over ssh have no digest)')
    r.finish()
    return cfg


def _read_registry(r: _Reader, env: Mapping[str, str]) -> RegistryConfig:
    password_env = r.text("password_env", RegistryConfig.password_env)
    cfg = RegistryConfig(
        url=r.text("url", ""),
        namespace=r.text("namespace", "").strip("/"),
        username=r.text("username", ""),
        password_env=password_env,
        password=env.get(password_env, ""),
    )
    r.finish()
    return cfg


def _read_servers(value: Any, default_path: str, problems: list[str]) -> tuple[Server, ...]:
    if not isinstance(value, list):
        problems.append("servers: must be a list of addresses or tables")
        return ()
    servers: list[Server] = []
    for i, item in enumerate(value):
        where = f"servers[{i}]"
        if isinstance(item, str):
            host, path = item, default_path
        elif isinstance(item, dict):
            r = _Reader(item, f"{where}.", problems)
            host, path = r.text("host", ""), r.text("path", default_path)
            r.finish()
        else:
            problems.append(f"{where}: must be a string or a table with host and path")
            continue
        try:
            server = server_mod.parse(host, path=path, where=where)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not server.path:
            problems.append(f"{where}: no project path (set app.path or {where}.path)")
        elif not server.path.startswith("/") and not server.is_local:
            problems.append(f"{where}.path: must be absolute on the server, got {server.path!r}")
        servers.append(server)
    return tuple(servers)


def _check_jump(ssh: SshConfig, problems: list[str]) -> None:
    """ssh.jump reaches argv as `-J VALUE`: hops of the shape ssh takes, and not a second way in."""
    if not ssh.jump:
        return
    problem = server_mod.jump_problem(ssh.jump)
    if problem:
        problems.append(f"ssh.jump: {problem}")
    # ssh takes the first ProxyJump or ProxyCommand it reads: two in one config would silently pick one.
    for number, option in enumerate(ssh.options):
        if re.split(r"[=\s]", option.strip(), maxsplit=1)[0].lower() in server_mod.PROXY_OPTIONS:
            problems.append(f"ssh.options[{number}]: names a proxy too; set either ssh.jump or this option")


def _check_values(env: EnvConfig, problems: list[str]) -> None:
    for key_name, key in (("env.tag_key", env.tag_key), ("env.image_key", env.image_key)):
        if key and not VARIABLE_RE.fullmatch(key):
            problems.append(f"{key_name}: must be a variable name (letters, digits, _), got {key!r}")


def _check_refused(config: Config, problems: list[str]) -> None:
    """Shapes and places, once every value is read (each problem names its key)."""
    _check_names(config, problems)
    _check_paths(config, problems)
    for number, command in enumerate(config.hooks.before_switch):
        try:
            shlex.split(command)
        except ValueError as exc:  # an unclosed quote: refused now, not when the hook would run
            problems.append(f"hooks.before_switch[{number}]: cannot be split into words: {exc}")


def _check_names(config: Config, problems: list[str]) -> None:
    names = [
        ("app.service", config.app.service, _DOCKER_NAME),
        ("hooks.service", config.hooks.service, _DOCKER_NAME),
        ("image.target", config.image.target, _DOCKER_NAME),
        ("image.name", config.image.name, docker.REPOSITORY_RE),
        ("image.platform", config.image.platform, _PLATFORM_RE),
        ("registry.url", config.registry.url, _REGISTRY_RE),
        ("registry.namespace", config.registry.namespace, docker.REPOSITORY_RE),  # a path of it
        ("proxy.image", config.proxy.image, _REFERENCE_RE),
        ("proxy.listener_image", config.proxy.listener_image, _REFERENCE_RE),
        *((f"app.consumers[{i}]", name, _DOCKER_NAME) for i, name in enumerate(config.app.consumers or ())),
        *((f"proxy.hosts[{i}]", name, _HOST_NAME_RE) for i, name in enumerate(config.proxy.hosts)),
    ]
    for key, value, shape in names:
        if value and not shape.fullmatch(value):
            problems.append(f"{key}: {value[:80]!r} is not {_SHAPE_NAMES[shape]}")


_SHAPE_NAMES = {
    _DOCKER_NAME: "a Docker name (letters, digits, and _ . - after the first)",
    docker.REPOSITORY_RE: "a Docker image name (lower-case letters, digits, and . _ - / between them)",
    _PLATFORM_RE: "a platform such as linux/amd64",
    _REGISTRY_RE: "a registry address (host or host:port, no scheme, not starting with -)",
    _REFERENCE_RE: "an image reference such as caddy:2-alpine",
    _HOST_NAME_RE: "a host name such as shop.example.com",
}


def _check_paths(config: Config, problems: list[str]) -> None:
    """Paths of the repository stay in it: the image and the servers get the project's files, never the
    deploying machine's (~/.ssh/id_rsa as an upload, /etc/environment as env.file)."""
    paths = [
        ("env.file", config.env.file, True),
        ("env.seed", config.env.seed, True),
        ("image.dockerfile", config.image.dockerfile, True),
        ("image.context", config.image.context, False),
        *((f"app.upload[{i}]", name, True) for i, name in enumerate(config.app.upload)),
        *((f"app.compose_files[{i}]", name, True) for i, name in enumerate(config.app.compose_files)),
    ]
    for key, path, is_file in paths:
        if key in ("env.seed", "image.dockerfile") and not path:
            continue  # not set
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or path.startswith("~") or (is_file and not pure.parts):
            problems.append(
                f"{key}: must be a relative path inside the project (no leading / or ~, no ..), got {path!r}"
            )


def only_hosts(config: Config, hosts: str) -> Config:
    """The config limited to the servers hosts names (comma-separated; a server matches its address as
    written, its name as shown, or its host), in the config's order; "" keeps every server."""
    wanted = [h.strip() for h in hosts.split(",") if h.strip()]
    if not wanted:
        return config
    known = {key: server for server in config.servers for key in (server.raw, server.name, server.host)}
    unknown = [h for h in wanted if h not in known]
    if unknown:
        names = ", ".join(server.name for server in config.servers)
        raise ConfigError(f"--hosts: {', '.join(unknown)} is not a configured server (the servers: {names})")
    chosen = {id(known[h]) for h in wanted}
    return replace(config, servers=tuple(s for s in config.servers if id(s) in chosen))
