"""tagship.toml, environment overrides and the original script's variables, validated once.

The tables' types are in model.py (pydantic validates each), the kinds of value in values.py; here
the file is read, an environment merged, variables applied, and what spans tables is checked.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tagship.builders.untrusted import printable
from tagship.config import problems as problems_mod
from tagship.config.model import (
    ENVIRONMENT_NAME_RE,
    SECRET,
    SECTIONS,
    STRATEGIES,
    TRANSPORTS,
    AppConfig,
    EnvConfig,
    HealthConfig,
    HooksConfig,
    ImageConfig,
    LocalHooksConfig,
    ProxyConfig,
    RegistryConfig,
    ReleasesConfig,
    RolloutConfig,
    ServerEntry,
    ServerTable,
    SshConfig,
    TagshipFile,
    VerifyConfig,
    Webhook,
    http_url,
)
from tagship.config.values import MAX_LINES, MAX_NUMBER, MAX_TEXT, VARIABLE_RE, batch_size
from tagship.errors import ConfigError
from tagship.messages import t
from tagship.remote import server as server_mod
from tagship.remote.server import Server

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_TAG_KEY",
    "ENVIRONMENT_NAME_RE",
    "MAX_LINES",
    "MAX_NUMBER",
    "MAX_TEXT",
    "SECRET",
    "STRATEGIES",
    "TRANSPORTS",
    "VARIABLE_RE",
    "AppConfig",
    "Config",
    "EnvConfig",
    "HealthConfig",
    "HooksConfig",
    "ImageConfig",
    "LocalHooksConfig",
    "ProxyConfig",
    "RegistryConfig",
    "ReleasesConfig",
    "RolloutConfig",
    "SshConfig",
    "TagshipFile",
    "VerifyConfig",
    "Webhook",
    "batch_size",
    "canary_server",
    "load",
    "only_hosts",
]

CONFIG_FILE = "tagship.toml"
DEFAULT_SOURCE = "default"  # Config.source_of for a value no file or variable set
ENVIRONMENT_VAR = "TAGSHIP_ENVIRONMENT"
DEFAULT_TAG_KEY = "APP_IMAGE_TAG"
# Tables and lists within each other that a tagship.toml may have: its deepest value is 6 down
# (environments.NAME.hooks.local.after_deploy[0]); a deeper file is refused before any reader recurses.
MAX_DEPTH = 32

# Variables of the original build_docker.py script, honoured when there is no tagship.toml.
LEGACY_VARS = (
    "REGISTRY_URL",
    "REGISTRY_NAMESPACE",
    "IMAGE_NAME",
    "REMOTE_HOST",
    "REMOTE_PROJECT_PATH",
)


@dataclass(frozen=True)
class Config:
    """Everything a command needs, validated; frozen so nothing changes it mid-run."""

    root: Path
    source: str  # the file (or "environment") the values came from, for messages
    servers: tuple[Server, ...]
    app: AppConfig = field(default_factory=AppConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    ssh: SshConfig = field(default_factory=SshConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    releases: ReleasesConfig = field(default_factory=ReleasesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    local_hooks: LocalHooksConfig = field(default_factory=LocalHooksConfig)  # [hooks.local] in the file: hooks.local
    notify: tuple[Webhook, ...] = ()
    environment: str = ""  # the [environments.NAME] merged in; empty: none (the file defines none)
    environments: tuple[str, ...] = ()  # every environment the file defines
    # Where each value came from, by key path: tagship.toml, environments.NAME, or a variable's name.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source_of(self, key: str) -> str:
        """Where the value at key (`proxy.hosts`, `servers[1].host`) came from; "default" if nowhere."""
        return _source_of(self.sources, key)


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
    if not root.is_dir():  # else it reads as a project without tagship.toml: "no servers configured"
        raise ConfigError(t("config.no_project_directory", root=root))
    path = root / CONFIG_FILE
    sources: dict[str, str] = {}
    problems: list[str] = []
    data: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(t("config.not_toml", path=path, error=exc)) from exc
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively
            raise ConfigError(t("config.nested_too_deeply", path=path, limit=MAX_DEPTH)) from None
        deep = _too_deep(raw)
        if deep:  # dotted keys nest without recursion in tomllib, but not in what reads them next
            raise ConfigError(f"{path}: {deep}: {t('config.nested_too_deeply_key', limit=MAX_DEPTH)}")
        source = str(path)
        tables, default = _environments(raw, problems)
        _layer(data, raw, CONFIG_FILE, sources)
    else:
        tables, default = {}, ""
        data = _legacy_data(env, sources)
        source = t("config.source_legacy")
    name = _choose(tables, default, environment, env, source, sources)
    if name:
        _layer(data, tables[name], f"environments.{name}", sources)
    elif tables and need_environment and not problems:
        raise ConfigError(
            t("config.choose_environment", source=source, names=", ".join(sorted(tables))),
            hint=t("config.choose_environment_hint", variable=ENVIRONMENT_VAR, file=CONFIG_FILE),
        )
    _apply_env_overrides(data, env, sources)
    config = _build(root, source, data, env, problems)
    if problems:
        listing = "\n".join(f"  {_placed(p, sources)}" for p in problems)
        raise ConfigError(f"{t('config.invalid_in', source=source)}\n{listing}")
    _note_secrets(config, sources)
    return replace(config, environment=name, environments=tuple(sorted(tables)), sources=sources)


def _too_deep(data: Any) -> str:
    """The key path (its first parts) of a value nested more than MAX_DEPTH tables and lists deep, or ""."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, where = stack.pop()
        if len(where) > MAX_DEPTH:
            return problems_mod.key_path(where[:6]) + "…"
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend((item, (*where, key)) for key, item in items)
    return ""


