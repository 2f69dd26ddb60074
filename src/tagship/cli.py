"""Command line: parse arguments (Click), load config, call one command, map errors to exit codes.

The language is chosen before the Click tree is built, so every help text comes from the message
catalog (`messages/cli.toml`) in the user's language. Parsing only says what was asked (a `Run`);
`main` then starts it. Imports stay lazy: `tagship --help` loads Click and the catalog, never the
config, the transport or the commands.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple  # NamedTuple, not dataclass: no import of dataclasses for --help

import click

from tagship import messages
from tagship.messages import t

if TYPE_CHECKING:  # imports stay lazy so `tagship --help` is instant
    from tagship.config import Config
    from tagship.output import Output

PROG = "tagship"
COMPLETE_VAR = "_TAGSHIP_COMPLETE"  # Click's name for it, from PROG; the completion scripts set it
SHELLS = ("bash", "zsh", "fish")


# Click's fixed words (Usage:, Options:, the help option) in the chosen language. Click asks gettext
# for them, which would need compiled .mo files; its formatter and command classes are the public
# hooks for the same words.


class Formatter(click.HelpFormatter):
    """Click's help layout with the catalog's words, and Chinese wrapped by the columns it takes."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, t("cli.usage_prefix") if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        # Click passes its own English heading; these are the two it has. The colon is the
        # language's own (Chinese uses a full-width one).
        words = {"Options": t("cli.heading_options"), "Commands": t("cli.heading_commands")}
        self.write(f"{'':>{self.current_indent}}{words.get(heading, heading + ':')}\n")

    # Click wraps by characters and breaks only at spaces: a Chinese sentence has none, and each
    # of its characters takes two columns. For Chinese, text and option lists are wrapped here.

    def write_text(self, text: str) -> None:
        if messages.current() != "zh":
            return super().write_text(text)
        indent = " " * self.current_indent
        for number, paragraph in enumerate(text.split("\n\n")):
            if number:
                self.write("\n")
            if paragraph.startswith("\b\n"):  # Click's mark for "print as written"
                lines = paragraph.removeprefix("\b\n").splitlines()
            else:
                lines = wrapped(" ".join(paragraph.split()), self.width - self.current_indent)
            self.write("".join(f"{indent}{line}\n" for line in lines))

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        if messages.current() != "zh":
            return super().write_dl(rows, col_max, col_spacing)
        rows = list(rows)
        first_width = min(max(len(first) for first, _ in rows), col_max) + col_spacing
        hanging = " " * (self.current_indent + first_width)
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if len(first) > first_width - col_spacing:
                self.write(f"\n{hanging}")  # a long option name: its help starts on the next line
            else:
                self.write(" " * (first_width - len(first)))
            lines = wrapped(second, max(self.width - first_width - self.current_indent, 20)) or [""]
            self.write(f"{lines[0]}\n" + "".join(f"{hanging}{line}\n" for line in lines[1:]))


# A Chinese character (or full-width mark) is a word of its own; other text breaks at spaces.
_TOKENS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+|\s+")
_NO_LINE_START = set("，。、；：！？）》」』”’")  # noqa: RUF001 (closing marks stay on the line before)


def columns(text: str) -> int:
    """How many terminal columns text takes: two for a wide (East Asian) character."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def wrapped(text: str, width: int) -> list[str]:
    """Text in lines of at most `width` columns (a closing mark may overhang by one character)."""
    lines: list[str] = []
    line = ""
    for token in _TOKENS.findall(text):
        if token.isspace():
            line += " " if line else ""
        elif not line or columns(line + token) <= width or token in _NO_LINE_START:
            line += token
        else:
            lines.append(line.rstrip())
            line = token
    return [*lines, line.rstrip()] if line.strip() else lines


class Number(click.ParamType):  # type: ignore[type-arg]  # generic in newer Clicks only
    """A number option (int or float, as Python reads it) refusing a bad value in the user's language."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind = kind
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(
                t("cli.not_a_number" if self.kind is float else "cli.not_a_whole_number", value=value), param, ctx
            )


