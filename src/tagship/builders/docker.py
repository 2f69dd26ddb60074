"""Docker CLI command builders (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from tagship.builders import scripts
from tagship.builders.command import Command, sh
from tagship.builders.doctor import first_line
from tagship.builders.untrusted import printable
from tagship.messages import t

# Docker's reference grammar for a repository: optional registry host[:port], then lower-case
# path components separated by "/".
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*$")


def version() -> Command:
    return Command(("docker", "version", "--format", "{{.Server.Version}}"))


def compose_version() -> Command:
    return Command(("docker", "compose", "version", "--short"))


def compose_v1_version() -> Command:
    """The standalone Compose v1 (`docker-compose`), which servers often have instead of the v2 plugin."""
    return Command(("docker-compose", "version", "--short"))


def login(
    registry: str, username: str, password: str, env: tuple[tuple[str, str], ...] = (), config_dir: str = ""
) -> Command:
    """Log in with the password on stdin, never in argv; config_dir: the client config directory that
    keeps the credential (a server's run-long one, see with_config), else the user's own."""
    return Command(
        (*with_config(config_dir), "docker", "login", "--username", username, "--password-stdin", registry),
        stdin=password.encode(),
        secrets=(password,),
        stdin_note="password",
        env=env,
    )


def build(
    ref: str,
    context: str,
    *,
    dockerfile: str = "",
    platform: str = "",
    target: str = "",
    args: tuple[tuple[str, str], ...] = (),
    labels: tuple[tuple[str, str], ...] = (),
) -> Command:
    argv = ["docker", "build", "--tag", ref]
    if dockerfile:
        argv += ["--file", dockerfile]
    if platform:
        argv += ["--platform", platform]
    if target:
        argv += ["--target", target]
    for key, value in args:
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in labels:
        argv += ["--label", f"{key}={value}"]
    argv.append(context)
    return Command(tuple(argv))


def tag(source: str, ref: str) -> Command:
    return Command(("docker", "tag", source, ref))


def push(ref: str) -> Command:
    return Command(("docker", "push", ref))


def pull(ref: str, config_dir: str = "") -> Command:
    return Command((*with_config(config_dir), "docker", "pull", ref))


def login_dir() -> Command:
    """Make the run's own client config directory on a server (see scripts/login_dir.sh); prints it."""
    return sh(scripts.load("login_dir"), name="make the run's docker config directory")


def remove_login_dir(config_dir: str) -> Command:
    """Remove a run's client config directory on a server, with the registry credential in it."""
    return Command(("rm", "-rf", "--", config_dir))


def with_config(config_dir: str) -> tuple[str, ...]:
    """The argv prefix that points a server's docker CLI at config_dir (nothing when empty): a server
    command's environment cannot travel otherwise (Command.env is for local commands)."""
    return ("env", f"DOCKER_CONFIG={config_dir}") if config_dir else ()


def untag(ref: str) -> Command:
    """Remove one name of an image; the image stays while another name holds it (--no-prune: its parents too)."""
    return Command(("docker", "image", "rm", "--no-prune", ref))


# Why a server's docker could not log in to or pull from a registry, from the words Docker and Go's
# net/http put in its error (the same on every Docker release we know), with the message and fix of each.
UNTRUSTED, PLAIN_HTTP, UNREACHABLE, REFUSED = "untrusted", "plain_http", "unreachable", "refused"
_REGISTRY_FAILURES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        UNTRUSTED,
        ("x509:", "certificate signed by unknown authority", "failed to verify certificate"),
        "registry.untrusted",
        "registry.untrusted_fix",
    ),
    (PLAIN_HTTP, ("server gave http response to https client",), "registry.plain_http", "registry.plain_http_fix"),
    (
        UNREACHABLE,
        (
            "dial tcp",  # every failure to connect (refused, timed out, no route, a firewall's EACCES, DNS)
            "connection refused",
            "no route to host",
            "network is unreachable",
            "i/o timeout",
            "no such host",
            "tls handshake timeout",
            "client.timeout exceeded",
            "context deadline exceeded",
            "connection reset by peer",
        ),
        "registry.unreachable",
        "registry.unreachable_fix",
    ),
    (
        REFUSED,
        ("unauthorized", "incorrect username or password", "authentication required", "denied"),
        "registry.refused",
        "registry.refused_fix",
    ),
)


