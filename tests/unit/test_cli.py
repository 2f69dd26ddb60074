"""The command line: help for everything in both languages and in the docs, lazy imports, usage errors."""
# ruff: noqa: RUF001  (the Chinese texts use full-width punctuation, as Chinese does)

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tagship import cli, messages

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    yield
    messages.choose("en", {})


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its words after `tagship` (the root's are ())."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def tree_in(lang: str) -> click.Group:
    messages.choose(lang, {})
    return cli.build_cli()


def options_of(command: click.Command) -> list[click.Option]:
    """The command's options, with the help option Click adds itself."""
    ctx = click.Context(command)
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option)]


def docs_text() -> str:
    """The README and every docs file it names."""
    readme = (ROOT / "README.md").read_text()
    linked = sorted(set(re.findall(r"docs/[\w.-]+\.md", readme)))
    return "\n".join([readme, *((ROOT / name).read_text() for name in linked if (ROOT / name).exists())])


@pytest.mark.parametrize("lang", messages.LANGUAGES)
def test_every_command_and_option_has_help_text_in_both_languages(lang: str) -> None:
    def said(text: str | None) -> bool:
        return bool(text and text.strip()) and (lang == "en" or bool(CJK.search(text or "")))

    missing: list[str] = []
    for path, command in walk(tree_in(lang)):
        name = " ".join(("tagship", *path))
        if not said(command.help):
            missing.append(f"{name}: help")
        if path and not said(command.short_help):
            missing.append(f"{name}: short help")
        for option in options_of(command):
            if not said(option.help):
                missing.append(f"{name} {'/'.join(option.opts)}")
        for argument in (p for p in command.params if isinstance(p, click.Argument)):
            # Click shows no help for arguments: the command's own text must explain each one.
            word = argument.make_metavar(click.Context(command)).strip("[].").split()[-1]
            if word not in (command.help or ""):
                missing.append(f"{name}: {word} is not explained in its help")
    assert not missing, f"without {lang} help text: {missing}"


def test_every_command_and_long_option_has_a_place_in_the_docs() -> None:
    docs = docs_text()
    missing: list[str] = []
    for path, command in walk(tree_in("en")):
        if path and f"tagship {' '.join(path)}" not in docs:
            missing.append(f"command `tagship {' '.join(path)}`")
        for option in options_of(command):
            missing.extend(
                f"option {opt} of `tagship {' '.join(path)}`"
                for opt in option.opts
                if opt.startswith("--") and not re.search(rf"{re.escape(opt)}(?![\w-])", docs)
            )
    assert not missing, f"not in README.md or the docs it links: {sorted(set(missing))}"


@pytest.mark.parametrize(
    "words", [["--help"], ["deploy", "--help"], ["--lang", "zh", "lock", "release", "--help"], ["-h"]]
)
def test_help_imports_none_of_the_heavy_modules(words: list[str]) -> None:
    heavy = ("yaml", "pydantic", "rich", "tagship.config", "tagship.remote", "tagship.commands", "tagship.engine")
    code = (
        "import json, sys\n"
        "from tagship.cli import main\n"
        f"code = main({words!r})\n"
        f"print(json.dumps([code, sorted(m for m in sys.modules if m.startswith({heavy!r}))]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC)}
    )
    code_returned, imported = json.loads(done.stderr.strip().splitlines()[-1])
    assert code_returned == 0 and "tagship" in done.stdout
    assert imported == [], f"--help imported {imported}"


