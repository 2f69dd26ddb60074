"""Rollback of a DjangoStarter-like project (Django + gunicorn, redis, the user's Caddy, a 30 s Docker
healthcheck) against the app's own boot time, measured in the same run.

Run from the repository root: `python bench/rollback_django.py [--rollbacks 4]` (uses the lab, both
servers; builds the lab's Django images on first use, about 35 s).

The project of tests/djangostarter.py is deployed as v1 and v2 to both lab servers, then rolled back
and forth (`tagship rollback`, then `tagship rollback v2`), each under a light load through the
user's Caddy on tslab-h1. Per rollback: wall time of the command and requests failed. The baseline:
the app's boot time, a fresh container of the same image (`docker run` with the project's network
and env) until its /healthz/ answers 200, started on every server at once as a rollback does (the
lab's servers share this machine's cores), the slowest server's; measured before each rollback. Target
(issue 9): rollback wall time at most the boot time + 1 s (the fixed cost of connecting, locking,
switching and recording), with zero failed requests. Before tagship ran the container's own
healthcheck, every rollback waited for Docker's first check, 30 s after start.
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
from lab.load import Load
from tests import djangostarter
from tests.apprepo import SESSION_NAMESPACE

NAME = "bench-djs"


def boot_seconds(server: lab.LabServer, image: str) -> float:
    """Seconds from `docker run` of the app's image until /healthz/ answers 200 inside it."""
    probe = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz/', timeout=1)"
    script = (
        f"docker rm -f {NAME}-boot >/dev/null 2>&1; s=$(date +%s.%N); "
        f"docker run -d --name {NAME}-boot --network {NAME} -e REDIS_URL=redis://redis:6379/0 "
        f"--env-file /srv/{NAME}/.env {image} gunicorn config.wsgi:application -b 0.0.0.0:8000 >/dev/null; "
        f'until docker exec {NAME}-boot python -c "{probe}" 2>/dev/null; do sleep 0.05; done; '
        f"e=$(date +%s.%N); docker rm -f {NAME}-boot >/dev/null; echo $s $e"
    )
    done = subprocess.run(["ssh", server.name, script], capture_output=True, text=True, timeout=120, check=True)
    start, end = (float(x) for x in done.stdout.split())
    return end - start


def boot_everywhere(servers: tuple[lab.LabServer, ...], image: str) -> float:
    """The boot time when every server boots the app at once, as a rollback makes them: the slowest
    server's. (The lab's servers share this machine's cores: one server booting alone is faster.)"""
    with ThreadPoolExecutor(len(servers)) as pool:
        return max(pool.map(lambda server: boot_seconds(server, image), servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rollback of a DjangoStarter-like project vs its boot time")
    parser.add_argument("--rollbacks", type=int, default=4)
    args = parser.parse_args(argv)
    the_lab = lab.up(servers=2)
    lab.ensure_django_images()
    h1 = the_lab.servers[0]
    for server in the_lab.servers:
        djangostarter.remove_project(server, NAME)
    with tempfile.TemporaryDirectory(prefix="bench-djs-") as work:
        env = {"TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password, "NO_COLOR": "1", "DOCKER_CONFIG": work}
        repo = djangostarter.create(Path(work) / "app", the_lab, app_name=NAME, namespace=SESSION_NAMESPACE, env=env)
        for version in ("v1", "v2"):
            repo.release(version)
            done = repo.tagship("deploy")
            if done.returncode != 0:
                raise SystemExit(f"deploy {version} failed:\n{done.stderr[-3000:]}")
        rows = []
        targets = ["v1", "v2"] * ((args.rollbacks + 1) // 2)
        for target in targets[: args.rollbacks]:
            boot = boot_everywhere(the_lab.servers, f"{repo.repository}:{target}")
            load = Load(h1.ip, repo.web_port, path="/version/", fresh=1, keepalive=1, rate=20).start()
            started = time.monotonic()
            done = repo.tagship("rollback", *([] if target == "v1" else [target]))
            wall = time.monotonic() - started
            time.sleep(0.5)
            report = load.stop()
            if done.returncode != 0:
                raise SystemExit(f"rollback to {target} failed:\n{done.stderr[-3000:]}")
            switched = report.served_from(f"{target}")
            served = switched - started if switched is not None else float("nan")
            rows.append((target, boot, wall, served, report.sent, report.failed))
            print(f"rollback to {target}: {wall:.2f}s, served after {served:.2f}s (boot {boot:.2f}s), "
                  f"{report.failed} of {report.sent} failed", file=sys.stderr)  # fmt: skip
    for server in the_lab.servers:
        djangostarter.remove_project(server, NAME)
    print("\nrollback of the DjangoStarter-like layout (2 servers), against the app's boot time:")
    head = f"{'to':<4} {'boot s':>7} {'rollback s':>11} {'over boot':>10} {'served s':>9} {'over boot':>10}"
    print(f"{head} {'failed/sent':>12}")
    for target, boot, wall, served, sent, failed in rows:
        print(
            f"{target:<4} {boot:7.2f} {wall:11.2f} {wall - boot:10.2f} {served:9.2f} {served - boot:10.2f} "
            f"{failed:>5}/{sent:<6}"
        )
    over = statistics.mean(wall - boot for _, boot, wall, _, _, _ in rows)
    served_over = statistics.mean(served - boot for _, boot, _, served, _, _ in rows)
    failed = sum(r[5] for r in rows)
    met = all(wall <= boot + 1 for _, boot, wall, _, _, _ in rows) and failed == 0
    print(f"\nserved s: from the command's start until every client on {h1.name} gets the target release")
    print(f"mean over boot: the command {over:.2f}s, the release served {served_over:.2f}s")
    print(f"target (the command ≤ boot + 1 s, 0 failed): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
