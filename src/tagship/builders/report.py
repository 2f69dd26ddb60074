"""What a deploy or rollback tells the world: its facts as a line of text, as the body of a chat
webhook per format, and as the environment of the local hooks (`[hooks.local]`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tagship.builders.command import Command
from tagship.messages import t

FORMATS = ("json", "slack", "feishu", "dingtalk", "wecom")
EVENTS = ("success", "failure")  # what a webhook's `on` may list
SUCCEEDED, FAILED = "succeeded", "failed"  # the words the servers' history uses
_RESULT_WORDS = {SUCCEEDED: "report.succeeded", FAILED: "report.failed"}  # as the chat line says them


@dataclass(frozen=True)
class Report:
    """The facts of one run; result, error and seconds are known only once it has ended."""

    command: str  # deploy or rollback
    version: str
    commit: str
    image: str
    servers: tuple[str, ...]
    deployer: str
    environment: str = ""  # empty: no environment, and messages leave it out
    result: str = ""  # succeeded or failed; empty before the run ends
    error: str = ""  # the error's first line (secrets already masked)
    seconds: float | None = None

    @property
    def event(self) -> str:
        """success or failure: which webhooks (their `on`) hear about it."""
        return "success" if self.result == SUCCEEDED else "failure"


def first_line(text: str) -> str:
    """The first non-empty line of an error message."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def text(report: Report) -> str:
    """One line for a chat: starts with "tagship" (chat robots with a keyword filter can require it)."""
    where = t("report.where", environment=report.environment) if report.environment else ""
    took = t("report.took", seconds=report.seconds) if report.seconds is not None else ""
    result = t(_RESULT_WORDS[report.result]) if report.result in _RESULT_WORDS else report.result
    line = t(
        "report.line",
        command=report.command,
        version=report.version,
        where=where,
        result=result,
        servers=", ".join(report.servers),
        took=took,
        image=report.image,
        deployer=report.deployer,
    )
    return t("report.with_error", line=line, error=report.error) if report.error else line


def facts(report: Report) -> dict[str, object]:
    """The facts as a flat object (the `json` format), without the keys that do not apply."""
    body: dict[str, object] = {
        "tool": "tagship",
        "command": report.command,
        "version": report.version,
        "environment": report.environment,
        "servers": list(report.servers),
        "result": report.result,
        "seconds": report.seconds,
        "deployed_by": report.deployer,
        "commit": report.commit,
        "image": report.image,
        "error": report.error,
        "text": text(report),
    }
    return {key: value for key, value in body.items() if value not in ("", None)}


def webhook_body(fmt: str, report: Report) -> bytes:
    """The JSON a webhook of this format expects."""
    line = text(report)
    shapes: dict[str, object] = {
        "json": facts(report),
        "slack": {"text": line},
        "feishu": {"msg_type": "text", "content": {"text": line}},
        "dingtalk": {"msgtype": "text", "text": {"content": line}},
        "wecom": {"msgtype": "text", "text": {"content": line}},
    }
    return json.dumps(shapes[fmt], ensure_ascii=False).encode()


# Feishu, DingTalk and WeCom answer 200 even when they drop a message (a keyword filter, a bad
# token): the error is in the JSON answer, under these keys.
_ERROR_KEYS = {"feishu": ("code", "msg"), "dingtalk": ("errcode", "errmsg"), "wecom": ("errcode", "errmsg")}


def refusal(fmt: str, answer: str) -> str:
    """The error a chat service put in a 2xx answer; empty when it took the message."""
    if fmt not in _ERROR_KEYS:
        return ""
    code_key, message_key = _ERROR_KEYS[fmt]
    try:
        data = json.loads(answer)
    except ValueError:
        return ""
    if not isinstance(data, dict) or data.get(code_key) in (0, None):
        return ""
    return f"{code_key} {data[code_key]}: {data.get(message_key, '')}"


def environment(report: Report) -> dict[str, str]:
    """The TAGSHIP_* variables a local hook gets; result, error and duration once the run has ended."""
    env = {
        "TAGSHIP_COMMAND": report.command,
        "TAGSHIP_VERSION": report.version,
        "TAGSHIP_COMMIT": report.commit,
        "TAGSHIP_IMAGE": report.image,
        "TAGSHIP_SERVERS": ",".join(report.servers),
        "TAGSHIP_DEPLOYER": report.deployer,
        "TAGSHIP_ENVIRONMENT": report.environment,
        "TAGSHIP_RESULT": report.result,
        "TAGSHIP_ERROR": report.error,
        "TAGSHIP_DURATION": "" if report.seconds is None else f"{report.seconds:.1f}",
    }
    return {key: value for key, value in env.items() if value}


# The hook line runs in the project directory; both travel as arguments, never inside the script.
_IN_DIRECTORY = 'cd -- "$1" && exec sh -c "$2"'


def local_hook(line: str, directory: str, report: Report) -> Command:
    """A local hook: a shell line run by sh in the project directory, the run's facts in its environment."""
    return Command(
        ("sh", "-c", _IN_DIRECTORY, "sh", directory, line),
        env=tuple(sorted(environment(report).items())),
        labels=((_IN_DIRECTORY, "<in directory>"),),
    )
