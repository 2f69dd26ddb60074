"""Command line: parse arguments, load config, call one command, map errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imports stay lazy so `tagship --help` is instant
    from tagship.config import Config
    from tagship.output import Output

DESCRIPTION = "Turn a git tag into a running release on your own servers."
EPILOG = """exit codes: 0 ok, 1 a step failed (the previous release keeps running), 2 bad usage or
configuration, 3 deploy lock held, 4 git (no tag, dirty tree, unknown tag), 5 docker/compose/ssh
missing, 6 cannot connect over SSH, 7 registry refused, 8 the new release was not healthy, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagship", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-C", "--project", default=".", metavar="DIR", help="project directory (default: .)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and more output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors and the result")
    parser.add_argument("--json", action="store_true", help="print JSON events, one per line, on stdout")
    parser.add_argument("-e", "--environment", default=None, metavar="NAME", help=ENVIRONMENT_HELP)
    parser.add_argument("--hosts", default="", metavar="S1,S2", help=HOSTS_HELP)
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help=LANG_HELP)
    parser.add_argument("--version-info", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    deploy = sub.add_parser(
        "deploy",
        help="build, push and deploy the tag on HEAD to every server",
        description="Build the image from the tagged commit, push it, and switch every "
        "server to it; on failure the servers go back to what they ran.",
    )
    deploy.add_argument("--version", default="", metavar="TAG", help="deploy this existing tag instead of HEAD's")
    deploy.add_argument("--allow-dirty", action="store_true", help="deploy although tracked files changed")
    deploy.add_argument("--dry-run", action="store_true", help="print every command; change nothing anywhere")
    deploy.add_argument(
        "--force", action="store_true", help="push over a tag the registry has with other content (tags are immutable)"
    )

    deploy.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for another deploy's lock instead of failing (exit 3)",
    )

    sub.add_parser(
        "releases",
        help="list the releases on each server, marking the current one",
        description="List each server's release history (newest first); * marks the "
        "release that server runs. With --json, one `releases` event.",
    )

    status = sub.add_parser(
        "status",
        help="what each server runs: release, containers, proxy, lock, drift",
        description="Per server: the current release and since when, the app's containers (state, health, "
        "image), the proxy and this app's port listeners, the lock holder, and drift (a container of the "
        "deployed service on another image, a .env tag other than the last succeeded release's). Read-only. "
        "Exit 1 if a server drifts or cannot be read. With --json, one `status` event.",
    )
    status.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one `status` event")

    doctor = sub.add_parser(
        "doctor",
        help="check this machine and every server, each problem with its fix",
        description="Check git, docker, Compose v2 and ssh here, the config, and on every server: SSH, Docker "
        "and Compose v2, free disk under Docker's root dir, the proxy image and container, the deploy lock. "
        "One line each; exit 1 if any problem. With --json, one `doctor` event.",
    )
    doctor.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one `doctor` event")

    logs = sub.add_parser(
        "logs",
        help="the app's logs from every server, each line prefixed with the server",
        description="Print the container logs of the deployed service (or SERVICE, another service of the "
        "compose project) from every server, each line prefixed with the server's name. Without --follow "
        "each server's lines come as a block, in the configured order; with it, lines from all servers "
        "interleave as they arrive until Ctrl-C (exit 130). Lines go to stderr, as all server output does.",
    )
    logs.add_argument("service", nargs="?", default="", metavar="SERVICE", help="another service of the project")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.add_argument("--since", default="", metavar="DURATION", help="only lines since then (10m, 2h, a timestamp)")
    logs.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines of each container")

    run_in = sub.add_parser(
        "exec",
        help="run a command in the app's running container on one server",
        description="Run CMD in the first running container of the deployed service (or --service) on the "
        "first server, or --server; --new runs it in a one-off container of the current release instead "
        "(docker compose run --rm --no-deps). -i gives it a terminal (ssh -t), for a shell such as "
        "`python manage.py shell`. Put the command after --. Exit code: the command's.",
    )
    run_in.add_argument("--server", default="", metavar="S", help="the server to run it on (default: the first)")
    run_in.add_argument("-i", "--interactive", action="store_true", help="with a terminal (needs one here)")
    run_in.add_argument("--new", action="store_true", help="in a one-off container of the current release")
    run_in.add_argument("--service", default="", metavar="SERVICE", help="another service of the project")
    run_in.add_argument("argv", nargs="*", metavar="CMD", help="the command and its arguments, after --")

    rollback = sub.add_parser(
        "rollback",
        help="switch back to the previous (or a given) retained release",
        description="Switch every server back to the release before the current one "
        "(by the servers' history), or to VERSION, using the image already on the servers, "
        "with the same health-gated zero-downtime switch.",
    )
    rollback.add_argument("target_version", nargs="?", default="", metavar="VERSION", help="the release to go to")
    rollback.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS", help="wait for the lock")

    prune = sub.add_parser(
        "prune",
        help="remove old release images on the servers (keeps releases.keep)",
        description="On each server, remove this app's images beyond the last releases.keep "
        "releases; the current and previous releases are always kept.",
    )
    prune.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS", help="wait for the lock")

    lock = sub.add_parser("lock", help="show or free the deploy lock", description="Show or free the deploy lock.")
    lock_sub = lock.add_subparsers(dest="lock_command", metavar="ACTION", required=True)
    lock_sub.add_parser(
        "status",
        help="who holds the lock on each server, and whether that run looks dead",
        description="Show who holds the deploy lock on each server, since when, and whether "
        "the holder looks dead (its SSH connection or process is gone). Exit 3 if locked.",
    )
    release = lock_sub.add_parser(
        "release",
        help="free the lock on every server (when its holder is dead)",
        description="Free the deploy lock on every server, recording it in the audit log. Refused "
        "while a holder still looks alive (its SSH connection is open), unless --force.",
    )
    release.add_argument("--force", action="store_true", help="free it even though its holder still looks alive")

    init = sub.add_parser(
        "init",
        help="write tagship.toml from compose.yaml and .env",
        description="Write a working tagship.toml from the project's compose file and .env.",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing tagship.toml")

    demo = sub.add_parser(
        "demo",
        help="deploy a bundled example app to the local Docker engine, twice",
        description="Create a throw-away git repo with an example web app, deploy v1 and "
        "then v2 to this machine's Docker engine, and print the URL and version served.",
    )
    demo.add_argument("--dir", default="", help="where to create the demo repo (default: a temporary directory)")
    demo.add_argument("--port", type=int, default=18080, help="host port for the demo app (default: 18080)")
    demo.add_argument("--proxy-image", default="caddy:2-alpine", help="the Caddy image for the proxy")
    demo.add_argument(
        "--listener-image", default="haproxy:lts-alpine", help="the HAProxy image for the port's listener"
    )

    show = sub.add_parser(
        "config",
        help="print the merged configuration and where each value came from",
        description="Print the configuration a command would use (the environment merged, variables "
        "applied), secrets shown as ***, and each value's source: default, tagship.toml, "
        "environments.NAME or the variable that set it.",
    )
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
    _accept_environment_after(sub)
    return parser


ENVIRONMENT_HELP = "the [environments.NAME] of tagship.toml to use (default: $TAGSHIP_ENVIRONMENT, default_environment)"
LANG_HELP = "language of messages: en or zh (default: from LC_ALL, LC_MESSAGES, LANG; zh_* is Chinese)"
HOSTS_HELP = "only these of the configured servers (comma-separated, as the config names them)"


def _accept_environment_after(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """-e also after the command's name (`tagship deploy -e staging`); SUPPRESS keeps one given before it."""
    for name, parser in sub.choices.items():
        if name in ("init", "demo"):
            continue  # no config to choose from
        parser.add_argument("-e", "--environment", default=argparse.SUPPRESS, metavar="NAME", help=ENVIRONMENT_HELP)
        parser.add_argument("--hosts", default=argparse.SUPPRESS, metavar="S1,S2", help=HOSTS_HELP)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_environment_after(action)


def _version() -> str:
    from tagship import __version__

    return f"tagship {__version__}"


def forget_secret_env(config: Config, environ: MutableMapping[str, str]) -> None:
    """Once read, the registry password leaves the environment: no child process (git, docker, ssh,
    a local hook) inherits it. It travels only on the stdin of `docker login`."""
    if config.registry.password:
        environ.pop(config.registry.password_env, None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tagship import messages
    from tagship.output import Output
    from tagship.remote import interrupt

    messages.choose(args.lang, os.environ)

    out = Output(json_mode=args.json, verbose=args.verbose, quiet=args.quiet)
    # Ctrl-C and SIGTERM stop the running commands, then undo finished steps and release locks.
    interrupt.install()
    try:
        return _dispatch(args, out)
    except KeyboardInterrupt:
        out.error(messages.t("common.interrupted"))
        return interrupt.EXIT_INTERRUPTED
    except Exception as exc:
        return _report(exc, out, args.verbose)


def _report(exc: Exception, out: Output, verbose: bool) -> int:
    from tagship.errors import EXIT_FAILED, TagshipError

    if isinstance(exc, TagshipError):
        out.error(str(exc), exc.detail)
        if verbose:
            import traceback

            out.traceback(traceback.format_exc())  # through Output: masked, never straight to stderr
        return exc.exit_code
    import traceback

    if verbose:
        out.traceback(traceback.format_exc())
    from tagship.messages import t

    out.error(t("common.unexpected", kind=type(exc).__name__, text=exc))
    return EXIT_FAILED


def _dispatch(args: argparse.Namespace, out: Output) -> int:
    root = Path(args.project).resolve()
    if args.command == "demo":
        from tagship.commands import demo

        return demo.run(out, Path(args.dir) if args.dir else None, args.port, args.proxy_image, args.listener_image)
    if args.command == "init":
        from tagship.commands import init as scaffold

        scaffold.init(root, out, force=args.force)
        return 0
    from tagship import config as config_mod

    if args.command == "config":
        from tagship.commands import config as show

        loaded = config_mod.load(root, environment=args.environment, need_environment=False)
        show.show(config_mod.only_hosts(loaded, args.hosts), out)
        return 0
    if args.command == "doctor":  # a config that does not load is one of its findings
        from tagship.commands import doctor
        from tagship.errors import EXIT_FAILED

        found = doctor.doctor(
            out, lambda: config_mod.only_hosts(config_mod.load(root, environment=args.environment), args.hosts)
        )
        return EXIT_FAILED if any(check.status == "problem" for check in found) else 0
    config = config_mod.only_hosts(config_mod.load(root, environment=args.environment), args.hosts)
    forget_secret_env(config, os.environ)
    out.add_secret(config.registry.password)  # masked in every line written from here on
    for webhook in config.notify:
        out.add_secret(webhook.url)  # a webhook's URL holds its token
    if args.command == "deploy":
        from tagship.commands import deploy

        options = deploy.DeployOptions(
            version=args.version,
            allow_dirty=args.allow_dirty,
            dry_run=args.dry_run,
            lock_wait=args.lock_wait,
            force=args.force,
        )
        release = deploy.run(config, out, options)
        verb = "would deploy" if args.dry_run else "deployed"
        out.result(
            f"{verb} {release.image} to {', '.join(s.raw for s in config.servers)}",
            version=release.version,
            image=release.image,
            dry_run=args.dry_run,
        )
        return 0
    return _dispatch_releases(args, config, out)


def _dispatch_releases(args: argparse.Namespace, config: Config, out: Output) -> int:
    """Commands that need only tagship.toml and SSH: no local Docker, no local compose file."""
    if args.command == "releases":
        from tagship.commands import releases

        releases.list_releases(config, out)
        return 0
    if args.command == "status":
        from tagship.commands import status
        from tagship.errors import EXIT_FAILED

        return 0 if all(server.healthy for server in status.status(config, out)) else EXIT_FAILED
    if args.command == "logs":
        from tagship.commands import logs

        options = logs.LogsOptions(args.service, args.follow, args.since, args.tail)
        return logs.logs(config, out, options)
    if args.command == "exec":
        from tagship.commands import execute

        run = execute.ExecOptions(tuple(args.argv), args.server, args.service, args.interactive, args.new)
        return execute.execute(config, out, run)
    if args.command == "rollback":
        from tagship.commands import rollback

        release = rollback.rollback(config, out, args.target_version, args.lock_wait)
        out.result(f"rolled back to {release.image}", version=release.version, image=release.image)
        return 0
    if args.command == "prune":
        from tagship.commands import prune

        prune.prune(config, out, args.lock_wait)
        return 0
    from tagship.commands import lock

    if args.lock_command == "status":
        from tagship.errors import EXIT_LOCKED

        return EXIT_LOCKED if lock.lock_status(config, out) else 0
    lock.lock_release(config, out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
