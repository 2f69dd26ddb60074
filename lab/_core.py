"""Bring the lab up, check it, take it down."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import _net, _pki
from ._model import Lab, LabServer
from ._proc import (
    LabError,
    Proc,
    Records,
    cmdline,
    file_id,
    ns_id,
    pids_in_cgroup,
    pids_in_ns,
    remove_cgroup,
    run,
    spawn,
    stop,
    tail,
    terminate,
)

REGISTRY_IP = _net.REGISTRY_IP
REGISTRY_PORT = 5443
REGISTRY = f"{REGISTRY_IP}:{REGISTRY_PORT}"
REGISTRY_USER = "lab"
REG_NETNS, REG_VETH, REG_HOST_IP = "tslab-reg", "tslr0", "10.201.0.1"
HOST_DOCKER_SOCK = Path("/var/run/docker.sock")
BASE_IMAGE = "tagship-lab/debian:bookworm"
CADDY_LOCAL = "tagship-lab/caddy:2"
CADDY_IMAGE = f"{REGISTRY}/lab/caddy:2"
HAPROXY_LOCAL = "tagship-lab/haproxy:2.6-user"
HAPROXY_IMAGE = f"{REGISTRY}/lab/haproxy:2.6-user"
# Built only on demand (lab/_framework.py: ensure_django_images), not by up().
DJANGO_BASE_IMAGE = f"{REGISTRY}/lab/django-base:1"
REDIS_IMAGE = f"{REGISTRY}/lab/redis:7"
SSH_CLIENT_CONF = Path("/etc/ssh/ssh_config.d/tagship-lab.conf")
CERTS_D = Path("/etc/docker/certs.d") / REGISTRY
MAX_SERVERS = 50
# A hidden server (up(hidden=True)) tslab-jN: its sshd answers only its bastion, tslab-hN; 10.201.(100+N).11
# is above every numbered server's address. Each slot (up(slots=K)) has one, behind the slot's first server.
HIDDEN_OFFSET = 100
# Paths each server sees privately (bind mounts in its own mount namespace).
PRIVATE_MOUNTS = {"srv": "/srv", "root-docker": "/root/.docker", "var-lib-tagship": "/var/lib/tagship"}
# root's ~/.bashrc as a plain Debian server has it. bash reads it for every command sshd runs; the
# host's own may start pyenv (this machine's image does), which cost each ssh command to a lab server
# about 0.1 s of CPU: a fifth of all CPU in the lab tests.
BASHRC = Path("/root/.bashrc")
SERVER_BASHRC = "# ~/.bashrc of a tagship lab server (lab/_core.py): a plain Debian root's, nothing started.\n"
# Host mounts a server's fresh mount namespace should not keep a copy of.
FOREIGN_MOUNT_PREFIXES = ("/run/netns/", "/var/lib/docker/", "/run/docker/", "/var/run/docker/")


def lab_root() -> Path:
    return Path(os.environ.get("TAGSHIP_LAB_DIR") or "/var/lib/tagship-lab")


def _bin(name: str) -> str:
    path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise LabError(f"{name} not found: run scripts/install-system.sh first")
    return path


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def records(self) -> Records:
        return Records(self.root / "run")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def password_file(self) -> Path:
        return self.registry_dir / "password"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh_dir / "authorized_keys"

    @property
    def docker_config(self) -> Path:
        return self.root / "docker-config"

    @property
    def state(self) -> Path:
        return self.root / "state.json"


@dataclass(frozen=True)
class Server:
    """Everything about lab server number n (tslab-hN), or the hidden server tslab-jN (hidden)."""

    n: int
    paths: Paths
    hidden: bool = False

    @property
    def letter(self) -> str:
        return "j" if self.hidden else "h"

    @property
    def name(self) -> str:
        return f"tslab-{self.letter}{self.n}"

    @property
    def net(self) -> int:
        return self.n + (HIDDEN_OFFSET if self.hidden else 0)

    @property
    def ip(self) -> str:
        return f"10.201.{self.net}.11"

    @property
    def host_ip(self) -> str:
        return f"10.201.{self.net}.1"

    @property
    def veth(self) -> str:
        return f"tslj{self.n}" if self.hidden else f"tsl{self.n}"

    def slot(self, servers: int) -> int:
        """The slot this server is in when each slot has `servers` servers (a hidden one: its bastion's)."""
        return (self.n - 1) // servers

    @property
    def bastion(self) -> Server | None:
        """The server a hidden server is reachable through (its sshd refuses everyone else)."""
        return Server(self.n, self.paths) if self.hidden else None

    @property
    def run_dir(self) -> Path:
        return Path(f"/run/{self.name}")

    @property
    def sock(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def docker_pidfile(self) -> Path:
        return self.run_dir / "docker.pid"

    @property
    def data_root(self) -> Path:
        return Path(f"/var/lib/{self.name}")

    @property
    def dir(self) -> Path:
        return self.paths.root / f"{self.letter}{self.n}"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def cgroup(self) -> str:
        return self.name

    def rec(self, what: str) -> str:
        return f"{self.letter}{self.n}-{what}"

    def public(self) -> LabServer:
        bastion = self.bastion.name if self.bastion else ""
        return LabServer(name=self.name, ip=self.ip, docker_host=f"unix://{self.sock}", bastion=bastion)

    def dockerd_argv(self) -> list[str]:
        return [
            _bin("dockerd"),
            "--data-root", str(self.data_root / "docker"),
            "--exec-root", str(self.run_dir / "exec"),
            "-H", f"unix://{self.sock}",
            "--pidfile", str(self.docker_pidfile),
            "--cgroup-parent", f"/{self.cgroup}",
            "--config-file", str(self.dir / "daemon.json"),
        ]  # fmt: skip


# --------------------------------------------------------------------------- small helpers


# How long a health probe of a running part may take. The parallel test workers keep two CPUs busy
# (load average about 20): a 2 s ping of an idle server's engine failed there, and up() resets a
# server it finds unhealthy, another worker's included. A part that is down refuses at once.
PROBE_TIMEOUT = 10.0


def _docker_ping(sock: Path, timeout: float = PROBE_TIMEOUT) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = s.recv(64)
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]


def _wait(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll pred until it is true or timeout seconds have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def _host_env(paths: Paths) -> dict[str, str]:
    """Environment for the docker CLI against the host engine, with the lab's own config."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
    env["DOCKER_HOST"] = f"unix://{HOST_DOCKER_SOCK}"
    env["DOCKER_CONFIG"] = str(paths.docker_config)
    return env


def _ssl_context(paths: Paths) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(paths.ca_cert))


def _registry_request(
    paths: Paths,
    method: str,
    path: str,
    auth: tuple[str, str] | None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 3.0,
) -> tuple[int, dict[str, str]] | None:
    """(status, headers) of one HTTPS request to the registry, or None if unreachable."""
    conn = http.client.HTTPSConnection(REGISTRY_IP, REGISTRY_PORT, context=_ssl_context(paths), timeout=timeout)
    hdrs = dict(headers or {})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        hdrs["Authorization"] = f"Basic {token}"
    try:
        conn.request(method, path, headers=hdrs)
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@contextlib.contextmanager
def _locked(paths: Paths, timeout: float = 900.0) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / "lock").open("w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise LabError(f"another lab up/down holds {paths.root}/lock") from exc
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, dockerd, sshd)")


# --------------------------------------------------------------------------- host engine


def _ensure_host_engine(paths: Paths) -> None:
    if _docker_ping(HOST_DOCKER_SOCK):
        return
    records = paths.records
    proc = records.get("host-dockerd")
    log = paths.logs / "host-dockerd.log"
    if proc is None:
        other = _pidfile_process(Path("/var/run/docker.pid"), _bin("dockerd"))
        if other is not None:
            if _wait(lambda: _docker_ping(HOST_DOCKER_SOCK), 60):
                return
            raise LabError(
                f"a Docker engine not started by the lab (pid {other}) does not answer on "
                f"{HOST_DOCKER_SOCK}; stop it or fix it"
            )
        pidfile = paths.root / "host-dockerd.pid"
        pidfile.unlink(missing_ok=True)
        argv = [_bin("dockerd"), "--pidfile", str(pidfile)]
        proc = spawn("host-dockerd", argv, argv[0], str(pidfile), log)
        records.put(proc)
    alive_proc = proc
    if not _wait(
        lambda: _docker_ping(HOST_DOCKER_SOCK) or not alive_proc.alive(),
        60,
    ) or not _docker_ping(HOST_DOCKER_SOCK):
        raise LabError(f"host dockerd (pid {proc.pid}) did not come up; log {log}:\n{tail(log)}")


def _pidfile_process(pidfile: Path, program: str) -> int | None:
    """The PID in pidfile if that process is alive and runs program, else None."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(program):
            return pid
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- registry


def _registry_config(paths: Paths, cert: Path, key: Path) -> str:
    reg = paths.registry_dir
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {reg / 'data'}\n"
        "  delete:\n    enabled: true\n"
        "http:\n"
        f"  addr: {REGISTRY}\n"
        f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        "auth:\n"
        f"  htpasswd:\n    realm: tagship-lab\n    path: {reg / 'htpasswd'}\n"
    )


def _registry_healthy(paths: Paths, password: str) -> bool:
    anon = _registry_request(paths, "GET", "/v2/", None)
    if anon is None or anon[0] != 401:
        return False
    authed = _registry_request(paths, "GET", "/v2/", (REGISTRY_USER, password))
    return authed is not None and authed[0] == 200


def _stop_registry(paths: Paths) -> None:
    records = paths.records
    stop(records.get("registry"))
    left = terminate(pids_in_ns("net", file_id(_net.netns_path(REG_NETNS))))
    if left:
        raise LabError(f"processes in {REG_NETNS} would not exit: {left}")
    records.drop("registry")
    _net.delete_netns(REG_NETNS, REG_VETH)


def _ensure_registry(paths: Paths) -> str:
    """Registry up and healthy; returns the password."""
    reg = paths.registry_dir
    reg.mkdir(parents=True, exist_ok=True)
    (reg / "data").mkdir(exist_ok=True)
    key, cert, new_cert = _pki.ensure_server_cert(paths.ca_dir, "registry", REGISTRY_IP)
    password, _ = _pki.ensure_password(paths.password_file)
    new_htpasswd = _pki.ensure_htpasswd(reg / "htpasswd", REGISTRY_USER, password)
    config = reg / "config.yml"
    new_config = _pki.write_if_changed(config, _registry_config(paths, cert, key), 0o600)
    _pki.write_if_changed(CERTS_D / "ca.crt", paths.ca_cert.read_text())

    proc = paths.records.get("registry")
    if (
        proc is not None
        and not (new_cert or new_htpasswd or new_config)
        and _net.netns_ok(REG_NETNS, REG_VETH, REG_HOST_IP, REGISTRY_IP)
        and _registry_healthy(paths, password)
    ):
        return password
    _stop_registry(paths)
    _net.create_netns(REG_NETNS, REG_VETH, REG_HOST_IP, REGISTRY_IP)
    prog = _bin("docker-registry")
    log = paths.logs / "registry.log"
    proc = spawn(
        "registry",
        [_bin("nsenter"), f"--net={_net.netns_path(REG_NETNS)}", prog, "serve", str(config)],
        prog,
        str(config),
        log,
    )
    paths.records.put(proc)
    started = proc
    ok = _wait(
        lambda: _registry_healthy(paths, password) or not started.alive(),
        20,
    )
    if not ok or not _registry_healthy(paths, password):
        raise LabError(
            f"registry (pid {proc.pid}) did not answer on https://{REGISTRY}/v2/ as expected "
            f"(401 without, 200 with the password); log {log}:\n{tail(log)}"
        )
    return password


def _ensure_host_login(paths: Paths, password: str) -> None:
    paths.docker_config.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.docker_config, 0o700)
    want = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
    try:
        data = json.loads((paths.docker_config / "config.json").read_text())
        if data["auths"][REGISTRY]["auth"] == want:
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass
    run(
        [_bin("docker"), "login", REGISTRY, "-u", REGISTRY_USER, "--password-stdin"],
        input=password,
        env=_host_env(paths),
        timeout=60,
    )


