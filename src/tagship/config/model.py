"""The tables of tagship.toml as frozen dataclasses: pydantic validates a file's values into them, and
their types and docstrings are the JSON Schema (`tagship config schema`) and docs/config-reference.md.

Commands get these objects as they are; code that builds one itself (a test, a replace()) is not
validated again: validation is for what users write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, ConfigDict, Discriminator, Field, GetCoreSchemaHandler, GetPydanticSchema, Tag
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError, core_schema

from tagship.builders import docker, history
from tagship.builders.report import EVENTS, FORMATS
from tagship.config.values import (
    Batch,
    Command,
    Flag,
    LocalCommand,
    OneOf,
    OptionalProjectFile,
    Plain,
    ProjectDir,
    ProjectFile,
    Range,
    Text,
    VariableName,
    Variables,
    named,
    shaped,
)

SECRET = {"secret": True}  # field metadata: `tagship config` shows the value as ***
DOCKER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REGISTRY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?(?:/[a-z0-9._/-]+)?")
_REFERENCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")  # an image reference (proxy.image)
_PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9/,._-]*")
_HOST_NAME_RE = re.compile(r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
ENVIRONMENT_NAME_RE = history.ENVIRONMENT_RE  # the name reaches messages, webhooks and history lines
STRATEGIES = ("all", "canary", "rolling")
TRANSPORTS = ("registry", "ssh")

# Unknown keys are refused; each key's docstring is its description in the schema and the reference.
TABLE = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def _namespace(value: str) -> str:
    # "/team/" is "team": a path of the registry, written either way.
    return shaped(docker.REPOSITORY_RE, "image_name")(value.strip("/")) if value.strip("/") else ""


def http_url(url: str) -> bool:
    """An http:// or https:// URL with a host."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _http_url(value: str) -> str:
    if not http_url(value):
        raise PydanticCustomError("http_url", "")  # never echo the URL: it is a secret
    return value


def _not_in_file(value: Any) -> Any:
    raise PydanticCustomError("unknown_key", "")


DockerName = Annotated[str, named(DOCKER_NAME_RE, "docker_name")]


