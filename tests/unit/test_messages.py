"""The message catalog: every message in both languages, with the same fields; every id used exists."""

import ast
import string
from pathlib import Path

import pytest

from tagship import messages

SRC = Path(__file__).resolve().parents[2] / "src" / "tagship"


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _is_t(func: ast.expr) -> bool:
    """t(...), or messages.t(...) where a module's own `t` names something else (a transport)."""
    if isinstance(func, ast.Name):
        return func.id == "t"
    return isinstance(func, ast.Attribute) and func.attr == "t" and ast.unparse(func.value) == "messages"


def ids_used_in_source() -> dict[str, set[str]]:
    """Each literal id passed to t(...) in src, with the keyword fields given there."""
    used: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _is_t(node.func) and node.args and isinstance(node.args[0], ast.Constant):
                used.setdefault(str(node.args[0].value), set()).update(k.arg for k in node.keywords if k.arg)
    return used


CATALOG = messages.catalog()


@pytest.mark.parametrize("message_id", sorted(CATALOG))
def test_every_message_exists_in_both_languages_with_the_same_fields(message_id: str) -> None:
    texts = CATALOG[message_id]
    assert set(texts) == set(messages.LANGUAGES), f"{message_id}: languages {sorted(texts)}"
    assert all(text.strip() for text in texts.values()), f"{message_id}: an empty text"
    assert fields_of(texts["en"]) == fields_of(texts["zh"]), message_id


def test_every_id_the_code_uses_is_in_the_catalog_with_its_fields() -> None:
    for message_id, given in ids_used_in_source().items():
        assert message_id in CATALOG, f"t({message_id!r}) has no catalog entry"
        needed = fields_of(CATALOG[message_id]["en"])
        assert needed <= given, f"t({message_id!r}) misses fields {sorted(needed - given)}"


def test_every_catalog_message_is_used_somewhere() -> None:
    used = set(ids_used_in_source())
    source = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    # An id may also be built from a table in code (a dict of ids); then it appears as a string.
    unused = [mid for mid in CATALOG if mid not in used and f'"{mid}"' not in source]
    assert not unused, f"catalog messages no code says: {unused}"


@pytest.mark.parametrize(
    ("lang", "environ", "expected"),
    [
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "zh_TW.UTF-8", "LANG": "C"}, "zh"),
        (None, {"LC_ALL": "", "LANG": "zh_CN"}, "zh"),
        (None, {}, "en"),
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
        ("zh", {"LANG": "C.UTF-8"}, "zh"),
    ],
)
def test_the_language_follows_lang_then_the_locale_variables(
    lang: str | None, environ: dict[str, str], expected: str
) -> None:
    try:
        assert messages.choose(lang, environ) == expected
        assert messages.t("common.interrupted") == {"en": "interrupted", "zh": "已中断"}[expected]
    finally:
        messages.choose("en", {})