# --------------------------------------------------------------------------- servers


def _sshd_config(srv: Server) -> str:
    return (
        f"# tagship lab server {srv.name} (written by lab/, rewritten on every up)\n"
        f"ListenAddress {srv.ip}\n"
        "Port 22\n"
        f"PidFile {srv.run_dir / 'sshd.pid'}\n"
        f"HostKey {srv.host_key}\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        f"AuthorizedKeysFile {srv.paths.authorized_keys}\n"
        f"SetEnv DOCKER_HOST=unix://{srv.sock}\n"
        "AcceptEnv LANG LC_*\n"
        "AllowTcpForwarding yes\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "MaxStartups 100:30:200\n"
        "MaxSessions 100\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def _mountinfo_targets(pid: int) -> list[str]:
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [line.split()[4] for line in lines if len(line.split()) > 4]


def _server_problem(srv: Server) -> str | None:
    """Why server srv is not healthy, or None when it is."""
    records = srv.paths.records
    procs = {what: records.get(srv.rec(what)) for what in ("anchor", "dockerd", "sshd")}
    missing = [what for what, proc in procs.items() if proc is None]
    if missing:
        return f"not running: {', '.join(missing)}"
    anchor, dockerd, sshd = procs["anchor"], procs["dockerd"], procs["sshd"]
    assert anchor is not None and dockerd is not None and sshd is not None
    if not _net.netns_ok(srv.name, srv.veth, srv.host_ip, srv.ip):
        return "network namespace or link missing"
    netns = file_id(_net.netns_path(srv.name))
    mnt = ns_id(anchor.pid, "mnt")
    for proc in (anchor, dockerd, sshd):
        if ns_id(proc.pid, "net") != netns or ns_id(proc.pid, "mnt") != mnt:
            return f"{proc.name} is not in the server's namespaces"
    targets = _mountinfo_targets(anchor.pid)
    lost = [t for t in [*PRIVATE_MOUNTS.values(), *([str(BASHRC)] if BASHRC.exists() else [])] if t not in targets]
    if lost:
        return f"private mounts missing: {', '.join(lost)}"
    if not _docker_ping(srv.sock):
        return "docker engine does not answer"
    return _sshd_problem(srv)


def _sshd_problem(srv: Server) -> str | None:
    """Why srv's sshd is not as it should be: answering (a hidden server: its bastion only), or None."""
    if srv.bastion is None:
        banner = _net.tcp_banner(srv.ip, 22)
        return None if banner is not None and banner.startswith(b"SSH-") else "sshd does not answer"
    if not _net.admits_ssh_only_from(srv.name, srv.bastion.ip):
        return f"its port 22 is not limited to {srv.bastion.name}"
    if _net.tcp_banner(srv.ip, 22, timeout=PROBE_TIMEOUT) is not None:  # its iptables reset this at once
        return "sshd answers the host (it must answer only its bastion)"
    banner = _net.tcp_banner_from(srv.bastion.name, srv.ip, 22)
    if banner is None or not banner.startswith(b"SSH-"):
        return f"sshd does not answer {srv.bastion.name}"
    return None


def _reset_server(srv: Server) -> None:
    """Stop everything of server srv (by PID) and delete its namespace and link."""
    records = srv.paths.records
    netns = file_id(_net.netns_path(srv.name))
    anchor = records.get(srv.rec("anchor"))
    # Graceful engine stop first: it stops its containers and unmounts cleanly.
    stop(records.get(srv.rec("dockerd")), grace=30)
    stray = _pidfile_process(srv.docker_pidfile, _bin("dockerd"))
    if stray is not None and str(srv.docker_pidfile) in " ".join(cmdline(stray) or ()):
        terminate([stray], grace=30)
    pids = set(pids_in_ns("net", netns)) | set(pids_in_cgroup(srv.cgroup))
    if anchor is not None:
        pids |= set(pids_in_ns("mnt", ns_id(anchor.pid, "mnt")))
    left = terminate(pids, grace=5)
    left += terminate(pids_in_cgroup(srv.cgroup), grace=5)
    if left:
        raise LabError(f"{srv.name}: processes would not exit: {sorted(set(left))}")
    for what in ("anchor", "dockerd", "sshd"):
        records.drop(srv.rec(what))
    remove_cgroup(srv.cgroup)
    _net.delete_netns(srv.name, srv.veth)
    shutil.rmtree(srv.run_dir, ignore_errors=True)


@dataclass
class _Starting:
    srv: Server
    dockerd: Proc
    sshd: Proc


def _start_server(srv: Server) -> _Starting:
    paths = srv.paths
    srv.dir.mkdir(parents=True, exist_ok=True)
    for sub in PRIVATE_MOUNTS:
        (srv.dir / sub).mkdir(exist_ok=True)
    srv.run_dir.mkdir(parents=True, exist_ok=True)
    srv.data_root.mkdir(parents=True, exist_ok=True)
    _pki.ensure_ssh_key(srv.host_key, f"{srv.name} host key")
    _pki.write_if_changed(srv.sshd_config, _sshd_config(srv), 0o600)
    # The engine ID comes from this key; the default (/etc/docker/key.json) is shared.
    daemon_json = {
        "deprecated-key-path": str(srv.data_root / "key.json"),
        # Every test app is a compose project with a network of its own, and a session leaves them
        # running: Docker's defaults (about 30 address pools) run out within one run of the suite.
        # /24 networks from a /14 give a server 1,024 (each server has a network namespace of its own);
        # not 172.16/12, where networks created before this setting keep their /16s.
        "default-address-pools": [{"base": "10.232.0.0/14", "size": 24}],
    }
    _pki.write_if_changed(srv.dir / "daemon.json", json.dumps(daemon_json, indent=2) + "\n")
    _net.create_netns(srv.name, srv.veth, srv.host_ip, srv.ip)
    if srv.bastion is not None:
        _net.admit_ssh_only_from(srv.name, srv.bastion.ip)
    for target in PRIVATE_MOUNTS.values():
        Path(target).mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    log = paths.logs / f"{srv.name}.log"
    sleep = _bin("sleep")
    anchor = spawn(
        srv.rec("anchor"),
        [_bin("nsenter"), f"--net={_net.netns_path(srv.name)}",
         _bin("unshare"), "--mount", "--uts", "--propagation", "private", sleep, "infinity"],
        sleep,
        "infinity",
        log,
    )  # fmt: skip
    paths.records.put(anchor)
    if ns_id(anchor.pid, "mnt") == ns_id("self", "mnt"):
        raise LabError(f"{srv.name}: unshare --mount did not give the anchor its own namespace")
    enter = [_bin("nsenter"), f"--target={anchor.pid}", "--mount", "--uts"]
    run([*enter, "hostname", srv.name])
    for target in _mountinfo_targets(anchor.pid):
        if target.startswith(FOREIGN_MOUNT_PREFIXES):
            run([*enter, "umount", "--lazy", target], check=False)
    for sub, target in PRIVATE_MOUNTS.items():
        run([*enter, "mount", "--bind", str(srv.dir / sub), target])
    if BASHRC.exists():  # nothing to hide otherwise (a bind mount needs the file)
        _pki.write_if_changed(srv.dir / "bashrc", SERVER_BASHRC)
        run([*enter, "mount", "--bind", str(srv.dir / "bashrc"), str(BASHRC)])

    if _pidfile_process(srv.docker_pidfile, _bin("dockerd")) is None:
        srv.docker_pidfile.unlink(missing_ok=True)
    argv = srv.dockerd_argv()
    dockerd = spawn(srv.rec("dockerd"), [*enter, "--net", *argv], argv[0], str(srv.docker_pidfile), log)
    paths.records.put(dockerd)
    sshd_bin = _bin("sshd")
    sshd = spawn(
        srv.rec("sshd"),
        [*enter, "--net", sshd_bin, "-D", "-e", "-f", str(srv.sshd_config)],
        sshd_bin,
        str(srv.sshd_config),
        log,
    )
    paths.records.put(sshd)
    return _Starting(srv, dockerd, sshd)


def _finish_server(st: _Starting, timeout: float = 60) -> None:
    srv = st.srv
    log = srv.paths.logs / f"{srv.name}.log"

    def ready() -> bool:
        if not (st.dockerd.alive() and st.sshd.alive()):
            return True  # give up waiting; reported below
        return _docker_ping(srv.sock) and _sshd_problem(srv) is None

    _wait(ready, timeout)
    problem = _server_problem(srv)
    if problem is not None:
        raise LabError(f"{srv.name} did not come up ({problem}); log {log}:\n{tail(log, 40)}")


def _known_hosts_line(srv: Server) -> str:
    """srv's known_hosts line, from the lab's own copy of its host key (no server is contacted)."""
    public = srv.host_key.with_name(srv.host_key.name + ".pub").read_text().split()[1]
    return f"{srv.name},{srv.ip} ssh-ed25519 {public}"


def _check_host_key(srv: Server) -> None:
    """Raise LabError unless srv's sshd presents its lab host key."""
    scan_argv = ["ssh-keyscan", "-T", "5", "-t", "ed25519", srv.ip]
    if srv.bastion is not None:  # only its bastion reaches it: scan from inside the bastion's namespace
        scan_argv = [_bin("nsenter"), f"--net={_net.netns_path(srv.bastion.name)}", *scan_argv]
    scan = run(scan_argv, check=False, timeout=15)
    want = _known_hosts_line(srv).split()[2]
    for line in scan.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == srv.ip and fields[1] == "ssh-ed25519":
            if fields[2] != want:
                raise LabError(f"{srv.name} presents a host key that is not its lab key")
            return
    raise LabError(f"ssh-keyscan {srv.ip} found no ed25519 host key: {scan.stderr.strip()}")


def _ssh_client_config(paths: Paths, servers: list[Server]) -> str:
    lines = [
        "# tagship test lab: written by `python -m lab up` (lab/ in the tagship repo).",
        "# Removed by `python -m lab down --purge`.",
    ]
    for srv in servers:
        lines += [f"Host {srv.name}", f"    HostName {srv.ip}"]
    lines += [
        "Host tslab-* 10.201.*.*",
        "    User root",
        f"    IdentityFile {paths.client_key}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {paths.known_hosts}",
        "    StrictHostKeyChecking yes",
        "    ConnectTimeout 5",
        # OpenSSH 9's default key exchange (sntrup761x25519) costs the client about 75 ms of CPU per
        # connection here, curve25519 about 7 ms; the lab tests open thousands of connections.
        "    KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
        "",
    ]
    return "\n".join(lines)


def _server_numbers_present(paths: Paths, letter: str = "h") -> set[int]:
    """Numbers of every server tslab-{letter}N ("h" numbered, "j" hidden) that left any trace:
    records, namespaces, links, run dirs."""
    found: set[int] = set()
    for name in paths.records.names():
        m = re.fullmatch(rf"{letter}(\d+)-\w+", name)
        if m:
            found.add(int(m.group(1)))
    if _net.NETNS_DIR.is_dir():
        for entry in _net.NETNS_DIR.iterdir():
            m = re.fullmatch(rf"tslab-{letter}(\d+)", entry.name)
            if m:
                found.add(int(m.group(1)))
    for entry in Path("/run").glob(f"tslab-{letter}*"):
        m = re.fullmatch(rf"tslab-{letter}(\d+)", entry.name)
        if m:
            found.add(int(m.group(1)))
    link = "tsl" if letter == "h" else f"tsl{letter}"
    links = run(["ip", "-o", "link", "show"], check=False).stdout
    for m in re.finditer(rf"^\d+: {link}(\d+)[@:]", links, re.M):
        found.add(int(m.group(1)))
    return found


# --------------------------------------------------------------------------- images


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (read at run time, never hardcoded)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and "bookworm" in fields.get("suites", "").split():
                uris = fields.get("uris", "").split()
                if uris:
                    return uris[0].rstrip("/")
    lists = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1].rstrip("/")
    raise LabError("cannot find a Debian bookworm mirror in /etc/apt/sources.list(.d)")


