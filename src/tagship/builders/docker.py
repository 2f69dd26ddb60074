"""Docker CLI command builders (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from tagship.builders import scripts
from tagship.builders.command import Command, sh

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


def with_config(config_dir: str) -> tuple[str, ...]:
    """The argv prefix that points a server's docker CLI at config_dir (nothing when empty): a server
    command's environment cannot travel otherwise (Command.env is for local commands)."""
    return ("env", f"DOCKER_CONFIG={config_dir}") if config_dir else ()


def untag(ref: str) -> Command:
    """Remove one name of an image; the image stays while another name holds it (--no-prune: its parents too)."""
    return Command(("docker", "image", "rm", "--no-prune", ref))


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


def health_exec_until(container: str, interval: float, tries: int, timeout: float, check: tuple[str, ...]) -> Command:
    """Succeeds at the first pass of the container's own healthcheck command, run in it up to
    `tries` times `interval` seconds apart (each try bounded by `timeout` seconds)."""
    script = scripts.load("health_exec_until")
    argv = ("sh", "-c", script, "sh", container, f"{interval:g}", str(tries), f"{max(1, round(timeout))}", *check)
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
