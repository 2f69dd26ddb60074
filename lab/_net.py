"""Network namespaces, veth links and the host's forwarding rules for the lab."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from ._proc import LabError, file_id, run

NETNS_DIR = Path("/run/netns")
LAB_NET = "10.201.0.0/16"
REGISTRY_IP = "10.201.0.11"


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def link_exists(link: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", link]
    return run(argv, check=False).returncode == 0


def delete_netns(name: str, veth: str) -> None:
    """Delete a namespace and its host-side veth (if either is left)."""
    if netns_path(name).exists():
        run(["ip", "netns", "delete", name], check=False)
        if netns_path(name).exists():
            # A bare leftover mount point or file from an earlier run.
            run(["umount", "--lazy", str(netns_path(name))], check=False)
            netns_path(name).unlink(missing_ok=True)
    # Deleting the namespace deletes its end of the veth pair, and the kernel takes the host end with it
    # a moment later (on a busy machine, after link_exists said yes): only a link still there is an error.
    gone = not link_exists(veth) or run(["ip", "link", "delete", "dev", veth], check=False).returncode == 0
    if not gone and link_exists(veth):
        run(["ip", "link", "delete", "dev", veth])


def create_netns(name: str, veth: str, host_ip: str, ns_ip: str) -> None:
    """A fresh namespace NAME with eth0 at ns_ip/24, peered with veth at host_ip/24."""
    delete_netns(name, veth)
    run(["ip", "netns", "add", name])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name])
    run(["ip", "addr", "replace", f"{host_ip}/24", "dev", veth])
    run(["ip", "link", "set", "dev", veth, "up"])
    run(["ip", "-n", name, "link", "set", "dev", "lo", "up"])
    run(["ip", "-n", name, "addr", "replace", f"{ns_ip}/24", "dev", "eth0"])
    run(["ip", "-n", name, "link", "set", "dev", "eth0", "up"])
    run(["ip", "-n", name, "route", "replace", "default", "via", host_ip])


def netns_ok(name: str, veth: str, host_ip: str, ns_ip: str) -> bool:
    """True when the namespace, both link ends and the addresses are as create_netns left them."""
    if file_id(netns_path(name)) is None:
        return False
    host = run(["ip", "-o", "addr", "show", "dev", veth], check=False)
    if host.returncode != 0 or f"{host_ip}/24" not in host.stdout:
        return False
    inner = run(["ip", "-n", name, "-o", "addr", "show", "dev", "eth0"], check=False)
    if inner.returncode != 0 or f"{ns_ip}/24" not in inner.stdout:
        return False
    route = run(["ip", "-n", name, "route", "show", "default"], check=False)
    return f"via {host_ip}" in route.stdout


def _iptables_rule(chain: str, rule: list[str], present: bool) -> None:
    exists = run(["iptables", "-w", "5", "-C", chain, *rule], check=False).returncode == 0
    if present and not exists:
        run(["iptables", "-w", "5", "-I", chain, "1", *rule])
    while not present and exists:
        run(["iptables", "-w", "5", "-D", chain, *rule])
        exists = run(["iptables", "-w", "5", "-C", chain, *rule], check=False).returncode == 0


def _chain_exists(chain: str) -> bool:
    return run(["iptables", "-w", "5", "-n", "-L", chain], check=False).returncode == 0


_RULES: list[list[str]] = [
    # Lab hosts reach each other (servers <-> registry, server <-> server) ...
    ["-s", LAB_NET, "-d", LAB_NET, "-j", "ACCEPT"],
    # ... and nothing else: the lab's addresses are never routed off this machine.
    ["-s", LAB_NET, "!", "-d", LAB_NET, "-j", "REJECT"],
]


def ensure_forwarding() -> None:
    """ip_forward on, and FORWARD / DOCKER-USER let 10.201/16 <-> 10.201/16 through."""
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    chains = ["FORWARD", *(["DOCKER-USER"] if _chain_exists("DOCKER-USER") else [])]
    for chain in chains:
        for rule in _RULES:
            _iptables_rule(chain, rule, True)


def remove_forwarding() -> None:
    for chain in ["FORWARD", "DOCKER-USER"]:
        if _chain_exists(chain):
            for rule in _RULES:
                _iptables_rule(chain, rule, False)


def set_registry_block(netns: str, blocked: bool) -> None:
    """Inside netns, make the registry address unroutable (or routable again)."""
    if not netns_path(netns).exists():
        raise LabError(f"no network namespace {netns}: is the lab up?")
    if blocked:
        run(["ip", "-n", netns, "route", "replace", "prohibit", f"{REGISTRY_IP}/32"])
    else:
        while registry_blocked(netns):
            run(["ip", "-n", netns, "route", "del", f"{REGISTRY_IP}/32"])


def registry_blocked(netns: str) -> bool:
    out = run(["ip", "-n", netns, "route", "show", f"{REGISTRY_IP}/32"], check=False).stdout
    return bool(out.strip())


def tcp_banner(host: str, port: int, timeout: float = 10.0) -> bytes | None:
    """First bytes a TCP server sends, or None if it cannot be reached."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64)
    except OSError:
        return None


def _ssh_rules(allowed: str) -> list[list[str]]:
    return [
        ["-p", "tcp", "--dport", "22", "-s", f"{allowed}/32", "-j", "ACCEPT"],
        # A reset, not a drop: a direct `ssh` fails at once ("Connection refused") instead of timing out.
        ["-p", "tcp", "--dport", "22", "-j", "REJECT", "--reject-with", "tcp-reset"],
    ]


def _in_netns(netns: str, argv: list[str]) -> list[str]:
    # nsenter, not `ip netns exec`: the same way into a namespace as every lab daemon takes.
    return ["nsenter", f"--net={netns_path(netns)}", *argv]


def admit_ssh_only_from(netns: str, allowed: str) -> None:
    """Inside netns (a fresh one), port 22 answers only allowed: the host and other servers are refused."""
    for rule in _ssh_rules(allowed):
        run(_in_netns(netns, ["iptables", "-w", "5", "-A", "INPUT", *rule]))


def admits_ssh_only_from(netns: str, allowed: str) -> bool:
    """True when netns still has the rules admit_ssh_only_from added."""
    return all(
        run(_in_netns(netns, ["iptables", "-w", "5", "-C", "INPUT", *rule]), check=False).returncode == 0
        for rule in _ssh_rules(allowed)
    )


_BANNER = """import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with socket.create_connection((host, port), timeout=timeout) as sock:
    sock.settimeout(timeout)
    sys.stdout.write(sock.recv(64).decode("latin-1"))
"""


def tcp_banner_from(netns: str, host: str, port: int, timeout: float = 10.0) -> bytes | None:
    """tcp_banner as seen from inside network namespace netns (from another lab server)."""
    argv = _in_netns(netns, [sys.executable, "-c", _BANNER, host, str(port), str(timeout)])
    out = run(argv, check=False, timeout=timeout + 10)
    return out.stdout.encode("latin-1") if out.returncode == 0 and out.stdout else None