def _image_id(paths: Paths, ref: str) -> str | None:
    out = run(
        [_bin("docker"), "image", "inspect", "--format", "{{.Id}}", ref],
        check=False,
        env=_host_env(paths),
    )
    return out.stdout.strip() if out.returncode == 0 else None


def _umount_under(path: Path) -> None:
    prefix = str(path.resolve()) + "/"
    targets = [t for t in _mountinfo_targets(os.getpid()) if t.startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        run(["umount", "--lazy", target], check=False)


def _build_base(paths: Paths) -> None:
    build = paths.root / "build"
    rootfs = build / "debian-rootfs"
    log = paths.logs / "debootstrap.log"
    _umount_under(rootfs)
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    mirror = apt_mirror()
    proc = run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
        check=False,
        timeout=600,
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        detail = tail(rootfs / "debootstrap" / "debootstrap.log")
        _umount_under(rootfs)
        raise LabError(f"debootstrap failed (exit {proc.returncode}):\n{tail(log)}\n{detail}")
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / cache).glob("*"):
            if item.is_file():
                item.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imp = subprocess.run(
        [_bin("docker"), "import", "-", BASE_IMAGE],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        env=_host_env(paths),
        timeout=300,
        check=False,
    )
    if tar.stdout is not None:
        tar.stdout.close()
    tar.wait(timeout=60)
    if imp.returncode != 0 or tar.returncode != 0:
        raise LabError(f"docker import of the Debian base failed: {imp.stderr.strip()}")
    _umount_under(rootfs)
    shutil.rmtree(rootfs, ignore_errors=True)


