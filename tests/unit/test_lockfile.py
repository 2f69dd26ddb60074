"""The lock (requirements/dev.lock) and pyproject.toml agree; every install from the lock is checked by hash."""

from __future__ import annotations

from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

from tests import lockfile


def test_the_lock_was_made_from_this_pyproject() -> None:
    assert lockfile.stamped_digest() == lockfile.inputs_digest(), (
        "pyproject.toml's requirements changed since requirements/dev.lock was made: run `bash scripts/lock.sh`"
    )


def test_every_requirement_is_pinned_within_its_range() -> None:
    pins = lockfile.pins()
    for text in lockfile.requirements():
        requirement = Requirement(text)
        versions = pins.get(lockfile.normalise(requirement.name))
        assert versions, f"{requirement.name} is not in requirements/dev.lock: run `bash scripts/lock.sh`"
        for version, _marker in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/dev.lock pins {requirement.name}=={version}, outside {text!r} in pyproject.toml"
            )


def test_every_pin_has_a_hash_and_no_pin_is_loose() -> None:
    text = lockfile.LOCK.read_text()
    blocks = [block for block in text.split("\n") if block and not block[0].isspace() and not block.startswith("#")]
    assert blocks, "the lock pins nothing"
    for block in blocks:
        assert "==" in block, f"not an exact pin: {block}"
        assert block.rstrip().endswith("\\"), f"no --hash lines follow {block}"
    assert text.count("--hash=sha256:") >= len(blocks)


def test_pins_are_parsed_with_their_markers() -> None:
    markers = [marker for entries in lockfile.pins().values() for _version, marker in entries if marker]
    # The universal lock pins colorama for Windows only (pytest and Click need it there): a parser that lost
    # the markers would find none.
    assert any("win32" in marker for marker in markers), markers
    for marker in markers:
        Marker(marker)  # a marker the parser cut wrongly would not parse


def test_a_changed_requirement_breaks_the_stamp(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    original = lockfile.PYPROJECT.read_text()
    pyproject.write_text(original)
    before = lockfile.inputs_digest(pyproject)
    pyproject.write_text(original.replace('"click>=8.2"', '"click>=8.3"'))
    assert lockfile.inputs_digest(pyproject) != before
