"""Registry-less shipping: bytes and time to get a code-only change onto a server over ssh.

Run from the repository root, holding the lab lock:
`flock /tmp/tagship-lab.lock python bench/ssh_transport.py [--rounds 3] [--code-kb 2048]` (uses tslab-h1).

The image: the lab's Debian base (about 117 MB) plus a layer of "code" (text files, code-kb of
them, compressible like source code). Each round changes every code file (a rebuilt `COPY . /app`
layer: the base stays), then gets the new image onto the server three ways, measured in the same
round on the same server:

- ssh: tagship's image.transport = "ssh" path (release/shipping.py): push to the registry on this
  machine, the server's engine pulls through a reverse tunnel on its ssh connection;
- save/load: `docker save IMAGE | ssh SERVER docker load`, the usual registry-less way;
- registry: push to the lab registry (TLS, password), the server's engine pulls from it.

Bytes: what the server received on its one network link (the host side's veth tx counter) while
the image travelled: ssh's and TCP's framing included. The changed layers' size: the new layers'
tar size (as `docker save` writes them), and as the registry stores them (gzip). Target (issue
12): ssh bytes at most 1.2 x the changed layers' size. Wall time: from the push's start to the
image being on the server, ssh against the registry.

Then whole deploys (`--deploys`, 0 to skip): the bundled example app plus a code directory of
code-kb, deployed to tslab-h1 by `tagship deploy` once with image.transport = "ssh" and once
through the lab registry (two apps side by side, a release of each in turn), every release
changing only the code: the command's wall time and its image steps (build excluded).
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ lives in the repo root
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import lab
from lab._core import BASE_IMAGE
from tagship.commands.demo import copy_app
from tagship.output import Output
from tagship.release.shipping import LocalRegistry
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, SshTransport

NAME = "bench-ssh/app"
WORDS = ("def", "class", "return", "self", "import", "from", "value", "items", "result", "config", "if", "else")


@dataclass
class Round:
    changed_tar: int  # the new layers, uncompressed (as docker save sends them)
    changed_gz: int  # the new layers as the registry stores them
    ssh_bytes: int
    ssh_blobs: int  # what the local registry's log says it sent
    ssh_seconds: float
    save_bytes: int
    save_seconds: float
    registry_bytes: int
    registry_seconds: float


def run(argv: list[str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')[-800:]}")
    return done.stdout


def received(server: lab.LabServer) -> int:
    """Bytes the server has received on its link so far (the host side's transmit counter)."""
    veth = "tsl" + server.name.removeprefix("tslab-h")  # the lab's host-side link of server N (lab/_core.py)
    return int(Path(f"/sys/class/net/{veth}/statistics/tx_bytes").read_text())


def build(version: str, code_kb: int, work: Path) -> str:
    """The image for a version: the base plus code_kb of code files, every file different per version."""
    ctx = work / version
    (ctx / "app").mkdir(parents=True)
    rng = random.Random(version)
    for n in range(max(1, code_kb // 16)):
        lines = (" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(16 * 1024 // 60))
        (ctx / "app" / f"module_{n}.py").write_text(f"# {version}\n" + "\n".join(lines) + "\n")
    (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app /app\n")
    image = f"{NAME}:{version}"
    run(["docker", "build", "--quiet", "--tag", image, str(ctx)])
    return image


def changed_layers(image: str, previous: str) -> int:
    """Uncompressed bytes of the image's layers the previous image lacks (from docker save's tar)."""
    old = set(json.loads(run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", previous])))
    with tarfile.open(fileobj=io.BytesIO(run(["docker", "save", image]))) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(saved.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = zip(manifest[0]["Layers"], config["rootfs"]["diff_ids"], strict=True)
        return sum(saved.getmember(path).size for path, diff_id in layers if diff_id not in old)


def server_lacks(server: lab.LabServer, *images: str) -> None:
    lab.server_docker(server, "image", "rm", *images)


def via_ssh(
    server: lab.LabServer, registry: LocalRegistry, local: LocalTransport, ssh: SshTransport, image: str
) -> tuple[int, int, float]:
    before, started = received(server), time.monotonic()
    registry.push(local, image)
    blobs = registry.send(ssh, image)
    return received(server) - before, blobs, time.monotonic() - started


def via_save_load(server: lab.LabServer, image: str) -> tuple[int, float]:
    before, started = received(server), time.monotonic()
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(["ssh", server.name, "docker load"], stdin=save.stdout, capture_output=True, timeout=600)
    save.wait()
    if save.returncode or load.returncode:
        raise SystemExit(f"docker save | ssh docker load failed: {load.stderr.decode(errors='replace')[-400:]}")
    return received(server) - before, time.monotonic() - started


def via_registry(the_lab: lab.Lab, server: lab.LabServer, image: str) -> tuple[int, float]:
    """Push to the lab registry, the server pulls: (bytes, seconds)."""
    remote = f"{the_lab.registry}/{image}"
    run(["docker", "tag", image, remote])
    before, started = received(server), time.monotonic()
    run(["docker", "--config", str(the_lab.root / "docker-config"), "push", remote])
    pulled = lab.server_docker(server, "pull", remote)
    seconds = time.monotonic() - started
    if pulled.returncode:
        raise SystemExit(f"pull of {remote} on {server.name} failed: {pulled.stderr[-400:]}")
    return received(server) - before, seconds


def gzip_layers(registry: LocalRegistry, image: str) -> dict[str, int]:
    """The image's layers as the registry on this machine stores them: digest -> gzip size."""
    name, tag = image.rsplit(":", 1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{registry.port}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return {layer["digest"]: layer["size"] for layer in json.load(answer)["layers"]}


TAGSHIP = [sys.executable, "-m", "tagship"]
# The image steps of a deploy, by transport: their "done: STEP (N.Ns)" lines are summed.
IMAGE_STEPS = {
    "ssh": (r"start a registry on this machine", r"push \S+ to it", r"\S+ over ssh \(only", r"stop the registry"),
    "registry": (r"registry login", r"check \S+ in the registry", r"push \S+", r"pull \S+"),
}


@dataclass
class Deploy:
    transport: str
    wall: float
    image_steps: float


def deploy_repo(
    the_lab: lab.Lab, server: lab.LabServer, work: Path, transport: str, port: int
) -> tuple[Path, dict[str, str]]:
    """A git repo of the example app configured for server, by transport; its environment."""
    name = f"bench-ssh-{transport}"
    path = work / name
    path.mkdir()
    copy_app(path)
    (path / ".env").write_text(f"APP_PORT={port}\nAPP_NAME={name}\nAPP_IMAGE_NAME={name}\nAPP_IMAGE_TAG=v0\n")
    (path / ".gitignore").write_text(".env\n")
    registry = (
        f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "bench-ssh"\nusername = "{the_lab.registry_user}"\n\n'
        if transport == "registry"
        else ""
    )
    (path / "tagship.toml").write_text(
        f'servers = ["{server.name}"]\n\n[app]\npath = "/srv/{name}"\nupload = ["compose.yaml"]\n\n'
        f'[env]\nseed = ".env"\n\n[image]\nname = "{name}"\ntransport = "{transport}"\n\n{registry}'
        f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n\n'
        f'[health]\npath = "/up"\n'
    )
    for args in (["init", "--quiet", "--initial-branch=main"], ["config", "user.name", "Bench"],
                 ["config", "user.email", "bench@tagship.invalid"]):  # fmt: skip
        run(["git", "-C", str(path), *args])
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        "DOCKER_CONFIG": str(the_lab.root / "docker-config"),
        "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password,
        "XDG_CACHE_HOME": str(work / "cache"),
        "NO_COLOR": "1",
    }
    return path, env


def release_and_deploy(path: Path, env: dict[str, str], transport: str, version: str, code_kb: int) -> Deploy:
    """Commit a release whose code files all changed, tag it, deploy it; wall time and image steps."""
    code = path / "www" / "code"
    code.mkdir(exist_ok=True)
    rng = random.Random(version)
    for n in range(max(1, code_kb // 16)):
        lines = (" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(16 * 1024 // 60))
        (code / f"module_{n}.py").write_text(f"# {version}\n" + "\n".join(lines) + "\n")
    (path / "www" / "version.txt").write_text(version + "\n")
    run(["git", "-C", str(path), "add", "--all"])
    run(["git", "-C", str(path), "commit", "--quiet", "--message", f"Release {version}"])
    run(["git", "-C", str(path), "tag", version])
    started = time.monotonic()
    done = subprocess.run([*TAGSHIP, "-C", str(path), "deploy"], env=env, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    if done.returncode:
        raise SystemExit(f"tagship deploy {version} ({transport}) exited {done.returncode}:\n{done.stderr[-3000:]}")
    steps = re.findall(r"done: (.+) \(([\d.]+)s\)", done.stderr)
    wanted = IMAGE_STEPS[transport]
    image = sum(float(s) for title, s in steps if any(re.match(p, title) for p in wanted))
    return Deploy(transport, wall, image)


def whole_deploys(the_lab: lab.Lab, server: lab.LabServer, deploys: int, code_kb: int) -> list[Deploy]:
    with tempfile.TemporaryDirectory(prefix="bench-ssh-deploy-") as tmp:
        repos = {
            t: deploy_repo(the_lab, server, Path(tmp), t, port) for t, port in (("ssh", 18960), ("registry", 18961))
        }
        tag = time.strftime("%H%M%S")
        for transport, (path, env) in repos.items():  # a first release of each: the base is on the server
            release_and_deploy(path, env, transport, f"b{tag}-0", code_kb)
        found = []
        for n in range(1, deploys + 1):
            for transport, (path, env) in repos.items():
                found.append(release_and_deploy(path, env, transport, f"b{tag}-{n}", code_kb))
        for transport in repos:  # the apps, their images here and there (the servers' and this machine's)
            line = (
                f"cd /srv/bench-ssh-{transport} && docker compose down --remove-orphans; "
                f"rm -rf /srv/bench-ssh-{transport}; "
                f"docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep 'bench-ssh-{transport}:' "
                "| xargs -r docker image rm >/dev/null"
            )
            subprocess.run(["ssh", server.name, line], capture_output=True, timeout=120, check=False)
            names = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).decode().split()
            mine = [n for n in names if n.split(":")[-2].endswith(f"bench-ssh-{transport}")]
            subprocess.run(["docker", "image", "rm", *mine], capture_output=True, timeout=120, check=False)
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code-kb", type=int, default=2048)
    parser.add_argument("--deploys", type=int, default=3)
    args = parser.parse_args()
    the_lab = lab.current()  # never up(): that would stop servers another session started
    server = the_lab.servers[0]
    out = Output(err=io.StringIO())  # tagship's own lines are not the bench's output
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    ssh = SshTransport(server=server_mod.parse(server.name), out=out)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        work = Path(tmp)
        registry = LocalRegistry(Path(os.environ.get("BENCH_REGISTRY_DIR") or work / "registry-cache"))
        registry.start(local)
        try:
            ssh.connect()
            images = [build(f"v{n}", args.code_kb, work) for n in range(args.rounds + 1)]
            server_lacks(server, *images, *(f"{the_lab.registry}/{i}" for i in images))
            # v0 everywhere first: the server has the base, as after any first deploy.
            via_ssh(server, registry, local, ssh, images[0])
            via_registry(the_lab, server, images[0])
            for previous, image in itertools.pairwise(images):
                tar_size = changed_layers(image, previous)
                # Each way starts from a server without the new layer (the layer goes with its image).
                ssh_bytes, blobs, ssh_seconds = via_ssh(server, registry, local, ssh, image)
                server_lacks(server, image)
                registry_bytes, registry_seconds = via_registry(the_lab, server, image)
                old_layers = gzip_layers(registry, previous)
                gz = sum(size for digest, size in gzip_layers(registry, image).items() if digest not in old_layers)
                server_lacks(server, f"{the_lab.registry}/{image}")
                save_bytes, save_seconds = via_save_load(server, image)
                rounds.append(
                    Round(tar_size, gz, ssh_bytes, blobs, ssh_seconds, save_bytes, save_seconds, registry_bytes,
                          registry_seconds)
                )  # fmt: skip
        finally:
            registry.stop()
            ssh.close()
            names = [f"{NAME}:v{n}" for n in range(args.rounds + 1)]
            server_lacks(server, *names, *(f"{the_lab.registry}/{name}" for name in names))
            subprocess.run(["docker", "image", "rm", *names, *(f"{the_lab.registry}/{n}" for n in names)],
                           capture_output=True, timeout=120, check=False)  # fmt: skip
    report(rounds, args.code_kb)
    if args.deploys:
        report_deploys(whole_deploys(the_lab, server, args.deploys, args.code_kb))


def report_deploys(deploys: list[Deploy]) -> None:
    print("whole deploys (tagship deploy, code-only change):")
    for transport in ("ssh", "registry"):
        mine = [d for d in deploys if d.transport == transport]
        walls = ", ".join(f"{d.wall:.1f}" for d in mine)
        images = ", ".join(f"{d.image_steps:.2f}" for d in mine)
        print(
            f"  {transport:<8} wall {statistics.median(d.wall for d in mine):5.1f} s (median; {walls}), "
            f"image steps {statistics.median(d.image_steps for d in mine):5.2f} s ({images})"
        )


def report(rounds: list[Round], code_kb: int) -> None:
    print(f"# ssh transport, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, code layer {code_kb} KB")
    print(
        "round  changed(tar)  changed(gz)   ssh bytes  (blobs)    save|load bytes  registry bytes"
        "  ssh/changed(tar)  ssh s  save s  registry s"
    )
    for n, r in enumerate(rounds, 1):
        print(
            f"{n:>5}  {r.changed_tar:>12,}  {r.changed_gz:>11,}  {r.ssh_bytes:>10,}  ({r.ssh_blobs:,})  "
            f"{r.save_bytes:>15,}  {r.registry_bytes:>14,}  {r.ssh_bytes / r.changed_tar:>16.2f}  "
            f"{r.ssh_seconds:>5.2f}  {r.save_seconds:>6.2f}  {r.registry_seconds:>10.2f}"
        )

    def med(values: list[float]) -> float:
        return statistics.median(values)

    ratio = med([r.ssh_bytes / r.changed_tar for r in rounds])
    print(
        f"median ssh bytes / changed layers (tar): {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})"
    )
    print(f"median ssh bytes / changed layers (gzip): {med([r.ssh_bytes / r.changed_gz for r in rounds]):.2f}")
    print(f"median ssh bytes / save|load bytes: {med([r.ssh_bytes / r.save_bytes for r in rounds]):.4f}")
    print(
        f"median wall: ssh {med([r.ssh_seconds for r in rounds]):.2f} s, save|load "
        f"{med([r.save_seconds for r in rounds]):.2f} s, registry {med([r.registry_seconds for r in rounds]):.2f} s"
    )


if __name__ == "__main__":
    main()