CADDYFILE = ':80 {\n\trespond "tagship proxy"\n}\n'


def apt_dockerfile(packages: str) -> str:
    """A Dockerfile's start: the lab's Debian base with packages from this machine's mirror (no date
    checks: snapshot mirrors)."""
    return f"""\
FROM tagship-lab/debian:bookworm
ARG MIRROR
RUN rm -f /etc/apt/sources.list.d/* \\
 && printf 'deb %s bookworm main\\n' "$MIRROR" > /etc/apt/sources.list \\
 && printf 'Acquire::Check-Valid-Until "false";\\nAcquire::Check-Date "false";\\n' \\
      > /etc/apt/apt.conf.d/99tagship-lab \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      {packages} \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/*
"""


# tagship lab stand-in for caddy:2-alpine: caddy + wget, no curl. Built by lab/, no hub.
CADDY_DOCKERFILE = (
    apt_dockerfile("caddy wget ca-certificates")
    + """\
COPY Caddyfile /etc/caddy/Caddyfile
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
"""
)


# tagship lab stand-in for haproxy:lts (tagship's port listeners): Debian's HAProxy 2.6, unprivileged
# and at home in /var/lib/haproxy as in the official image. Built by lab/, no hub.
HAPROXY_DOCKERFILE = (
    apt_dockerfile("haproxy")
    + """\
RUN mkdir -p /var/lib/haproxy && chown haproxy:haproxy /var/lib/haproxy
USER haproxy
WORKDIR /var/lib/haproxy
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
"""
)