def _names_only(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    # None is the default (not set: depends_on decides), never a value a file can hold.
    return handler.generate_schema(tuple[DockerName, ...])


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


ImageName = Annotated[str, named(docker.REPOSITORY_RE, "image_name")]
Reference = Annotated[str, named(_REFERENCE_RE, "image_reference")]
HostName = Annotated[str, named(_HOST_NAME_RE, "host_name")]
Platform = Annotated[str, named(_PLATFORM_RE, "platform")]
RegistryAddress = Annotated[str, named(_REGISTRY_RE, "registry_address")]
Namespace = Annotated[str, Plain(_namespace, "/*" + docker.REPOSITORY_RE.pattern.strip("^$") + "/*")]
# ssh.jump: server.jump_problem checks it in the loader (its own messages); this is its shape for editors.
Jump = Annotated[str, Plain(None, "[^\\s,-][^\\s,]*(?:,[^\\s,-][^\\s,]*)*")]
HttpUrl = Annotated[str, Plain(_http_url, "https?://[^/?#@]+.*")]
HealthPath = Annotated[str, Plain(shaped(re.compile(r"/.*"), "health_path"), "/.*", required=True)]
Seconds = Annotated[float, Range()]
Event = Annotated[str, OneOf(EVENTS)]


@dataclass(frozen=True)
class AppConfig:
    """[app]: the Compose service and project tagship deploys."""

    __pydantic_config__ = TABLE

    service: DockerName = ""
    """The Compose service to build and deploy; default: the one with a build: section."""
    path: Text = ""
    """The Compose project directory on the servers (REMOTE_PROJECT_PATH, TAGSHIP_PATH); a server's own path wins."""
    compose_files: tuple[ProjectFile, ...] = ()
    """Compose files, relative to the repository; default: COMPOSE_FILE (environment, then .env), else the file
    Compose itself would pick."""
    upload: tuple[ProjectFile, ...] = ()
    """Files copied from the tagged tree to the servers on every deploy (paths in the repository; on the server,
    relative to the Compose project's directory)."""
    consumers: Annotated[
        tuple[DockerName, ...] | None, GetPydanticSchema(_names_only), Field(json_schema_extra=_no_default)
    ] = None
    """Services that call the deployed service by name (a reverse proxy, a worker); default: every service that
    depends_on it; [] turns the gate off."""


@dataclass(frozen=True)
class EnvConfig:
    """[env]: the server's .env file, which holds the release's tag."""

    __pydantic_config__ = TABLE

    file: ProjectFile = ".env"
    """The .env file, in the Compose project directory."""
    tag_key: VariableName = ""
    """The variable holding the image tag; default: the one compose.yaml uses for the tag, else APP_IMAGE_TAG."""
    image_key: VariableName = ""
    """The variable holding the image name; default: the one compose.yaml uses for it, if any."""
    seed: OptionalProjectFile = ""
    """A local file used to create the server's .env when it has none."""
    values: Variables = ()
    """More .env values written on every deploy (docs/environments.md)."""
    secrets_file: Text = ""
    """A local KEY=value file kept out of git (refused if committed); its values are written into the servers'
    .env on every deploy, masked in all output."""


@dataclass(frozen=True)
class ImageConfig:
    """[image]: how the release's image is built and shipped."""

    __pydantic_config__ = TABLE

    name: ImageName = ""
    """The image name (IMAGE_NAME, TAGSHIP_IMAGE); default: from compose.yaml's image or .env."""
    platform: Platform = "linux/amd64"
    """The platform to build for (TAGSHIP_PLATFORM)."""
    dockerfile: OptionalProjectFile = ""
    """The Dockerfile, relative to the repository; only when the service has no build: section."""
    context: ProjectDir = "."
    """The build context, relative to the repository."""
    target: DockerName = ""
    """The build stage to build."""
    build_args: Variables = ()
    """Build arguments (--build-arg NAME=value)."""
    pin_digest: Flag = False
    """Servers run name:tag@digest, so a re-pushed tag cannot change what runs (needs transport = "registry")."""
    transport: Annotated[str, OneOf(TRANSPORTS)] = "registry"
    """How images reach the servers (TAGSHIP_TRANSPORT): registry (push, the servers pull), or ssh (only the
    layers each server lacks, over its SSH connection; docs/shipping.md)."""

    @property
    def over_ssh(self) -> bool:
        return self.transport == "ssh"


@dataclass(frozen=True)
class RegistryConfig:
    """[registry]: where images are pushed and pulled."""

    __pydantic_config__ = TABLE

    url: RegistryAddress = ""
    """The registry address, host or host:port (REGISTRY_URL, TAGSHIP_REGISTRY); empty: no push (only for the
    local server, or with image.transport = "ssh")."""
    namespace: Namespace = ""
    """The path in the registry (REGISTRY_NAMESPACE, TAGSHIP_NAMESPACE)."""
    username: Text = ""
    """The registry user (TAGSHIP_REGISTRY_USERNAME); the password comes from the variable password_env names."""
    password_env: Text = "TAGSHIP_REGISTRY_PASSWORD"
    """The variable that holds the registry password (never in the file)."""
    password: Annotated[SkipJsonSchema[str], BeforeValidator(_not_in_file)] = field(
        default="", repr=False, metadata=SECRET
    )

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)


@dataclass(frozen=True)
class SshConfig:
    """[ssh]: how tagship reaches the servers."""

    __pydantic_config__ = TABLE

    config: Text = ""
    """An extra ssh_config file (-F, TAGSHIP_SSH_CONFIG); default: ssh's own (~/.ssh/config)."""
    options: tuple[Text, ...] = ()
    """Extra -o options, such as "ServerAliveInterval=5"."""
    connect_timeout: Annotated[int, Range(low=1, whole=True)] = 10
    """Seconds to wait for an SSH connection."""
    jump: Jump = ""
    """Reach every server through a bastion (ssh -J, TAGSHIP_SSH_JUMP): "deploy@bastion:22", an ssh_config
    alias, or hops "gw1,gw2"; a server's own -J wins (docs/bastions.md)."""