class Choice(click.Choice):  # type: ignore[type-arg]  # generic in newer Clicks only
    """One of fixed words, refusing another in the user's language."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        self.fail(t("cli.not_a_choice", value=value, choices=", ".join(map(str, self.choices))), param, ctx)


class Context(click.Context):
    formatter_class = Formatter


class Command(click.Command):
    context_class = Context

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = t("cli.help_option")
        return option


class Group(click.Group):
    """A command with sub-commands, listed in the order they were added (deploy first, not a-z)."""

    context_class = Context
    command_class = Command

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = t("cli.help_option")
        return option

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


# What the command line asked for.


class Settings(NamedTuple):
    """The options every command shares, wherever on the line they were given."""

    project: Path
    environment: str | None
    hosts: str
    verbose: bool
    quiet: bool
    json: bool


Work = Callable[[Settings, "Output"], int]


class Run(NamedTuple):
    """A parsed command line, not yet started: the shared options and the command's work."""

    settings: Settings
    work: Work


def _asked(work: Work) -> Run:
    """The Run of the command being parsed."""
    return Run(_settings(click.get_current_context()), work)


def _settings(ctx: click.Context) -> Settings:
    levels: list[dict[str, Any]] = []  # the command's own options first, the root's last
    level: click.Context | None = ctx
    while level is not None:
        levels.append(level.params)
        level = level.parent

    def innermost(name: str) -> Any:
        # -e and --hosts after the command's name win over ones before it, as in `tagship -e a deploy -e b`.
        return next((params[name] for params in levels if params.get(name) is not None), None)

    root = levels[-1]
    return Settings(
        project=Path(root["project"]).resolve(),
        environment=innermost("environment"),
        hosts=innermost("hosts") or "",
        verbose=root["verbose"],
        quiet=root["quiet"],
        json=any(params.get("json") for params in levels),
    )


# The command tree.


def build_cli() -> Group:
    """Every command and option, their help in the language chosen now."""
    root = Group(
        PROG,
        help=t("cli.description"),
        epilog=t("cli.exit_codes"),
        params=_global_options(),
        callback=_needs_a_command,
        invoke_without_command=True,  # so a missing command is our error, in the user's language
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for command in (
        _deploy_command(),
        _plain_command("releases", _releases, t("cli.releases_short"), t("cli.releases_long")),
        _json_command("status", _status, t("cli.status_short"), t("cli.status_long")),
        _json_command("doctor", _doctor, t("cli.doctor_short"), t("cli.doctor_long")),
        _logs_command(),
        _exec_command(),
        _rollback_command(),
        _prune_command(),
        _lock_group(),
        _init_command(),
        _demo_command(),
        _config_group(),
        _completion_command(),
    ):
        root.add_command(command)
    return root


def _global_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["-C", "--project"], default=".", metavar="DIR", type=click.Path(file_okay=False), help=t("cli.opt_project")
        ),
        click.Option(["-v", "--verbose"], is_flag=True, help=t("cli.opt_verbose")),
        click.Option(["-q", "--quiet"], is_flag=True, help=t("cli.opt_quiet")),
        click.Option(["--json"], is_flag=True, help=t("cli.opt_json")),
        *_target_options(),
        click.Option(["--lang"], type=Choice(messages.LANGUAGES), help=t("cli.opt_lang")),
        click.Option(
            ["--version-info"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help=t("cli.opt_version_info"),
        ),
    ]


def _target_options() -> list[click.Parameter]:
    """-e and --hosts: before the command's name, and after it for every command that reads the config."""
    return [
        click.Option(
            ["-e", "--environment"], metavar="NAME", shell_complete=_complete_environment, help=t("cli.opt_environment")
        ),
        click.Option(["--hosts"], metavar="S1,S2", shell_complete=_complete_hosts, help=t("cli.opt_hosts")),
    ]


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from tagship import __version__

        click.echo(f"{PROG} {__version__}")
        ctx.exit()


