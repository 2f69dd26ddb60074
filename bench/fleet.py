"""Fleet benchmark: `tagship deploy` wall time to 1, 3 and 6 lab servers, all at once.

Run from the repository root: `python bench/fleet.py [--deploys 3] [--servers 1,3,6]` (starts the lab
with as many servers as the largest count; do not run it while the lab tests run).

For each count N, the bundled example app (2-second boot) is deployed once to the first N servers
(untimed: the first deploy starts the proxy and its listener), then `--deploys` more releases are
deployed and timed, wall clock of the command from start to exit. The baseline, measured in the same
run: the same deploys to one server. Target (issue 12): 6 servers at most 1.3 x one server.
A rolling deploy (batches of one) to the largest count is timed too, for scale.

The lab's servers share this machine's CPUs, so their own work slows down as more run at once. A
second baseline shows how much: the servers' share of a deploy without tagship (over plain ssh, on
all of them at once, in the app's compose project: render it, start one more web container, wait
until it answers, remove it), on one server and on all. tagship's own cost of more servers is the
deploy's ratio beyond that one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ and tests/ live in the repo root

import lab
from tests.apprepo import AppRepo

RUN = time.strftime("%H%M%S", time.gmtime())


def make_app(the_lab: lab.Lab, root: Path, count: int, rollout: str, port: int) -> AppRepo:
    """The example app in a git repo, configured for the first `count` lab servers."""
    name = f"bench-fleet-{count}-{RUN}" + ("-rolling" if rollout else "")
    docker_config = root / "docker-config"
    docker_config.mkdir(exist_ok=True)
    repo = AppRepo.create(
        root / name,
        env={"DOCKER_CONFIG": str(docker_config), "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password},
        port=port,
        dotenv=f"APP_PORT={port}\nAPP_NAME={name}\nAPP_IMAGE_NAME={name}\nAPP_IMAGE_TAG=v0\n",
    )
    servers = ", ".join(f'"{s.name}"' for s in the_lab.servers[:count])
    (repo.path / "tagship.toml").write_text(
        f"servers = [{servers}]\n\n"
        f'[app]\npath = "/srv/{name}"\nupload = ["compose.yaml"]\n\n'
        f'[env]\nseed = ".env"\n\n[image]\nname = "{name}"\n\n'
        f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "bench"\nusername = "{the_lab.registry_user}"\n\n'
        f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n\n'
        f'[health]\npath = "/up"\n' + (f"\n[rollout]\n{rollout}\n" if rollout else "")
    )
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "--message", "The app")
    return repo


def timed_deploy(repo: AppRepo, version: str) -> float:
    repo.release(version)
    started = time.monotonic()
    done = repo.tagship("deploy")
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"deploy {version} to {repo.path.name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return took


def clean(servers: tuple[lab.LabServer, ...]) -> None:
    """Remove every container of this benchmark's apps (its listeners too) from the servers, so a
    run never meets an earlier one's ports."""
    for server in servers:
        listing = lab.server_docker(
            server, "ps", "-a", "--format", '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "tagship.app"}}'
        )
        ids = [row.split()[0] for row in listing.stdout.splitlines() if " bench-fleet-" in f" {row}"]
        if ids:
            lab.server_docker(server, "rm", "-f", *ids)


def server_work(servers: tuple[lab.LabServer, ...], directory: str) -> float:
    """Seconds for the servers' own share of a deploy, on all of them at once, without tagship: in the
    app's compose project on each, render it, start one more container of the web service and
    wait until it answers, remove it."""
    script = (
        f"cd {directory} && docker compose config --quiet && "
        "id=$(docker compose run --detach --no-deps web) && "
        'until docker exec "$id" wget -q -O /dev/null http://127.0.0.1:8080/up 2>/dev/null; do sleep 0.1; done; '
        'docker rm -f "$id" >/dev/null'
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        runs = list(pool.map(lambda s: subprocess.run(["ssh", s.name, script], timeout=120, check=False), servers))
    if any(run.returncode for run in runs):
        raise SystemExit(f"the server-work baseline failed: {[run.returncode for run in runs]}")
    return time.monotonic() - started


def series(the_lab: lab.Lab, root: Path, count: int, deploys: int, port: int, rollout: str = "") -> list[float]:
    repo = make_app(the_lab, root, count, rollout, port)
    timed_deploy(repo, "v1")  # the first deploy: the proxy and its listener start
    times = [timed_deploy(repo, f"v{n}") for n in range(2, deploys + 2)]
    print(f"  {count} server(s){' rolling' if rollout else ''}: " + ", ".join(f"{t:.2f}s" for t in times), flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploys", type=int, default=3, help="timed deploys per server count (default 3)")
    parser.add_argument("--servers", default="1,3,6", help="server counts (default 1,3,6)")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.servers.split(",")} | {1})
    if not 1 <= args.deploys <= 10 or counts[-1] > 12:
        raise SystemExit("--deploys 1..10, server counts up to 12")
    print(f"starting the lab with {counts[-1]} servers", flush=True)
    the_lab = lab.up(servers=counts[-1])
    clean(the_lab.servers)
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = Path(tmp)
        for number, count in enumerate(counts):
            medians[f"{count}"] = statistics.median(series(the_lab, root, count, args.deploys, 18950 + number))
        medians[f"{counts[-1]} rolling"] = statistics.median(
            series(the_lab, root, counts[-1], args.deploys, 18970, 'strategy = "rolling"\nbatch = 1')
        )
    directory = f"/srv/bench-fleet-{counts[-1]}-{RUN}"  # deployed on every server by now
    work = {
        count: statistics.median(server_work(the_lab.servers[:count], directory) for _ in range(args.deploys))
        for count in (1, counts[-1])
    }
    clean(the_lab.servers)
    base = medians["1"]
    print("\nservers          median wall   x one server")
    for label, value in medians.items():
        print(f"  {label:<14} {value:8.2f}s   {value / base:8.2f}")
    largest = medians[f"{counts[-1]}"] / base
    lab_ratio = work[counts[-1]] / work[1]
    shared = f"{len(the_lab.servers)} servers on this machine's CPUs"
    print(f"\nthe servers' own work without tagship: 1 server {work[1]:.2f}s, {counts[-1]} at once "
          f"{work[counts[-1]]:.2f}s (x {lab_ratio:.2f}: {shared})")  # fmt: skip
    verdict = "met" if largest <= 1.3 else "NOT met"
    print(f"target: {counts[-1]} servers <= 1.3 x one server: {largest:.2f} ({verdict}); "
          f"beyond the lab's own slowdown: x {largest / lab_ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