def registry_failure(stderr: str) -> str:
    """The kind of a failed `docker login` or `docker pull` (UNTRUSTED, PLAIN_HTTP, UNREACHABLE,
    REFUSED), or "" when the error names none of them."""
    text = stderr.lower()
    for kind, words, _, _ in _REGISTRY_FAILURES:
        if any(word in text for word in words):
            return kind
    return ""


def registry_trouble(stderr: str, *, url: str, server: str, password_env: str) -> tuple[str, str]:
    """What went wrong between a server and the registry, and its fix: by its kind (registry_failure),
    or, for any other error, its first line and a `docker login` to try by hand."""
    kind = registry_failure(stderr)
    for known, _, message, fix in _REGISTRY_FAILURES:
        if known == kind:
            return t(message, url=url, server=server), t(fix, url=url, server=server, password_env=password_env)
    error = printable(first_line(stderr))
    return t("registry.failed", url=url, server=server, error=error), t("registry.failed_fix", url=url, server=server)


def registry_probe(registry: str, config_dir: str = "") -> Command:
    """A pull that cannot succeed, for a registry without credentials: its error says whether the
    registry answered (REFUSED, or "not found") or why it could not (UNTRUSTED, UNREACHABLE, ...)."""
    return pull(f"{registry}/tagship-doctor-probe:absent", config_dir)


def registry_answered(stderr: str) -> bool:
    """The registry_probe reached the registry: it refused the pull or had no such image."""
    text = stderr.lower()
    return registry_failure(stderr) == REFUSED or any(
        word in text for word in ("not found", "manifest unknown", "does not exist")
    )


MIRROR_NAME = "tagship-proxy"  # the repository, in the user's registry, of the proxy image tagship ships
_TAG_MAX = 128  # Docker's limit on a tag's length


def mirror_ref(registry: str, namespace: str, image: str, name: str = MIRROR_NAME) -> str:
    """Where an image the servers cannot pull travels through the user's registry:
    REGISTRY/NAMESPACE/NAME:TAG, the tag made of the image's name and tag (caddy:2-alpine: caddy-2-alpine)."""
    repository, _, digest = image.partition("@")
    head, _, last = repository.rpartition("/")
    base, _, tag = last.partition(":")
    words = [f"{head}/{base}" if head else base, tag or ("" if digest else "latest"), digest]
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(w for w in words if w)).strip(".-") or "image"
    if len(text) > _TAG_MAX:  # long names and digests: a prefix, made unique by a hash of the whole
        text = f"{text[: _TAG_MAX - 13]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return "/".join(p for p in (registry.rstrip("/"), namespace.strip("/"), name) if p) + f":{text}"


def exposed_ports(ref: str) -> Command:
    """The ports an image EXPOSEs, as JSON ({"8000/tcp": {}}, or null)."""
    return Command(("docker", "image", "inspect", "--format", "{{json .Config.ExposedPorts}}", ref))


def parse_exposed_ports(text: str) -> tuple[int, ...]:
    """TCP port numbers from exposed_ports' output, lowest first."""
    try:
        data = json.loads(text or "null")
    except json.JSONDecodeError:
        return ()
    found = (str(key).split("/", 1) for key in (data or {}) if isinstance(data, dict))
    return tuple(sorted(int(number) for number, *proto in found if number.isdigit() and proto in ([], ["tcp"])))


def image_id(ref: str) -> Command:
    return Command(("docker", "image", "inspect", "--format", "{{.Id}}", ref))


def inspect(*containers: str) -> Command:
    return Command(("docker", "inspect", "--type", "container", *containers))


def stop(grace_seconds: int, *containers: str) -> Command:
    """SIGTERM, then SIGKILL after the grace period."""
    return Command(("docker", "stop", "--time", str(grace_seconds), *containers))


def start(*containers: str) -> Command:
    return Command(("docker", "start", *containers))


def remove(*containers: str) -> Command:
    return Command(("docker", "rm", "--force", *containers))


def logs(container: str, lines: int = 30) -> Command:
    return Command(("docker", "logs", "--tail", str(lines), container))


def pushed_digest(output: str) -> str:
    """The manifest digest from `docker push` output ("v1: digest: sha256:... size: 1234")."""
    match = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    return match.group(1) if match else ""


def manifest_inspect(ref: str) -> Command:
    """The registry's manifest for a tag (exit non-zero when the tag is not there)."""
    return Command(("docker", "manifest", "inspect", "--verbose", ref))


