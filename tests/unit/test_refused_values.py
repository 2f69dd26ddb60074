"""Values that must be refused before anything runs: exit 2, the key named (config, addresses, --lock-wait)."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagship import config as config_mod
from tagship.commands.init import _q, render
from tagship.engine.session import check_lock_wait
from tagship.errors import EXIT_USAGE, ConfigError
from tagship.output import Output
from tagship.release import version as release_mod
from tagship.remote import server
from tagship.remote.server import LOCAL
from tagship.remote.transport import LocalTransport
from tagship.runtime.compose.prepare import upload_file

BASE = 'servers = ["deploy@web1"]\n'


def refused(root: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """Load tagship.toml = BASE + text; the ConfigError's message (the test fails if it loads)."""
    (root / "tagship.toml").write_text(BASE + text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config_mod.load(root, {"TAGSHIP_PATH": "/srv/app", **(environ or {})})
    assert caught.value.exit_code == EXIT_USAGE
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[image]\nname = "app\\n"', "image.name"),
        ('[image]\nname = "App"', "image.name"),
        (f'[image]\nname = "{"a" * 5000}"', "image.name: must be at most 1000 characters"),
        ('[image]\nplatform = "--push"', "image.platform"),
        ('[image]\ntarget = "-x"', "image.target"),
        ('[registry]\nurl = "-oProxyCommand=x"', "registry.url"),
        ('[registry]\nurl = "reg.example\\n"', "registry.url"),
        ('[registry]\nurl = "https://reg.example"', "registry.url"),
        ('[registry]\nnamespace = "team\\tx"', "registry.namespace"),
        ('[app]\nservice = "web\\n"', "app.service"),
        ('[app]\nservice = "-web"', "app.service"),
        ('[app]\nconsumers = ["caddy\\u0000"]', "app.consumers[0]"),
        ('[hooks]\nservice = "a b"', "hooks.service"),
        ('[hooks]\nbefore_switch = ["echo \'unclosed"]', "hooks.before_switch[0]: cannot be split"),
        ('[hooks]\nbefore_switch = ["migrate\\u001b[2J"]', "hooks.before_switch[0]: must not contain control"),
        ('[proxy]\nhosts = ["a.example {\\n}"]', "proxy.hosts[0]"),
        ('[proxy]\nhosts = ["a.example import x"]', "proxy.hosts[0]"),
        ('[proxy]\nimage = "-caddy"', "proxy.image"),
        ('[image.build_args]\n"A\\nB" = "1"', "image.build_args"),
        ('[image.build_args]\nA = "1\\u0000"', "image.build_args.A: must not contain control"),
        ('[ssh]\noptions = ["Port=22\\n"]', "ssh.options[0]"),
        ('[ssh]\nconfig = "/home/u/.ssh/config\\n"', "ssh.config"),
        ('[env]\ntag_key = "ÄPP_TAG"', "env.tag_key"),
        ('[env]\ntag_key = "1TAG"', "env.tag_key"),
    ],
)
def test_names_with_control_characters_a_leading_dash_or_the_wrong_shape_are_refused_by_key(
    tmp_path: Path, text: str, key: str
) -> None:
    assert f"  {key}" in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[verify]\ntimeout = nan", "verify.timeout"),
        ("[verify]\nstable_seconds = inf", "verify.stable_seconds"),
        ("[health]\ninterval = inf", "health.interval"),
        ("[health]\ntimeout = -inf", "health.timeout"),
        ("[health]\nport = 70000", "health.port"),
        ("[proxy]\ndrain_timeout = nan", "proxy.drain_timeout"),
        ("[proxy]\ndrain_timeout = -1", "proxy.drain_timeout"),
        ("[ssh]\nconnect_timeout = 1e300", "ssh.connect_timeout"),
        ("[releases]\nkeep = inf", "releases.keep"),
    ],
)
def test_numbers_must_be_finite_and_in_range(tmp_path: Path, text: str, key: str) -> None:
    assert f"  {key}: must be a number from" in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[app]\nupload = ["/home/u/.ssh/id_rsa"]', "app.upload[0]"),
        ('[app]\nupload = ["compose.yaml", "../secrets.txt"]', "app.upload[1]"),
        ('[app]\nupload = ["~/.ssh/id_rsa"]', "app.upload[0]"),
        ('[app]\nupload = ["deploy/../../x"]', "app.upload[0]"),
        ('[app]\nupload = [""]', "app.upload[0]"),
        ('[app]\ncompose_files = ["/etc/compose.yaml"]', "app.compose_files[0]"),
        ('[env]\nfile = "/etc/environment"', "env.file"),
        ('[env]\nfile = "../.env"', "env.file"),
        ('[env]\nseed = "/home/u/.env"', "env.seed"),
        ('[image]\ncontext = "../other-repo"', "image.context"),
        ('[image]\ncontext = "/"', "image.context"),
        ('[image]\ndockerfile = "/tmp/Dockerfile"', "image.dockerfile"),
    ],
)
def test_paths_that_leave_the_project_are_refused_by_key(tmp_path: Path, text: str, key: str) -> None:
    assert f"  {key}: must be a relative path inside the project" in refused(tmp_path, text)


