"""The two servers of the middle tier and their tagship.toml."""

from __future__ import annotations

from pathlib import Path

from tagship import config as config_mod
from tagship.config import Config

H1, H2 = "root@h1.invalid", "root@h2.invalid"
PASSWORD = "s3cret-pw"

CONFIG = f"""\
servers = ["{H1}", "{H2}"]

[app]
path = "/srv/app"
upload = ["compose.yaml"]

[env]
tag_key = "APP_IMAGE_TAG"

[image]
name = "app"

[registry]
url = "reg"
namespace = "ns"
username = "deploy"

[health]
path = "/up"
timeout = 5
"""


def write_config(root: Path, extra: str = "", *, text: str = CONFIG) -> Config:
    """tagship.toml for the two servers (extra: more TOML after it), loaded as the CLI loads it."""
    (root / "tagship.toml").write_text(text + extra, encoding="utf-8")
    return config_mod.load(root, {"TAGSHIP_REGISTRY_PASSWORD": PASSWORD})