def _environments(raw: dict[str, Any], problems: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    """Take [environments.NAME] and default_environment out of the file's data: (tables by name, default)."""
    value = raw.pop("environments", {})
    default = raw.pop("default_environment", "")
    if not isinstance(value, dict):
        problems.append(f"environments: {t('config.environments_type')}")
        value = {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        where = f"environments.{name}"
        if not ENVIRONMENT_NAME_RE.fullmatch(name):
            problems.append(f"{where[:90]}: {t('config.environment_name_key')}")
        elif not isinstance(table, dict):
            problems.append(f"{where}: {t('config.environment_type', where=where)}")
        else:
            for key in ("environments", "default_environment"):
                if table.pop(key, None) is not None:
                    problems.append(f"{where}.{key}: {t('config.not_in_environment')}")
            tables[name] = table
    if not isinstance(default, str):
        problems.append(f"default_environment: {t('config.string_type')}")
        default = ""
    elif default and default not in tables:
        problems.append(
            f"default_environment: {t('config.default_unknown', got=repr(default[:80]), known=_listing(tables))}"
        )
        default = ""
    return tables, default


def _listing(tables: Mapping[str, Any]) -> str:
    if not tables:
        return t("config.no_environments")
    return t("config.environments_listing", names=", ".join(sorted(tables)))


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
        raise ConfigError(
            t("config.unknown_environment", got=repr(name[:80]), how=how, source=source, known=_listing(tables))
        )
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


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def _validated(kind: Any, value: Any, where: tuple[str | int, ...], problems: list[str]) -> Any:
    """value as a kind (a table's dataclass, a server entry, a webhook), or None with its problems noted."""
    try:
        return _adapter(kind).validate_python(value)
    except ValidationError as error:
        problems.extend(problems_mod.problems(error, where))
        return None


def _table(kind: Any, value: Any, name: str, problems: list[str]) -> Any:
    """The table `name` as its dataclass; with problems, its valid keys only (the others at their default),
    so what spans tables is still checked, as far as it can be."""
    try:
        return _adapter(kind).validate_python(value)
    except ValidationError as error:
        problems.extend(problems_mod.problems(error, (name,)))
        if not isinstance(value, dict):
            return kind()
        bad = {item["loc"][0] for item in error.errors() if item["loc"]}
        rest = {key: item for key, item in value.items() if key not in bad}
        return _validated(kind, rest, (name,), []) or kind()


def _build(root: Path, source: str, data: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> Config:
    for key in sorted(set(data) - {*SECTIONS, "servers", "notify"}):
        problems.append(f"{problems_mod.key_path((key,))}: {t('config.unknown_key')}")
    # Table by table (and server by server, webhook by webhook), so one bad value does not hide the
    # problems of the rest: what spans tables is checked on whatever is valid.
    sections = {name: _table(kind, data.get(name, {}), name, problems) for name, kind in SECTIONS.items()}
    hooks: HooksConfig = sections["hooks"]
    registry: RegistryConfig = sections["registry"]
    registry = replace(registry, password=env.get(registry.password_env, ""))
    servers = _read_servers(data.get("servers", []), sections["app"].path, problems)
    notify = _read_notify(data.get("notify", []), env, problems)
    _check_image(sections["image"], problems)
    _check_jump(sections["ssh"], problems)
    _check_hooks(hooks, problems)
    _check_canary(sections["rollout"], servers, problems)
    return Config(
        root=root,
        source=source,
        servers=servers,
        app=sections["app"],
        env=sections["env"],
        image=sections["image"],
        registry=registry,
        ssh=sections["ssh"],
        verify=sections["verify"],
        proxy=sections["proxy"],
        health=sections["health"],
        releases=sections["releases"],
        rollout=sections["rollout"],
        hooks=hooks,
        local_hooks=hooks.local,  # the name commands know it by
        notify=notify,
    )


def _read_servers(value: Any, default_path: str, problems: list[str]) -> tuple[Server, ...]:
    if not isinstance(value, list):
        problems.append(f"servers: {t('config.servers_type')}")
        return ()
    servers: list[Server] = []
    for number, item in enumerate(value):
        entry = _validated(ServerEntry, item, ("servers", number), problems)
        if entry is None:
            continue
        where = f"servers[{number}]"
        host, path = (
            (entry.host, entry.path or default_path) if isinstance(entry, ServerTable) else (entry, default_path)
        )
        try:
            server = server_mod.parse(host, path=path, where=where)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not server.path:
            problems.append(f"{where}: {t('config.server_no_path', where=where)}")
        elif not server.path.startswith("/") and not server.is_local:
            problems.append(f"{where}.path: {t('config.server_path_relative', got=repr(server.path))}")
        servers.append(server)
    return tuple(servers)


def _read_notify(value: Any, env: Mapping[str, str], problems: list[str]) -> tuple[Webhook, ...]:
    """[notify] is one webhook; [[notify]] (an array of tables) is several."""
    tables: list[tuple[tuple[str | int, ...], dict[str, Any]]]
    if isinstance(value, dict):
        tables = [(("notify",), value)]
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        tables = [(("notify", number), item) for number, item in enumerate(value)]
    else:
        problems.append(f"notify: {t('config.notify_shape')}")
        return ()
    webhooks = []
    for where, table in tables:
        prefix = problems_mod.key_path(where)
        if bool(table.get("url")) == bool(table.get("url_env")):  # on the raw table: a bad value hides neither
            problems.append(f"{prefix}.url: {t('config.url_or_url_env')}")
        webhook = _validated(Webhook, table, where, problems)
        if webhook is not None and webhook.url_env:
            # An unset variable is no config error: it only warns when a run ends (`tagship releases`
            # on a laptop without the CI's secret must work).
            webhook = replace(webhook, url=env.get(webhook.url_env, ""))
            if webhook.url and not http_url(webhook.url):  # never echo the URL: it is a secret
                problems.append(f"{prefix}.url_env: {t('config.url_env_not_http', variable=webhook.url_env)}")
        if webhook is not None:
            webhooks.append(webhook)
    return tuple(webhooks)


def _check_image(image: ImageConfig, problems: list[str]) -> None:
    if image.over_ssh and image.pin_digest:
        # The digest is the registry's; images shipped over ssh have none the servers could pin.
        problems.append(f"image.pin_digest: {t('config.pin_digest_needs_registry')}")


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
            problems.append(f"ssh.options[{number}]: {t('config.jump_and_proxy_option')}")


def _check_hooks(hooks: HooksConfig, problems: list[str]) -> None:
    for number, command in enumerate(hooks.before_switch):
        try:
            shlex.split(command)
        except ValueError as exc:  # an unclosed quote: refused now, not when the hook would run
            problems.append(f"hooks.before_switch[{number}]: {t('config.hook_split', error=exc)}")


def canary_server(rollout: RolloutConfig, servers: Sequence[Server]) -> Server | None:
    """The server rollout.canary names (its address as written, its name as shown, or its host); the
    first server when it names none; None when no server matches."""
    if not rollout.canary:
        return servers[0] if servers else None
    return next((s for s in servers if rollout.canary in (s.raw, s.name, s.host)), None)


def _check_canary(rollout: RolloutConfig, servers: Sequence[Server], problems: list[str]) -> None:
    if rollout.canary and servers and canary_server(rollout, servers) is None:
        names = ", ".join(server.name for server in servers)
        problems.append(f"rollout.canary: {t('config.canary_unknown', got=repr(rollout.canary[:80]), servers=names)}")


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
        # Typed on the command line, maybe pasted: a newline or an escape sequence is shown, not obeyed.
        shown = ", ".join(printable(h) for h in unknown)
        raise ConfigError(t("config.unknown_hosts", hosts=shown, servers=names))
    chosen = {id(known[h]) for h in wanted}
    return replace(config, servers=tuple(s for s in config.servers if id(s) in chosen))
