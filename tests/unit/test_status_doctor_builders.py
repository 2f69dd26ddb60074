"""The builders and parsers of `tagship status` and `tagship doctor`."""

from __future__ import annotations

import json

import pytest

from tagship.builders import docker, doctor, status
from tagship.builders.status import ContainerState

# `docker inspect --type container` of a compose container with a healthcheck, as Docker prints it.
WEB = {
    "Id": "abc",
    "Name": "/app-web-1",
    "Image": "sha256:aaa",
    "State": {"Status": "running", "Running": True, "Health": {"Status": "healthy"}},
    "Config": {"Image": "reg/ns/app:v1", "Labels": {"com.docker.compose.service": "web"}},
}
DB = {
    "Id": "def",
    "Name": "/app-db-1",
    "Image": "sha256:ddd",
    "State": {"Status": "exited", "Running": False},
    "Config": {"Image": "postgres:16", "Labels": {"com.docker.compose.service": "db"}},
}


def container(name: str, service: str, image_id: str, state: str = "running") -> ContainerState:
    return ContainerState(name, service, state, "", f"ref-of-{image_id}", image_id)


def test_inspected_containers_give_service_state_health_and_image_sorted_by_service() -> None:
    found = status.parse_inspected(json.dumps([WEB, DB]))
    assert found == [
        ContainerState("app-db-1", "db", "exited", "", "postgres:16", "sha256:ddd"),
        ContainerState("app-web-1", "web", "running", "healthy", "reg/ns/app:v1", "sha256:aaa"),
    ]
    assert [c.running for c in found] == [False, True]


def test_inspected_containers_without_labels_or_status_fall_back_to_the_name_and_running_flag() -> None:
    bare = {"Name": "/my-app-worker-2", "Image": "sha256:bbb", "State": {"Running": True}}
    assert status.parse_inspected(json.dumps([bare, "junk", 7])) == [
        ContainerState("my-app-worker-2", "app-worker", "running", "", "sha256:bbb", "sha256:bbb")
    ]


def test_unreadable_inspect_output_gives_no_containers() -> None:
    for text in ("", "not json", '{"Name": "x"}', "[[[", "null"):
        assert status.parse_inspected(text) == [], text


def test_a_container_state_is_absent_when_docker_finds_none() -> None:
    assert status.parse_container_state("[]\n") == status.ABSENT
    assert status.parse_container_state("") == status.ABSENT
    assert status.parse_container_state(json.dumps([WEB])) == "running"
    assert status.parse_container_state(json.dumps([DB])) == "exited"


def test_container_drift_names_running_containers_of_the_service_on_another_image() -> None:
    containers = [
        container("app-web-1", "web", "sha256:v1"),
        container("app-web-2", "web", "sha256:v0"),
        container("app-web-3", "web", "sha256:v0", state="exited"),  # stopped: runs nothing
        container("app-worker-1", "worker", "sha256:v0"),  # not the deployed service
    ]
    assert status.container_drift("web", containers, "sha256:v1", "v1") == [
        "app-web-2 (web) runs ref-of-sha256:v0, not v1's image"
    ]
    assert status.container_drift("web", containers[:1], "sha256:v1", "v1") == []


def test_container_drift_when_the_current_release_image_is_gone() -> None:
    assert status.container_drift("web", [], "", "v3") == ["the image of v3, the current release, is not on the server"]


def test_env_drift_only_when_the_tag_differs_from_the_last_succeeded_release() -> None:
    assert status.env_drift("APP_IMAGE_TAG", "v1", "v1") == []
    assert status.env_drift("", "v2", "v1") == []  # no .env key holds the tag
    assert status.env_drift("APP_IMAGE_TAG", "v2", "") == []  # nothing succeeded yet
    assert status.env_drift("APP_IMAGE_TAG", "v2", "v1") == [
        ".env sets APP_IMAGE_TAG=v2, but the last succeeded release is v1"
    ]
    assert status.env_drift("APP_IMAGE_TAG", "", "v1") == [
        ".env sets APP_IMAGE_TAG=(nothing), but the last succeeded release is v1"
    ]


def test_drift_text_from_the_server_is_shown_printable() -> None:
    evil = container("app-web-2\x1b[2J", "web", "sha256:v0")
    (line,) = status.container_drift("web", [evil], "sha256:v1", "v1\nrm")
    assert "\x1b" not in line and "\n" not in line


def test_doctor_commands() -> None:
    assert doctor.git_version().argv == ("git", "--version")
    assert doctor.docker_client_version().argv == ("docker", "--version")
    assert doctor.ssh_version().argv == ("ssh", "-V")
    assert doctor.docker_root_dir().argv == ("docker", "info", "--format", "{{.DockerRootDir}}")
    assert doctor.disk_free("/var/lib/docker").argv == ("df", "-Pk", "/var/lib/docker")


