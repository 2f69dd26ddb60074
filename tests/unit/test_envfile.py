from hypothesis import given
from hypothesis import strategies as st

from tagship.builders import envfile

SAMPLE = """# deploy settings
APP_PORT=9876
APP_NAME=meta-hub
SECRET="a#b = 'c' d"
URL=http://x/?a=b#frag
APP_IMAGE_TAG=v0.0.2  # current
export OTHER = spaced value
"""


def test_set_value_rewrites_only_the_key_line() -> None:
    result = envfile.set_value(SAMPLE, "APP_IMAGE_TAG", "v0.0.3")
    before, after = SAMPLE.splitlines(), result.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("APP_IMAGE_TAG=v0.0.2  # current", "APP_IMAGE_TAG=v0.0.3  # current")]


def test_set_value_keeps_export_spacing_quotes_and_comment() -> None:
    text = 'export APP_IMAGE_TAG = "v1"  # set by tagship\r\nB=2\n'
    assert envfile.set_value(text, "APP_IMAGE_TAG", "v2") == 'export APP_IMAGE_TAG = "v2"  # set by tagship\r\nB=2\n'
    assert envfile.set_value("T='v1' # c\n", "T", "v2") == "T='v2' # c\n"
    assert envfile.get_value('export APP_IMAGE_TAG = "v1"  # set by tagship\n', "APP_IMAGE_TAG") == "v1"


def test_a_key_inside_a_multi_line_value_is_text_and_never_edited() -> None:
    text = 'CERT="-----BEGIN-----\nAPP_IMAGE_TAG=not-a-key\n-----END-----"\nAPP_IMAGE_TAG=v1\n'
    assert envfile.get_value(text, "APP_IMAGE_TAG") == "v1"
    assert envfile.get_value(text, "CERT") == "-----BEGIN-----\nAPP_IMAGE_TAG=not-a-key\n-----END-----"
    assert envfile.set_value(text, "APP_IMAGE_TAG", "v2") == text.replace("=v1", "=v2")
    only_inside = 'CERT="a\nAPP_IMAGE_TAG=x\nb"\n'
    assert envfile.set_value(only_inside, "APP_IMAGE_TAG", "v2") == only_inside + "APP_IMAGE_TAG=v2\n"


def test_a_multi_line_value_of_the_key_itself_becomes_one_line() -> None:
    text = 'A=1\nT="v1\nstill v1" # note\nB=2\n'
    assert envfile.set_value(text, "T", "v2") == 'A=1\nT="v2" # note\nB=2\n'


def test_set_value_appends_a_missing_key_and_keeps_a_missing_final_newline_safe() -> None:
    assert envfile.set_value("A=1", "APP_IMAGE_TAG", "v1") == "A=1\nAPP_IMAGE_TAG=v1\n"
    assert envfile.set_value("", "APP_IMAGE_TAG", "v1") == "APP_IMAGE_TAG=v1\n"


def test_set_value_does_not_touch_keys_that_only_share_a_prefix() -> None:
    text = "TAG=old\nAPP_IMAGE_TAG=v1\nAPP_IMAGE_TAG_OLD=v0\n"
    assert envfile.set_value(text, "TAG", "new") == "TAG=new\nAPP_IMAGE_TAG=v1\nAPP_IMAGE_TAG_OLD=v0\n"


def test_set_value_keeps_crlf_and_export_prefix() -> None:
    assert envfile.set_value("export K=1\r\nB=2\r\n", "K", "9") == "export K=9\r\nB=2\r\n"


def test_get_value_reads_quotes_comments_and_last_definition() -> None:
    assert envfile.get_value(SAMPLE, "SECRET") == "a#b = 'c' d"
    assert envfile.get_value(SAMPLE, "URL") == "http://x/?a=b#frag"
    assert envfile.get_value(SAMPLE, "APP_IMAGE_TAG") == "v0.0.2"
    assert envfile.get_value(SAMPLE, "OTHER") == "spaced value"
    assert envfile.get_value("A=1\nA=2\n", "A") == "2"
    assert envfile.get_value(SAMPLE, "MISSING") is None


_line = st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=40)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(st.lists(_line, max_size=12), _tag)
def test_setting_the_tag_changes_no_other_line(lines: list[str], tag: str) -> None:
    text = "".join(line + "\n" for line in lines if not envfile.get_value(line, "APP_IMAGE_TAG"))
    result = envfile.set_value(text, "APP_IMAGE_TAG", tag)
    assert result == text + f"APP_IMAGE_TAG={tag}\n"
    assert envfile.get_value(result, "APP_IMAGE_TAG") == tag


def test_write_command_carries_content_on_stdin_and_path_as_an_argument() -> None:
    cmd = envfile.write("/srv/my app/.env", "A=1\n", note="new .env")
    assert cmd.argv[:2] == ("sh", "-c")
    assert cmd.argv[3:] == ("sh", "/srv/my app/.env", "600")  # a new .env may hold secrets
    assert cmd.stdin == b"A=1\n"
    assert envfile.write("/srv/app/compose.yaml", "", note="", new_mode=0o644).argv[-1] == "644"
    assert "A=1" not in cmd.shown()


@given(st.text().filter(lambda v: "\r" not in v and "\x00" not in v))
def test_decode_reads_back_what_encode_wrote(value: str) -> None:
    assert envfile.decode(envfile.encode(value)) == value
