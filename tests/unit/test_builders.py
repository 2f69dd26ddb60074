import re

from tagship.builders import compose, docker, git
from tagship.builders.command import Command, sh


def test_login_keeps_the_password_out_of_argv_and_output() -> None:
    cmd = docker.login("reg:5000", "ci", "hunter2")
    assert "hunter2" not in " ".join(cmd.argv)
    assert cmd.stdin == b"hunter2"
    assert cmd.shown() == "docker login --username ci --password-stdin reg:5000  <<< password"


def test_build_command() -> None:
    cmd = docker.build(
        "reg/app:v1",
        "/tmp/ctx",
        dockerfile="/tmp/ctx/Dockerfile",
        platform="linux/amd64",
        target="prod",
        args=(("A", "1 2"),),
        labels=(("l", "v"),),
    )
    assert cmd.argv == (
        "docker",
        "build",
        "--tag",
        "reg/app:v1",
        "--file",
        "/tmp/ctx/Dockerfile",
        "--platform",
        "linux/amd64",
        "--target",
        "prod",
        "--build-arg",
        "A=1 2",
        "--label",
        "l=v",
        "/tmp/ctx",
    )


def test_compose_commands_name_the_project_directory_and_files() -> None:
    project = compose.Project("/srv/my app", ("compose.yaml",))
    assert compose.up(project, "web").shown() == (
        "docker compose --project-directory '/srv/my app' --file '/srv/my app/compose.yaml' up --detach web"
    )


def test_shell_scripts_take_values_as_arguments() -> None:
    cmd = sh('echo "$1"', "$(rm -rf /); `x`")
    assert cmd.shown() == "sh -c 'echo \"$1\"' sh '$(rm -rf /); `x`'"


def test_masking_hides_secrets_in_shown_commands() -> None:
    assert Command(("echo", "tok123"), secrets=("tok123",)).shown() == "echo ***"


def test_a_secret_is_masked_in_json_events_even_where_json_escapes_it() -> None:
    import io
    import json

    from tagship.output import Output

    secret = 'pa"ss\\wörd'
    stream = io.StringIO()
    out = Output(json_mode=True, out=stream)
    out.add_secret(secret)
    out.info(f"login with {secret}")
    out.server_line("h1", json.dumps({"password": secret}))  # a server's JSON quoting it
    written = stream.getvalue()
    for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], "w\\u00f6rd"):
        assert form not in written, form
    events = [json.loads(line) for line in written.splitlines()]
    assert events[0]["message"] == "login with ***"
    assert "***" in events[1]["line"]


def test_image_variables_are_recognised() -> None:
    assert compose.image_vars("${APP_IMAGE_NAME}:${APP_IMAGE_TAG}") == compose.ImageVars(
        "APP_IMAGE_NAME", "APP_IMAGE_TAG"
    )
    assert compose.image_vars("$NAME:$TAG") == compose.ImageVars("NAME", "TAG")
    assert compose.image_vars("reg.io/team/app:${TAG}") == compose.ImageVars(
        tag_key="TAG", literal_repo="reg.io/team/app"
    )
    assert compose.image_vars("reg:5000/team/app:latest") == compose.ImageVars(literal_repo="reg:5000/team/app")
    assert compose.image_vars("reg:5000/team/app:latest").fixed
    assert compose.image_vars("reg:5000/app@sha256:1") == compose.ImageVars(literal_repo="reg:5000/app")
    assert compose.image_vars("${IMAGE}:latest") == compose.ImageVars()
    assert not compose.image_vars("reg.io/team/app:${TAG}").fixed
    assert compose.image_tag("reg:5000/team/app:v2@sha256:1") == "v2" and compose.image_tag("reg:5000/app") == ""


def test_tag_picking_and_docker_tag_rules() -> None:
    assert git.pick_tag("v1.10.0\nv1.9.0\n") == "v1.10.0"
    assert git.pick_tag("") is None
    assert git.DOCKER_TAG_RE.match("v1.2.3-rc.1")
    assert not git.DOCKER_TAG_RE.match("release/1.0")
    assert not git.DOCKER_TAG_RE.match(".hidden")


