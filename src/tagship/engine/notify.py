"""Webhooks ([notify]): the one place that speaks HTTP. A webhook that fails only warns.

The URL is a secret (a chat webhook's token is in its path or query): it is never printed; a
webhook is named by its place in the config, its format and its host.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPException
from urllib.parse import urlsplit

from tagship import __version__
from tagship.builders.command import mask
from tagship.builders.report import Report, refusal, webhook_body
from tagship.config import Webhook
from tagship.messages import t
from tagship.output import Output

TIMEOUT = 5.0  # seconds per webhook, the whole delivery: a slow chat service must not hold up the end of a deploy
ANSWER_LIMIT = 64 * 1024  # enough for any error a chat service sends back


def send(webhooks: Sequence[Webhook], report: Report, out: Output) -> None:
    """Post the report to every webhook that wants this outcome (`on`); failures are warnings."""
    for number, webhook in enumerate(webhooks):
        if report.event in webhook.on:
            _send_one(_name(number, webhook), webhook, report, out)


def _send_one(name: str, webhook: Webhook, report: Report, out: Output) -> None:
    if not webhook.url:
        out.warn(t("notify.not_set_no_notification", name=name, url_env=webhook.url_env))
        return
    try:
        answer = post(webhook.url, webhook_body(webhook.format, report))
    except (OSError, ValueError, HTTPException) as exc:  # URLError and timeouts are OSErrors
        out.warn(t("notify.notification_not_delivered", name=name, mask=mask(_reason(exc), (webhook.url,))))
        return
    refused = refusal(webhook.format, answer)
    if refused:
        out.warn(t("notify.service_refused_notification", name=name, mask=mask(refused, (webhook.url,))))
        return
    out.info(t("notify.notified", name=name, event=report.event))


def post(url: str, body: bytes) -> str:
    """POST a JSON body; the answer's text, all within TIMEOUT seconds. Raises OSError (refused,
    timed out, non-2xx, a redirect)."""
    # A socket's timeout bounds each read, not the whole answer: a receiver sending a byte every few
    # seconds would hold the end of the run for as long as it likes. So the delivery runs in a
    # thread of its own and is given up at the deadline; a daemon, it never holds tagship's exit.
    done: list[str] = []
    failed: list[BaseException] = []

    def deliver() -> None:
        try:
            done.append(_post(url, body))
        except BaseException as exc:  # handed to the caller's thread, which raises it
            failed.append(exc)

    worker = threading.Thread(target=deliver, name="tagship-webhook", daemon=True)
    worker.start()
    worker.join(TIMEOUT)
    if worker.is_alive():
        raise TimeoutError(t("notify.no_answer", timeout=TIMEOUT))
    if failed:
        raise failed[0]
    return done[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a delivery: urllib would follow it as a GET without the body."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def _post(url: str, body: bytes) -> str:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": f"tagship/{__version__}"},
    )
    # The opener raises HTTPError for every answer outside 2xx; config allows only http(s) URLs.
    with urllib.request.build_opener(_NoRedirect()).open(request, timeout=TIMEOUT) as response:
        return bytes(response.read(ANSWER_LIMIT)).decode(errors="replace")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:
            location = _origin(exc.headers.get("Location"))
            return t("notify.redirected", code=exc.code, reason=exc.reason, location=location)
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return t("notify.no_answer", timeout=TIMEOUT)
    return str(exc) or type(exc).__name__


def _origin(location: str | None) -> str:
    """Where a redirect points, without its path and query: a moved webhook's new URL carries its
    token there, and a webhook's URL is never printed."""
    if not location:
        return t("notify.no_location")
    parts = urlsplit(location)
    if not parts.scheme or not parts.hostname:
        return t("notify.same_host")
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number: the host alone says enough
        port = ""
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname}{port}{rest}"  # never its user and password either


def _name(number: int, webhook: Webhook) -> str:
    """How output names a webhook: its place, format and host; never its URL."""
    host = urlsplit(webhook.url).hostname if webhook.url else ""
    return f"notify[{number}] ({webhook.format}{', ' + host if host else ''})"
