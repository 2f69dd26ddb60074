"""engine/notify against a real HTTP receiver on 127.0.0.1: what arrives, and that a failing webhook only warns."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tagship.builders.report import Report
from tagship.config import Config, Webhook
from tagship.engine import notify
from tagship.errors import EXIT_FAILED, TagshipError
from tagship.output import Output
from tests.receiver import TOKEN, closed_port, receiving, silent_port

REPORT = Report(
    command="deploy",
    version="v2",
    commit="c0ffee" * 6 + "abcd",
    image="reg/ns/app:v2",
    servers=("web1", "web2"),
    deployer="Alice (alice@laptop)",
    result="succeeded",
    seconds=4.2,
)
FAILED = replace(REPORT, result="failed", error="deploy lock on web1 held by bob")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The receiver is on this machine: a proxy from the environment must not sit in between."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    yield


@pytest.fixture
def out() -> Output:
    return Output(out=io.StringIO(), err=io.StringIO())


def printed(out: Output) -> str:
    assert isinstance(out.err, io.StringIO)
    return out.err.getvalue()


def test_the_report_arrives_as_json_posted_to_the_webhook(out: Output) -> None:
    with receiving() as receiver:
        notify.send([Webhook(url=receiver.url, format="json")], REPORT, out)
    (message,) = receiver.received
    assert message.path == f"/hook/{TOKEN}"
    assert message.content_type == "application/json; charset=utf-8"
    facts = message.json()
    assert (facts["version"], facts["result"], facts["seconds"]) == ("v2", "succeeded", 4.2)
    assert (facts["servers"], facts["deployed_by"]) == (["web1", "web2"], "Alice (alice@laptop)")
    assert "notify[0] (json, 127.0.0.1): notified (success)" in printed(out)
    assert TOKEN not in printed(out)


def test_each_webhook_hears_only_the_outcomes_it_asked_for(out: Output) -> None:
    with receiving() as on_failure, receiving() as on_both:
        webhooks = [Webhook(url=on_failure.url, format="slack", on=("failure",)), Webhook(url=on_both.url)]
        notify.send(webhooks, REPORT, out)
        notify.send(webhooks, FAILED, out)
    assert [m.json() for m in on_failure.received] == [
        {"text": "tagship deploy v2 failed on web1, web2 in 4.2s (reg/ns/app:v2, by Alice (alice@laptop)): "
                 "deploy lock on web1 held by bob"}
    ]  # fmt: skip
    assert [m.json()["result"] for m in on_both.received] == ["succeeded", "failed"]


def test_a_refused_connection_only_warns_and_the_next_webhook_still_gets_its_message(out: Output) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    with receiving() as alive:
        notify.send([Webhook(url=dead), Webhook(url=alive.url)], REPORT, out)
    assert len(alive.received) == 1
    assert "warning: notify[0] (json, 127.0.0.1): notification not delivered (" in printed(out)
    assert "refused" in printed(out)
    assert TOKEN not in printed(out)


def test_an_error_status_only_warns(out: Output) -> None:
    with receiving(status=500, answer=b"boom") as receiver:
        notify.send([Webhook(url=receiver.url)], REPORT, out)
    assert len(receiver.received) == 1
    assert "notification not delivered (HTTP 500 Internal Server Error)" in printed(out)


def test_a_chat_service_that_drops_the_message_with_200_is_a_warning(out: Output) -> None:
    answer = b'{"errcode":310000,"errmsg":"keywords not in content"}'
    with receiving(answer=answer) as receiver:
        notify.send([Webhook(url=receiver.url, format="dingtalk")], REPORT, out)
    assert receiver.received[0].json() == {"msgtype": "text", "text": {"content": REPORT_LINE}}
    assert "the service refused the notification (errcode 310000: keywords not in content)" in printed(out)
    assert "notified" not in printed(out)


REPORT_LINE = "tagship deploy v2 succeeded on web1, web2 in 4.2s (reg/ns/app:v2, by Alice (alice@laptop))"


def test_a_webhook_that_never_answers_is_given_up_after_the_timeout(
    out: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "TIMEOUT", 0.3)
    with silent_port() as port:
        notify.send([Webhook(url=f"http://127.0.0.1:{port}/hook/{TOKEN}")], REPORT, out)
    assert "notification not delivered (no answer within 0.3s)" in printed(out)


def test_a_receiver_that_trickles_its_answer_is_given_up_at_the_deadline_for_the_whole_delivery(
    out: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeout is a deadline for the whole delivery, not for each read: a byte every 0.2 s
    (each read well within 0.5 s) for 4 s is given up at 0.5 s."""
    monkeypatch.setattr(notify, "TIMEOUT", 0.5)
    with receiving(answer=b"x" * 20, trickle=0.2) as receiver:
        started = time.monotonic()
        notify.send([Webhook(url=receiver.url)], REPORT, out)
        took = time.monotonic() - started
    assert took < 1.5, f"held the run for {took:.1f}s"
    assert "notification not delivered (no answer within 0.5s)" in printed(out)
    assert "notified" not in printed(out)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_reported_as_not_delivered(out: Output, status: int) -> None:
    """urllib would follow a 302 as a GET without the body and call it delivered: a 3xx is named,
    with where it points (its host, never its path: a moved webhook's token is there)."""
    with receiving() as target:
        location = f"http://127.0.0.1:{target.port}/moved/{TOKEN}"
        with receiving(status=status, headers=(("Location", location),)) as receiver:
            notify.send([Webhook(url=receiver.url)], REPORT, out)
    assert len(receiver.received) == 1
    assert (target.received, target.got_other) == ([], []), "the redirect was followed"
    said = printed(out)
    assert f"notification not delivered (HTTP {status} " in said
    assert f"a redirect to http://127.0.0.1:{target.port}/…, which tagship does not follow" in said
    assert "notified" not in said and TOKEN not in said


def test_an_unset_url_variable_warns_by_its_name(out: Output) -> None:
    notify.send([Webhook(url_env="TAGSHIP_WEBHOOK_URL")], REPORT, out)
    assert "warning: notify[0] (json): $TAGSHIP_WEBHOOK_URL is not set; no notification sent" in printed(out)


def test_the_cli_masks_every_webhook_url_in_all_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagship import cli
    from tagship.commands import deploy as deploy_command
    from tagship.remote import interrupt

    (tmp_path / "tagship.toml").write_text(
        'servers = ["web1"]\n[app]\npath = "/srv/app"\n[notify]\nurl_env = "TAGSHIP_WEBHOOK_URL"\n'
    )
    monkeypatch.setenv("TAGSHIP_WEBHOOK_URL", f"https://chat.example/hook/{TOKEN}")

    def leaky(config: Config, out: Output, options: object) -> None:
        out.warn(f"posting to {config.notify[0].url}")  # whatever might print it: a hook's output, an error
        raise TagshipError(f"failed at {config.notify[0].url}")

    monkeypatch.setattr(deploy_command, "run", leaky)
    monkeypatch.setattr(interrupt, "install", lambda: None)  # keep pytest's own Ctrl-C
    assert cli.main(["-C", str(tmp_path), "deploy"]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert TOKEN not in captured.err + captured.out
    assert "posting to ***" in captured.err and "failed at ***" in captured.err
