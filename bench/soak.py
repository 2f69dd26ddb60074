"""Soak: a DjangoStarter-like project deployed every minute for half an hour under load, good and
broken releases in turn, with a rollback every five minutes.

Run from the repository root: `python bench/soak.py [--minutes 30]` (uses the lab, both servers;
builds the lab's Django images on first use, about 35 s; do not run it while the lab tests run).

The project of tests/djangostarter.py (Django + gunicorn, redis, the user's own Caddy calling the
app by service name through tagship's gate) is deployed as v1 to both lab servers. Then, for
--minutes minutes, load runs on both servers on both entry paths: the app's published port
(tagship's listener) and the user's Caddy (the consumer by name), one fresh-connection and one
keep-alive client each. Every minute a release is deployed, a good one and a broken one (its
/healthz/ answers 500, so the health gate refuses it) in turn; after every fifth minute's deploy,
`tagship rollback`. Host names are not on the lab yet (no certificate can be issued there: issue 21).

It prints failed requests per server and entry (target: 0), and, at the start and the end, each
tagship proxy container's memory and open descriptors (the baseline: the same container at the
start; target: no growth beyond noise), the servers' disk used by images, and the size of the
app's history and audit files.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ and tests/ live in the repo root

import lab
from lab.load import Load, LoadReport
from tests import djangostarter
from tests.apprepo import SESSION_NAMESPACE

NAME = "bench-soak"
RATE = 10.0  # requests per second per client: 80 a second in all, light beside the deploys
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


@dataclass(frozen=True)
class Proxy:
    """One tagship proxy container at one moment."""

    started: str
    memory: int  # bytes
    descriptors: int  # open in every process of the container


def _bytes(text: str) -> int:
    """'12.5MiB' -> bytes."""
    m = re.fullmatch(r"([\d.]+)\s*([A-Za-z]+)", text.strip())
    return int(float(m.group(1)) * _UNITS.get(m.group(2), 1)) if m else 0


def proxies(server: lab.LabServer) -> dict[str, Proxy]:
    """Every container of tagship's (the proxy, the port listeners, the project's gate) on server."""
    names = lab.server_docker(server, "ps", "--format", "{{.Names}}").stdout.split()
    found = {}
    for name in (n for n in names if "tagship" in n):
        stats = lab.server_docker(server, "stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout
        started = lab.server_docker(server, "inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()
        count = "n=0; for f in /proc/[0-9]*/fd/*; do n=$((n+1)); done; echo $n"
        fds = lab.server_docker(server, "exec", name, "sh", "-c", count).stdout.strip()
        found[name] = Proxy(started, _bytes(stats.split("/")[0]), int(fds) if fds.isdigit() else -1)
    return found


def images_disk(server: lab.LabServer) -> str:
    out = lab.server_docker(server, "system", "df", "--format", "{{.Type}} {{.Size}}").stdout
    return next((line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("Images ")), "?")


def state_files(server: lab.LabServer) -> str:
    """Lines and bytes of the app's history and audit log on server."""
    state = f"/srv/{NAME}/.tagship"
    script = (
        f"for f in releases.jsonl audit.log; do "
        f"printf '%s %s lines %s bytes; ' $f $(wc -l < {state}/$f) $(wc -c < {state}/$f); done"
    )
    return subprocess.run(["ssh", server.name, script], capture_output=True, text=True, timeout=60).stdout.strip()


def snapshot(the_lab: lab.Lab) -> dict[str, dict[str, Proxy]]:
    return {server.name: proxies(server) for server in the_lab.servers}