def test_help_is_in_the_language_of_lang_or_the_locale(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert cli.main(["--lang", "zh", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("用法：tagship") and "选项：" in text and "命令：" in text and "退出码：" in text
    assert "把一个 git 标签变成在你自己服务器上运行的版本。" in text and "显示本帮助并退出" in text

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert cli.main(["deploy", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("用法：tagship deploy") and "打印计划和每条命令；不改动任何地方" in text

    assert cli.main(["--lang=en", "deploy", "--help"]) == 0  # --lang wins over the locale
    text = capsys.readouterr().out
    assert text.startswith("Usage: tagship deploy") and "print the plan and every command" in text


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ([], "error: a command is needed (the commands: deploy, releases,"),
        (["-v"], "error: a command is needed"),
        (["lock"], "error: a command is needed (the commands: status, release)"),
        (["deploy", "--bogus"], "error: no such option: --bogus"),
        (["deploy", "--dry-rn"], "error: no such option: --dry-rn (did you mean --dry-run?)"),
        (["deplo"], "error: no such command: deplo (the commands: deploy,"),
        (["--lang", "zh", "deplo"], "错误：没有这个命令：deplo（可用的命令：deploy,"),
        (["logs", "--tail", "x"], "error: bad value for '--tail': 'x' is not a whole number"),
        (["rollback", "--lock-wait", "soon"], "error: bad value for '--lock-wait': 'soon' is not a number"),
        (["--lang", "zh", "deploy", "--lock-wait", "soon"], "错误：'--lock-wait' 的值无效：'soon' 不是数字"),
        (["--lang", "fr", "status"], "error: bad value for '--lang': 'fr' is not one of en, zh"),
        (["completion", "tcsh"], "error: bad value for 'SHELL': 'tcsh' is not one of bash, zsh, fish"),
        (["completion"], "error: 'SHELL' is missing"),
        (["init", "-e", "staging"], "error: no such option: -e"),  # init reads no config
    ],
)
def test_a_bad_command_line_exits_2_with_the_usage_and_what_is_wrong(
    words: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(words) == 2
    err = capsys.readouterr().err
    assert said in err
    assert re.search(r"^(Usage: |用法：)tagship", err, re.MULTILINE), err


def test_version_info_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from tagship import __version__

    assert cli.main(["--version-info"]) == 0
    assert capsys.readouterr().out == f"tagship {__version__}\n"


TWO_ENVIRONMENTS = """\
servers = ["web1"]
[app]
path = "/srv/app"
[environments.staging]
servers = ["stage1", "stage2"]
[environments.production]
servers = ["prod1"]
"""


@pytest.mark.parametrize(
    ("words", "environment", "servers"),
    [
        (["config"], "", ["web1"]),
        (["-e", "staging", "config"], "staging", ["stage1", "stage2"]),
        (["config", "-e", "staging"], "staging", ["stage1", "stage2"]),
        (["-e", "production", "config", "--environment", "staging"], "staging", ["stage1", "stage2"]),
        (["config", "-e", "staging", "--hosts", "stage2"], "staging", ["stage2"]),
        (["--hosts", "stage2", "-e", "staging", "config"], "staging", ["stage2"]),
    ],
)
def test_environment_and_hosts_count_before_or_after_the_command(
    words: list[str], environment: str, servers: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tagship.toml").write_text(TWO_ENVIRONMENTS)
    assert cli.main(["-C", str(tmp_path), *words, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["environment"] == environment
    assert [s["host"] for s in result["values"]["servers"]["value"]] == servers


def test_config_schema_prints_the_json_schema_without_a_tagship_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-C", str(tmp_path), "config", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "servers" in printed["properties"]
    assert cli.main(["-C", str(tmp_path), "--json", "config", "schema"]) == 0
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert event["event"] == "result" and event["schema"] == printed


@pytest.mark.parametrize(
    ("argv", "asked"),
    [
        (["exec", "--", "ls", "--lang", "zh"], None),
        (["--lang", "zh", "status"], "zh"),
        (["--lang=en", "status"], "en"),
        (["status"], None),
    ],
)
def test_the_language_is_read_before_parsing_but_not_from_execs_command(argv: list[str], asked: str | None) -> None:
    assert cli.language_asked(argv) == asked


def test_chinese_help_fits_an_80_column_terminal_and_says_everything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Chinese character takes two columns: the help is wrapped by columns, never cut mid-word."""
    monkeypatch.setenv("COLUMNS", "80")
    too_wide: list[str] = []
    for path, command in walk(tree_in("zh")):
        assert cli.main(["--lang", "zh", *path, "--help"]) == 0
        text = capsys.readouterr().out
        too_wide.extend(line for line in text.splitlines() if cli.columns(line) > 80)
        # Wrapping only moved words to new lines: the command's text is all there, in order.
        assert "".join((command.help or "").replace("\b", "").split()) in "".join(text.split())
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("command", ["status", "config", "deploy", "init", "releases"])
def test_a_project_directory_that_does_not_exist_is_named_not_read_as_no_servers(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent"
    assert cli.main(["-C", str(missing), command]) == 2
    err = capsys.readouterr().err
    assert f"error: the project directory {missing} does not exist" in err, err
    assert "no servers" not in err and "unexpected" not in err


def test_a_hosts_value_with_a_newline_or_an_escape_is_shown_escaped_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tagship.toml").write_text('servers = ["web1"]\n[app]\npath = "/srv/app"\n', encoding="utf-8")
    assert cli.main(["-C", str(tmp_path), "--hosts", "web9\nerror: \x1b[2Jforged", "status"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --hosts: web9\\nerror: \\x1b[2Jforged is not a configured server (the servers: web1)\n"), err