def _needs_a_command(**_: object) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        assert isinstance(ctx.command, click.Group)
        ctx.fail(t("cli.missing_command", commands=", ".join(ctx.command.list_commands(ctx))))


def _lock_wait() -> click.Option:
    return click.Option(
        ["--lock-wait"], type=Number(float), default=0.0, metavar="SECONDS", help=t("cli.opt_lock_wait")
    )


def _plain_command(name: str, work: Work, short_help: str, long_help: str) -> Command:
    def asked(**_: object) -> Run:
        return _asked(work)

    return Command(name, callback=asked, params=_target_options(), short_help=short_help, help=long_help)


def _json_command(name: str, work: Work, short_help: str, long_help: str) -> Command:
    command = _plain_command(name, work, short_help, long_help)
    event = click.Option(["--json"], is_flag=True, help=t("cli.opt_json_event", event=name))
    command.params.insert(0, event)
    return command


def _deploy_command() -> Command:
    def asked(version: str, allow_dirty: bool, dry_run: bool, force: bool, lock_wait: float, **_: object) -> Run:
        return _asked(lambda settings, out: _deploy(settings, out, version, allow_dirty, dry_run, force, lock_wait))

    params: list[click.Parameter] = [
        click.Option(["--version"], default="", metavar="TAG", help=t("cli.deploy_version")),
        click.Option(["--allow-dirty"], is_flag=True, help=t("cli.deploy_allow_dirty")),
        click.Option(["--dry-run"], is_flag=True, help=t("cli.deploy_dry_run")),
        click.Option(["--force"], is_flag=True, help=t("cli.deploy_force")),
        _lock_wait(),
        *_target_options(),
    ]
    return Command("deploy", callback=asked, params=params, short_help=t("cli.deploy_short"), help=t("cli.deploy_long"))


def _logs_command() -> Command:
    def asked(service: str, follow: bool, since: str, tail: int | None, **_: object) -> Run:
        return _asked(lambda settings, out: _logs(settings, out, service, follow, since, tail))

    params: list[click.Parameter] = [
        click.Argument(["service"], default="", required=False, metavar="[SERVICE]"),
        click.Option(["-f", "--follow"], is_flag=True, help=t("cli.logs_follow")),
        click.Option(["--since"], default="", metavar="DURATION", help=t("cli.logs_since")),
        click.Option(["--tail"], type=Number(int), metavar="N", help=t("cli.logs_tail")),
        *_target_options(),
    ]
    return Command("logs", callback=asked, params=params, short_help=t("cli.logs_short"), help=t("cli.logs_long"))


def _exec_command() -> Command:
    def asked(argv: tuple[str, ...], server: str, interactive: bool, new: bool, service: str, **_: object) -> Run:
        return _asked(lambda settings, out: _exec(settings, out, argv, server, service, interactive, new))

    params: list[click.Parameter] = [
        click.Option(["--server"], default="", metavar="S", shell_complete=_complete_server, help=t("cli.exec_server")),
        click.Option(["-i", "--interactive"], is_flag=True, help=t("cli.exec_interactive")),
        click.Option(["--new"], is_flag=True, help=t("cli.exec_new")),
        click.Option(["--service"], default="", metavar="SERVICE", help=t("cli.opt_service")),
        click.Argument(["argv"], nargs=-1, metavar="[--] CMD..."),
        *_target_options(),
    ]
    return Command("exec", callback=asked, params=params, short_help=t("cli.exec_short"), help=t("cli.exec_long"))


def _rollback_command() -> Command:
    def asked(target_version: str, lock_wait: float, **_: object) -> Run:
        return _asked(lambda settings, out: _rollback(settings, out, target_version, lock_wait))

    params: list[click.Parameter] = [
        click.Argument(["target_version"], default="", required=False, metavar="[VERSION]"),
        _lock_wait(),
        *_target_options(),
    ]
    return Command(
        "rollback", callback=asked, params=params, short_help=t("cli.rollback_short"), help=t("cli.rollback_long")
    )


