"""Proxy upgrade: replacing the HAProxy container that owns a published port, under load.

Run from the repository root: `python bench/proxy_upgrade.py [--rounds 3] [--rate 40]` (uses the lab's
tslab-h1; do not run it while the lab tests run).

Issue 21 asks that a new `proxy.listener_image` takes over a port without a gap. A published port
belongs to one container, so the new HAProxy cannot simply start beside the old one. Two ways are
measured in one run, each `--rounds` times, with fresh-connection and keep-alive clients on the port:

- replace (the baseline): remove the old proxy container, start the new one publishing the port;
- hand over: a holder container owns the port and the network namespace (it runs `sleep`); each
  HAProxy runs in that namespace (`--network container:HOLDER`). The new one starts with
  `-x SOCKET` and takes the listening socket from the old one through its stats socket (shared
  volume), as HAProxy's own seamless reload does; then the old one gets SIGUSR1 (soft stop: it
  stops listening, finishes what it holds, exits).

It prints requests sent and failed per way and round. The app behind the port is a HAProxy
answering 200 by itself (no app boot in the figures).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ lives in the repo root

import lab
from lab.load import Load

NAME = "bench-pu"
PORT = 18961
NET = f"{NAME}-net"
VOLUME = f"{NAME}-sock"
HOLDER, APP = f"{NAME}-holder", f"{NAME}-app"
SOCKET = "/var/lib/haproxy/admin.sock"

APP_CFG = """\
global
  log stdout format raw local0 warning
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 1s
frontend app
  bind :8080
  http-request return status 200 content-type text/plain string "ok"
"""

PROXY_CFG = f"""\
global
  log stdout format raw local0 warning
  stats socket {SOCKET} mode 600 level admin expose-fd listeners
defaults
  mode http
  option idle-close-on-response
  timeout client 30s
  timeout server 30s
  timeout connect 1s
  timeout http-keep-alive 5s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
frontend port
  bind :8080
  default_backend app
backend app
  server app {APP}:8080
"""

# The config arrives as an argument, never spliced into the script.
RUN_WITH = 'printf "%s" "$1" > /tmp/h.cfg && shift && exec haproxy -W -db -f /tmp/h.cfg "$@"'


def docker(server: lab.LabServer, *args: str, check: bool = True) -> str:
    done = lab.server_docker(server, *args, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout.strip()


def haproxy(server: lab.LabServer, name: str, cfg: str, *options: str, extra: tuple[str, ...] = ()) -> None:
    """Start the lab's HAProxy image (Debian's HAProxy, the listeners' stand-in) with this config."""
    image = lab.current().haproxy_image
    docker(server, "run", "-d", "--name", name, *options, image, "sh", "-c", RUN_WITH, "sh", cfg, *extra)


def wait_serving(server: lab.LabServer, name: str, timeout: float = 20) -> None:
    """Until the container's HAProxy has a worker that loaded its config (its log says so, on stderr)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = lab.server_docker(server, "logs", name)
        if "Loading success" in logs.stdout + logs.stderr:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start serving in {timeout} s")


def clean(server: lab.LabServer) -> None:
    names = docker(server, "ps", "-aq", "--filter", f"name={NAME}", check=False).split()
    if names:
        docker(server, "rm", "-f", *names, check=False)
    docker(server, "volume", "rm", "-f", VOLUME, check=False)
    docker(server, "network", "rm", NET, check=False)


def measured(server: lab.LabServer, rate: float, change: Callable[[], None]) -> tuple[int, int, list[str]]:
    load = Load(server.ip, PORT, "/", fresh=2, keepalive=2, rate=rate, max_seconds=60).start()
    load.answered(20)
    change()
    load.answered(20)
    report = load.stop()
    return report.sent, report.failed, report.errors()[:3]


def replace_round(server: lab.LabServer, rate: float) -> tuple[int, int, list[str]]:
    haproxy(server, f"{NAME}-p0", PROXY_CFG, "--network", NET, "-p", f"{PORT}:8080")
    wait_serving(server, f"{NAME}-p0")

    def change() -> None:
        docker(server, "rm", "-f", f"{NAME}-p0")
        haproxy(server, f"{NAME}-p1", PROXY_CFG, "--network", NET, "-p", f"{PORT}:8080")
        wait_serving(server, f"{NAME}-p1")

    try:
        return measured(server, rate, change)
    finally:
        docker(server, "rm", "-f", f"{NAME}-p0", f"{NAME}-p1", check=False)


def handover_round(server: lab.LabServer, rate: float) -> tuple[int, int, list[str]]:
    shared = ("--network", f"container:{HOLDER}", "-v", f"{VOLUME}:/var/lib/haproxy")
    haproxy(server, f"{NAME}-p0", PROXY_CFG, *shared)
    wait_serving(server, f"{NAME}-p0")

    def change() -> None:
        haproxy(server, f"{NAME}-p1", PROXY_CFG, *shared, extra=("-x", SOCKET))
        wait_serving(server, f"{NAME}-p1")
        logs = lab.server_docker(server, "logs", f"{NAME}-p1")
        if "Failed to get the sockets" in logs.stdout + logs.stderr:  # it would have bound a socket of its own
            raise RuntimeError("the new HAProxy did not take the listening socket over")
        docker(server, "kill", "-s", "USR1", f"{NAME}-p0")
        # The old one stops listening, finishes what it holds and exits: the load goes on on the new one.
        if docker(server, "wait", f"{NAME}-p0") != "0":
            raise RuntimeError("the old HAProxy did not stop cleanly")

    try:
        return measured(server, rate, change)
    finally:
        docker(server, "rm", "-f", f"{NAME}-p0", f"{NAME}-p1", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second per client")
    args = parser.parse_args()
    the_lab = lab.up(servers=1)
    server = the_lab.servers[0]
    docker(server, "pull", the_lab.haproxy_image)
    clean(server)
    try:
        docker(server, "network", "create", NET)
        haproxy(server, APP, APP_CFG, "--network", NET)
        print(f"{'way':<10} {'round':>5} {'sent':>7} {'failed':>7}  first errors")
        for way, run in (("replace", replace_round), ("hand over", handover_round)):
            if run is handover_round:  # the holder owns the port and the namespace; it only sleeps
                docker(
                    server,
                    "run",
                    "-d",
                    "--name",
                    HOLDER,
                    "--network",
                    NET,
                    "-p",
                    f"{PORT}:8080",
                    the_lab.haproxy_image,
                    "sleep",
                    "infinity",
                )
            for n in range(1, args.rounds + 1):
                sent, failed, errors = run(server, args.rate)
                print(f"{way:<10} {n:>5} {sent:>7} {failed:>7}  {'; '.join(errors)[:100]}")
    finally:
        clean(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
