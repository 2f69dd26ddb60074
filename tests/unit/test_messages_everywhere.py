"""Every user-facing message in src/tagship comes from the catalog: no bare English text.

Walks the source and fails where a TagshipError (or subclass) is built, Output's info / warn / error /
result / banner is called, or a plan step is given a title, an undo title or a hint, with a string
literal or f-string holding words instead of a t(...) call. Variables passed through are fine: the
place that made them is checked where it was made.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tagship import messages

SRC = Path(__file__).resolve().parents[2] / "src" / "tagship"

# Owned by other helpers' branches while issue 13 is worked in parallel (their catalogs are
# config.toml / schema.toml, cli.toml, progress.toml); they join this check when merged.

OUTPUT_METHODS = {"info", "warn", "error", "result", "banner"}
# Plan.add / add_each take the step title first; point_of_no_return(live, hint) both.
TITLE_FIRST = {"add", "add_each"}
ALL_ARGS = {"point_of_no_return"}
TEXT_KEYWORDS = {"title", "undo_title", "hint", "message", "live"}
WORDS = re.compile(r"[A-Za-z]{2,}")


def error_classes() -> set[str]:
    """TagshipError and every class in src deriving from it, by name."""
    bases: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases}
    found = {"TagshipError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def bare_text(node: ast.expr) -> bool:
    """Whether an argument holds words written in the code rather than taken from the catalog."""
    if isinstance(node, ast.Call):
        return False  # t(...), str(exc), ", ".join(...): the text comes from elsewhere
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(WORDS.search(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(bare_text(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        return bare_text(node.left) or bare_text(node.right)
    if isinstance(node, ast.IfExp):
        return bare_text(node.body) or bare_text(node.orelse)
    if isinstance(node, ast.BoolOp):
        return any(bare_text(value) for value in node.values)
    return False


def called_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def message_arguments(call: ast.Call, errors: set[str]) -> Iterator[ast.expr]:
    """The arguments of this call that are user-facing text."""
    name = called_name(call)
    texts = [k.value for k in call.keywords if k.arg in TEXT_KEYWORDS]
    if name in errors or name in OUTPUT_METHODS or name in ALL_ARGS:
        texts += call.args
    elif name in TITLE_FIRST and call.args:
        texts.append(call.args[0])
    yield from texts


def bare_messages(source: str, errors: set[str]) -> list[int]:
    """Line numbers of calls in source that pass bare text as a message."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and any(bare_text(a) for a in message_arguments(node, errors)):
            lines.append(node.lineno)
    return lines


def test_every_message_in_the_source_comes_from_the_catalog() -> None:
    errors = error_classes()
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        found += [f"{relative}:{line}" for line in bare_messages(path.read_text(), errors)]
    assert not found, "bare messages (use t(...) and a messages/<area>.toml entry):\n" + "\n".join(found)


def test_the_check_finds_a_bare_message_of_each_kind() -> None:
    errors = error_classes()
    bare = [
        'raise ConfigError("no such key")',
        'raise LockedError(t("lock.held"), hint=f"run {cmd} to release it")',
        'out.info(f"deployed {version}")',
        'out.banner("connect")',
        'plan.add("pull images", pull)',
        'plan.add_each(t("a.b"), targets, run, undo_title="put it back")',
        'plan.point_of_no_return(t("a.b"), "nothing is undone")',
        'out.warn("an " + text)',
    ]
    for source in bare:
        assert bare_messages(source, errors) == [1], source
    fine = [
        'raise ConfigError(t("config.missing", key=key), hint=t("config.hint"))',
        "out.info(text)",
        'out.result(f"{name}: {value}")',
        "out.error(str(exc), exc.detail)",
        'plan.add(t("deploy.pull"), pull, servers=("x",))',
    ]
    for source in fine:
        assert bare_messages(source, errors) == [], source


# What a user types or looks for stays as it is in every language: `commands`, --flags, config.keys.
VERBATIM = re.compile(r"`[^`]+`|(?<![\w-])--[a-z][a-z-]+|\b[a-z_]{2,}\.[a-z_]{2,}\b")


def test_commands_flags_and_keys_stay_verbatim_in_chinese() -> None:
    changed = [
        f"{message_id}: {span}"
        for message_id, texts in messages.catalog().items()
        for span in VERBATIM.findall(texts["en"])
        if span not in texts["zh"]
    ]
    assert not changed, changed