def test_repository_names_docker_would_reject_are_refused() -> None:
    import pytest

    from tagship.errors import ConfigError
    from tagship.release.version import checked

    assert checked("10.0.0.1:5443/team/meta-hub") == "10.0.0.1:5443/team/meta-hub"
    for bad in ("Team/App", "app_", "a//b", "reg:5000/-x"):
        with pytest.raises(ConfigError, match="not a valid Docker image name"):
            checked(bad)


def test_project_containers_are_split_by_service_into_running_and_stopped() -> None:
    cmd = compose.project_containers("shop")
    assert "--all" in cmd.argv and "label=com.docker.compose.project=shop" in cmd.argv
    found = compose.parse_project_containers(
        "a1 running web shop-web-1\n"
        "a2 exited web shop-web-2\n"
        "b1 restarting worker shop-worker-1\n"
        "b2 created worker shop-worker-2\n"
        "c1 dead cache shop-cache-1\n"
        "\n"
    )
    assert found.running_of("web") == {"a1": "shop-web-1"}
    assert found.running_of("worker") == {"b1": "shop-worker-1"}  # restarting: still one to retire
    assert found.running_of("cache") == {}
    assert found.stopped == {"web": ["a2"], "worker": ["b2"], "cache": ["c1"]}


def test_the_proxy_image_travels_under_the_users_registry_and_namespace_with_a_tag_from_its_name() -> None:
    assert docker.mirror_ref("reg:5000", "team", "caddy:2-alpine") == "reg:5000/team/tagship-proxy:caddy-2-alpine"
    assert docker.mirror_ref("reg:5000/", "", "caddy") == "reg:5000/tagship-proxy:caddy-latest"
    assert (
        docker.mirror_ref("reg", "a/b", "docker.io/library/caddy:2.8")
        == "reg/a/b/tagship-proxy:docker.io-library-caddy-2.8"
    )
    assert docker.mirror_ref("reg", "ns", "mirror:5000/x/caddy:2") == "reg/ns/tagship-proxy:mirror-5000-x-caddy-2"
    digest = "sha256:" + "a" * 64
    assert docker.mirror_ref("reg", "ns", f"caddy@{digest}") == f"reg/ns/tagship-proxy:caddy-sha256-{'a' * 64}"


def test_a_mirror_tag_is_a_valid_docker_tag_however_long_the_name() -> None:
    long_a, long_b = ("ghcr.io/" + "x" * 150 + f"/caddy:{n}" for n in ("2", "3"))
    tags = [docker.mirror_ref("reg", "ns", name).split(":", 1)[1] for name in (long_a, long_b)]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) for tag in tags), tags
    assert tags[0] != tags[1], "names that differ only past the limit get different tags"


def test_the_proxy_image_commands() -> None:
    mirror = "reg/ns/tagship-proxy:caddy-2-alpine"
    assert docker.image_id("caddy:2-alpine").argv == (
        "docker",
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "caddy:2-alpine",
    )
    assert docker.tag("caddy:2-alpine", mirror).argv == ("docker", "tag", "caddy:2-alpine", mirror)
    assert docker.pull(mirror).shown() == f"docker pull {mirror}"
    assert docker.push(mirror).shown() == f"docker push {mirror}"


def test_whether_a_file_names_the_project_and_a_file_nested_too_deeply_for_pyyaml_is_no_crash() -> None:
    """deploy reads the compose files' own `name:` after `docker compose config` took them (its output
    always has a name): a RecursionError there was a crash; such a file is skipped as one PyYAML cannot read."""
    deep = "services:\n  web:\n    x: " + "[" * 5000 + "]" * 5000 + "\n"
    good = "services:\n  web:\n    image: reg/app:${TAG}\n"
    assert not compose.declares_name([good, deep, "{not yaml", "- a list"])
    assert compose.declares_name([good, deep, "name: shop\n"])
    assert not compose.declares_name(["name: ''\nservices: {}\n"])  # empty: Compose takes the directory's