def manifest_digests(text: str) -> tuple[str, str]:
    """(manifest digest, image config digest) from `docker manifest inspect --verbose` output."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return "", ""
    entry = data[0] if isinstance(data, list) and data else data
    if not isinstance(entry, dict):
        return "", ""
    manifest = entry.get("SchemaV2Manifest") or entry.get("OCIManifest") or {}
    return str((entry.get("Descriptor") or {}).get("digest", "")), str((manifest.get("config") or {}).get("digest", ""))


def label(ref: str, name: str) -> Command:
    return Command(("docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{name}"}}}}', ref))


def health_exec_until(
    container: str, interval: float, tries: int, timeout: float, check: tuple[str, ...], seconds: float = 1
) -> Command:
    """Succeeds at the first pass of the container's own healthcheck command, run in it up to
    `tries` times `interval` seconds apart (each try bounded by `timeout` seconds), tried no more
    once `seconds` (whole, at least 1) have passed."""
    script = scripts.load("health_exec_until")
    limit, budget = f"{max(1, round(timeout))}", f"{max(1, round(seconds))}"
    argv = ("sh", "-c", script, "sh", container, f"{interval:g}", str(tries), limit, budget, *check)
    return Command(argv, labels=((script, "<healthcheck until it passes>"),))


def healthcheck_command(info: dict[str, Any]) -> tuple[str, ...]:
    """The argv of a container's Docker healthcheck, from its `docker inspect` ("" parts: none)."""
    test = (info.get("Config") or {}).get("Healthcheck") or {}
    words = [str(w) for w in test.get("Test") or []]
    if len(words) >= 2 and words[0] == "CMD":
        return tuple(words[1:])
    if len(words) == 2 and words[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", words[1])
    return ()


def healthcheck_timeout(info: dict[str, Any]) -> float:
    """Seconds one run of the container's healthcheck may take (Docker's default: 30)."""
    nanoseconds = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Timeout") or 0
    return float(nanoseconds) / 1e9 if nanoseconds else 30.0


# ---- what a server's Docker says back: untrusted, checked field by field -------------------------

# Docker's IDs are 64 hex digits ("sha256:" first for an image); the pattern allows any short word of
# safe characters, since all that matters here is that one reaches argv and messages harmlessly.
CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
IMAGE_ID_RE = re.compile(r"[a-z0-9]+:[A-Za-z0-9_.-]{1,128}")
# Docker's container names ([a-zA-Z0-9][a-zA-Z0-9_.-]+), bounded; `docker inspect` puts a "/" first.
CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")
SERVICE_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")  # Compose's service names
IMAGE_REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,999}")  # a reference as Config.Image holds it
IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # Docker's tag grammar
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
STATES = frozenset({"created", "running", "paused", "restarting", "removing", "exited", "dead"})
HEALTH_STATES = frozenset({"starting", "healthy", "unhealthy", "none"})
LONGEST_TEXT = 10_000  # a label, a link or an address longer than this is no Docker's