@dataclass(frozen=True)
class _Image:
    local: str  # name on the host engine
    remote: str  # name in the lab registry
    dockerfile: str
    files: tuple[tuple[str, str], ...] = ()  # (name, text) beside the Dockerfile


CADDY = _Image(CADDY_LOCAL, CADDY_IMAGE, CADDY_DOCKERFILE, (("Caddyfile", CADDYFILE),))
HAPROXY = _Image(HAPROXY_LOCAL, HAPROXY_IMAGE, HAPROXY_DOCKERFILE)


def _build_image(paths: Paths, image: _Image) -> None:
    short = image.local.split("/")[-1].split(":")[0]
    ctx = paths.root / "build" / short
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(image.dockerfile)
    for name, text in image.files:
        (ctx / name).write_text(text)
    env = _host_env(paths)
    env["DOCKER_BUILDKIT"] = "0"
    log = paths.logs / f"{short}-build.log"
    proc = run(
        [_bin("docker"), "build", "--network", "host", "--build-arg", f"MIRROR={apt_mirror()}",
         "-t", image.local, str(ctx)],
        check=False,
        env=env,
        timeout=600,
    )  # fmt: skip
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise LabError(f"building {image.local} failed; log {log}:\n{tail(log)}")


def _ensure_image(paths: Paths, password: str, image: _Image) -> None:
    """Build image once on the host engine and keep the registry's copy the same."""
    if _image_id(paths, image.local) is None:
        if _image_id(paths, BASE_IMAGE) is None:
            _build_base(paths)
        _build_image(paths, image)
    local = _image_id(paths, image.local)
    if local is None:
        raise LabError(f"{image.local} missing after build")
    env = _host_env(paths)
    if _image_id(paths, image.remote) != local:
        run([_bin("docker"), "tag", image.local, image.remote], env=env)
    repo, _, tag = image.remote.removeprefix(f"{REGISTRY}/").partition(":")
    head = _registry_request(
        paths,
        "HEAD",
        f"/v2/{repo}/manifests/{tag}",
        (REGISTRY_USER, password),
        {"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    remote = head[1].get("docker-content-digest") if head and head[0] == 200 else None
    digests = run(
        [_bin("docker"), "image", "inspect", "--format", "{{json .RepoDigests}}", image.remote],
        env=env,
    ).stdout
    if remote is None or f"{REGISTRY}/{repo}@{remote}" not in digests:
        run([_bin("docker"), "push", image.remote], env=env, timeout=300)


# --------------------------------------------------------------------------- public


def _lab(paths: Paths, password: str, servers: list[Server], hidden: Server | None) -> Lab:
    """The view of one slot: its servers and its hidden server."""
    return Lab(
        registry=REGISTRY,
        registry_user=REGISTRY_USER,
        registry_password=password,
        ca_cert=paths.ca_cert,
        servers=tuple(s.public() for s in servers),
        caddy_image=CADDY_IMAGE,
        haproxy_image=HAPROXY_IMAGE,
        root=paths.root,
        django_base_image=DJANGO_BASE_IMAGE,
        redis_image=REDIS_IMAGE,
        hidden=hidden.public() if hidden else None,
    )


def caddy_image() -> str:
    """Build (once) the local Caddy stand-in image on the host engine and return its name.

    For `tagship demo` on a machine that cannot pull caddy:2-alpine: no registry or servers needed.
    """
    return _local_image(CADDY)


def haproxy_image() -> str:
    """The same for the HAProxy stand-in (the demo's port listener, for haproxy:lts-alpine)."""
    return _local_image(HAPROXY)


def _local_image(image: _Image) -> str:
    _require_root()
    paths = Paths(lab_root())
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    with _locked(paths):
        _ensure_host_engine(paths)
        if _image_id(paths, image.local) is None:
            if _image_id(paths, BASE_IMAGE) is None:
                _build_base(paths)
            _build_image(paths, image)
    return image.local


def up(servers: int = 2, hidden: bool | None = None, slots: int = 1, slot: int = 0) -> Lab:
    """Start the lab (or check and repair a running one) with `slots` slots of `servers` servers each.

    Slot k (0-based) holds tslab-h(k*servers+1) .. tslab-h((k+1)*servers): parallel test workers each
    take one, so no two of them deploy to the same server. Reuses every part that runs and is healthy,
    restarts the rest, stops servers numbered above slots*servers, lifts registry blocks in slot `slot`.
    Another slot's servers are started if they never were, but not checked: that slot's worker does it.
    hidden: True adds one hidden server per slot, tslab-jN, reachable only through the slot's first
    server tslab-hN (Lab.hidden); False stops them; None keeps what the last up() chose. Returns the
    view of slot `slot`. Raises LabError (with the failing daemon's log tail) rather than return a lab
    that is not whole.
    """
    if not 1 <= servers * slots <= MAX_SERVERS or servers < 1:
        raise ValueError(f"servers x slots must be between 1 and {MAX_SERVERS}")
    if not 0 <= slot < slots:
        raise ValueError(f"slot must be between 0 and {slots - 1}")
    _require_root()
    paths = Paths(lab_root())
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o755)
    with _locked(paths):
        _ensure_host_engine(paths)
        _net.ensure_forwarding()
        password = _ensure_registry(paths)
        _ensure_host_login(paths, password)

        paths.ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(paths.ssh_dir, 0o700)
        _pki.ensure_ssh_key(paths.client_key, "tagship-lab client")
        pub = paths.client_key.with_name(paths.client_key.name + ".pub").read_text()
        _pki.write_if_changed(paths.authorized_keys, pub, 0o600)

        wanted = [Server(n, paths) for n in range(1, servers * slots + 1)]
        for n in sorted(_server_numbers_present(paths) - {s.n for s in wanted}):
            _reset_server(Server(n, paths))
        if hidden is None:
            hidden = bool(_read_state(paths).get("hidden", False))
        hiddens = [Server(k * servers + 1, paths, hidden=True) for k in range(slots)] if hidden else []
        for n in sorted(_server_numbers_present(paths, "j") - {s.n for s in hiddens}):
            _reset_server(Server(n, paths, hidden=True))
        # Hidden servers after their bastions: they are checked (and waited for) through the bastion.
        everyone = [*wanted, *hiddens]
        starting = [_start_server(srv) for srv in _servers_to_restart(everyone, servers, slot)]
        # A server that cannot reach the registry is not a healthy lab server. Only this slot's servers
        # (and those just started) are unblocked: another slot's test may have blocked one on purpose.
        mine = {srv.name for srv in everyone if srv.slot(servers) == slot} | {st.srv.name for st in starting}
        for srv in everyone:
            if srv.name in mine and _net.registry_blocked(srv.name):
                _net.set_registry_block(srv.name, False)

        for image in (CADDY, HAPROXY):  # built while the new servers' engines boot
            _ensure_image(paths, password, image)
        for st in starting:
            _finish_server(st)
        for srv in everyone:
            if srv.name in mine:
                _check_host_key(srv)

        known = "".join(_known_hosts_line(srv) + "\n" for srv in everyone)
        _pki.write_if_changed(paths.known_hosts, known, 0o600)
        _pki.write_if_changed(SSH_CLIENT_CONF, _ssh_client_config(paths, everyone))
        _net.ensure_forwarding()  # DOCKER-USER again, in case the host engine restarted
        state = {"servers": servers, "slots": slots, "hidden": hidden}
        _pki.write_if_changed(paths.state, json.dumps(state) + "\n")
        return _slot(paths, password, state, slot)


def _servers_to_restart(everyone: list[Server], servers: int, slot: int) -> list[Server]:
    """The servers up(slot=slot) resets (stops what is left of them): they are started afresh.

    Slot `slot`'s servers when they are not healthy. Another slot's server only when one of its
    processes is gone (never started, or killed with the machine's other processes, as before the
    stop CI): one that runs is its own worker's to check, and that worker's test may have broken it
    on purpose (CI stop 27 reset a hidden server under such a test).
    """
    chosen: list[Server] = []
    for srv in everyone:
        mine = srv.slot(servers) == slot
        if _server_problem(srv) is not None if mine else not _processes_alive(srv):
            _reset_server(srv)
            chosen.append(srv)
    return chosen


def _processes_alive(srv: Server) -> bool:
    return all(srv.paths.records.get(srv.rec(what)) is not None for what in ("anchor", "dockerd", "sshd"))


def _slot(paths: Paths, password: str, state: Mapping[str, object], slot: int) -> Lab:
    """The view of slot `slot` of a lab whose state.json says `state`."""
    per_slot = int(str(state["servers"]))
    first = slot * per_slot + 1
    hidden = Server(first, paths, hidden=True) if state.get("hidden") else None
    return _lab(paths, password, [Server(n, paths) for n in range(first, first + per_slot)], hidden)


def _read_state(paths: Paths) -> dict[str, object]:
    try:
        data = json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current(slot: int = 0) -> Lab:
    """Slot `slot` of the lab described by the state dir, without checking or starting anything."""
    paths = Paths(lab_root())
    state = _read_state(paths)
    try:
        slots = int(str(state.get("slots", 1)))
        password = paths.password_file.read_text().strip()
        if not 0 <= slot < slots:
            raise ValueError(f"the lab has {slots} slots, not {slot + 1}")
        return _slot(paths, password, state, slot)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"no lab state in {paths.root} ({exc}): run `python -m lab up`") from exc


