"""A failing deploy run as typed with -v: neither the registry password nor a secrets file's value
appears in anything it writes, tracebacks included (the lab test tests/e2e/test_failed_deploy.py
checks TAGSHIP_TRACE, which only the real transports write)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tagship import cli
from tagship.builders import envfile
from tagship.remote.transport import Result
from tests.middle.fake_checkout import LOCAL, FakeCheckout, plug_local
from tests.middle.fake_host import ENV, FakeHost, attach
from tests.middle.recorder import Call, Script, plug
from tests.middle.settings import CONFIG, H1, H2, PASSWORD, write_config

SECRET = "db 's3cret' \"Zq9\" $HOME"  # written in double quotes with escapes: the app sees it decoded
API_KEY = "ak_live_0123456789"


def stderr_with_secrets(script: Script, hosts: dict[str, FakeHost]) -> None:
    """Starting the new release fails, and the server's error quotes the values it was given."""
    quoted = f"invalid value DB_PASSWORD={SECRET} API_KEY={API_KEY} (registry login {PASSWORD})"
    script.on("--scale web=2 web", Result(1, "", quoted), server=H2, first=True)


def a_bug_that_quotes_its_data(script: Script, hosts: dict[str, FakeHost]) -> None:
    """An unexpected exception whose text holds the data it was handling: the .env with the secrets."""

    def crash(call: Call) -> Result:
        raise ValueError(f"cannot encode {call.stdin!r}")

    script.on(f"<atomic write> sh {ENV} ", crash, server=H2, times=1, first=True)


@pytest.mark.parametrize(
    ("inject", "code", "said"),
    [
        (stderr_with_secrets, 1, "invalid value DB_PASSWORD=*** API_KEY=***"),
        (a_bug_that_quotes_its_data, 1, "ValueError"),
    ],
    ids=["a server's error quoting the values", "an unexpected error quoting the .env"],
)
def test_a_failing_deploy_with_v_shows_no_secret_not_even_in_its_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    inject: Callable[[Script, dict[str, FakeHost]], None],
    code: int,
    said: str,
) -> None:
    script = Script()
    plug(monkeypatch, script)
    hosts = attach(script, FakeHost(H1, "h1"), FakeHost(H2, "h2"))
    plug_local(monkeypatch, script, FakeCheckout())
    script.on("ls-files --error-unmatch", Result(1, "", ""), server=LOCAL, first=True)  # secrets.env is not in git
    write_config(tmp_path, text=CONFIG.replace("[env]\n", '[env]\nsecrets_file = "secrets.env"\n'))
    (tmp_path / "secrets.env").write_text(f"DB_PASSWORD={envfile.encode(SECRET)}\nAPI_KEY={API_KEY}\n")
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", PASSWORD)
    inject(script, hosts)

    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        exit_code = cli.main(["-v", "-C", str(tmp_path), "deploy"])
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)

    written = capfd.readouterr()
    shown = written.out + written.err
    assert exit_code == code, shown
    assert "Traceback (most recent call last)" in shown, "-v shows the traceback"
    assert said in shown
    for secret in (SECRET, API_KEY, PASSWORD):
        assert secret not in shown
    for host in hosts.values():  # the secrets did travel: inside the .env's bytes, on stdin
        assert any(envfile.encode(SECRET) in c.stdin for c in script.calls if c.server == host.server)