def print_growth(before: dict[str, dict[str, Proxy]], after: dict[str, dict[str, Proxy]]) -> None:
    print(f"\n{'server':<11} {'container':<28} {'MiB start':>9} {'MiB end':>8} {'fds start':>9} {'fds end':>8}")
    for server, containers in after.items():
        for name, end in sorted(containers.items()):
            start = before[server].get(name)
            again = " (started again during the soak)" if start is not None and start.started != end.started else ""
            mib_start = f"{start.memory / 2**20:9.1f}" if start else f"{'-':>9}"
            fds_start = f"{start.descriptors:9d}" if start else f"{'-':>9}"
            print(
                f"{server:<11} {name:<28} {mib_start} {end.memory / 2**20:8.1f} {fds_start} {end.descriptors:8d}{again}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="deploys every minute under load, good and broken, with rollbacks")
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args(argv)
    the_lab = lab.up(servers=2)
    lab.ensure_django_images()
    for server in the_lab.servers:
        djangostarter.remove_project(server, NAME)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as work:
        env = {"TAGSHIP_REGISTRY_PASSWORD": the_lab.registry_password, "NO_COLOR": "1", "DOCKER_CONFIG": work}
        repo = djangostarter.create(Path(work) / "app", the_lab, app_name=NAME, namespace=SESSION_NAMESPACE, env=env)
        toml = repo.path / "tagship.toml"
        toml.write_text(toml.read_text() + "timeout = 20\n")  # [health] is last: a broken release fails in 20 s
        repo.release("v1")
        first = repo.tagship("deploy")
        if first.returncode != 0:
            raise SystemExit(f"deploy v1 failed:\n{first.stderr[-3000:]}")
        before = snapshot(the_lab)
        disk_before = {s.name: images_disk(s) for s in the_lab.servers}
        files_before = {s.name: state_files(s) for s in the_lab.servers}
        limit = args.minutes * 60 + 300
        loads = {
            (server.name, entry): Load(
                server.ip, port, "/version/", fresh=1, keepalive=1, rate=RATE, max_seconds=limit
            ).start()
            for server in the_lab.servers
            for entry, port in (("port", repo.port), ("caddy", repo.web_port))
        }
        started = time.monotonic()
        results = {"good": [0, 0], "broken": [0, 0], "rollback": [0, 0]}  # kind -> [as expected, not]
        try:
            for minute in range(args.minutes):
                time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
                good = minute % 2 == 1
                version = f"v{minute + 2}"
                repo.release(version, broken=not good)
                run = repo.tagship("deploy")
                kind = "good" if good else "broken"
                results[kind][(run.returncode == 0) != good] += 1
                print(
                    f"{time.monotonic() - started:6.0f}s deploy {version} ({kind}): exit {run.returncode}",
                    file=sys.stderr,
                )
                if minute % 5 == 4:
                    back = repo.tagship("rollback")
                    results["rollback"][back.returncode != 0] += 1
                    print(f"{time.monotonic() - started:6.0f}s rollback: exit {back.returncode}", file=sys.stderr)
            time.sleep(max(0.0, started + args.minutes * 60 - time.monotonic()))
        finally:
            reports: dict[tuple[str, str], LoadReport] = {key: load.stop() for key, load in loads.items()}
        after = snapshot(the_lab)
        print(f"\nsoak: {args.minutes} min, a deploy a minute (good and broken in turn), a rollback every 5 min")
        for kind, (ok, wrong) in results.items():
            print(f"{kind:<9} {ok} as expected, {wrong} not")
        print(f"\n{'server':<11} {'entry':<6} {'failed':>7} {'sent':>8}  first errors")
        for (name, entry), report in reports.items():
            print(f"{name:<11} {entry:<6} {report.failed:7d} {report.sent:8d}  {report.errors()[:2]}")
        print_growth(before, after)
        for server in the_lab.servers:
            print(f"\n{server.name}: images on disk {disk_before[server.name]} -> {images_disk(server)}")
            print(f"  start: {files_before[server.name]}\n  end:   {state_files(server)}")
    for server in the_lab.servers:
        djangostarter.remove_project(server, NAME)
    failed = sum(r.failed for r in reports.values())
    wrong = sum(w for _, w in results.values())
    met = not failed and not wrong
    print(f"\ntarget (0 failed requests, every deploy and rollback as expected): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
