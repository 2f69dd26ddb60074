"""Container listings, `docker inspect` and `docker image ls` output come from the server: untrusted.

A record is kept only when every field tagship reads has Docker's type and shape; any other is
skipped with a reason, and nothing a server prints makes a reader fail with an untyped exception.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagship.builders import compose, docker, proxy, status
from tagship.runtime.compose import switch, verify

ESC = "\x1b]0;owned\x07"
IMAGE_ID = "sha256:" + "a" * 64
WEB: dict[str, Any] = {  # `docker inspect` of a compose container, trimmed to what tagship reads
    "Id": "0123456789ab" * 5 + "cdef",
    "Name": "/app-web-1",
    "Image": IMAGE_ID,
    "RestartCount": 0,
    "State": {"Status": "running", "Running": True, "Restarting": False, "ExitCode": 0, "Health": None},
    "Config": {
        "Image": "reg.example:5000/ns/app:v1",
        "Labels": {"com.docker.compose.service": "web"},
        "Healthcheck": {"Test": ["CMD", "wget", "-q", "http://localhost:8080/up"], "Timeout": 3_000_000_000},
    },
    "NetworkSettings": {"Networks": {"tagship": {"IPAddress": "10.232.0.2", "Links": None}}},
    "HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "18100"}]}},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """WEB with the field at path ("State.Status") set to value."""
    record: dict[str, Any] = json.loads(json.dumps(WEB))
    *parents, last = path.split(".")
    place = record
    for key in parents:
        place = place[key]
    place[last] = value
    return record


def test_a_container_as_docker_describes_it_is_kept() -> None:
    assert docker.parse_inspect(json.dumps([WEB])) == ([WEB], [])


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("Id", "--rm" + "x" * 10, "Id is not a container ID"),
        ("Id", 12345, "Id is not a container ID"),
        ("Name", f"/app{ESC}", "Name is not a container name"),
        ("Name", "/" + "a" * 5000, "Name is not a container name"),
        ("Name", None, "Name is not a container name"),
        ("Image", "sha256:abc def", "Image is not an image ID"),
        ("RestartCount", "3", "RestartCount is not a count"),
        ("RestartCount", True, "RestartCount is not a count"),
        ("State", ["running"], "State is not an object"),
        ("State.Status", "running\n", "State.Status is not a container state"),
        ("State.Running", "yes", "State.Running, Restarting or Paused is not true or false"),
        ("State.ExitCode", "1; rm -rf /", "State.ExitCode is not an exit code"),
        ("State.ExitCode", 2**70, "State.ExitCode is not an exit code"),
        ("State.Health", {"Status": f"healthy{ESC}"}, "State.Health is not a health status"),
        ("Config", "reg/ns/app:v1", "Config is not an object"),
        ("Config.Image", f"reg/ns/app:v1{ESC}", "Config.Image is not an image reference"),
        ("Config.Image", "a" * 1001, "Config.Image is not an image reference"),
        ("Config.Labels", ["com.docker.compose.service=web"], "Config.Labels are not text labels"),
        ("Config.Labels", {"com.docker.compose.service": 7}, "Config.Labels are not text labels"),
        ("Config.Labels", {"x": "y" * 20_000}, "Config.Labels are not text labels"),
        ("Config.Healthcheck", "CMD true", "Config.Healthcheck is not an object"),
        ("Config.Healthcheck.Test", "CMD-SHELL true", "Config.Healthcheck.Test is not a list of words"),
        ("Config.Healthcheck.Timeout", "3s", "Config.Healthcheck.Timeout is not a number of nanoseconds"),
        ("NetworkSettings.Networks", ["tagship"], "NetworkSettings.Networks is not an object"),
        ("NetworkSettings.Networks.tagship", "10.0.0.1", "a network endpoint is not an object"),
        ("NetworkSettings.Networks.tagship.Links", "gate:web", "the links on network 'tagship' are not text"),
        ("NetworkSettings.Networks.tagship.IPAddress", 10, "the address on network 'tagship' is not text"),
        ("HostConfig.PortBindings", [["18100"]], "HostConfig.PortBindings is not an object"),
        ("HostConfig.PortBindings.8080/tcp", [{"HostPort": 18100}], "a port binding is not a host address and port"),
    ],
)
def test_a_field_of_the_wrong_type_size_or_characters_skips_the_record_and_says_why(
    path: str, value: Any, reason: str
) -> None:
    kept, skipped = docker.parse_inspect(json.dumps([changed(path, value), WEB]))
    assert kept == [WEB]
    assert skipped == [f"record 1: {reason}"]


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{}", '"x"', "[" * 100_000, "null"],
    ids=["empty", "text", "object", "string", "deep", "null"],
)
def test_output_that_is_no_listing_gives_no_container(text: str) -> None:
    kept, _ = docker.parse_inspect(text)
    assert kept == []


def test_a_record_with_missing_fields_is_read_with_defaults() -> None:
    kept, skipped = docker.parse_inspect(json.dumps([{"Name": "/app-web-1"}]))
    assert skipped == [] and kept == [{"Name": "/app-web-1"}]
    read_every_way(kept)


def read_every_way(kept: list[dict[str, Any]]) -> None:
    """Every reader of `docker inspect` records in tagship, on the kept ones."""
    verify.container_problem(kept, IMAGE_ID, "reg/ns/app:v1")
    status.states_of(kept)
    proxy.bound_ports(kept)
    for info in kept:
        docker.healthcheck_command(info)
        docker.healthcheck_timeout(info)
        switch._links_to(info, "web")
        switch._stopped(info)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Records near Docker's shape, with any value in any field tagship reads.
FIELDS = ["Id", "Name", "Image", "RestartCount", "State", "Config", "NetworkSettings", "HostConfig"]
NEAR = st.fixed_dictionaries(
    {},
    optional={
        **{name: JSON for name in FIELDS},
        "State": st.fixed_dictionaries(
            {}, optional={k: JSON for k in ("Status", "Running", "Restarting", "ExitCode", "Health")}
        ),
        "Config": st.fixed_dictionaries({}, optional={k: JSON for k in ("Image", "Labels", "Healthcheck")}),
        "NetworkSettings": st.fixed_dictionaries({}, optional={"Networks": st.dictionaries(st.text(max_size=8), JSON)}),
        "HostConfig": st.fixed_dictionaries({}, optional={"PortBindings": st.dictionaries(st.text(max_size=8), JSON)}),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NEAR | JSON, max_size=4))
def test_whatever_docker_inspect_says_the_kept_records_are_read_without_an_exception(records: list[Any]) -> None:
    kept, skipped = docker.parse_inspect(json.dumps(records))
    assert len(kept) + len(skipped) == len(records)
    read_every_way(kept)


# ---- docker ps (the compose project's containers) ------------------------------------------------

ID1, ID2 = "a" * 64, "b" * 64


def test_a_listing_line_with_a_crafted_id_state_service_or_name_is_skipped_and_named() -> None:
    listing = (
        f"{ID1} running web app-web-1\n"
        f"--force running web app-web-2\n"  # an "ID" that docker rm would take as an option
        f"{ID2} running\x1b[2J web app-web-3\n"
        f"{ID2} exited we$b app-web-4\n"
        f"{ID2} running web app-web-5{ESC}\n"
        f"{ID2} running web {'a' * 300}\n"
    )
    found = compose.parse_project_containers(listing)
    assert found.running == {"web": {ID1: "app-web-1"}} and found.stopped == {}
    assert found.skipped == (
        "line 2: the ID is not a container ID",
        "line 3: the state is not a container state",
        "line 4: the service is not a service name",
        "line 5: the name is not a container name",
        "line 6: the name is not a container name",
    )


def test_a_listing_keeps_running_and_stopped_containers_by_service() -> None:
    found = compose.parse_project_containers(f"{ID1} restarting web app-web-1\n{ID2} exited worker app-worker-1\n")
    assert found.running == {"web": {ID1: "app-web-1"}} and found.stopped == {"worker": [ID2]}
    assert found.skipped == ()


@given(st.text())
def test_any_listing_parses_and_keeps_only_docker_shaped_ids(text: str) -> None:
    found = compose.parse_project_containers(text)
    ids = [i for by_id in found.running.values() for i in by_id] + [i for ids in found.stopped.values() for i in ids]
    assert all(docker.CONTAINER_ID_RE.fullmatch(i) for i in ids)


# ---- docker image ls -----------------------------------------------------------------------------

DIGEST = "sha256:" + "c" * 64


def test_image_listing_lines_with_a_crafted_tag_or_digest_are_skipped_and_named() -> None:
    listing = f"v1 {DIGEST}\n<none> {DIGEST}\nv2 <none>\n--all {DIGEST}\nv3{ESC} {DIGEST}\nv4 sha256:x\nv5\n"
    found, skipped = docker.parse_image_refs(listing)
    assert found == [("v1", DIGEST), ("<none>", DIGEST), ("v2", "<none>")]
    assert skipped == [
        "line 4: the tag is not a Docker tag",
        "line 5: the tag is not a Docker tag",
        "line 6: the digest is not a digest",
        "line 7: the digest is not a digest",
    ]


@given(st.text())
def test_any_image_listing_parses_and_keeps_only_docker_tags(text: str) -> None:
    found, _ = docker.parse_image_refs(text)
    assert all(tag == "<none>" or docker.IMAGE_TAG_RE.fullmatch(tag) for tag, _ in found)