def test_paths_inside_the_project_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "tagship.toml").write_text(
        BASE
        + '[app]\npath = "/srv/app"\nupload = ["deploy/compose.yaml", "./Caddyfile"]\n'
        + '[env]\nfile = "deploy/.env"\nseed = ".env.example"\n'
        + '[image]\ncontext = "."\ndockerfile = "docker/Dockerfile"\n',
        encoding="utf-8",
    )
    config = config_mod.load(tmp_path, {})
    assert config.app.upload == ("deploy/compose.yaml", "./Caddyfile") and config.image.context == "."


_control = st.sampled_from([chr(c) for c in (*range(0x20), 0x7F, 0x85, 0x9B)])
_OVERRIDES = {
    "TAGSHIP_IMAGE": "image.name",
    "TAGSHIP_PATH": "app.path",
    "TAGSHIP_SERVICE": "app.service",
    "TAGSHIP_REGISTRY": "registry.url",
    "TAGSHIP_NAMESPACE": "registry.namespace",
    "TAGSHIP_PLATFORM": "image.platform",
    "TAGSHIP_SSH_CONFIG": "ssh.config",
    "TAGSHIP_SSH_JUMP": "ssh.jump",
    "TAGSHIP_PROXY_IMAGE": "proxy.image",
    "TAGSHIP_TAG_KEY": "env.tag_key",
}


@given(
    st.sampled_from(sorted(_OVERRIDES)),
    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    _control,
    st.integers(min_value=0, max_value=9),
)
def test_a_control_character_anywhere_in_a_value_is_refused_with_its_key(
    variable: str, good: str, control: str, at: int
) -> None:
    value = good[:at] + control + good[at:]
    if variable == "TAGSHIP_PATH":
        value = "/srv/" + value
    with tempfile.TemporaryDirectory() as root, pytest.raises(ConfigError) as caught:
        config_mod.load(Path(root), {"TAGSHIP_SERVERS": "web1", "TAGSHIP_PATH": "/srv/app", variable: value})
    assert f"  {_OVERRIDES[variable]}: " in str(caught.value)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("web1\n", "control characters"),
        ("deploy@web1\t-p 22", "control characters"),
        ("web1\x1b[2J", "control characters"),
        ("w" * 1001, "control characters or more than 1000"),
        ("deploy@web1:٢٢", "invalid port"),  # Arabic-Indic digits: str.isdigit() and int() take them
        ("deploy@web1 -p \uff12\uff12", "invalid port"),  # full-width digits
    ],
)
def test_server_addresses_with_control_characters_or_foreign_digits_are_refused(address: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"servers\\[0\\]: .*{why}"):
        server.parse(address, where="servers[0]")


def test_a_server_address_with_a_trailing_newline_in_the_config_is_refused_by_key(tmp_path: Path) -> None:
    (tmp_path / "tagship.toml").write_text('servers = ["web1", "web2\\n"]\n[app]\npath = "/srv/app"\n')
    with pytest.raises(ConfigError, match="servers\\[1\\]: must not contain control characters"):
        config_mod.load(tmp_path, {})