def down(purge: bool = False, host_engine: bool = True) -> None:
    """Stop every lab process by PID and delete the lab's namespaces and links.

    host_engine: also stop the host dockerd if (and only if) the lab started it.
    purge: also delete the lab's state (keys, registry data, server data roots, images,
    the ssh client config); the next up() starts cold.
    """
    _require_root()
    paths = Paths(lab_root())
    with _locked(paths):
        numbers = _server_numbers_present(paths)
        for n in sorted(numbers):
            _reset_server(Server(n, paths))
        hidden = _server_numbers_present(paths, "j")
        for n in sorted(hidden):
            _reset_server(Server(n, paths, hidden=True))
        _stop_registry(paths)
        _net.remove_forwarding()
        if purge:
            if _docker_ping(HOST_DOCKER_SOCK):
                images = (CADDY_IMAGE, CADDY_LOCAL, HAPROXY_IMAGE, HAPROXY_LOCAL, BASE_IMAGE)
                run([_bin("docker"), "image", "rm", "-f", *images], check=False, env=_host_env(paths))
            everyone = set(range(1, MAX_SERVERS + 1))
            for path in [Server(n, paths).data_root for n in everyone] + [
                Server(n, paths, hidden=True).data_root for n in everyone
            ]:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
            SSH_CLIENT_CONF.unlink(missing_ok=True)
            shutil.rmtree(CERTS_D, ignore_errors=True)
        if host_engine:
            stop(paths.records.get("host-dockerd"), grace=30)
            paths.records.drop("host-dockerd")
        if purge:
            for child in paths.root.iterdir():
                if child.name != "lock":
                    if child.is_dir():
                        _umount_under(child)
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)