def _prune_command() -> Command:
    def asked(lock_wait: float, **_: object) -> Run:
        return _asked(lambda settings, out: _prune(settings, out, lock_wait))

    return Command(
        "prune",
        callback=asked,
        params=[_lock_wait(), *_target_options()],
        short_help=t("cli.prune_short"),
        help=t("cli.prune_long"),
    )


def _lock_group() -> Group:
    def released(force: bool, **_: object) -> Run:
        return _asked(lambda settings, out: _lock_release(settings, out, force))

    lock = Group(
        "lock",
        params=_target_options(),
        callback=_needs_a_command,
        invoke_without_command=True,
        short_help=t("cli.lock_short"),
        help=t("cli.lock_long"),
    )
    lock.add_command(_plain_command("status", _lock_status, t("cli.lock_status_short"), t("cli.lock_status_long")))
    force = click.Option(["--force"], is_flag=True, help=t("cli.lock_release_force"))
    lock.add_command(
        Command(
            "release",
            callback=released,
            params=[force, *_target_options()],
            short_help=t("cli.lock_release_short"),
            help=t("cli.lock_release_long"),
        )
    )
    return lock


def _init_command() -> Command:
    def asked(force: bool) -> Run:
        return _asked(lambda settings, out: _init(settings, out, force))

    force = click.Option(["--force"], is_flag=True, help=t("cli.init_force"))
    return Command("init", callback=asked, params=[force], short_help=t("cli.init_short"), help=t("cli.init_long"))


def _demo_command() -> Command:
    def asked(where: str, port: int, proxy_image: str, listener_image: str) -> Run:
        return _asked(lambda settings, out: _demo(out, where, port, proxy_image, listener_image))

    params: list[click.Parameter] = [
        click.Option(
            ["--dir", "where"], default="", metavar="DIR", type=click.Path(file_okay=False), help=t("cli.demo_dir")
        ),
        click.Option(["--port"], type=Number(int), default=18080, metavar="N", help=t("cli.demo_port")),
        click.Option(["--proxy-image"], default="caddy:2-alpine", metavar="IMAGE", help=t("cli.demo_proxy_image")),
        click.Option(
            ["--listener-image"], default="haproxy:lts-alpine", metavar="IMAGE", help=t("cli.demo_listener_image")
        ),
    ]
    return Command("demo", callback=asked, params=params, short_help=t("cli.demo_short"), help=t("cli.demo_long"))


def _config_group() -> Group:
    """`tagship config` prints the config as before; `tagship config schema` is a sub-command beside it."""

    def shown(**_: object) -> Run | None:
        if click.get_current_context().invoked_subcommand:
            return None  # the sub-command's Run is the answer
        return _asked(_show_config)

    def schema() -> Run:
        return _asked(_print_schema)

    params = [click.Option(["--json"], is_flag=True, help=t("cli.config_json")), *_target_options()]
    group = Group(
        "config",
        callback=shown,
        params=params,
        invoke_without_command=True,
        short_help=t("cli.config_short"),
        help=t("cli.config_long"),
    )
    group.add_command(
        Command("schema", callback=schema, short_help=t("cli.config_schema_short"), help=t("cli.config_schema_long"))
    )
    return group


def _completion_command() -> Command:
    def asked(shell: str) -> Run:
        root = click.get_current_context().find_root().command
        return _asked(lambda settings, out: _completion(out, root, shell))

    shell = click.Argument(["shell"], type=Choice(SHELLS), metavar="SHELL")
    return Command(
        "completion",
        callback=asked,
        params=[shell],
        short_help=t("cli.completion_short"),
        help=t("cli.completion_long"),
    )


# Completion of values: read tagship.toml as it is (tomllib, no validation), so it stays instant.


