"""What a server hands back is untrusted: its history, its lock holder, the text shown from it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagship.builders import envfile, history, lock
from tagship.builders.history import Record
from tagship.builders.untrusted import printable
from tagship.output import Output

GOOD = Record("v1", "reg/ns/app:v1", "deploy", "succeeded", "2026-11-26T07:00:00Z", env={"APP_IMAGE_TAG": "v1"})
ESC = "\x1b]0;owned\x07\x1b[2J"  # retitle the terminal, clear the screen
# The bidirectional-text controls: embeddings and overrides, isolates, and the three marks.
BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))]
CONTROL = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + BIDI


def line(**changes: Any) -> str:
    """GOOD as releases.jsonl holds it, with some fields replaced (None: removed)."""
    data = {**json.loads(GOOD.line()), **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None}) + "\n"


@pytest.mark.parametrize(
    "env",
    [
        {"APP_IMAGE_TAG": "v1\nEVIL=1"},  # a second line in .env
        {"APP_IMAGE_TAG": "v1\rEVIL=1"},
        {"APP_IMAGE_TAG": "v1\x00"},
        {"APP_IMAGE_TAG": "v1 #x"},
        {"APP_IMAGE_TAG": "${HOME}"},  # compose interpolates .env values
        {"APP_IMAGE_TAG": "a=b"},
        {"APP_IMAGE_TAG": ""},
        {"EVIL=1\nAPP_IMAGE_TAG": "v1"},
        {"1ABC": "v1"},
        {"APP IMAGE": "v1"},
        {"APP_IMAGE_TAG": 1},
    ],
)
def test_a_record_whose_env_could_write_other_lines_into_env_is_skipped_and_its_line_named(env: Any) -> None:
    records, problems = history.parse_lines(GOOD.line() + line(env=env))
    assert records == [GOOD]
    assert len(problems) == 1 and problems[0].startswith("line 2: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 1},
        {"version": ["v1"]},
        {"image": None},
        {"seconds": "3"},
        {"seconds": True},
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"env": ["APP_IMAGE_TAG", "v1"]},
        {"deployed_by": {"name": "x"}},
        {"version": "v1\n"},
        {"version": "-v1"},
        {"image": "reg/ns/app:v1\nEVIL"},
        {"image": "reg/ns/app:v2"},  # not the image of v1
        {"digest": "sha256:x\ny"},
    ],
)
def test_a_field_of_the_wrong_type_or_shape_skips_the_line_instead_of_crashing(changes: dict[str, Any]) -> None:
    records, problems = history.parse_lines(line(**changes) + GOOD.line())
    assert records == [GOOD]
    assert len(problems) == 1 and problems[0].startswith("line 1: "), problems


def test_lines_that_are_no_record_at_all_are_named_and_blank_lines_are_not() -> None:
    deep = "[" * 100_000  # json.loads raises RecursionError on it, not a decode error
    huge = line(seconds=None).replace("{", '{"seconds": 1' + "0" * 5000 + ", ", 1)  # a ValueError of int()
    text = f"{{broken\n\n[1, 2]\n{deep}\n" + GOOD.line() + '{"unrelated": 1}\n' + huge
    records, problems = history.parse_lines(text)
    assert records == [GOOD]
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 3", "line 4", "line 6", "line 7"]


def test_lines_are_counted_as_the_file_has_them_so_the_named_line_is_the_right_one() -> None:
    # Written by another tool without ensure_ascii: U+2028 and \x85 end lines for str.splitlines, not for the file.
    record = Record("v1", "reg/ns/app:v1", "deploy", "failed", "t", error="a\u2028b\x85c")
    raw = json.dumps(json.loads(record.line()), ensure_ascii=False) + "\n"
    records, problems = history.parse_lines(raw + "{broken\n")
    assert records == [record] and [p.split(":")[0] for p in problems] == ["line 2"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


# Names and values that look right, hostile ones, and anything at all.
_env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True) | st.text(alphabet="AB_=\n #\x00", max_size=5)
_env_values = (
    st.from_regex(r"[a-z0-9][a-z0-9.:@/-]{0,10}", fullmatch=True)
    | st.text(alphabet="ab=\n\r #$\"'\x00\\", max_size=6)
    | st.text()
)


@settings(max_examples=60)  # three parses per example; the regex strategies are slow to draw from
@given(
    st.dictionaries(st.sampled_from([*Record.__dataclass_fields__, "other"]), _json),
    st.dictionaries(_env_names | st.text(), _env_values, max_size=4),
)
def test_whatever_a_line_holds_parsing_never_fails_and_a_kept_env_sets_only_its_own_lines(
    fields: dict[str, Any], env: dict[str, str]
) -> None:
    for data in (fields, {**json.loads(GOOD.line()), **fields}, {**json.loads(GOOD.line()), "env": env}):
        for record in history.parse(json.dumps(data)):
            before = "# the app\nOTHER=1\n"
            after = before
            for key, value in record.env.items():
                after = envfile.set_value(after, key, value)
            added = after.removeprefix(before).split("\n")
            assert after.startswith(before) and added[-1] == ""
            assert [a.split("=", 1)[0] for a in added[:-1]] == list(record.env), "one line per key, nothing else"
            assert all(envfile.get_value(after, k) == v for k, v in record.env.items())


@given(st.text())
def test_any_text_as_history_parses_without_an_exception(text: str) -> None:
    records, problems = history.parse_lines(text)
    assert len(records) + len(problems) <= len(text.split("\n"))


# ---- the lock holder ---------------------------------------------------------------------------------


HOLDER = {
    "token": "t",
    "who": "bob",
    "host": "laptop",
    "pid": 4242,
    "command": "deploy",
    "version": "v9",
    "since": "2026-11-27T10:02:00Z",
}


@pytest.mark.parametrize(
    "changes",
    [
        {"pid": "4242; rm -rf /"},
        {"pid": True},
        {"pid": -1},
        {"pid": 2**64},
        {"pid": 4.5},
        {"who": None},
        {"who": 7},
        {"who": "m" * 1001},  # a huge name from the server
        {"token": None},  # a field missing its value
    ],
)
def test_a_holder_of_the_wrong_types_is_an_unknown_holder_not_a_crash(changes: dict[str, Any]) -> None:
    assert lock.parse_holder(json.dumps({**HOLDER, **changes})) is None
    assert lock.parse_status(json.dumps({**HOLDER, **changes}) + "\nconnection=alive\n") == (None, True)


@pytest.mark.parametrize(
    "text",
    ['{"pid": 1' + "0" * 5000 + "}", "[" * 100_000, "[]", '"bob"'],
    ids=["a 5000-digit number", "deep nesting", "a list", "a string"],
)
def test_a_holder_file_that_is_no_holder_is_an_unknown_holder_not_a_crash(text: str) -> None:
    assert lock.parse_holder(text) is None


def test_a_holder_description_shows_its_control_characters_as_escapes() -> None:
    holder = lock.parse_holder(json.dumps({**HOLDER, "who": f"mallory{ESC}", "version": "v9\nforged line"}))
    assert holder is not None
    described = holder.describe()
    assert not any(c in described for c in CONTROL)
    assert "mallory\\x1b]0;owned\\x07" in described and "v9\\nforged line" in described


# ---- showing it ----------------------------------------------------------------------------------------


@given(st.text())
def test_printable_text_has_no_control_character_and_a_bounded_length(text: str) -> None:
    shown = printable(text, limit=50)
    assert not any(c in shown for c in CONTROL)
    assert len(shown) <= 50 * 6 + 1  # "\x1b" is four characters, "\u202e" six; "…" marks a cut


def test_every_human_line_of_output_shows_control_characters_as_escapes() -> None:
    out = Output(out=io.StringIO(), err=io.StringIO())
    out.info(f"info {ESC}")
    out.warn(f"warn {ESC}")
    out.error(f"error {ESC}\nsecond line", detail=f"detail {ESC}")
    out.server_line("h1", f"remote {ESC}\r")
    out.banner(f"step {ESC}")
    out.result(f"result {ESC}\x9b31m")
    assert isinstance(out.err, io.StringIO) and isinstance(out.out, io.StringIO)
    written = out.err.getvalue() + out.out.getvalue()
    assert not any(c in written for c in CONTROL if c != "\n")
    assert "error \\x1b]0;owned\\x07\\x1b[2J\nsecond line" in written, "tagship's own line breaks stay"
    assert "  [h1] remote \\x1b]0;owned\\x07\\x1b[2J\n" in written, "a CRLF line's \\r is dropped, not shown"


@pytest.mark.parametrize("control", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_bidirectional_controls_from_a_server_are_shown_as_escapes(control: str) -> None:
    # "v1.2" with a right-to-left override would read as "2.1v": the terminal must show the escape.
    holder = lock.parse_holder(json.dumps({**HOLDER, "who": f"bob{control}evil", "version": f"v1{control}.2"}))
    assert holder is not None
    described = holder.describe()
    assert control not in described and f"bob\\u{ord(control):04x}evil" in described
    out = Output(out=io.StringIO(), err=io.StringIO())
    out.server_line("h1", f"remote {control}text")
    out.error(f"error {control}text", detail=f"detail {control}")
    assert isinstance(out.err, io.StringIO) and isinstance(out.out, io.StringIO)
    written = out.err.getvalue() + out.out.getvalue()
    assert control not in written
    assert f"[h1] remote \\u{ord(control):04x}text" in written


def test_text_in_other_scripts_is_shown_as_it_is() -> None:
    text = "部署 v1 失败 — مرحبا שלום é"  # right-to-left letters are text, not controls
    assert printable(text) == text
    out = Output(out=io.StringIO(), err=io.StringIO())
    out.info(text)
    assert isinstance(out.err, io.StringIO) and isinstance(out.out, io.StringIO)
    assert text in out.err.getvalue() + out.out.getvalue()


def test_json_events_carry_control_characters_escaped_by_json() -> None:
    out = Output(json_mode=True, out=io.StringIO(), err=io.StringIO())
    out.info(f"info {ESC}")
    assert isinstance(out.out, io.StringIO)
    written = out.out.getvalue()
    assert "\x1b" not in written and json.loads(written)["message"] == f"info {ESC}"


def test_a_traceback_is_masked_also_where_python_quotes_a_secret_in_an_exception() -> None:
    secret = "pa'ss\"wörd"  # repr escapes it unlike JSON: 'pa\'ss"wörd'
    out = Output(out=io.StringIO(), err=io.StringIO())
    out.add_secret(secret)
    try:
        raise ValueError(f"cannot parse {secret!r}")
    except ValueError:
        import traceback

        out.traceback(traceback.format_exc())
    assert isinstance(out.err, io.StringIO)
    written = out.err.getvalue()
    assert "ValueError: cannot parse '***'" in written
    assert "wörd" not in written