@dataclass(frozen=True)
class VerifyConfig:
    """[verify]: the plain switch, for a service with no published port."""

    __pydantic_config__ = TABLE

    stable_seconds: Seconds = 3.0
    """Seconds the new container must stay up."""
    timeout: Annotated[float, Range(low=1)] = 60.0
    """Seconds before the new release is declared failed."""


@dataclass(frozen=True)
class ProxyConfig:
    """[proxy]: the proxy in front of the service, which switches without dropping a request (docs/proxy.md)."""

    __pydantic_config__ = TABLE

    enabled: Flag = True
    """Put the proxy in front of the service's published ports."""
    image: Reference = "caddy:2-alpine"
    """The Caddy image (TAGSHIP_PROXY_IMAGE)."""
    # Each published port's listener: HAProxy, which takes a new route with a seamless reload that
    # never resets a client's connection (Caddy's reload does; see docs/proxy.md).
    listener_image: Reference = "haproxy:lts-alpine"
    """Each published port's listener, HAProxy 2.6 or later (TAGSHIP_PROXY_LISTENER_IMAGE)."""
    # Both names also reach Caddy's config text (the gate forwards to NAME:PORT): Docker names only.
    name: DockerName = "tagship-proxy"
    """The proxy container's name."""
    network: DockerName = "tagship"
    """The Docker network the proxy and the service share."""
    hosts: tuple[HostName, ...] = ()
    """Host names served on 80/443 with automatic HTTPS, instead of the published ports."""
    drain_timeout: Seconds = 30.0
    """Seconds to wait for requests in flight on the old container."""


@dataclass(frozen=True)
class HealthConfig:
    """[health]: when a new release counts as healthy."""

    __pydantic_config__ = TABLE

    mode: Annotated[str, OneOf(("auto", "http", "docker"))] = "auto"
    """auto: the container's Docker healthcheck command if it has one, else http; http; docker: only Docker's
    verdict."""
    path: HealthPath = "/"
    """The HTTP path that must answer 2xx."""
    port: Annotated[int, Range(high=65535, whole=True)] = 0
    """The container port; 0: the target of the first published port."""
    interval: Annotated[float, Range(low=0.1)] = 0.1
    """Seconds between checks (probes run inside the proxy container)."""
    timeout: Annotated[float, Range(low=1)] = 60.0
    """Seconds before the new release is declared unhealthy."""


@dataclass(frozen=True)
class LocalHooksConfig:
    """[hooks.local]: shell lines run on the deploying machine (docs/notifications-and-hooks.md)."""

    __pydantic_config__ = TABLE

    before_build: tuple[LocalCommand, ...] = ()
    """deploy: before login and build; a failure stops the run (exit 1)."""
    before_deploy: tuple[LocalCommand, ...] = ()
    """Before any server changes; a failure stops the run (exit 1)."""
    after_deploy: tuple[LocalCommand, ...] = ()
    """After a good run (locks free); a failure only warns."""
    on_failure: tuple[LocalCommand, ...] = ()
    """After a failed or interrupted run; a failure only warns."""


@dataclass(frozen=True)
class HooksConfig:
    """[hooks]: one-off commands in the new image before anything switches, and [hooks.local] on this machine."""

    __pydantic_config__ = TABLE

    before_switch: tuple[Command, ...] = ()  # shlex splits them
    """Commands run in a one-off container of the new image, such as "python manage.py migrate --noinput"."""
    where: Annotated[str, OneOf(("first", "every"))] = "first"
    """first: on the first server only (one shared database); every: on each server."""
    service: DockerName = ""
    """The service whose env, volumes and networks they run with; default: the deployed service."""
    # A table inside [hooks], since it reads as what it is: hooks, run locally (not in the new image).
    local: LocalHooksConfig = field(default_factory=LocalHooksConfig)
    """[hooks.local]: commands on the deploying machine."""


@dataclass(frozen=True)
class Webhook:
    """One [notify] webhook, called when a deploy or rollback ends; a failing one only warns."""

    __pydantic_config__ = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={"oneOf": [{"required": ["url"]}, {"required": ["url_env"]}]},
    )

    url: HttpUrl = field(default="", repr=False, metadata=SECRET)
    """The webhook's URL (it holds a token: never printed); set url or url_env."""
    url_env: VariableName = ""
    """The variable holding the webhook's URL."""
    format: Annotated[str, OneOf(FORMATS)] = "json"
    """The body's format."""
    on: tuple[Event, ...] = ("success", "failure")
    """The outcomes that call it."""


