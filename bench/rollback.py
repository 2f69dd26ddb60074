"""Rollback benchmark: how long `tagship rollback` takes, against the app's own boot time, under load.

Run from the repository root: `python bench/rollback.py [--rollbacks 6]` (uses the lab; tslab-h1).

The bundled example app (2-second boot) is deployed as three releases, then rolled back and forth
(`tagship rollback` to the previous release, `tagship rollback VERSION` forward again) while a bounded
load runs through the proxy. Per rollback: wall time of the command, time until the target version is
first served, requests sent and failed. The baseline, measured in the same run on the same server: the
app's boot time (a fresh container of the same image, started to first 2xx). Target: wall time at most
2 s plus that boot time, and zero failed requests.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ and bench/ live in the repo root
sys.path.insert(0, str(Path(__file__).resolve().parent))

import zero_downtime as zd

import lab
from lab.load import Load

NAME, PORT = "bench-rollback", 18910


@dataclass
class Rollback:
    target: str
    wall: float
    to_served: float
    sent: int
    failed: int
    errors: list[str]
    slowest: str


class Repo(zd.TagshipDeploy):
    name, port = NAME, PORT


def tagship(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**repo.env, "TAGSHIP_REGISTRY_PASSWORD": repo.lab.registry_password}
    return subprocess.run(
        ["tagship", "-C", str(repo.repo.path), *args], env=env, text=True, capture_output=True, timeout=300, check=False
    )


def boot_time(repo: Repo, image: str) -> float:
    """Start a fresh container of the image on the server; seconds until it answers 2xx (via the proxy)."""
    name = "bench-rollback-boot"
    zd.ssh(repo.server, f"docker rm -f {name} >/dev/null 2>&1; true", check=False)
    probe = f"docker exec {zd.PROXY_NAME} wget -q -T 1 -O /dev/null http://{name}:8080/up"
    script = (
        f"docker run -d --name {name} --network tagship {image} >/dev/null && s=$(date +%s.%N); "
        f"until {probe} 2>/dev/null; do sleep 0.05; done; e=$(date +%s.%N); "
        f'docker rm -f {name} >/dev/null; echo "$s $e"'
    )
    started, ended = zd.ssh(repo.server, script).stdout.split()
    return float(ended) - float(started)


def measure(repo: Repo, clients: int, target: str, *args: str) -> Rollback:
    load = Load(repo.server.ip, PORT, fresh=clients, keepalive=clients).start()
    time.sleep(1)
    seen: list[float] = []
    stop = threading.Event()
    started = time.monotonic()

    def watch() -> None:  # first moment the target version is served
        while not stop.is_set() and time.monotonic() - started < 120:
            try:
                if zd.fetch(repo.server.ip, PORT) == target:
                    seen.append(time.monotonic())
                    return
            except OSError:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = tagship(repo, "rollback", *args)
    wall = time.monotonic() - started
    watcher.join(timeout=30)
    stop.set()
    time.sleep(1)
    report = load.stop()
    if result.returncode != 0:
        raise zd.BenchError(f"tagship rollback {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    to_served = (seen[0] - started) if seen else float("nan")
    took = sorted(
        ((float(t), step) for step, t in re.findall(r"done: (.+) \(([\d.]+)s\)", result.stderr)), reverse=True
    )
    slowest = ", ".join(f"{step} {t:.1f}s" for t, step in took[:3])
    return Rollback(target, wall, to_served, report.sent, report.failed, report.errors(), slowest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollbacks", type=int, default=6, help="measured rollbacks (default 6)")
    parser.add_argument(
        "--clients",
        type=int,
        default=2,
        help="fresh and keep-alive load clients each (default 2; 0 times the rollback alone)",
    )
    args = parser.parse_args(argv)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    the_lab = lab.up(servers=2)
    h1 = the_lab.servers[0]
    results: list[Rollback] = []
    with tempfile.TemporaryDirectory(prefix="tagship-bench-rb-") as tmp:
        work = Path(tmp)
        (work / "docker-config").mkdir()
        env = {**os.environ, "DOCKER_CONFIG": str(work / "docker-config"), "NO_COLOR": "1"}
        repo = Repo(the_lab, h1, work, env, work, zd.ROOT / "src")
        try:
            repo.setup()
            versions = [f"v{i}-{stamp}" for i in (1, 2, 3)]
            for version in versions:
                repo.repo.release(version)
                deployed = tagship(repo, "deploy")
                if deployed.returncode != 0:
                    raise zd.BenchError(f"deploy {version} failed:\n{deployed.stderr[-3000:]}")
            image = f"{the_lab.registry}/{zd.NAMESPACE}/{NAME}:{versions[0]}"
            boots = [boot_time(repo, image) for _ in range(3)]
            for i in range(args.rollbacks):
                # Even runs go back to the previous release, odd runs forward again to the newest.
                target = versions[1] if i % 2 == 0 else versions[2]
                forward = () if i % 2 == 0 else (target,)
                result = measure(repo, args.clients, target, *forward)
                results.append(result)
                took, first = f"{result.wall:.2f}", f"{result.to_served:.2f}"
                print(
                    f"  rollback to {target}: wall {took} s, served after {first} s, "
                    f"{result.failed} of {result.sent} requests failed; slowest steps: {result.slowest}",
                    flush=True,
                )
        finally:
            repo.cleanup()
    boot = statistics.median(boots)
    walls = [r.wall for r in results]
    served = [r.to_served for r in results]
    sent, failed = sum(r.sent for r in results), sum(r.failed for r in results)
    print()
    print(f"Rollback benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print("| what | value |")
    print("| --- | ---: |")
    print(f"| app boot time (baseline, median of 3) | {boot:.2f} s |")
    print(f"| rollbacks | {len(results)} |")
    print(f"| load clients (fresh + keep-alive) | {args.clients} + {args.clients} |")
    print(f"| wall time, mean / max | {statistics.mean(walls):.2f} / {max(walls):.2f} s |")
    print(f"| target version served after, mean / max | {statistics.mean(served):.2f} / {max(served):.2f} s |")
    print(f"| requests sent / failed | {sent} / {failed} |")
    print(f"| target (wall <= 2 s + boot = {2 + boot:.2f} s) | {'met' if max(walls) <= 2 + boot else 'NOT met'} |")
    errors = [e for r in results for e in r.errors][:5]
    if errors:
        print("errors:", errors)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
