"""Import layers: each folder imports only from the layers below it; builders stay pure; one process edge."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tagship"

# Lowest first. A module may import from its own layer and the layers before it, never after.
LAYERS = (
    "messages",  # the message catalog (English and Chinese): every layer says things
    "errors",  # the exception family and exit codes
    "builders",  # pure: Command values, parsers, the remote shell scripts
    "output",  # the terminal and the JSON event stream
    "remote",  # transports (the one process edge), the persistent shell, addresses, interrupts
    "config",  # tagship.toml, validated into frozen objects
    "release",  # version from git, the tagged tree, the image
    "engine",  # plan, executor, connections, session (lock, history, audit)
    "runtime",  # how a release is switched on a server (compose today)
    "commands",  # one module per CLI command
    "cli",  # argument parsing, dispatch, exit codes
)


def layer_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    name = relative.parts[0].removesuffix(".py")
    return "cli" if name == "__main__" else name


def imported_modules(path: Path) -> set[str]:
    """The tagship modules and standard modules a file imports (dotted, without the tagship prefix)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def tagship_layers(path: Path) -> set[str]:
    names = {m.split(".")[1] for m in imported_modules(path) if m.startswith("tagship.") and m.count(".") >= 1}
    return {"cli" if n == "__main__" else n for n in names if n in LAYERS}


# Every module, package __init__ files included (a package's __init__ is in its folder's layer); the root
# package's own __init__ is in no layer: it imports nothing (test_the_package_root_imports_nothing).
ROOT = SRC / "__init__.py"
MODULES = sorted(p for p in SRC.rglob("*.py") if p != ROOT)


def test_every_module_is_in_a_layer() -> None:
    for path in MODULES:
        assert layer_of(path) in LAYERS, f"{path.relative_to(SRC)} is in no layer"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_from_lower_layers(path: Path) -> None:
    own = LAYERS.index(layer_of(path))
    higher = {name for name in tagship_layers(path) if LAYERS.index(name) > own}
    assert not higher, f"{path.relative_to(SRC)} ({layer_of(path)}) imports from {sorted(higher)}"


def test_the_package_root_imports_nothing() -> None:
    # `import tagship` (and so every `tagship --help`) loads no layer.
    assert not {m for m in imported_modules(ROOT) if m.startswith("tagship")}


def test_builders_never_touch_processes_or_the_transport() -> None:
    for path in (SRC / "builders").glob("*.py"):
        imports = imported_modules(path)
        assert not imports & {"subprocess", "os"}, path.name
        assert not any(m.startswith("tagship.remote") for m in imports), path.name


def test_only_the_transport_starts_processes() -> None:
    for path in MODULES:
        if path != SRC / "remote" / "transport.py":
            assert "subprocess" not in imported_modules(path), f"{path.relative_to(SRC)} starts processes"


def is_runtime_submodule(name: str) -> bool:
    """tagship.runtime.compose, tagship.runtime.compose.switch, ...: a module or package under runtime/
    (tagship.runtime.Target, a name of the interface, is not)."""
    parts = name.split(".")
    if parts[:2] != ["tagship", "runtime"] or len(parts) < 3:
        return False
    place = SRC.joinpath(*parts[1:])
    return place.is_dir() or place.with_suffix(".py").is_file()


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if layer_of(p) in ("engine", "commands")],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_commands_and_the_engine_reach_a_runtime_only_through_its_interface(path: Path) -> None:
    # tagship.runtime (Runtime, runtime_for) is the seam: a second runtime sits beside compose behind it.
    inside = sorted(m for m in imported_modules(path) if is_runtime_submodule(m))
    assert not inside, f"{path.relative_to(SRC)} imports {inside}: go through tagship.runtime"


def test_the_runtime_check_sees_a_runtime_module() -> None:
    assert is_runtime_submodule("tagship.runtime.compose")
    assert is_runtime_submodule("tagship.runtime.compose.switch")
    assert not is_runtime_submodule("tagship.runtime.Target")
    assert not is_runtime_submodule("tagship.runtime")


def test_commands_do_not_import_each_other() -> None:
    # demo is the one exception: it is a scripted run of the deploy command on a throw-away app.
    for path in (SRC / "commands").glob("*.py"):
        if path.stem == "demo":
            continue
        others = {m for m in imported_modules(path) if m.startswith("tagship.commands.")}
        assert not others, f"{path.name} imports {sorted(others)}: shared code belongs in a lower layer"