@dataclass(frozen=True)
class Check:
    part: str
    ok: bool
    detail: str


def status(slot: int | None = None) -> list[Check]:
    """What runs and what does not, part by part (starts nothing); slot: only that slot's servers."""
    paths = Paths(lab_root())
    checks = [Check("host engine", _docker_ping(HOST_DOCKER_SOCK), str(HOST_DOCKER_SOCK))]
    state = _read_state(paths)
    try:
        slots = [current(k) for k in range(int(str(state.get("slots", 1))))]
    except (LabError, ValueError) as exc:
        checks.append(Check("state", False, str(exc)))
        return checks
    lab = slots[0]
    reg_ok = paths.ca_cert.exists() and _registry_healthy(paths, lab.registry_password)
    rec = paths.records.get("registry")
    checks.append(Check("registry", reg_ok, f"{REGISTRY} pid {rec.pid if rec else '-'}"))
    count = len(lab.servers) * len(slots)
    hidden = [Server(n, paths, hidden=True) for n in range(1, count + 1, len(lab.servers))] if lab.hidden else []
    for srv in [*(Server(n, paths) for n in range(1, count + 1)), *hidden]:
        if slot is not None and srv.slot(len(lab.servers)) != slot:
            continue
        problem = _server_problem(srv)
        detail = f"{srv.ip} {srv.public().docker_host}"
        if srv.bastion is not None:
            detail += f" (ssh only through {srv.bastion.name})"
        if problem is None and _net.registry_blocked(srv.name):
            detail += " (registry blocked)"
        checks.append(Check(srv.name, problem is None, problem or detail))
    caddy = _docker_ping(HOST_DOCKER_SOCK) and _image_id(paths, CADDY_IMAGE) is not None
    checks.append(Check("caddy image", caddy, CADDY_IMAGE))
    haproxy = _docker_ping(HOST_DOCKER_SOCK) and _image_id(paths, HAPROXY_IMAGE) is not None
    checks.append(Check("haproxy image", haproxy, HAPROXY_IMAGE))
    return checks


