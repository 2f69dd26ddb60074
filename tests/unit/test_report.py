"""builders/report: the run's facts as chat text, webhook bodies per format, and local hooks' environment."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tagship.builders.report import Report, environment, local_hook, refusal, text, webhook_body

STARTED = Report(
    command="deploy",
    version="v1.4.2",
    commit="c0ffee" * 6 + "abcd",
    image="reg/ns/app:v1.4.2",
    servers=("deploy@web1", "web2"),
    deployer="Alice (alice@laptop)",
)
SUCCEEDED = replace(STARTED, result="succeeded", seconds=8.14)
FAILED = replace(STARTED, result="failed", seconds=3.0, error="[web2] command failed (exit 1): docker pull")

LINE = "tagship deploy v1.4.2 succeeded on deploy@web1, web2 in 8.1s (reg/ns/app:v1.4.2, by Alice (alice@laptop))"


def body(fmt: str, report: Report) -> object:
    return json.loads(webhook_body(fmt, report))


def test_the_chat_line_says_what_where_how_long_and_who() -> None:
    assert text(SUCCEEDED) == LINE
    assert text(FAILED) == (
        "tagship deploy v1.4.2 failed on deploy@web1, web2 in 3.0s (reg/ns/app:v1.4.2, by Alice (alice@laptop)): "
        "[web2] command failed (exit 1): docker pull"
    )
    assert text(replace(SUCCEEDED, environment="staging")).startswith("tagship deploy v1.4.2 to staging succeeded")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("slack", {"text": LINE}),
        ("feishu", {"msg_type": "text", "content": {"text": LINE}}),
        ("dingtalk", {"msgtype": "text", "text": {"content": LINE}}),
        ("wecom", {"msgtype": "text", "text": {"content": LINE}}),
    ],
)
def test_each_chat_format_gets_its_own_body_shape(fmt: str, expected: dict[str, object]) -> None:
    assert body(fmt, SUCCEEDED) == expected


def test_the_json_format_is_a_flat_object_of_the_facts_without_the_empty_ones() -> None:
    assert body("json", SUCCEEDED) == {
        "tool": "tagship",
        "command": "deploy",
        "version": "v1.4.2",
        "servers": ["deploy@web1", "web2"],
        "result": "succeeded",
        "seconds": 8.14,
        "deployed_by": "Alice (alice@laptop)",
        "commit": "c0ffee" * 6 + "abcd",
        "image": "reg/ns/app:v1.4.2",
        "text": LINE,
    }
    failed = body("json", replace(FAILED, environment="production"))
    assert isinstance(failed, dict)
    assert failed["error"] == "[web2] command failed (exit 1): docker pull"
    assert (failed["environment"], failed["result"]) == ("production", "failed")


def test_non_ascii_text_travels_as_utf8() -> None:
    raw = webhook_body("feishu", replace(SUCCEEDED, deployer="张三 (zs@laptop)"))
    assert "张三".encode() in raw


@pytest.mark.parametrize(
    ("fmt", "answer", "problem"),
    [
        (
            "dingtalk",
            '{"errcode":310000,"errmsg":"keywords not in content"}',
            "errcode 310000: keywords not in content",
        ),
        ("dingtalk", '{"errcode":0,"errmsg":"ok"}', ""),
        ("wecom", '{"errcode":93000,"errmsg":"invalid webhook url"}', "errcode 93000: invalid webhook url"),
        ("feishu", '{"code":19024,"msg":"Key Words Not Found","data":{}}', "code 19024: Key Words Not Found"),
        ("feishu", '{"StatusCode":0,"StatusMessage":"success","code":0,"msg":"success"}', ""),
        ("slack", "ok", ""),
        ("json", '{"errcode": 5}', ""),  # a receiver of our own: only the HTTP status counts
        ("wecom", "<html>not json</html>", ""),
    ],
)
def test_a_chat_service_that_answers_200_but_drops_the_message_is_caught(fmt: str, answer: str, problem: str) -> None:
    assert refusal(fmt, answer) == problem


def test_hooks_get_the_facts_and_the_result_only_once_the_run_has_ended() -> None:
    assert environment(STARTED) == {
        "TAGSHIP_COMMAND": "deploy",
        "TAGSHIP_VERSION": "v1.4.2",
        "TAGSHIP_COMMIT": "c0ffee" * 6 + "abcd",
        "TAGSHIP_IMAGE": "reg/ns/app:v1.4.2",
        "TAGSHIP_SERVERS": "deploy@web1,web2",
        "TAGSHIP_DEPLOYER": "Alice (alice@laptop)",
    }
    ended = environment(FAILED)
    assert (ended["TAGSHIP_RESULT"], ended["TAGSHIP_DURATION"]) == ("failed", "3.0")
    assert ended["TAGSHIP_ERROR"] == "[web2] command failed (exit 1): docker pull"
    assert "TAGSHIP_ERROR" not in environment(SUCCEEDED)


def test_a_local_hook_is_its_line_run_by_sh_in_the_project_directory_with_the_facts_in_its_environment() -> None:
    cmd = local_hook("./scripts/check.sh $TAGSHIP_VERSION", "/work/app", STARTED)
    assert cmd.argv[:2] == ("sh", "-c")
    assert cmd.argv[-2:] == ("/work/app", "./scripts/check.sh $TAGSHIP_VERSION"), "values travel as arguments"
    assert dict(cmd.env)["TAGSHIP_VERSION"] == "v1.4.2"
    assert cmd.shown() == "sh -c <in directory> sh /work/app './scripts/check.sh $TAGSHIP_VERSION'"
