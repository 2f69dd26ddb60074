"""Import layers: builders stay pure (never the transport), nothing imports the CLI, one process edge."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tagship"
BUILDERS = ("command", "docker", "compose", "git", "envfile", "proxy", "override", "history", "lock", "server")


def imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add((node.module or "").lstrip("."))
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", BUILDERS)
def test_builders_never_import_the_transport_or_subprocess(module: str) -> None:
    assert not imports(module) & {"transport", "subprocess", "os"}


def test_nothing_imports_the_cli() -> None:
    for path in SRC.glob("*.py"):
        if path.stem != "cli":
            assert "cli" not in imports(path.stem), path.name


def test_only_the_transport_starts_processes() -> None:
    for path in SRC.glob("*.py"):
        if path.stem != "transport":
            assert "subprocess" not in imports(path.stem), f"{path.name} starts processes"