def parse_inspect(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The containers of `docker inspect --type container` output that have the shape Docker gives
    them, in every field tagship reads, and why each other record was skipped."""
    try:
        data = json.loads(text or "[]")
    except (ValueError, RecursionError):
        return [], ["docker inspect's output is not JSON"]
    if not isinstance(data, list):
        return [], ["docker inspect's output is not a list of containers"]
    kept: list[dict[str, Any]] = []
    skipped: list[str] = []
    for number, entry in enumerate(data, 1):
        problem = inspect_problem(entry)
        if problem:
            skipped.append(f"record {number}: {problem}")
        else:
            kept.append(entry)
    return kept, skipped


def inspect_problem(entry: object) -> str:
    """Why a `docker inspect` record is not a container as Docker describes it ("" when it is).

    A field may be missing (tagship reads it with a default), but one that is there must have
    Docker's type and shape: a wrong type would crash the reader, a long or strange text would reach
    argv and messages."""
    if not isinstance(entry, dict):
        return "not an object"
    for check in (_identity_problem, _state_problem, _config_problem, _network_problem, _host_problem):
        problem = check(entry)
        if problem:
            return problem
    return ""


def _identity_problem(entry: dict[str, Any]) -> str:
    if not _matches(CONTAINER_ID_RE, entry, "Id"):
        return "Id is not a container ID"
    if not _matches(CONTAINER_NAME_RE, entry, "Name"):
        return "Name is not a container name"
    if not _matches(IMAGE_ID_RE, entry, "Image"):
        return "Image is not an image ID"
    count = entry.get("RestartCount", 0)
    if not _count(count):
        return "RestartCount is not a count"
    return ""


def _state_problem(entry: dict[str, Any]) -> str:
    state = entry.get("State", {})
    if not isinstance(state, dict):
        return "State is not an object"
    if not _one_of(state.get("Status", "running"), STATES):
        return "State.Status is not a container state"
    if any(not isinstance(state.get(flag, False), bool) for flag in ("Running", "Restarting", "Paused")):
        return "State.Running, Restarting or Paused is not true or false"
    code = state.get("ExitCode", 0)
    if isinstance(code, bool) or not isinstance(code, int) or not -(2**31) <= code < 2**31:
        return "State.ExitCode is not an exit code"
    health = state.get("Health")
    if health is not None and (not isinstance(health, dict) or not _one_of(health.get("Status"), HEALTH_STATES)):
        return "State.Health is not a health status"
    return ""


def _config_problem(entry: dict[str, Any]) -> str:
    config = entry.get("Config", {})
    if not isinstance(config, dict):
        return "Config is not an object"
    if not _matches(IMAGE_REF_RE, config, "Image"):
        return "Config.Image is not an image reference"
    labels = config.get("Labels") or {}
    if not isinstance(labels, dict) or not all(_short(k) and _short(v) for k, v in labels.items()):
        return "Config.Labels are not text labels"
    check = config.get("Healthcheck")
    if check is not None:
        if not isinstance(check, dict):
            return "Config.Healthcheck is not an object"
        test = check.get("Test") or []
        if not isinstance(test, list) or not all(_short(word) for word in test):
            return "Config.Healthcheck.Test is not a list of words"
        if not _count(check.get("Timeout", 0)):
            return "Config.Healthcheck.Timeout is not a number of nanoseconds"
    return ""


def _network_problem(entry: dict[str, Any]) -> str:
    settings = entry.get("NetworkSettings") or {}
    networks = settings.get("Networks") or {} if isinstance(settings, dict) else None
    if not isinstance(networks, dict):
        return "NetworkSettings.Networks is not an object"
    for name, endpoint in networks.items():
        if endpoint is None:
            continue
        if not _short(name) or not isinstance(endpoint, dict):
            return "a network endpoint is not an object"
        links = endpoint.get("Links") or []
        if not isinstance(links, list) or not all(_short(link) for link in links):
            return f"the links on network {name[:60]!r} are not text"
        if not _short(endpoint.get("IPAddress") or ""):
            return f"the address on network {name[:60]!r} is not text"
    return ""


def _host_problem(entry: dict[str, Any]) -> str:
    host = entry.get("HostConfig") or {}
    bindings = host.get("PortBindings") or {} if isinstance(host, dict) else None
    if not isinstance(bindings, dict):
        return "HostConfig.PortBindings is not an object"
    for entries in bindings.values():
        if not isinstance(entries or [], list) or not all(_binding(b) for b in entries or []):
            return "a port binding is not a host address and port"
    return ""


def _binding(entry: object) -> bool:
    return isinstance(entry, dict) and _short(entry.get("HostIp") or "") and _short(entry.get("HostPort") or "")


def _matches(pattern: re.Pattern[str], fields: dict[str, Any], key: str) -> bool:
    """The field is missing (read with a default), or text of that pattern (null is neither)."""
    value = fields.get(key, "")
    return key not in fields or (isinstance(value, str) and pattern.fullmatch(value) is not None)


def _one_of(value: object, words: frozenset[str]) -> bool:
    return isinstance(value, str) and value in words


def _short(value: object) -> bool:
    return isinstance(value, str) and len(value) <= LONGEST_TEXT


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def image_refs(repository: str) -> Command:
    """The tag and digest of each of the repository's images on the machine."""
    return Command(("docker", "image", "ls", "--digests", "--format", "{{.Tag}} {{.Digest}}", repository))


def parse_image_refs(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(tag, digest) pairs of image_refs' output ("<none>" where an image has none), and why each
    other line was skipped: a tag goes into `docker image rm REPOSITORY:TAG`, so only a Docker tag is one."""
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        tag, digest = (*words, "")[:2] if len(words) <= 2 else ("", "")
        if tag != "<none>" and not IMAGE_TAG_RE.fullmatch(tag):
            skipped.append(f"line {number}: the tag is not a Docker tag")
        elif digest != "<none>" and not DIGEST_RE.fullmatch(digest):
            skipped.append(f"line {number}: the digest is not a digest")
        else:
            found.append((tag, digest))
    return found, skipped