@dataclass(frozen=True)
class RolloutConfig:
    """[rollout]: in what order the servers switch (docs/rollout.md)."""

    __pydantic_config__ = TABLE

    strategy: Annotated[str, OneOf(STRATEGIES)] = "all"
    """all: every server at once; canary: one server first, then the rest; rolling: in batches."""
    canary: Text = ""
    """The canary server (an address as in servers, or its host); default: the first server."""
    canary_watch: Seconds = 60.0
    """Seconds the canary must stay healthy (the old release still running) before the rest go."""
    batch: Batch = "1"
    """rolling: servers per batch, a number or a percentage ("25%", rounded up)."""
    pause: Seconds = 0.0
    """rolling: seconds between batches."""
    watch: Seconds = 0.0
    """Seconds each switched server must stay healthy before its old containers stop; a failure switches it
    back by itself."""


@dataclass(frozen=True)
class ReleasesConfig:
    """[releases]: what each server keeps."""

    __pydantic_config__ = TABLE

    keep: Annotated[int, Range(low=1, whole=True)] = 5
    """Images of the last N releases kept on each server (the current and previous always)."""


@dataclass(frozen=True)
class ServerTable:
    """A server as a table: its address and its own project path."""

    __pydantic_config__ = TABLE

    host: Text
    """The address: user@host, user@host:port, ssh://user@host:port, an ssh_config alias, [v6addr]:port,
    "user@host -p 2022" (also -i, -J, -o K=V), or local."""
    path: Text = ""
    """The Compose project directory on this server; default: app.path."""


def _server_kind(value: Any) -> str | None:
    return "<address>" if isinstance(value, str) else "<table>" if isinstance(value, dict) else None


def _notify_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "<one>"
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return "<several>"
    return None


# Union members are tagged "<...>": the tags appear in pydantic's error locations, and problems.py
# leaves them out of key paths.
ServerEntry = Annotated[
    Annotated[Text, Tag("<address>")] | Annotated[ServerTable, Tag("<table>")],
    Discriminator(_server_kind, custom_error_type="server_entry", custom_error_message="server_entry"),
]
Notify = Annotated[
    Annotated[Webhook, Tag("<one>")] | Annotated[tuple[Webhook, ...], Tag("<several>")],
    Discriminator(_notify_kind, custom_error_type="notify_shape", custom_error_message="notify_shape"),
]


@dataclass(frozen=True)
class Overlay:
    """What an [environments.NAME] table may set: any key of the file but the environments."""

    __pydantic_config__ = TABLE

    servers: tuple[ServerEntry, ...] = ()
    """The servers to deploy to (TAGSHIP_SERVERS, REMOTE_HOST): addresses, or tables with host and path."""
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
    notify: Notify = ()
    """Webhooks: one [notify] table, or several [[notify]]."""


EnvironmentName = Annotated[str, named(ENVIRONMENT_NAME_RE, "environment_name")]


@dataclass(frozen=True)
class TagshipFile(Overlay):
    """tagship.toml: how tagship deploys this project (docs/config-reference.md)."""

    default_environment: Text = ""
    """The environment used without -e and TAGSHIP_ENVIRONMENT (docs/environments.md)."""
    environments: Annotated[
        dict[EnvironmentName, Overlay], Field(json_schema_extra={"additionalProperties": False})
    ] = field(default_factory=dict)
    """[environments.NAME]: values that override the rest of the file for that environment; tables merge key
    by key, lists and values replace."""


# The tables a file has, by key (servers and notify are checked item by item in the loader).
SECTIONS: dict[str, type] = {
    "app": AppConfig,
    "env": EnvConfig,
    "image": ImageConfig,
    "registry": RegistryConfig,
    "ssh": SshConfig,
    "verify": VerifyConfig,
    "proxy": ProxyConfig,
    "health": HealthConfig,
    "releases": ReleasesConfig,
    "rollout": RolloutConfig,
    "hooks": HooksConfig,
}