def _project_file(ctx: click.Context) -> dict[str, Any]:
    project = ctx.find_root().params.get("project") or "."
    try:
        return tomllib.loads((Path(project) / "tagship.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):  # RecursionError: nested too deeply
        return {}  # nothing to offer; completion never complains


def _complete_environment(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    tables = _project_file(ctx).get("environments", {})
    return [name for name in tables if isinstance(tables, dict) and name.startswith(incomplete)]


def _server_names(ctx: click.Context) -> list[str]:
    """The servers as tagship.toml writes them: the top level's and the chosen environment's."""
    data = _project_file(ctx)
    chosen = _settings_environment(ctx) or os.environ.get("TAGSHIP_ENVIRONMENT") or data.get("default_environment")
    environments = data.get("environments", {})
    overlay = environments.get(chosen, {}) if isinstance(environments, dict) and isinstance(chosen, str) else {}
    entries = [*_listed(data.get("servers")), *_listed(overlay.get("servers") if isinstance(overlay, dict) else None)]
    names = [entry.get("host") if isinstance(entry, dict) else entry for entry in entries]
    return list(dict.fromkeys(name for name in names if isinstance(name, str) and name))


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _settings_environment(ctx: click.Context) -> str | None:
    level: click.Context | None = ctx
    while level is not None:
        if isinstance(level.params.get("environment"), str):
            return str(level.params["environment"])
        level = level.parent
    return None


def _complete_server(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    return [name for name in _server_names(ctx) if name.startswith(incomplete)]


def _complete_hosts(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """--hosts takes a comma-separated list: complete its last name, keep the ones before it."""
    before, comma, last = incomplete.rpartition(",")
    chosen = set(before.split(","))
    return [f"{before}{comma}{name}" for name in _server_names(ctx) if name.startswith(last) and name not in chosen]


# Running what was asked.


def forget_secret_env(config: Config, environ: MutableMapping[str, str]) -> None:
    """Once read, the registry password leaves the environment: no child process (git, docker, ssh,
    a local hook) inherits it. It travels only on the stdin of `docker login`."""
    if config.registry.password:
        environ.pop(config.registry.password_env, None)


def language_asked(argv: Sequence[str]) -> str | None:
    """--lang's value, read before Click parses anything: the help Click prints is already in it."""
    for index, word in enumerate(argv):
        if word == "--":
            break  # the rest belongs to `exec`'s command
        if word == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--lang="):
            return word.removeprefix("--lang=")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run tagship with these arguments (default: the process's) and return its exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    messages.choose(language_asked(words), os.environ)
    if os.environ.get(COMPLETE_VAR):  # a shell asks for completions (Click answers and exits)
        _use_our_scripts()
    try:
        # Not standalone: Click returns the Run (or --help's exit code) instead of calling sys.exit.
        asked = build_cli().main(words, prog_name=PROG, complete_var=COMPLETE_VAR, standalone_mode=False)
    except click.ClickException as exc:
        return _usage_error(exc)
    except click.exceptions.Abort:  # Ctrl-C while Click was still parsing
        from tagship.errors import EXIT_INTERRUPTED

        return EXIT_INTERRUPTED
    if isinstance(asked, Run):
        return _start(asked)
    return asked if isinstance(asked, int) else 0


def _usage_error(exc: click.ClickException) -> int:
    """Click's usage errors as argparse's were: the usage line, then the error; exit 2."""
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(t("cli.try_help", command=exc.ctx.command_path), err=True)
    click.echo(t("common.error", text=_usage_text(exc)), err=True)
    return exc.exit_code


def _usage_text(exc: click.ClickException) -> str:
    if isinstance(exc, click.NoSuchOption):
        text = t("cli.no_such_option", option=exc.option_name)
        return t("cli.did_you_mean", text=text, choices=", ".join(exc.possibilities)) if exc.possibilities else text
    if isinstance(exc, click.exceptions.NoSuchCommand) and exc.ctx is not None:
        assert isinstance(exc.ctx.command, click.Group)
        commands = ", ".join(exc.ctx.command.list_commands(exc.ctx))
        return t("cli.no_such_command", name=exc.command_name, commands=commands)
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return t("cli.missing_value", name=exc.param.get_error_hint(exc.ctx) if exc.ctx else exc.param.name)
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.ctx is not None:
        return t("cli.bad_value", name=exc.param.get_error_hint(exc.ctx), text=exc.message)
    return exc.format_message()  # Click's own sentence (English): a flag given a value, extra arguments


def _start(run: Run) -> int:
    from tagship.output import Output
    from tagship.remote import interrupt

    settings = run.settings
    out = Output(json_mode=settings.json, verbose=settings.verbose, quiet=settings.quiet)
    # Ctrl-C and SIGTERM stop the running commands, then undo finished steps and release locks.
    interrupt.install()
    try:
        return run.work(settings, out)
    except KeyboardInterrupt:
        out.close()  # the step on screen ends before the error is said
        out.error(t("common.interrupted"))
        return interrupt.EXIT_INTERRUPTED
    except Exception as exc:
        out.close()
        return _report(exc, out, settings.verbose)
    finally:
        out.close()  # the progress view ends (a command may end without a result)


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
    out.error(t("common.unexpected", kind=type(exc).__name__, text=exc))
    return EXIT_FAILED


def _load(settings: Settings, out: Output) -> Config:
    """The config of a command that works on the servers; its secrets are masked from here on."""
    from tagship import config as config_mod

    loaded = config_mod.load(settings.project, environment=settings.environment)
    return _secured(config_mod.only_hosts(loaded, settings.hosts), out)


def _secured(config: Config, out: Output) -> Config:
    """The config once its secrets are out of the environment and masked in every line written from here on."""
    forget_secret_env(config, os.environ)
    out.add_secret(config.registry.password)
    for webhook in config.notify:
        out.add_secret(webhook.url)  # a webhook's URL holds its token
    return config


def _deploy(
    settings: Settings, out: Output, version: str, allow_dirty: bool, dry_run: bool, force: bool, lock_wait: float
) -> int:
    config = _load(settings, out)
    from tagship.commands import deploy

    options = deploy.DeployOptions(
        version=version, allow_dirty=allow_dirty, dry_run=dry_run, lock_wait=lock_wait, force=force
    )
    release = deploy.run(config, out, options)
    said = "cli.result_would_deploy" if dry_run else "cli.result_deployed"
    out.result(
        t(said, image=release.image, servers=", ".join(s.raw for s in config.servers)),
        version=release.version,
        image=release.image,
        dry_run=dry_run,
    )
    return 0


def _releases(settings: Settings, out: Output) -> int:
    """Commands from here on need only tagship.toml and SSH: no local Docker, no local compose file."""
    config = _load(settings, out)
    from tagship.commands import releases

    releases.list_releases(config, out)
    return 0


def _status(settings: Settings, out: Output) -> int:
    config = _load(settings, out)
    from tagship.commands import status
    from tagship.errors import EXIT_FAILED

    return 0 if all(server.healthy for server in status.status(config, out)) else EXIT_FAILED


def _doctor(settings: Settings, out: Output) -> int:
    from tagship import config as config_mod
    from tagship.commands import doctor
    from tagship.errors import EXIT_FAILED

    def loaded() -> Config:  # a config that does not load is one of the doctor's findings
        config = config_mod.load(settings.project, environment=settings.environment)
        return _secured(config_mod.only_hosts(config, settings.hosts), out)

    found = doctor.doctor(out, loaded)
    return EXIT_FAILED if any(check.status == "problem" for check in found) else 0


def _logs(settings: Settings, out: Output, service: str, follow: bool, since: str, tail: int | None) -> int:
    config = _load(settings, out)
    from tagship.commands import logs

    return logs.logs(config, out, logs.LogsOptions(service, follow, since, tail))


def _exec(
    settings: Settings, out: Output, argv: tuple[str, ...], server: str, service: str, interactive: bool, new: bool
) -> int:
    config = _load(settings, out)
    from tagship.commands import execute

    return execute.execute(config, out, execute.ExecOptions(argv, server, service, interactive, new))


def _rollback(settings: Settings, out: Output, target_version: str, lock_wait: float) -> int:
    config = _load(settings, out)
    from tagship.commands import rollback

    release = rollback.rollback(config, out, target_version, lock_wait)
    out.result(t("cli.result_rolled_back", image=release.image), version=release.version, image=release.image)
    return 0


def _prune(settings: Settings, out: Output, lock_wait: float) -> int:
    config = _load(settings, out)
    from tagship.commands import prune

    prune.prune(config, out, lock_wait)
    return 0


def _lock_status(settings: Settings, out: Output) -> int:
    config = _load(settings, out)
    from tagship.commands import lock
    from tagship.errors import EXIT_LOCKED

    return EXIT_LOCKED if lock.lock_status(config, out) else 0


def _lock_release(settings: Settings, out: Output, force: bool) -> int:
    config = _load(settings, out)
    from tagship.commands import lock

    lock.lock_release(config, out, force=force)
    return 0


def _init(settings: Settings, out: Output, force: bool) -> int:
    from tagship.commands import init as scaffold

    scaffold.init(settings.project, out, force=force)
    return 0


def _demo(out: Output, where: str, port: int, proxy_image: str, listener_image: str) -> int:
    from tagship.commands import demo

    return demo.run(out, Path(where) if where else None, port, proxy_image, listener_image)


def _show_config(settings: Settings, out: Output) -> int:
    from tagship import config as config_mod
    from tagship.commands import config as show

    loaded = config_mod.load(settings.project, environment=settings.environment, need_environment=False)
    show.show(config_mod.only_hosts(loaded, settings.hosts), out)
    return 0


def _print_schema(settings: Settings, out: Output) -> int:
    from tagship.commands import config as show

    show.show_schema(out)
    return 0


def _completion(out: Output, root: click.Command, shell: str) -> int:
    from click.shell_completion import get_completion_class

    _use_our_scripts()
    script_class = get_completion_class(shell)
    assert script_class is not None  # SHELLS are the ones Click has
    out.result(script_class(root, {}, PROG, COMPLETE_VAR).source(), shell=shell)
    return 0


# Click's fish script and answer format changed in 8.4.0 (a script fish cannot parse; 8.4.2 went back)
# and split a value at its commas (--hosts web1,web2). This one is Click 8.1's with that fixed, the
# same with every Click tagship accepts.
FISH_SCRIPT = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \\
COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split --max 1 "," -- $completion);

        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


# Click's bash script expands each answer unquoted (`COMPREPLY+=($value)`, `for completion in $response`):
# a server named `*` was globbed against the current directory. This one reads the answers line by line
# and adds each value as one word, as it is.
BASH_SCRIPT = """\
%(complete_func)s() {
    local response type value

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD %(complete_var)s=bash_complete $1)

    while IFS=',' read -r type value; do
        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
        fi
    done <<< "$response"

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


def _use_our_scripts() -> None:
    """Register the fish and bash completions above with Click: for the script, and for the answers it asks for."""
    from click.shell_completion import BashComplete, CompletionItem, FishComplete, add_completion_class

    class BashCompletion(BashComplete):
        source_template = BASH_SCRIPT

    class FishCompletion(FishComplete):
        source_template = FISH_SCRIPT

        def format_completion(self, item: CompletionItem) -> str:
            # One line each: type, value, then a tab and the help fish shows beside it.
            said = " ".join((item.help or "").split())
            return f"{item.type},{item.value}\t{said}" if said else f"{item.type},{item.value}"

    add_completion_class(FishCompletion, "fish")
    add_completion_class(BashCompletion, "bash")


if __name__ == "__main__":
    sys.exit(main())