def server_docker(
    server: LabServer, *args: str, input: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI (on this host) against server's own engine; text, captured, no check.

    The CLI uses the lab's private client config, which is logged in to the lab registry.
    """
    env = _host_env(Paths(lab_root()))
    env["DOCKER_HOST"] = server.docker_host
    return subprocess.run(
        [_bin("docker"), *args],
        env=env,
        input=input,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def untrust_registry(server: LabServer, untrusted: bool) -> None:
    """Make server's engine distrust the lab registry's certificate, or trust it again.

    An empty directory is bind-mounted over /etc/docker/certs.d/REGISTRY inside the server's own
    mount namespace (its engine's), so the engine finds no CA for it; the host and the other servers
    keep theirs. The engine reads that directory at each login and pull: no restart.
    """
    pid = int((Path("/run") / server.name / "docker.pid").read_text().strip())
    enter = [_bin("nsenter"), f"--target={pid}", "--mount"]
    mounted = str(CERTS_D) in _mountinfo_targets(pid)
    if untrusted and not mounted:
        empty = Path("/run") / server.name / "no-certs"
        empty.mkdir(exist_ok=True)
        run([*enter, "mount", "--bind", str(empty), str(CERTS_D)])
    elif not untrusted and mounted:
        run([*enter, "umount", str(CERTS_D)])


def block_registry(server: LabServer, blocked: bool) -> None:
    """Make the lab registry unreachable from server (its engine and its containers), or undo it.

    A `prohibit` route for the registry address inside the server's network namespace:
    connections fail at once. Loopback inside the server (e.g. an ssh -R tunnel) still works.
    up() lifts any block it finds.
    """
    _net.set_registry_block(server.name, blocked)
