"""Zero-downtime benchmark: plain `docker compose up -d` recreate versus `tagship deploy`, on the lab.

Run from the repository root: `python bench/zero_downtime.py [--deploys 10] [--rev HEAD]`.
By default it runs the tagship of the work tree (the editable install); `--rev REV` runs a snapshot of
src/ at that commit instead (handy while src/ is being edited).

One run, same example app (the bundled busybox httpd, 2-second boot, serving /version.txt):

(A) plain recreate on tslab-h2, what the original user script does: `docker build` here, `docker push` to
    the lab registry, then over ssh `sed -i` the tag in the server's .env and `docker compose up -d`.
    The app's compose publishes its port directly (no proxy).
(B) `tagship deploy` (the real CLI, in a subprocess) on tslab-h1, through tagship's proxy.

Each method does one unmeasured first deploy (v0), then N measured deploys v1..vN (tags carry the run's
time stamp, v1-20261126-071809, as registry tags are immutable). During each measured
deploy a bounded lab.load.Load (fresh-connection and keep-alive clients) hits the server's port: it starts
`--before` seconds before the deploy command and stops `--after` seconds after the new version is served.
Per deploy: requests sent and failed, outage window (first to last failure), deploy wall time, and which
deploy step each failure fell in. tagship's output for each deploy is kept (--logs, default /tmp/...).
At the end the benchmark's containers, project directories and images are removed (the proxy stays).

Exit codes: 0 target met; 1 (B) failed at least one request; 2 a deploy or the setup failed;
3 (B) failed nothing but sent fewer than --min-requests requests (target not shown).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab package lives in the repo root

import lab
from lab.load import Load, LoadReport

# The code under test, run as the command users type (never a `tagship` found on PATH).
TAGSHIP = [sys.executable, "-m", "tagship"]

ROOT = Path(__file__).resolve().parents[1]

# Names, paths and ports of our own: tests use /srv/<test name> and ports 18100+.
PLAIN_NAME, PLAIN_PORT = "bench-zd-plain", 18901
TAGSHIP_NAME, TAGSHIP_PORT = "bench-zd-tagship", 18900
NAMESPACE = "bench"
PROXY_NAME = "tagship-proxy"

# The reference compose of the original script's layout: the port is published by the app itself.
PLAIN_COMPOSE = """\
services:
  web:
    image: ${APP_IMAGE_NAME}:${APP_IMAGE_TAG}
    container_name: ${APP_NAME}-app
    ports:
      - "${APP_PORT}:8080"
    restart: unless-stopped
"""


class BenchError(Exception):
    """The benchmark could not go on (setup or a deploy failed)."""


@dataclass
class DeployResult:
    version: str
    sent: int
    failed: int
    outage: float
    wall: float
    ok: bool  # the deploy command succeeded and the new version was served
    versions_ok: bool  # every client that saw answers saw the new version last
    errors: list[str] = field(default_factory=list)
    note: str = ""
    detail: str = ""  # (B) the slowest steps tagship reported
    failed_during: dict[str, int] = field(default_factory=dict)  # failed requests per deploy step


@dataclass
class MethodResult:
    label: str
    server: str
    deploys: list[DeployResult] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.deploys)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.deploys)

    @property
    def outage_total(self) -> float:
        return sum(d.outage for d in self.deploys)

    @property
    def outage_max(self) -> float:
        return max((d.outage for d in self.deploys), default=0.0)

    @property
    def wall_mean(self) -> float:
        return sum(d.wall for d in self.deploys) / len(self.deploys) if self.deploys else 0.0

    @property
    def wall_max(self) -> float:
        return max((d.wall for d in self.deploys), default=0.0)


# ---- small helpers ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {done.returncode}:\n{(done.stderr + done.stdout)[-2000:]}")
    return done


def ssh(
    server: lab.LabServer, command: str, *, stdin: str | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a shell command line on a lab server over plain ssh, like the original script does."""
    return run(["ssh", server.name, command], stdin=stdin, timeout=timeout, check=check)


def fetch(host: str, port: int, timeout: float = 2) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/version.txt", timeout=timeout) as response:
        return str(response.read().decode().strip())


