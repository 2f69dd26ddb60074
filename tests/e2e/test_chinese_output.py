"""A deploy under LANG=zh_CN.UTF-8 speaks Chinese end to end; the same run with --lang en speaks English.

Every line tagship itself writes (step banners, done lines, info, warnings, the summary, the error and
its hint, the result) is checked; the servers' own output (`  [server] ...`), the commands shown
(`  [server] $ ...`) and an error's detail lines (`  | ...`, the server's stderr) are not tagship's
words and are left out.
"""

from __future__ import annotations

import re
import subprocess

import lab
from tests.apprepo import AppRepo, served

CHINESE = re.compile(r"[\u4e00-\u9fff]")
ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}


def own_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines tagship wrote in its own words, stderr then stdout."""
    lines = (result.stderr + result.stdout).splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("  [", "  | "))]


def not_chinese(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in own_lines(result) if not CHINESE.search(line)]


def test_a_deploy_and_a_failed_health_gate_speak_chinese_under_a_chinese_locale(the_lab: lab.Lab, app: AppRepo) -> None:
    app.release("v1")
    first = app.tagship("deploy", extra_env=ZH)
    assert first.returncode == 0, first.stderr
    assert served(the_lab, app) == ["v1", "v1"]
    assert len(own_lines(first)) > 20, first.stderr
    assert not_chinese(first) == [], first.stderr
    assert "==> 连接服务器" in first.stderr and "==> 等待新的 web 通过健康检查" in first.stderr

    app.release("v2", broken=True)
    failed = app.tagship("deploy", extra_env=ZH)
    assert failed.returncode == 8, failed.stderr
    assert served(the_lab, app) == ["v1", "v1"], "the broken release never took traffic"
    assert not_chinese(failed) == [], failed.stderr
    assert "错误\uff1a" in failed.stderr and "没有通过健康检查" in failed.stderr
    assert "正在撤销" in failed.stderr, "the undo is announced in Chinese too"

    english = app.tagship("--lang", "en", "deploy", extra_env=ZH)
    assert english.returncode == 8, english.stderr
    assert [line for line in own_lines(english) if CHINESE.search(line)] == [], english.stderr
    assert "==> connect to the servers" in english.stderr
    assert "error: " in english.stderr and "did not become healthy" in english.stderr
    assert served(the_lab, app) == ["v1", "v1"]
