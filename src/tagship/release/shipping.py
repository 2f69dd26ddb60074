"""image.transport = "ssh": images travel to the servers over their SSH connection, no registry anywhere.

A registry runs on this machine's loopback for the run (the `docker-registry` program of Debian,
distribution v2), with its storage in a cache directory that outlives runs. This machine's engine
pushes the image there; each server's engine pulls it through a reverse tunnel on the run's one
SSH connection (`ssh -O forward -R`), as from any registry: it fetches only the layers it lacks.
The blobs' digests stay the same from run to run (the storage is kept), which is what lets a
server recognise the layers it already has. docs/shipping.md says why this design.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tagship.builders import docker
from tagship.builders.command import Command
from tagship.errors import CommandFailed, MissingToolError, RegistryError
from tagship.messages import t
from tagship.remote.transport import Background, LocalTransport, Transport, tail

PROGRAMS = ("docker-registry", "registry")  # Debian's name, then upstream's
INSTALL_HINT = "shipping.install_registry"  # a catalog id: doctor gives the same hint
READY_SECONDS = 15.0


def program() -> str:
    """The registry program on this machine's PATH, or ""."""
    return next((found for name in PROGRAMS if (found := shutil.which(name))), "")


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """Where the registry keeps its blobs between runs: $XDG_CACHE_HOME/tagship/registry (~/.cache)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "tagship" / "registry"


def registry_config(storage: Path, port: int) -> str:
    """The local registry's config: loopback only, plain HTTP (engines allow that for 127.0.0.0/8)."""
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def loopback_ref(image: str, port: int | str, digest: str = "") -> str:
    """The image's name in the registry on 127.0.0.1:port (its own registry host, if any, dropped):
    with its tag, or by digest when one is given."""
    image = image.split("@", 1)[0]
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    return f"127.0.0.1:{port}/{name}@{digest}" if digest else f"127.0.0.1:{port}/{name}:{tag}"


_RESPONSE = re.compile(
    r'http\.request\.host="?127\.0\.0\.1:(\d+)"?.*http\.request\.method=GET.*'
    r'http\.request\.uri="?/v2/\S*/blobs/.*http\.response\.written=(\d+)'
)


def blob_bytes(log: str, port: int) -> int:
    """Bytes of layers (blobs) the registry's log says it sent to clients that came in on port."""
    return sum(int(m.group(2)) for m in map(_RESPONSE.search, log.splitlines()) if m and int(m.group(1)) == port)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalRegistry:
    """The registry on this machine for one run: start, push images, let servers pull, stop."""

    directory: Path
    port: int = 0
    process: Background | None = None
    pushed: dict[str, str] = field(default_factory=dict)  # image -> this machine's image ID of it
    digests: dict[str, str] = field(default_factory=dict)  # image -> its manifest digest in this registry

    @property
    def log(self) -> Path:
        return self.directory / "registry.log"

    def log_text(self, offset: int = 0) -> str:
        """What the registry logged this run from byte offset on (one line per request, with its bytes)."""
        try:
            with self.log.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def start(self, local: LocalTransport) -> None:
        """Start the registry on a free loopback port and wait until it answers."""
        found = program()
        if not found:
            raise MissingToolError(
                t("shipping.image_transport_ssh_needs"),
                hint=t(INSTALL_HINT),
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self.directory / "config.yml"
        config.write_text(registry_config(self.directory / "data", self.port), encoding="utf-8")
        self.process = local.start(Command((found, "serve", str(config))), str(self.log))
        deadline = time.monotonic() + READY_SECONDS
        while not self._answers():
            if not self.process.alive or time.monotonic() > deadline:
                self.stop()
                raise RegistryError(
                    t("shipping.registry_this_machine_did", port=self.port),
                    detail=tail(self.log_text()),
                )
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1) as answer:
                return int(answer.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Stop the registry (its storage stays for the next run); nothing to do when it is not running."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    def push(self, local: Transport, image: str) -> None:
        """Put this machine's image into the registry (only its new layers are written)."""
        if "@" in image:
            raise RegistryError(
                t("shipping.named_digest_which_server", image=image),
                hint=t("shipping.name_tag_name_tag"),
            )
        found = local.run(docker.image_id(image), show=False, check=False)
        if not found.ok:
            raise RegistryError(t("shipping.not_this_machine_so", image=image))
        ref = loopback_ref(image, self.port)
        local.run(docker.tag(image, ref))
        try:
            pushed = local.run(docker.push(ref), stream=True)
        except CommandFailed as exc:
            raise RegistryError(t("shipping.push_registry_this_machine", image=image), detail=exc.stderr_tail) from exc
        finally:
            local.run(docker.untag(ref), show=False, check=False)
        self.pushed[image] = found.stdout.strip()
        self.digests[image] = docker.pushed_digest(pushed.stdout)

    def send(self, server: Transport, image: str) -> int:
        """The server's engine pulls the image through a reverse tunnel (the layers it lacks), under
        the image's own name; the bytes of layers sent (0 when it had this very image)."""
        if server.run(docker.image_id(image), show=False, check=False).stdout.strip() == self.pushed[image]:
            server.out.info(t("shipping.has_already", name=server.name, image=image))
            return 0
        remote_port = server.forward_remote(self.port)
        logged = self.log_size()  # a server may get the same tunnel port again: count this pull's lines only
        try:
            # By digest when known: this registry takes pushes from any local user without a password,
            # and the digest makes the server get exactly what this run pushed.
            ref = loopback_ref(image, remote_port, self.digests.get(image, ""))
            try:
                server.run(docker.pull(ref), stream=True)
            except CommandFailed as exc:
                raise RegistryError(
                    t("shipping.could_not_pull_this", name=server.name, image=image),
                    hint=t("shipping.check_server_s_docker"),
                    detail=exc.stderr_tail,
                ) from exc
            server.run(docker.tag(ref, image))
            server.run(docker.untag(ref))  # the image stays, under its own name only
        finally:
            server.cancel_forward(remote_port, self.port)
        sent = blob_bytes(self.log_text(logged), remote_port)
        server.out.info(t("shipping.arrived_over_ssh_bytes", name=server.name, image=image, sent=sent))
        return sent
