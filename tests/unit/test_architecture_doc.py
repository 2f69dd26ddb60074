"""docs/architecture.md's folder table names what src/tagship holds: every top-level folder and module
has a row, and every row names something that exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "tagship"
DOC = ROOT / "docs" / "architecture.md"


def table_names(text: str) -> list[str]:
    """The names in the first column of the folder table (`builders/`, `errors.py`, ...)."""
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def tree_names() -> set[str]:
    """src/tagship's top-level folders (with a trailing /) and modules (the package's own __init__ aside)."""
    found = set()
    for path in SRC.iterdir():
        if path.is_dir() and path.name != "__pycache__":
            found.add(f"{path.name}/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            found.add(path.name)
    return found


def test_every_folder_and_module_has_a_row() -> None:
    missing = tree_names() - set(table_names(DOC.read_text()))
    assert not missing, f"docs/architecture.md's table lacks {sorted(missing)}"


def test_every_row_names_something_that_exists() -> None:
    names = table_names(DOC.read_text())
    assert names, "no folder table found in docs/architecture.md"
    absent = [n for n in names if not (SRC / n.rstrip("/")).exists() or n.endswith("/") != (SRC / n).is_dir()]
    assert not absent, f"docs/architecture.md's table names {absent}, which src/tagship does not hold"


def test_the_table_is_read_as_the_doc_writes_it() -> None:
    text = "| folder | what |\n| --- | --- |\n| `a/` | x `b.py` |\n| `c.py`, `d.py` | y |\n"
    assert table_names(text) == ["a/", "c.py", "d.py"]
