"""Proxy overhead: requests straight to the app, through one Caddy hop, and through tagship's path.

Run from the repository root: `python bench/proxy_overhead.py [--rounds 3] [--requests 4000] [--concurrency 8]`
(uses the lab; tslab-h1; needs `ab`, from apache2-utils, which scripts/install-system.sh installs).

The app is a Caddy answering "ok" on :8080 (fast and keep-alive capable, so the proxies' cost is
not hidden behind a slow app). Three paths to it on the same server, measured in one run:

- direct: the app container's own published port;
- one Caddy hop: a plain Caddy container (`caddy reverse-proxy`) in front of it, as a user's own
  reverse proxy would be (the baseline);
- tagship: the app deployed by `tagship deploy`, through tagship's path for a published port: the
  port's listener (HAProxy), one hop to the app's container.

Paired runs: every round runs each path once per connection mode, interleaved (direct, hop,
tagship, then again), with `ab` on this machine: keep-alive connections (`-k`) and a fresh
connection per request. Per path and mode: requests per second and p50/p99 latency (the median
over the rounds). Target (issue 9): tagship's path within 10 % of one Caddy hop.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab package lives in the repo root

import lab

TAGSHIP = [sys.executable, "-m", "tagship"]
NAME = "bench-po"
DIRECT_PORT, HOP_PORT, TAGSHIP_PORT = 18941, 18942, 18943
APP, HOP = f"{NAME}-app", f"{NAME}-hop"
PATHS = ("direct", "one Caddy hop", "tagship")
MODES = ("keep-alive", "fresh")


@dataclass
class Sample:
    rps: float
    p50: float  # ms
    p99: float  # ms
    failed: int


def ssh(server: lab.LabServer, line: str, stdin: str | None = None) -> str:
    argv = ["ssh", server.name, line]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{server.name}: {line}: {done.stderr.strip()}")
    return done.stdout


def app_dockerfile(caddy_image: str) -> str:
    return textwrap.dedent(
        f"""\
        FROM {caddy_image}
        RUN printf ':8080 {{\\n\\trespond "ok"\\n}}\\n' > /etc/caddy/Caddyfile
        CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
        """
    )


def deploy_with_tagship(the_lab: lab.Lab, server: lab.LabServer, work: Path) -> None:
    """The same app, deployed by tagship (its own image, through the lab registry)."""
    repo = work / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(app_dockerfile(the_lab.caddy_image))
    (repo / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}\n"
        f'    ports:\n      - "{TAGSHIP_PORT}:8080"\n'
    )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    (repo / ".env").write_text(f"APP_IMAGE_NAME={NAME}\nAPP_IMAGE_TAG=v0\n")
    (repo / ".gitignore").write_text(".env\n")
    (repo / "tagship.toml").write_text(
        f'servers = ["{server.name}"]\n\n[app]\npath = "/srv/{NAME}"\nupload = ["compose.yaml"]\n\n'
        f'[env]\nseed = ".env"\n\n[image]\nname = "{NAME}"\n\n'
        f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "bench"\nusername = "{the_lab.registry_user}"\n\n'
        f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n'
    )
    for argv in (
        ["init", "--quiet", "--initial-branch=main"],
        ["-c", "user.name=bench", "-c", "user.email=bench@tagship.invalid", "add", "--all"],
        ["-c", "user.name=bench", "-c", "user.email=bench@tagship.invalid", "commit", "--quiet", "-m", "app"],
        ["tag", f"v1-{stamp}"],
    ):
        subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True)
    env = {**os.environ, "TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password, "NO_COLOR": "1"}
    done = subprocess.run([*TAGSHIP, "-C", str(repo), "deploy"], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"tagship deploy failed:\n{done.stderr[-3000:]}")


def start_direct_and_hop(the_lab: lab.Lab, server: lab.LabServer) -> None:
    lab.server_docker(server, "pull", the_lab.caddy_image)
    ssh(server, f"docker build -q -t {APP}:1 - >/dev/null", stdin=app_dockerfile(the_lab.caddy_image))
    ssh(server, f"docker rm -f {APP} {HOP} >/dev/null 2>&1; true")
    ssh(server, f"docker run -d --name {APP} --network tagship -p {DIRECT_PORT}:8080 {APP}:1 >/dev/null")
    hop = f"caddy reverse-proxy --from :80 --to {APP}:8080"
    ssh(server, f"docker run -d --name {HOP} --network tagship -p {HOP_PORT}:80 {the_lab.caddy_image} {hop} >/dev/null")


def ab(url: str, requests: int, concurrency: int, keepalive: bool) -> Sample:
    """One `ab` run: requests per second and latency percentiles (ms) from its CSV."""
    with tempfile.NamedTemporaryFile(suffix=".csv") as table:
        argv = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), "-s", "10", "-e", table.name]
        done = subprocess.run([*argv, *(["-k"] if keepalive else []), url], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"ab {url}: {done.stderr.strip()}")
        percent = {
            int(float(row[0])): float(row[1]) for row in list(csv.reader(io.StringIO(Path(table.name).read_text())))[1:]
        }
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"Failed requests:\s+(\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", done.stdout)
    return Sample(rps, percent[50], percent[99], failed + (int(non2xx.group(1)) if non2xx else 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    the_lab = lab.up(servers=2)
    server = the_lab.servers[0]
    ports = dict(zip(PATHS, (DIRECT_PORT, HOP_PORT, TAGSHIP_PORT), strict=True))
    with tempfile.TemporaryDirectory(prefix="bench-po-") as work:
        deploy_with_tagship(the_lab, server, Path(work))
        start_direct_and_hop(the_lab, server)
        samples: dict[tuple[str, str], list[Sample]] = {(p, m): [] for p in PATHS for m in MODES}
        try:
            for path in PATHS:  # warm every path up once
                ab(f"http://{server.ip}:{ports[path]}/", 500, args.concurrency, True)
            for number in range(args.rounds):
                for mode in MODES:
                    for path in PATHS:
                        sample = ab(
                            f"http://{server.ip}:{ports[path]}/", args.requests, args.concurrency, mode == MODES[0]
                        )
                        samples[(path, mode)].append(sample)
                print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            ssh(server, f"docker rm -f {APP} {HOP} >/dev/null 2>&1; true")
    return report(samples, args)


def report(samples: dict[tuple[str, str], list[Sample]], args: argparse.Namespace) -> int:
    print(f"\nproxy overhead, {args.rounds} rounds of {args.requests} requests, concurrency {args.concurrency}:")
    print(f"{'mode':<11} {'path':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'req/s vs hop':>13}")
    met = True
    for mode in MODES:
        hop_rps = statistics.median(s.rps for s in samples[("one Caddy hop", mode)])
        for path in PATHS:
            runs = samples[(path, mode)]
            rps = statistics.median(s.rps for s in runs)
            p50 = statistics.median(s.p50 for s in runs)
            p99 = statistics.median(s.p99 for s in runs)
            failed = sum(s.failed for s in runs)
            ratio = rps / hop_rps
            print(f"{mode:<11} {path:<14} {rps:9.0f} {p50:8.2f} {p99:8.2f} {failed:7d} {ratio:12.0%}")
            if path == "tagship" and ratio < 0.9:
                met = False
    print(
        f"\ntarget (tagship's path within 10 % of one Caddy hop, in requests per second): {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