def test_compose_major_version() -> None:
    assert doctor.compose_major("2.29.1\n") == 2
    assert doctor.compose_major("v2.3.3") == 2
    assert doctor.compose_major("1.29.2") == 1
    assert doctor.compose_major("") is None
    assert doctor.compose_major("docker: 'compose' is not a docker command.") is None


def test_docker_root_dir_must_be_absolute() -> None:
    assert doctor.parse_root_dir("/var/lib/docker\n") == "/var/lib/docker"
    assert doctor.parse_root_dir("\n  /data/docker  \n") == "/data/docker"
    assert doctor.parse_root_dir("-rf\n") == ""
    assert doctor.parse_root_dir("") == ""


DF = """\
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/mapper/ubuntu--vg-ubuntu--lv  102626232 60491712  36875740      63% /
"""


def test_free_bytes_from_df() -> None:
    assert doctor.parse_available_bytes(DF) == 36875740 * 1024
    busybox = "Filesystem           1024-blocks    Used Available Capacity Mounted on\noverlay 100 90 10 90% /\n"
    assert doctor.parse_available_bytes(busybox) == 10 * 1024
    spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\nmy fs 100 90 10 90% /mnt/my disk\n"
    assert doctor.parse_available_bytes(spaced) == 10 * 1024
    assert doctor.parse_available_bytes("") is None
    assert doctor.parse_available_bytes("df: /nowhere: No such file or directory\n") is None
    assert doctor.parse_available_bytes("Filesystem x\nfoo bar baz\n") is None


def test_disk_check_is_a_problem_under_two_gigabytes() -> None:
    low = doctor.disk_check("h1", "/var/lib/docker", 2 * 1024**3 - 1)
    assert (low.status, low.detail) == (doctor.PROBLEM, "only 2.0 GB free under /var/lib/docker (less than 2.0 GB)")
    assert "tagship prune" in low.fix
    assert doctor.disk_check("h1", "/d", 300 * 1024**2).detail == "only 300 MB free under /d (less than 2.0 GB)"
    enough = doctor.disk_check("h1", "/var/lib/docker", 2 * 1024**3)
    assert (enough.status, enough.detail, enough.fix) == (doctor.OK, "2.0 GB free under /var/lib/docker", "")
    assert doctor.disk_check("h1", "/d", None).status == doctor.WARN


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            'Error response from daemon: Get "https://10.0.0.5:5443/v2/": tls: failed to verify certificate: '
            "x509: certificate signed by unknown authority",
            docker.UNTRUSTED,
        ),
        (
            'Error response from daemon: Get "https://reg.lan/v2/": x509: certificate is valid for other.lan, '
            "not reg.lan",
            docker.UNTRUSTED,
        ),
        ('Get "https://reg.lan/v2/": http: server gave HTTP response to HTTPS client', docker.PLAIN_HTTP),
        (
            'Error response from daemon: Get "https://10.201.0.11:5443/v2/": dial tcp 10.201.0.11:5443: '
            "connect: permission denied",
            docker.UNREACHABLE,
        ),
        ('Get "https://reg.lan/v2/": dial tcp 10.0.0.5:443: connect: connection refused', docker.UNREACHABLE),
        ('Get "https://reg.lan/v2/": dial tcp: lookup reg.lan on 127.0.0.53:53: no such host', docker.UNREACHABLE),
        (
            'Get "https://reg.lan/v2/": net/http: request canceled while waiting for connection '
            "(Client.Timeout exceeded while awaiting headers)",
            docker.UNREACHABLE,
        ),
        ('Get "https://reg.lan/v2/": net/http: TLS handshake timeout', docker.UNREACHABLE),
        (
            'Error response from daemon: Get "https://reg.lan/v2/": unauthorized: authentication required',
            docker.REFUSED,
        ),
        (
            "Error response from daemon: login attempt to https://reg.lan/v2/ failed with status: 401 Unauthorized",
            docker.REFUSED,
        ),
        ("Error response from daemon: manifest for reg.lan/app:v9 not found: manifest unknown", ""),
        ("write /var/lib/docker/tmp/GetImageBlob: no space left on device", ""),
    ],
)
def test_a_registry_failure_is_told_by_its_kind(stderr: str, kind: str) -> None:
    assert docker.registry_failure(stderr) == kind
    message, fix = docker.registry_trouble(stderr, url="reg.lan", server="web1", password_env="REG_PW")
    assert "web1" in message + fix and "reg.lan" in message + fix
    if kind == "":  # any other error: its first line, and a login to try by hand
        assert stderr.splitlines()[0] in message and "docker login reg.lan" in fix


def test_the_registry_probe_reached_the_registry_when_it_was_refused_or_had_no_such_image() -> None:
    assert docker.registry_answered("pull access denied for reg.lan/tagship-doctor-probe, repository does not exist")
    assert docker.registry_answered("Error response from daemon: manifest unknown")
    assert docker.registry_answered("unauthorized: authentication required")
    assert not docker.registry_answered('Get "https://reg.lan/v2/": dial tcp: lookup reg.lan: no such host')
    assert not docker.registry_answered("x509: certificate signed by unknown authority")