def wait_served(host: str, port: int, version: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fetch(host, port) == version:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def proxy_id(server: lab.LabServer) -> str:
    """The proxy container's id (empty if none): a change during a deploy means someone recreated it."""
    done = ssh(server, f"docker inspect --format '{{{{.Id}}}}' {PROXY_NAME}", check=False, timeout=30)
    return done.stdout.strip()[:12] if done.returncode == 0 else ""


def copy_app(src: Path, repo: Path) -> None:
    """The bundled example app of the tagship source in src (like tagship.demo.copy_app, without importing it)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise BenchError("the example app needs a static busybox binary: apt-get install busybox-static")
    shutil.copytree(src / "tagship" / "demo_app", repo, ignore=shutil.ignore_patterns("env.example", "__pycache__"))
    shutil.copy(busybox, repo / "busybox")


class AppRepo:
    """The bundled example app in its own git repo; release() commits and tags a version."""

    def __init__(self, path: Path, dotenv: str, src: Path) -> None:
        self.path = path
        copy_app(src, path)
        (path / ".env").write_text(dotenv)
        (path / ".gitignore").write_text(".env\n")
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.name", "tagship bench")
        self.git("config", "user.email", "bench@tagship.invalid")

    def git(self, *args: str) -> None:
        run(["git", "-C", str(self.path), *args])

    def release(self, version: str) -> None:
        (self.path / "www" / "version.txt").write_text(version + "\n")
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--message", f"Release {version}")
        self.git("tag", version)


# ---- the two methods ----------------------------------------------------------------------------


class Method:
    label = ""
    name = ""
    port = 0

    def __init__(self, the_lab: lab.Lab, server: lab.LabServer, work: Path, env: dict[str, str], logs: Path,
                 src: Path) -> None:  # fmt: skip
        self.lab, self.server, self.env, self.logs = the_lab, server, env, logs
        self.detail = ""  # set by deploy(): what to show about the last deploy
        self.steps: list[tuple[float, str]] = []  # set by deploy(): (monotonic start, step name)
        self.remote = f"/srv/{self.name}"
        self.repo = AppRepo(
            work / self.name,
            f"APP_PORT={self.port}\nAPP_NAME={self.name}\nAPP_IMAGE_NAME={self.name}\nAPP_IMAGE_TAG=v0\n",
            src,
        )

    def setup(self) -> None:
        """Prepare the repo and the server (before the unmeasured v0 deploy)."""

    def deploy(self, version: str) -> None:
        """Ship the version tagged in the repo; raise BenchError on failure."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Remove this method's containers, project directory and images from the server."""
        ssh(self.server, f"cd {self.remote} 2>/dev/null && docker compose down --timeout 5", check=False)
        ids = f"docker ps -aq --filter label=com.docker.compose.project={self.name}"
        ssh(self.server, f'ids=$({ids}); [ -z "$ids" ] || docker rm -f $ids', check=False)
        ssh(self.server, f"rm -rf {self.remote}", check=False)
        image = f"{self.lab.registry}/{NAMESPACE}/{self.name}"
        rmi = f'ids=$(docker images -q {image} | sort -u); [ -z "$ids" ] || docker rmi -f $ids'
        ssh(self.server, rmi, check=False)
        run(["sh", "-c", rmi], env=self.env, check=False)


class PlainRecreate(Method):
    label = "A plain recreate"
    name, port = PLAIN_NAME, PLAIN_PORT

    @property
    def image(self) -> str:
        return f"{self.lab.registry}/{NAMESPACE}/{self.name}"

    def setup(self) -> None:
        password = self.lab.registry_password
        login = ["docker", "login", self.lab.registry, "--username", self.lab.registry_user, "--password-stdin"]
        run(login, env=self.env, stdin=password)
        ssh(self.server, shlex.join(login), stdin=password)  # the server's engine pulls with this login
        dotenv = f"APP_NAME={self.name}\nAPP_PORT={self.port}\nAPP_IMAGE_NAME={self.image}\nAPP_IMAGE_TAG=v0\n"
        ssh(self.server, f"mkdir -p {self.remote} && cat > {self.remote}/compose.yaml", stdin=PLAIN_COMPOSE)
        ssh(self.server, f"umask 077 && cat > {self.remote}/.env", stdin=dotenv)

    def deploy(self, version: str) -> None:
        ref = f"{self.image}:{version}"
        self.steps.append((time.monotonic(), "docker build"))
        run(["docker", "build", "--quiet", "--tag", ref, str(self.repo.path)], env=self.env)
        self.steps.append((time.monotonic(), "docker push"))
        run(["docker", "push", "--quiet", ref], env=self.env)
        self.steps.append((time.monotonic(), "ssh sed .env"))
        ssh(self.server, f"sed -i 's/^APP_IMAGE_TAG=.*/APP_IMAGE_TAG={version}/' {self.remote}/.env")
        self.steps.append((time.monotonic(), "ssh docker compose up -d"))
        ssh(self.server, f"cd {self.remote} && docker compose up -d")


class TagshipDeploy(Method):
    label = "B tagship deploy"
    name, port = TAGSHIP_NAME, TAGSHIP_PORT

    def setup(self) -> None:
        the_lab = self.lab
        (self.repo.path / "tagship.toml").write_text(
            f'servers = ["{self.server.name}"]\n\n'
            f'[app]\npath = "{self.remote}"\nupload = ["compose.yaml"]\n\n'
            f'[env]\nseed = ".env"\n\n'
            f'[image]\nname = "{self.name}"\n\n'
            f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "{NAMESPACE}"\n'
            f'username = "{the_lab.registry_user}"\n\n'
            f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n\n'
            f'[health]\npath = "/up"\n'
        )
        self.repo.git("add", "--all")
        self.repo.git("commit", "--quiet", "--message", "The app")

    def deploy(self, version: str) -> None:
        env = {**self.env, "TAGSHIP_REGISTRY_PASSWORD": self.lab.registry_password}
        started = time.monotonic()
        proc = subprocess.Popen([*TAGSHIP, "-C", str(self.repo.path), "deploy"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        watchdog = threading.Timer(600, proc.kill)  # bounded like everything else here
        watchdog.start()
        lines: list[tuple[float, str]] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
        code = proc.wait()
        watchdog.cancel()
        output = "\n".join(text for _, text in lines)
        log_text = "".join(f"{at - started:7.2f} {text}\n" for at, text in lines)
        (self.logs / f"B-{version}.log").write_text(log_text + f"exit {code}\n")
        step = ""
        for at, text in lines:  # steps ("==> name") and the commands in them ("  [server] $ argv")
            if text.startswith("==> "):
                step = text[4:]
                self.steps.append((at, step))
            elif "] $ " in text and step:
                command = text.split("] $ ", 1)[1].split(" --", 1)[0][:70]  # without its options
                self.steps.append((at, f"{step}: $ {command}"))
        took = [(float(s), name) for name, s in re.findall(r"done: (.+) \(([\d.]+)s\)", output)]
        self.detail = ", ".join(f"{name} {s:.1f}s" for s, name in sorted(took, reverse=True)[:2])
        if code != 0:
            raise BenchError(f"tagship deploy {version} exited {code}:\n{output[-3000:]}")


# ---- measuring ----------------------------------------------------------------------------------


def measure(method: Method, version: str, args: argparse.Namespace) -> DeployResult:
    """One deploy under load: load from `before` s ahead until `after` s past the new version being served."""
    host, port = method.server.ip, method.port
    method.repo.release(version)
    proxy_before = proxy_id(method.server) if isinstance(method, TagshipDeploy) else ""
    load = Load(
        host,
        port,
        fresh=args.fresh,
        keepalive=args.keepalive,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        rate=0,  # as fast as it can: the benchmark's figures are worst cases
    ).start()
    time.sleep(args.before)
    method.detail, method.steps = "", []
    started, error = time.monotonic(), ""
    try:
        method.deploy(version)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        error = str(exc)
    ended = time.monotonic()
    wall = ended - started
    served = not error and wait_served(host, port, version)
    time.sleep(args.after)
    report: LoadReport = load.stop()
    note = error
    if not error and not served:
        note = f"{version} was not served within 60 s after the deploy"
    if report.sent >= args.max_requests:
        note += f" load hit its request cap ({args.max_requests}): counts are truncated"
    if isinstance(method, TagshipDeploy):
        proxy_after = proxy_id(method.server)
        if proxy_after != proxy_before:
            note += f" proxy container changed during the deploy ({proxy_before or 'none'} -> {proxy_after or 'none'})"
    last_seen = [seq[-1] for seq in report.version_sequences() if seq]
    return DeployResult(
        version=version,
        sent=report.sent,
        failed=report.failed,
        outage=report.outage_seconds,
        wall=wall,
        ok=not error and served,
        versions_ok=bool(error) or all(v == version for v in last_seen),
        errors=[f"{client.kind}: {e}" for client in report.clients for e in client.errors],
        note=note.strip(),
        detail=method.detail,
        failed_during=failures_by_step(report, started, method.steps, ended),
    )


def failures_by_step(
    report: LoadReport, started: float, steps: list[tuple[float, str]], ended: float
) -> dict[str, int]:
    """How many requests failed during each step of the deploy (and before / after the deploy command)."""
    counts: Counter[str] = Counter()
    for at in (t for client in report.clients for t in client.failure_times):
        if at < started:
            counts["before the deploy"] += 1
        elif at >= ended:
            counts["after the deploy command ended"] += 1
        else:
            counts[next((name for begun, name in reversed(steps) if begun <= at), "deploy start")] += 1
    return dict(counts)


def first_deploy(method: Method, version: str) -> None:
    method.repo.release(version)
    method.deploy(version)
    if not wait_served(method.server.ip, method.port, version):
        raise BenchError(f"{version} is not served on {method.server.ip}:{method.port}")


def run_method(method: Method, result: MethodResult, args: argparse.Namespace) -> None:
    """Set up, deploy v0, then measure args.deploys deploys into result (kept if a deploy fails)."""
    log(f"== {method.label} on {method.server.name} ({method.server.ip}:{method.port})")
    method.cleanup()  # leftovers of an interrupted run
    method.setup()
    first_deploy(method, f"v0-{args.run}")
    log("   v0 deployed (not measured)")
    for n in range(1, args.deploys + 1):
        d = measure(method, f"v{n}-{args.run}", args)
        result.deploys.append(d)
        log(
            f"   {'v' + str(n):>4}: sent {d.sent:>6}  failed {d.failed:>6}  outage {d.outage:6.3f} s  "
            f"wall {d.wall:5.2f} s{'' if d.versions_ok else '  (a client did not see the new version last)'}"
            f"{'  slowest: ' + d.detail if d.detail else ''}"
            f"{'  failed during: ' + describe(d.failed_during) if d.failed_during else ''}"
            f"{'  ' + d.note.splitlines()[0] if d.note else ''}"
        )
        if not d.ok:
            log(d.note)
            raise BenchError(f"deploy {d.version} failed, stopping this method")


# ---- report -------------------------------------------------------------------------------------


def table(results: list[MethodResult]) -> str:
    head = (
        "method",
        "server",
        "deploys",
        "requests sent",
        "requests failed",
        "outage total (s)",
        "outage max (s)",
        "deploy wall mean (s)",
        "deploy wall max (s)",
    )
    rows = [head] + [
        (
            r.label,
            r.server,
            str(len(r.deploys)),
            str(r.sent),
            str(r.failed),
            f"{r.outage_total:.3f}",
            f"{r.outage_max:.3f}",
            f"{r.wall_mean:.2f}",
            f"{r.wall_max:.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    rule = "| " + " | ".join("-" * w if i < 2 else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def verdict(plain: MethodResult | None, tagship: MethodResult, args: argparse.Namespace) -> tuple[str, int]:
    lines: list[str] = []
    code = 0
    if tagship.failed:
        lines.append(
            f"Target NOT met: (B) failed {tagship.failed} of {tagship.sent} requests "
            f"(outage total {tagship.outage_total:.3f} s)."
        )
        code = 1
    elif len(tagship.deploys) < args.deploys or any(not d.ok for d in tagship.deploys):
        lines.append(
            f"Target not shown: (B) did not complete its {args.deploys} deploys (see Failures below); "
            f"it failed 0 of {tagship.sent} requests until then."
        )
        code = 2
    elif tagship.sent < args.min_requests:
        lines.append(
            f"Target not shown: (B) failed 0 requests, but only {tagship.sent} were sent "
            f"(need at least {args.min_requests}; raise --after/--before or --deploys)."
        )
        code = 3
    else:
        lines.append(f"Target met: (B) failed 0 of {tagship.sent} requests (at least {args.min_requests}).")
    if plain is not None:
        share = 100 * plain.failed / plain.sent if plain.sent else 0.0
        lines.append(
            f"Baseline: (A) plain recreate failed {plain.failed} of {plain.sent} requests ({share:.1f} %), "
            f"outage {plain.outage_total:.2f} s total over {len(plain.deploys)} deploys "
            f"({plain.outage_total / max(len(plain.deploys), 1):.2f} s mean, {plain.outage_max:.2f} s max); "
            f"(B) tagship deploy failed {tagship.failed} of {tagship.sent}, outage {tagship.outage_total:.3f} s total."
        )
    return "\n".join(lines), code


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{step} ({n})" for step, n in sorted(counts.items(), key=lambda item: -item[1]))


def error_summary(result: MethodResult, limit: int = 8) -> str:
    counts = Counter(e for d in result.deploys for e in d.errors)
    if not counts:
        return f"{result.label}: no failed requests."
    during: Counter[str] = Counter()
    for d in result.deploys:
        during.update(d.failed_during)
    lines = [f"{result.label}: failed requests by deploy step: {describe(dict(during))}"]
    lines.append("  error texts (the first 5 per client and deploy, count x text):")
    lines += [f"  {n:>5} x {text}" for text, n in counts.most_common(limit)]
    return "\n".join(lines)


def tagship_source(rev: str, work: Path) -> tuple[Path, str]:
    """The tagship source to benchmark (src/ of the work tree, or of commit rev) and a line describing it."""
    git = ["git", "-C", str(ROOT)]
    if not rev:
        head = run([*git, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        dirty = run([*git, "status", "--porcelain", "src"], check=False).stdout.strip()
        return ROOT / "src", f"work tree {ROOT / 'src'} at commit {head or '?'}" + (
            " + uncommitted changes in src/" if dirty else ""
        )
    commit = run([*git, "rev-parse", "--short", f"{rev}^{{commit}}"]).stdout.strip()
    snapshot = work / "tagship-src"
    snapshot.mkdir()
    archive = subprocess.run([*git, "archive", commit, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
    return snapshot / "src", f"commit {commit} ({rev}), snapshot at {snapshot / 'src'} on PYTHONPATH"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deploys", type=int, default=10, help="measured deploys per method (default 10)")
    parser.add_argument("--before", type=float, default=1.0, help="load seconds before each deploy (default 1)")
    parser.add_argument(
        "--after", type=float, default=2.0, help="load seconds after the new version is served (default 2)"
    )
    parser.add_argument("--fresh", type=int, default=2, help="fresh-connection clients (default 2)")
    parser.add_argument("--keepalive", type=int, default=2, help="keep-alive clients (default 2)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="request cap per deploy's load")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time cap per deploy's load")
    parser.add_argument("--min-requests", type=int, default=20_000, help="(B) requests needed for the target")
    parser.add_argument("--rev", default="", help="benchmark tagship as of this commit (default: the work tree)")
    parser.add_argument("--logs", default="", help="directory for tagship's output per deploy (default: /tmp/...)")
    parser.add_argument("--only", choices=("A", "B"), default="", help="run one method only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    args.run = stamp  # in every tag (v1-20261126-071809): registry tags are immutable, each run pushes new ones
    logs = Path(args.logs or f"/tmp/tagship-bench-{stamp}")
    logs.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    log("starting the lab (lab.up(servers=2))")
    the_lab = lab.up(servers=2)
    servers = {s.name: s for s in the_lab.servers}
    h1, h2 = servers["tslab-h1"], servers["tslab-h2"]
    plain_result = MethodResult(PlainRecreate.label, h2.name)
    tagship_result = MethodResult(TagshipDeploy.label, h1.name)
    results: list[MethodResult] = []
    failure = ""
    with tempfile.TemporaryDirectory(prefix="tagship-bench-") as tmp:
        work = Path(tmp)
        (work / "docker-config").mkdir()
        env = {**os.environ, "DOCKER_CONFIG": str(work / "docker-config"), "NO_COLOR": "1"}
        env.pop("TAGSHIP_REGISTRY_PASSWORD", None)
        src, source = tagship_source(args.rev, work)
        if args.rev:  # the snapshot's package comes first on sys.path, before the editable install
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
        methods: list[Method] = []
        if args.only != "B":
            methods.append(PlainRecreate(the_lab, h2, work, env, logs, src))
        if args.only != "A":
            methods.append(TagshipDeploy(the_lab, h1, work, env, logs, src))
        try:
            for method in methods:
                result = plain_result if isinstance(method, PlainRecreate) else tagship_result
                results.append(result)
                try:
                    run_method(method, result, args)
                except (BenchError, subprocess.TimeoutExpired) as exc:
                    failure += f"{method.label}: {exc}\n"
                    log(str(exc))
        finally:
            log("cleaning up the benchmark's apps on the servers (the proxy stays)")
            for method in methods:
                method.cleanup()
    elapsed = time.monotonic() - started
    print(f"Zero-downtime benchmark, {when}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"tagship: {source}")
    print(f"machine load average (1 min): {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(
        f"app: bundled example (busybox httpd, 2 s boot), load: {args.fresh} fresh + {args.keepalive} keep-alive "
        f"clients from {args.before:g} s before each deploy to {args.after:g} s after the new version is served"
    )
    print()
    print(table(results))
    print()
    if args.only == "A":
        print("(B) not run.")
        code = 0 if not failure else 2
    else:
        text, code = verdict(plain_result if args.only != "B" else None, tagship_result, args)
        print(text)
    for result in results:
        print(error_summary(result))
        for d in result.deploys:
            if d.note or not d.versions_ok:
                print(f"  {d.version}: {d.note or 'a client did not see the new version last'}")
    if failure:
        print("Failures:\n" + failure.rstrip())
        code = code or 2
    print(f"tagship output per deploy: {logs}")
    print(f"Run time: {elapsed:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
