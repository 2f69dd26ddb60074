"""Fixtures of the middle tier: recording transports, two scripted servers, a config and a release."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagship.builders import compose
from tagship.config import Config
from tagship.engine import session as session_mod
from tagship.output import Output
from tagship.release.image import Source
from tagship.release.version import Release
from tagship.remote import interrupt
from tagship.runtime.compose import switch
from tagship.runtime.compose.target import App, app_from_source
from tests.middle.clock import FakeClock
from tests.middle.fake_checkout import FakeCheckout, plug_local
from tests.middle.fake_host import REPOSITORY, FakeHost, attach, rendered
from tests.middle.recorder import Script, plug
from tests.middle.settings import H1, H2, write_config


@pytest.fixture(autouse=True)
def no_interrupts() -> Iterator[None]:
    interrupt.reset()
    yield
    interrupt.reset()


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """The replies and the record of every transport this test's Connections make."""
    recording = Script()
    plug(monkeypatch, recording)
    return recording


@pytest.fixture
def out() -> Output:
    return Output(out=io.StringIO(), err=io.StringIO())


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


@pytest.fixture
def hosts(script: Script) -> dict[str, FakeHost]:
    """Both servers, each running v1 (web, worker, db) behind the proxy."""
    return attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2"))


@pytest.fixture
def checkout(script: Script, monkeypatch: pytest.MonkeyPatch) -> FakeCheckout:
    """The deploying machine (git checkout tagged v2, Docker client); the commands' local transport records too."""
    machine = FakeCheckout()
    plug_local(monkeypatch, script, machine)
    return machine


@pytest.fixture
def release() -> Release:
    return Release("v2", "c0ffee" * 6 + "abcd", REPOSITORY, "Alice (alice@laptop)")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The tagged tree, with the compose file the deploy uploads."""
    path = tmp_path / "tree"
    path.mkdir()
    (path / "compose.yaml").write_text("services:\n  web:\n    image: reg/ns/app:${APP_IMAGE_TAG}\n", encoding="utf-8")
    return path


@pytest.fixture
def tagged_app(config: Config, tree: Path, release: Release) -> App:
    """The app as `tagship deploy` reads it from the tagged tree (runtime.compose.target.app_from_source)."""
    source = Source(
        tree=tree,
        compose_files=("compose.yaml",),
        service=compose.ServiceSpec("web", f"{REPOSITORY}:v2", compose.BuildSpec(".")),
        tag_key="APP_IMAGE_TAG",
        image_key="",
        raw_image=REPOSITORY + ":${APP_IMAGE_TAG}",
        local_env="APP_IMAGE_TAG=v2\n",
        rendered=rendered("v2"),
    )
    return app_from_source(config, source, release)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock for the switch's and the session's waiting loops (no real sleeping)."""
    fake = FakeClock()
    monkeypatch.setattr(switch, "time", fake)
    monkeypatch.setattr(session_mod, "time", fake)
    return fake