# ---- --lock-wait ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, -1.0, 1e9])
def test_lock_wait_must_be_a_finite_number_of_seconds(seconds: float) -> None:
    with pytest.raises(ConfigError, match="--lock-wait: must be a number of seconds") as caught:
        check_lock_wait(seconds)
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "words", [["deploy", "--lock-wait", "nan"], ["rollback", "--lock-wait", "inf"], ["prune", "--lock-wait", "-5"]]
)
def test_the_cli_refuses_a_lock_wait_that_would_hang_or_never_wait_before_it_connects(
    tmp_path: Path, words: list[str]
) -> None:
    (tmp_path / "tagship.toml").write_text('servers = ["deploy@web1.invalid"]\n[app]\npath = "/srv/app"\n')
    done = subprocess.run(
        [sys.executable, "-m", "tagship", "-C", str(tmp_path), *words],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "--lock-wait: must be a number of seconds" in done.stderr


# ---- tagship init writes valid TOML ------------------------------------------------------------------


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_init_quotes_any_text_as_a_toml_string_that_reads_back_the_same(value: str) -> None:
    assert tomllib.loads(f"v = {_q(value)}\n")["v"] == value


def test_init_with_a_newline_in_a_variable_writes_valid_toml_that_load_then_refuses_by_key(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: app:${APP_IMAGE_TAG}\n")
    environ = {"REMOTE_HOST": 'web1\n[evil]\nx = "1', "REGISTRY_URL": 'reg"\\', "REGISTRY_NAMESPACE": "a\x7fb"}
    text = render(tmp_path, environ)
    data = tomllib.loads(text)
    assert data["servers"] == [environ["REMOTE_HOST"]] and "evil" not in data
    assert data["registry"] == {"url": environ["REGISTRY_URL"], "namespace": environ["REGISTRY_NAMESPACE"]}
    (tmp_path / "tagship.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config_mod.load(tmp_path, {})
    assert all(f"  {key}" in str(caught.value) for key in ("servers[0]", "registry.url", "registry.namespace"))


def test_init_refuses_a_value_that_is_not_utf8_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: app:${APP_IMAGE_TAG}\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        render(tmp_path, {"REMOTE_HOST": "web\udcff"})  # os.environ's form of an undecodable byte


# ---- files of the tagged tree ---------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_a_link_out_of_the_tagged_tree_is_refused_and_no_partial_tree_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, scratch = tmp_path / "repo", tmp_path / "tmp"
    repo.mkdir()
    scratch.mkdir()
    (repo / "compose.yaml").write_text("services: {}\n")
    (repo / "key").symlink_to(Path.home() / ".ssh" / "id_rsa")
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x")
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    local = LocalTransport(server=server.parse(LOCAL), out=Output(quiet=True))
    with pytest.raises(ConfigError, match="the tagged tree cannot be built from") as caught:
        release_mod.export_tree(local, str(repo), "HEAD")
    assert caught.value.exit_code == EXIT_USAGE
    assert list(scratch.iterdir()) == [], "no half-extracted tree is left behind"


def test_an_upload_that_is_missing_from_the_tagged_tree_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    assert upload_file(tmp_path, "compose.yaml") == tmp_path / "compose.yaml"
    for name in ("Caddyfile", "."):
        with pytest.raises(ConfigError, match=f"app.upload: {name} is not a file in the tagged tree"):
            upload_file(tmp_path, name)


def test_an_image_name_with_a_trailing_newline_is_not_a_docker_name() -> None:
    # re.match with "$" accepts a name that ends in "\n": the compose file's image can carry one.
    assert release_mod.checked("reg.example:5000/team/app") == "reg.example:5000/team/app"
    with pytest.raises(ConfigError, match="is not a valid Docker image name"):
        release_mod.checked("reg.example:5000/team/app\n")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # tomllib parses nested arrays and inline tables recursively: a RecursionError inside it
        ("[env]\nvalues = {A = " + "[" * 600 + "]" * 600 + "}\n", "nested too deeply to read"),
        ("[proxy]\nk = " + "{a = " * 600 + "1" + "}" * 600 + "\n", "nested too deeply to read"),
        # dotted keys it parses without recursion; the readers after it recursed (copy.deepcopy)
        ("[proxy]\n" + ".".join(["k"] * 600) + " = 1\n", "proxy.k.k.k.k.k…: nested more than 32"),
    ],
)
def test_a_config_nested_too_deeply_is_refused_naming_the_file_and_key(tmp_path: Path, text: str, said: str) -> None:
    message = refused(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'tagship.toml'}: ") and said in message


def test_the_config_command_says_a_deeply_nested_file_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagship import cli

    (tmp_path / "tagship.toml").write_text(BASE + "[proxy]\n" + ".".join(["k"] * 2000) + " = 1\n", encoding="utf-8")
    assert cli.main(["-C", str(tmp_path), "config"]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert "nested more than 32 tables and lists deep" in said and "RecursionError" not in said
