"""Shell completion: the scripts of `tagship completion SHELL`, loaded and asked by the real shells."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

PROJECT = """\
servers = ["web1", {host = "deploy@web2", path = "/srv/other"}]
[app]
path = "/srv/app"
[environments.staging]
servers = ["stage1"]
[environments.production]
servers = ["prod1"]
"""


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose `tagship` on PATH is the code under test, as the scripts call it by name."""
    bin_dir = tmp_path_factory.mktemp("bin")
    wrapper = bin_dir / "tagship"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m tagship "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "_TAGSHIP"))}
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}", "PYTHONPATH": str(SRC), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "tagship.toml").write_text(PROJECT)
    return root


def script(shell: str, env: dict[str, str], tmp_path: Path) -> Path:
    done = subprocess.run(["tagship", "completion", shell], env=env, capture_output=True, text=True, check=True)
    path = tmp_path / f"tagship.{shell}"
    path.write_text(done.stdout)
    return path


def bash_completes(words: list[str], env: dict[str, str], loaded: Path, cwd: Path | None = None) -> list[str]:
    """What bash offers for the last word, as bash-completion's tests ask: COMP_WORDS, COMP_CWORD, the function."""
    words_array = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {loaded}\n"
        f"COMP_WORDS=({words_array}); COMP_CWORD={len(words) - 1}; COMPREPLY=()\n"
        '_tagship_completion tagship 2>/dev/null\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], env=env, capture_output=True, text=True, check=True, cwd=cwd
    )
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["tagship", "de"], ["deploy", "demo"]),
        (["tagship", "deploy", "--d"], ["--dry-run"]),
        (["tagship", "deploy", "--lock"], ["--lock-wait"]),
        (["tagship", "lock", ""], ["status", "release"]),
        (["tagship", "config", "s"], ["schema"]),
        (["tagship", "--lang", ""], ["en", "zh"]),
        (["tagship", "completion", ""], ["bash", "zsh", "fish"]),
        (["tagship", "-C", "{project}", "-e", ""], ["staging", "production"]),
        (["tagship", "-C", "{project}", "rollback", "--environment", "st"], ["staging"]),
        (["tagship", "-C", "{project}", "status", "--hosts", "web1,"], ["web1,deploy@web2"]),
        (["tagship", "-C", "{project}", "-e", "staging", "exec", "--server", ""], ["web1", "deploy@web2", "stage1"]),
        (["tagship", "-C", "{project}", "exec", "--server", "s"], []),  # no environment chosen: no stage1
    ],
)
def test_bash_completes_commands_options_and_values(
    words: list[str], offered: list[str], shell_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    loaded = script("bash", shell_env, tmp_path)
    asked = [word.format(project=project) for word in words]
    assert bash_completes(asked, shell_env, loaded) == offered


def fish_completes(line: str, env: dict[str, str], loaded: Path) -> list[str]:
    program = f"source {loaded}; complete -C '{line}'"
    done = subprocess.run(["fish", "--no-config", "-c", program], env=env, capture_output=True, text=True, check=True)
    assert done.stderr == ""
    return done.stdout.splitlines()


def needs(shell: str) -> None:
    # In CI scripts/install-system.sh installs both: a missing shell there is a failure, not a skip.
    if shutil.which(shell) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{shell} is not installed: scripts/install-system.sh installs it")
        pytest.skip(f"{shell} is not installed (apt-get install {shell})")


def test_fish_completes_with_each_ones_help_in_the_users_language(
    shell_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    needs("fish")
    loaded = script("fish", shell_env, tmp_path)
    assert fish_completes("tagship de", shell_env, loaded) == [
        "demo\tdeploy a bundled example app to the local Docker engine, twice",
        "deploy\tbuild, push and deploy the tag on HEAD to every server",
    ]
    assert fish_completes("tagship deploy --dry", shell_env, loaded) == [
        "--dry-run\tprint the plan and every command; change nothing anywhere"
    ]
    # A value holding commas stays whole (Click's own fish script cut it at the first one).
    assert fish_completes(f"tagship -C {project} status --hosts web1,", shell_env, loaded) == ["web1,deploy@web2"]
    chinese = {**shell_env, "LANG": "zh_CN.UTF-8"}
    deploy_in_chinese = "deploy\t构建、推送 HEAD 上的标签，并部署到每台服务器"  # noqa: RUF001
    assert deploy_in_chinese in fish_completes("tagship de", chinese, loaded)


def test_zsh_loads_the_script_and_binds_it_to_tagship(shell_env: dict[str, str], tmp_path: Path) -> None:
    needs("zsh")
    loaded = script("zsh", shell_env, tmp_path)
    program = f"autoload -Uz compinit && compinit -u -D\nsource {loaded}\nprint -r -- $_comps[tagship]"
    done = subprocess.run(["zsh", "-f", "-c", program], env=shell_env, capture_output=True, text=True, check=True)
    assert (done.stdout.strip(), done.stderr) == ("_tagship_completion", "")
    # What that function asks tagship for (zsh gives the words and the cursor's word index):
    answer = subprocess.run(
        ["tagship"],
        env={**shell_env, "COMP_WORDS": "tagship deploy --d", "COMP_CWORD": "2", "_TAGSHIP_COMPLETE": "zsh_complete"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.splitlines() == [
        "plain",
        "--dry-run",
        "print the plan and every command; change nothing anywhere",
    ]


def test_completion_offers_nothing_for_a_config_nested_too_deeply(shell_env: dict[str, str], tmp_path: Path) -> None:
    """tomllib raises RecursionError on deeply nested arrays: completion offers nothing, and says nothing."""
    (tmp_path / "tagship.toml").write_text('servers = ["web1"]\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    asked = {"COMP_WORDS": f"tagship -C {tmp_path} status --hosts ", "COMP_CWORD": "5"}
    answer = subprocess.run(
        ["tagship"], env={**shell_env, **asked, "_TAGSHIP_COMPLETE": "bash_complete"}, capture_output=True, text=True
    )
    assert (answer.returncode, answer.stdout.strip(), answer.stderr) == (0, "", "")


def test_bash_offers_a_server_named_with_glob_characters_as_it_is(shell_env: dict[str, str], tmp_path: Path) -> None:
    """Click's script added each answer unquoted: a server named `*` became the names of the files
    in the directory the user stood in."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "tagship.toml").write_text('servers = ["*", "web[12]", "web1"]\n[app]\npath = "/srv/app"\n')
    (tmp_path / "secret-plans.txt").write_text("")
    (tmp_path / "web1").write_text("")
    loaded = script("bash", shell_env, tmp_path)
    words = ["tagship", "-C", str(project), "exec", "--server", ""]
    assert bash_completes(words, shell_env, loaded, cwd=tmp_path) == ["*", "web[12]", "web1"]
